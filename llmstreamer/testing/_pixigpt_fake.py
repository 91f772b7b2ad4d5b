"""PixiGPT's REST endpoints on `FakeLLMServer` (``server.pixigpt``): state, and scripted runs.

Under the ``pixigpt`` base URL (``server.base_url("pixigpt")``) the fake server keeps
assistants, threads, messages and runs in memory and answers as PixiGPT does. A run follows a
script: its status on creation is the script's first, and each poll (``GET .../runs/{id}``)
moves one step on, staying on the last; a ``completed`` run carries the scripted message (text,
reasoning, sources, media, code), a ``failed`` one ``last_error: {code, message}``. Creates
with an ``Idempotency-Key`` already seen answer the first result again without creating
anything. Queued `Reply`\\ s still apply: a status, a body or a connection fault replaces the
answer (and changes nothing); any other reply lets the state answer.

Example::

    server.pixigpt.script_run(["queued", "in_progress", "completed"], text="Paris")
    server.pixigpt.script_run(["in_progress", "failed"], error={"code": "server_error", "message": "GPU lost"})
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import TYPE_CHECKING, Any, Iterable, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

import attrs

from ._wire import Rendered

if TYPE_CHECKING:
    from ._reply import RecordedRequest, Reply

__all__ = ["PixiGPTFake", "RunScript"]

PREFIX = "/pixigpt/v1/"
_REST = ("assistants", "threads", "rerank", "moderations", "vision")
_CREATED = 1700000000
_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error"}


@attrs.frozen(kw_only=True)
class RunScript:
    """How one run goes: its statuses in order, and what it ends with."""

    statuses: tuple[str, ...] = attrs.field(default=("queued", "in_progress", "completed"), converter=tuple)
    text: str = "Hello from the fake assistant."
    reasoning: str = ""
    sources: tuple[Mapping[str, Any], ...] = attrs.field(default=(), converter=tuple)
    media: tuple[Mapping[str, Any], ...] = attrs.field(default=(), converter=tuple)
    code: tuple[Mapping[str, Any], ...] = attrs.field(default=(), converter=tuple)
    error: Mapping[str, Any] | None = None
    poll_headers: Mapping[str, str] = attrs.field(factory=dict)


class PixiGPTFake:
    """The in-memory PixiGPT of one fake server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._requests = itertools.count(1)
        self.assistants: dict[str, dict[str, Any]] = {}
        self.threads: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self._scripts: list[RunScript] = []
        self._progress: dict[str, tuple[RunScript, int]] = {}
        self._keys: dict[str, tuple[int, Any]] = {}

    # --- scripting ----------------------------------------------------------------------------

    def script_run(self, statuses: Iterable[str] = ("queued", "in_progress", "completed"), **fields: Any) -> None:
        """Queue how the next created run goes (see `RunScript` for ``fields``)."""
        with self._lock:
            self._scripts.append(RunScript(statuses=tuple(statuses), **fields))  # type: ignore[arg-type]

    def seed_thread(self, thread_id: str) -> None:
        """Make a thread with this exact id (ids with ``/``, ``?``, ``#`` or unicode, for tests)."""
        with self._lock:
            self._thread(thread_id)

    # --- answering ----------------------------------------------------------------------------

    def render(self, request: RecordedRequest, reply: Reply) -> Rendered | None:
        """The state's answer to ``request``, or None when it is not a REST call or ``reply`` is a fault."""
        raw = urlsplit(request.path).path
        if not raw.startswith(PREFIX) or raw[len(PREFIX) :].split("/", 1)[0] not in _REST:
            return None
        if reply.status >= 300 and reply.body is None:
            message = reply.error.get("message") if reply.error else None
            error = {"message": message or f"HTTP {reply.status}", "type": _TYPES.get(reply.status, "api_error")}
            body = json.dumps({"error": error}).encode()
            return Rendered(reply.status, {"x-request-id": "req_pixi_error", **reply.headers}, "application/json", body=body)
        faulty = reply.body is not None or reply.events is not None or reply.silent
        if faulty or reply.disconnect_at is not None or reply.disconnect_after is not None:
            return None
        segments = [unquote(s) for s in raw[len(PREFIX) :].split("/")]
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.path).query).items()}
        key = request.headers.get("idempotency-key")
        with self._lock:
            if key and request.method == "POST" and key in self._keys:
                status, body = self._keys[key]
                headers: dict[str, str] = {}
            else:
                status, body, headers = self._route(request.method, segments, request.json, query)
                if key and request.method == "POST" and status < 300:
                    self._keys[key] = (status, body)
        headers = {"x-request-id": f"req_pixi_{next(self._requests)}", **headers, **reply.headers}
        return Rendered(status, headers, "application/json", body=json.dumps(body).encode())

    def _route(self, method: str, seg: list[str], body: Any, query: Mapping[str, str]) -> tuple[int, Any, dict[str, str]]:
        body = body if isinstance(body, dict) else {}
        head, n = seg[0], len(seg)
        if head == "assistants":
            if n == 1:
                return (200, self._create_assistant(body), {}) if method == "POST" else (200, _page(self.assistants.values()), {})
            found = self.assistants.get(seg[1])
            if found is None:
                return _missing("assistant", seg[1])
            if n == 3 and seg[2] == "threads":
                limit = int(query.get("limit", 100))
                return 200, _page([t for t in self.threads.values() if seg[1] in t["_assistants"]][:limit]), {}
            if method == "PUT":
                found.update({k: v for k, v in body.items() if k in ("name", "instructions", "tools_config")})
            elif method == "DELETE":
                del self.assistants[seg[1]]
                return 200, {"id": seg[1], "object": "assistant.deleted", "deleted": True}, {}
            return 200, found, {}
        if head == "threads":
            return self._threads(method, seg, body, query)
        if head == "rerank":
            docs = list(body.get("documents") or ())
            words = set(str(body.get("query", "")).lower().split())
            scored = sorted(
                ({"index": i, "document": d, "relevance_score": len(words & set(d.lower().split())) / (len(words) or 1)} for i, d in enumerate(docs)),
                key=lambda r: -r["relevance_score"],
            )
            top = body.get("top_k")
            return 200, {"object": "list", "results": scored[:top] if top else scored, "usage": {"total_tokens": len(docs)}}, {}
        if head == "moderations":
            return 200, {"category": "SAFE", "score": 0.01, "usage": _usage(3)}, {}
        if head == "vision" and n == 2:
            return 200, {"result": f"{seg[1]} of {body.get('image_url') or body.get('video_url')}", "usage": _usage(5)}, {}
        return _missing("endpoint", "/".join(seg))

    def _threads(self, method: str, seg: list[str], body: dict[str, Any], query: Mapping[str, str]) -> tuple[int, Any, dict[str, str]]:
        n = len(seg)
        if n == 1:
            if method == "POST":
                made = self._thread(f"thread_{next(self._ids)}")
                made["metadata"] = dict(body.get("metadata") or {})
                return 200, _public(made), {}
            return 200, _page(self.threads.values()), {}
        thread = self.threads.get(seg[1])
        if thread is None:
            return _missing("thread", seg[1])
        if n == 2:
            if method == "DELETE":
                del self.threads[seg[1]]
                return 200, {"id": seg[1], "object": "thread.deleted", "deleted": True}, {}
            return 200, _public(thread), {}
        tid = seg[1]
        if seg[2] == "messages":
            if method == "GET":
                limit = int(query.get("limit", 20))
                return 200, {"object": "list", "data": self.messages[tid][-limit:]}, {}
            if n == 4 and seg[3] == "bulk":
                many = [self._message(tid, m.get("role"), m.get("content")) for m in body.get("messages") or ()]
                return 200, {"object": "list", "data": many}, {}
            return 200, self._message(tid, body.get("role"), body.get("content")), {}
        if seg[2] == "runs":
            if n == 3 and method == "POST":
                return 200, self._create_run(tid, body), {}
            run = self.runs.get(seg[3]) if n == 4 else None
            if run is None or run["thread_id"] != tid:
                return _missing("run", seg[3] if n > 3 else "")
            script, step = self._progress[run["id"]]
            step = min(step + 1, len(script.statuses) - 1)
            self._progress[run["id"]] = (script, step)
            self._set_status(run, script, step)
            return 200, run, dict(script.poll_headers)
        return _missing("endpoint", "/".join(seg))

    # --- state --------------------------------------------------------------------------------

    def _thread(self, thread_id: str) -> dict[str, Any]:
        thread = {"id": thread_id, "object": "thread", "created_at": _CREATED, "metadata": {}, "_assistants": set()}
        self.threads[thread_id] = thread
        self.messages[thread_id] = []
        return thread

    def _create_assistant(self, body: Mapping[str, Any]) -> dict[str, Any]:
        aid = f"asst_{next(self._ids)}"
        made = {"id": aid, "object": "assistant", "created_at": _CREATED, "name": body.get("name", ""), "instructions": body.get("instructions", "")}
        if body.get("tools_config") is not None:
            made["tools_config"] = body["tools_config"]
        self.assistants[aid] = made
        return made

    def _message(self, thread_id: str, role: Any, content: Any, **extra: Any) -> dict[str, Any]:
        made = {
            "id": f"msg_{next(self._ids)}",
            "object": "thread.message",
            "created_at": _CREATED,
            "thread_id": thread_id,
            "role": role,
            "content": [{"type": "text", "text": {"value": content, "annotations": []}}],
            **extra,
        }
        self.messages[thread_id].append(made)
        return made

    def _create_run(self, thread_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        script = self._scripts.pop(0) if self._scripts else RunScript()
        rid = f"run_{next(self._ids)}"
        assistant = str(body.get("assistant_id", ""))
        self.threads[thread_id]["_assistants"].add(assistant)
        run = {"id": rid, "object": "thread.run", "created_at": _CREATED, "thread_id": thread_id, "assistant_id": assistant, "model": "pixi-fake"}
        self.runs[rid] = run
        self._progress[rid] = (script, 0)
        self._set_status(run, script, 0)
        return run

    def _set_status(self, run: dict[str, Any], script: RunScript, step: int) -> None:
        status = script.statuses[step]
        run["status"] = status
        if status == "completed" and "message" not in run:
            extra: dict[str, Any] = {k: list(v) for k, v in (("sources", script.sources), ("media", script.media), ("code", script.code)) if v}
            if script.reasoning:
                extra["reasoning_content"] = script.reasoning
            run["message"] = self._message(run["thread_id"], "assistant", script.text, **extra)
        if status == "failed" and script.error is not None:
            run["last_error"] = dict(script.error)


def _public(thread: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in thread.items() if not k.startswith("_")}


def _page(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": [_public(i) for i in items]}


def _usage(total: int) -> dict[str, int]:
    return {"prompt_tokens": total, "completion_tokens": 0, "total_tokens": total}


def _missing(what: str, name: str) -> tuple[int, Any, dict[str, str]]:
    return 404, {"error": {"message": f"{what} {name!r} not found", "type": "not_found_error", "code": "not_found"}}, {}
