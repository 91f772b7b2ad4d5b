"""The server side of one `FakeModelSocketServer` connection: requests in, scripted events out."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any, Iterator, Mapping

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection

from ._ms_script import CloseSeq, Drop, Fail, FakeSeq, Generation, GenRequest, Hidden, Hold, Raw, Step, ToolCalls
from ._wire_embed import fake_embedding, tokens

__all__: list[str] = []


class _GenRun:
    """One generation in progress, advanced one event at a time so generations interleave."""

    def __init__(self, seq: FakeSeq, cid: str, options: Mapping[str, Any], script: Generation) -> None:
        self.seq = seq
        self.cid = cid
        self.options = dict(options)
        self.steps: Iterator[Step] = iter(script.steps)
        self.eos = script.eos
        self.output = 0
        self.text: list[str] = []
        self.waiting = False  # for a tool_return
        self.hold: threading.Event | None = None
        self.done = False

    def ready(self) -> bool:
        if self.hold is not None and self.hold.is_set():
            self.hold = None
        return not self.waiting and self.hold is None and not self.done


class _Connection:
    """The server side of one client connection: a loop over requests and generation steps."""

    def __init__(self, server: Any, ws: ServerConnection) -> None:
        self.server = server
        self.ws = ws
        self.runs: list[_GenRun] = []

    def send(self, event: dict[str, Any]) -> None:
        try:
            self.ws.send(json.dumps(event))
        except ConnectionClosed:
            pass  # the client is gone; keep reading what it sent before (it is recorded)

    def state(self, seq: FakeSeq, state: str) -> None:
        seq.state = state
        self.send({"event": "seq_state", "seq_id": seq.id, "state": state})

    def drop(self) -> None:
        try:
            self.ws.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def run(self) -> None:
        server = self.server
        while not server._stopping.is_set():
            busy = not server._paused.is_set() and any(r.ready() for r in self.runs)
            try:
                raw = self.ws.recv(timeout=0 if busy else 0.01)
            except TimeoutError:
                raw = None
            except ConnectionClosed:
                return
            if raw is not None:
                self.request(raw if isinstance(raw, str) else raw.decode("utf-8", "replace"))
            if busy:
                for r in list(self.runs):
                    if r.ready():
                        self.step(r)

    # --- requests -----------------------------------------------------------------------------

    def error(self, message: str, cid: Any = None, seq_id: Any = None, **more: Any) -> None:
        event: dict[str, Any] = {"event": "error", "message": message}
        if cid is not None:
            event["cid"] = cid
        if seq_id is not None:
            event["seq_id"] = seq_id
        self.send({**event, **more})

    def request(self, raw: str) -> None:
        try:
            frame = json.loads(raw)
        except ValueError:
            self.error("the request is not JSON")
            return
        self.server._record(frame)
        cid, data = frame.get("cid"), frame.get("data") or {}
        if frame.get("request") == "seq_open":
            self.open(cid, data)
            return
        seq_id = frame.get("seq_id")
        seq = self.server.sequences.get(seq_id) if isinstance(seq_id, str) else None
        if seq is None or seq.owner is not self or seq.state == "closed":
            self.error(f"unknown sequence {seq_id}", cid, seq_id, code="not_found")
            return
        command = data.get("command")
        handler = getattr(self, f"cmd_{command}", None) if isinstance(command, str) else None
        if handler is None:
            self.error(f"unknown command {command!r}", cid, seq_id, code="bad_request")
            return
        handler(seq, cid, data)

    def open(self, cid: Any, data: Mapping[str, Any]) -> None:
        model = data.get("model")
        models = self.server.models
        if not isinstance(model, str) or (models is not None and model not in models):
            self.error(f"unknown model {model!r}", cid, code="model_not_found")
            return
        seq = self.server._new_seq(model, self)
        seq.tools_enabled = bool(data.get("tools_enabled"))
        seq.skip_prelude = bool(data.get("skip_prelude"))
        self.send({"event": "seq_opened", "cid": cid, "seq_id": seq.id})
        self.state(seq, "ready")

    def busy(self, seq: FakeSeq, cid: Any) -> bool:
        if seq.state != "ready":
            self.error(f"sequence {seq.id} is {seq.state}", cid, seq.id, code="invalid_state")
            return True
        return False

    def cmd_append(self, seq: FakeSeq, cid: Any, data: Mapping[str, Any]) -> None:
        if self.busy(seq, cid):
            return
        self.state(seq, "appending")
        text = str(data.get("text") or "")
        if not seq.context:
            self.text(seq, cid, self.server.bos, hidden=True, output=0)
        if data.get("echo"):
            self.text(seq, cid, text, hidden=False, output=0)
        seq.context.append((str(data.get("role") or "user"), text))
        self.send({"event": "seq_append_finish", "cid": cid, "seq_id": seq.id})
        self.state(seq, "ready")

    def cmd_gen(self, seq: FakeSeq, cid: Any, data: Mapping[str, Any]) -> None:
        if self.busy(seq, cid):
            return
        options = {k: v for k, v in data.items() if k != "command"}
        request = GenRequest(seq.id, str(cid), seq.model, tuple(seq.context), options)
        source = self.server._next_script()
        script = source(request) if callable(source) else source
        self.runs.append(_GenRun(seq, str(cid), options, script))
        self.state(seq, "generating")

    def cmd_tool_return(self, seq: FakeSeq, cid: Any, data: Mapping[str, Any]) -> None:
        run = next((r for r in self.runs if r.seq is seq and r.waiting), None)
        if run is None:
            self.error("no tool call is pending", cid, seq.id, code="invalid_state")
            return
        if cid != run.cid:
            self.error("tool_return must use the cid of its generation", cid, seq.id, code="bad_request")
            return
        for result in data.get("results") or ():
            seq.context.append(("tool", f"{result.get('name')}: {result.get('result')}"))
        run.waiting = False
        self.state(seq, "generating")

    def cmd_fork(self, seq: FakeSeq, cid: Any, data: Mapping[str, Any]) -> None:
        if self.busy(seq, cid):
            return
        self.state(seq, "forking")
        child = self.server._new_seq(seq.model, self)
        child.context = list(seq.context)
        child.tools_enabled, child.skip_prelude, child.parent = seq.tools_enabled, seq.skip_prelude, seq.id
        self.send({"event": "seq_fork_finish", "cid": cid, "seq_id": seq.id, "child_seq_id": child.id})
        self.state(seq, "ready")

    def cmd_embed(self, seq: FakeSeq, cid: Any, data: Mapping[str, Any]) -> None:
        """One ``seq_embedding`` per input, last index first (a client must place them by index)."""
        if self.busy(seq, cid):
            return
        texts = [str(item.get("text") or "") for item in data.get("inputs") or ()]
        for index in reversed(range(len(texts))):
            vector = fake_embedding(texts[index], data.get("dimensions"))
            event = {"event": "seq_embedding", "seq_id": seq.id, "cid": cid, "index": index, "embedding": vector}
            self.send({**event, "input_tokens": tokens([texts[index]])})
        self.send({"event": "seq_embed_finish", "seq_id": seq.id, "cid": cid, "prompt_tokens": tokens(texts)})

    def cmd_close(self, seq: FakeSeq, cid: Any, data: Mapping[str, Any]) -> None:
        if self.server.ignore_close:
            return
        self.runs = [r for r in self.runs if r.seq is not seq]
        self.closed(seq, None if self.server.close_without_cid else cid, None)

    def closed(self, seq: FakeSeq, cid: Any, error: str | None) -> None:
        seq.state = "closed"
        event = {
            "event": "seq_closed",
            "seq_id": seq.id,
            "input_tokens": seq.tokens(),
            "cached_input_tokens": 0,
            "output_tokens": sum(len(t.split()) for r, t in seq.context if r == "assistant"),
            "duration_ms": 1,
            "error": error,
        }
        if cid is not None:
            event["cid"] = cid
        self.send(event)

    # --- generation ---------------------------------------------------------------------------

    def text(self, seq: FakeSeq, cid: Any, text: str, *, hidden: bool, output: int) -> None:
        self.send(
            {
                "event": "seq_text",
                "seq_id": seq.id,
                "cid": cid,
                "text": text,
                "hidden": hidden,
                "num_input_tokens": seq.tokens(),
                "num_output_tokens": output,
                "tokens": None,
            }
        )

    def finish(self, run: _GenRun, *, eos: bool) -> None:
        run.done = True
        self.runs.remove(run)
        seq = run.seq
        if eos and run.eos:
            run.output += 1
            self.text(seq, run.cid, run.eos, hidden=True, output=run.output)
        seq.context.append(("assistant", "".join(run.text)))
        self.send({"event": "seq_gen_finish", "seq_id": seq.id, "cid": run.cid})
        self.state(seq, "ready")

    def step(self, run: _GenRun) -> None:
        seq = run.seq
        limit = run.options.get("max_tokens")
        step = next(run.steps, None)
        if step is None:
            self.finish(run, eos=True)
        elif isinstance(step, str):
            if isinstance(limit, int) and run.output >= limit:
                self.finish(run, eos=False)
                return
            run.output += 1
            run.text.append(step)
            self.text(seq, run.cid, step, hidden=False, output=run.output)
        elif isinstance(step, Hidden):
            self.text(seq, run.cid, step.text, hidden=True, output=run.output)
        elif isinstance(step, ToolCalls):
            seq.context.append(("assistant", "".join(run.text)))
            run.text = []
            run.waiting = True
            self.send({"event": "seq_tool_call", "seq_id": seq.id, "cid": run.cid, "tool_calls": [dict(c) for c in step.calls]})
            self.state(seq, "tool_call")
        elif isinstance(step, Fail):
            extra = {k: v for k, v in (("code", step.code), ("details", step.details)) if v is not None}
            if step.route == "none":
                self.error(step.message, **extra)
                return
            self.error(step.message, run.cid if step.route == "cid" else None, seq.id, **extra)
            run.done = True
            self.runs.remove(run)
            self.state(seq, "ready")
        elif isinstance(step, CloseSeq):
            run.done = True
            self.runs.remove(run)
            self.closed(seq, None, step.error)
        elif isinstance(step, Drop):
            self.drop()
        elif isinstance(step, Hold):
            run.hold = step.event
        elif isinstance(step, Raw):
            try:
                self.ws.send(step.text)
            except ConnectionClosed:
                pass
