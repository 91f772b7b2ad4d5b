"""A streaming chat page on Flask whose answers survive reloads, reconnects and worker changes.

Run it (no key, no network: Eliza answers unless ``LLMSTREAMER_MODEL`` names another model)::

    pip install "llmstreamer[flask]"
    python examples/flask_chat/app.py                 # http://127.0.0.1:5000, logs in memory,
                                                      # conversations in instance/sessions.db
    LLMSTREAMER_MODEL=openai:gpt-4o-mini python examples/flask_chat/app.py

    pip install "llmstreamer[flask,redis]"            # several workers and machines share a Redis
                                                      # (answers and conversations)
    REDIS_URL=redis://127.0.0.1:6379/0 gunicorn -w 4 -k gthread --threads 8 \\
        --chdir examples/flask_chat "app:create_app()"

How it works:

- ``POST /chat`` takes ``{"message": "..."}`` (the page), or a whole history
  ``{"messages": [{"role", "content"}, ...]}`` (API clients), starts the answer with
  `llmstreamer.web.ResumableStreams.start` and returns ``{"id": ...}`` at once. The answer is
  generated on a worker thread, apart from any connection, and every event goes to a log:
  Redis Streams when ``REDIS_URL`` is set, else this process's memory.
- The conversation lives on the server, in a session store (`llmstreamer.open_session_store`):
  ``LLMSTREAMER_STORE`` if set, else the Redis at ``REDIS_URL`` (shared by every worker), else
  ``sessions.db`` (SQLite) in the app's instance folder. A cookie names the visitor's session.
  Each answer is a `llmstreamer.Conversation` turn on it, so the finished answer is stored with
  its metadata (model, usage, timings) even when nobody is watching; a stopped or failed
  answer is kept as far as it got (``keep_partial``), as the page shows it. ``{"message"}``
  continues the visitor's session (or starts one); ``{"messages"}`` continues it with the
  last message when the visitor has a session and sends more than one message (the page's copy
  of earlier messages is ignored), else starts a new session from that history.
  ``GET /history`` returns the stored conversation; ``DELETE /history`` forgets it (New chat).
  Turns of one session never interleave: a second one waits up to ``LOCK_TIMEOUT`` for the
  first, then gets ``409``.
- ``GET /chat/<id>/events`` follows the answer as server-sent events with ``id:`` lines
  (`llmstreamer.web.flask_resume`). The page uses ``EventSource``, which reconnects by itself
  with ``Last-Event-ID``; whichever worker gets the reconnect replays the rest from the log.
  The page draws the conversation from ``GET /history`` and keeps only the running answer's id
  (and its question) in ``localStorage``, so a reload, or a second tab, follows the same
  answer from its start.
- ``POST /chat/<id>/cancel`` (the Stop button) cancels the answer from whichever worker gets
  it: the producing worker stops the upstream request within a second, and every page
  following the answer receives the final ``error`` event (``StreamCancelled``).
- Without Redis the log lives in one process, so serve it with one process (threads are
  fine): ``app.run(threaded=True)`` below, or ``gunicorn -w 1 -k gthread --threads 8``.
  With Redis, any number of workers and machines share the answers and the conversations.
- The server checks what it gets: only ``user`` and ``assistant`` text, at most
  ``MAX_MESSAGES`` messages and ``MAX_CHARS`` characters.
- One follower holds one server thread while it streams, so serve it threaded (gunicorn's
  ``gthread`` workers; a ``sync`` worker is killed at ``--timeout`` mid-stream).

Tracing: ``OTEL_CONSOLE=1`` (or ``--otel``) prints an OpenTelemetry span per answer (``chat
<model>``, with the ``gen_ai.*`` attributes) through the SDK's ``ConsoleSpanExporter``; it needs
``pip install "llmstreamer[otel]" opentelemetry-sdk``. In production, give
`llmstreamer.otel.instrument` your own tracer provider with an OTLP exporter instead::

    OTEL_CONSOLE=1 python examples/flask_chat/app.py
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, cast

from flask import Flask, jsonify, render_template, request

import llmstreamer
from llmstreamer.sessions import Session, SessionStore, is_session_id
from llmstreamer.web import ResumableStreams, StreamLogError, UnknownStreamError, flask_resume

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_MESSAGES = 100
MAX_CHARS = 32_000
ELIZA_PACE = 0.06  # seconds between Eliza's words, so the page visibly streams
SESSION_COOKIE = "chat_session"
LOCK_TIMEOUT = 10.0  # seconds a turn waits for another turn of the same session, then 409


def default_streamer() -> llmstreamer.Streamer:
    """The streamer named by ``LLMSTREAMER_MODEL`` (``provider:model``), else Eliza."""
    spec = os.environ.get("LLMSTREAMER_MODEL") or "eliza"
    if spec.partition(":")[0].strip().lower() == "eliza":
        return llmstreamer.streamer(spec, pace=ELIZA_PACE)
    return llmstreamer.streamer(spec)


def default_store(instance_path: str) -> SessionStore:
    """``LLMSTREAMER_STORE``, else the Redis at ``REDIS_URL``, else ``sessions.db`` in the instance folder."""
    url = os.environ.get("LLMSTREAMER_STORE") or os.environ.get("REDIS_URL")
    if not url:
        os.makedirs(instance_path, mode=0o700, exist_ok=True)
        url = "sqlite:///" + os.path.join(instance_path, "sessions.db")
    return llmstreamer.open_session_store(url)


def console_tracing() -> Any:
    """Print a span per answer to stdout with the OpenTelemetry SDK's console exporter; the installed hooks."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    import llmstreamer.otel

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stdout)))
    return llmstreamer.otel.instrument(tracer_provider=provider)


class StoredTurn:
    """A stored conversation shaped like a streamer for `ResumableStreams.start`: ``stream_chat``
    sends the last message as the conversation's next turn, stored before ``done`` is logged."""

    def __init__(self, conversation: llmstreamer.Conversation) -> None:
        self.conversation = conversation
        self.provider = conversation.streamer.provider
        self.model = conversation.streamer.model
        self.redact = conversation.streamer.redact  # so logged errors stay redacted

    def stream_chat(self, messages: list[dict[str, str]], callbacks: Any = None, **options: Any) -> Any:
        """Run the turn; its handle cancels it (the partial answer is kept)."""
        return self.conversation.send(messages[-1]["content"], callbacks, **options)


def _checked(messages: Any) -> list[dict[str, str]]:
    """The messages, checked; raises ValueError with a reason for the page."""
    if not isinstance(messages, list) or not messages:
        raise ValueError('send {"message": "..."} or {"messages": [{"role": "user", "content": "..."}]}')
    if len(messages) > MAX_MESSAGES:
        raise ValueError(f"the conversation is too long (at most {MAX_MESSAGES} messages)")
    out = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant") or not isinstance(m.get("content"), str):
            raise ValueError("each message needs a role (user or assistant) and text content")
        out.append({"role": m["role"], "content": m["content"]})
    if sum(len(m["content"]) for m in out) > MAX_CHARS:
        raise ValueError(f"the conversation is too long (at most {MAX_CHARS} characters)")
    if out[-1]["role"] != "user" or not out[-1]["content"].strip():
        raise ValueError("the last message must be the user's, and not empty")
    return out


def _request_messages(body: Any) -> tuple[list[dict[str, str]], bool]:
    """The request's messages, checked, and whether they continue the visitor's session."""
    if isinstance(body, dict) and "message" in body:
        text = body["message"]
        return _checked([{"role": "user", "content": text if isinstance(text, str) else None}]), True
    messages = _checked(body.get("messages") if isinstance(body, dict) else None)
    return messages, len(messages) > 1


def create_app(
    streamer: llmstreamer.Streamer | None = None,
    *,
    callbacks: Any = None,
    keepalive: float = 15.0,
    streams: ResumableStreams | None = None,
    store: SessionStore | None = None,
) -> Flask:
    """The chat app.

    Args:
        streamer: The streamer every request shares; `default_streamer()` if None.
        callbacks: Server-side callbacks for every answer (logging, metrics), run in the
            process that generates it.
        keepalive: Seconds of model silence before a keep-alive comment.
        streams: Where answers are logged; else Redis at ``REDIS_URL``, or this process.
        store: Where conversations are kept; `default_store()` if None.
    """
    app = Flask(__name__, root_path=HERE, instance_path=os.path.join(HERE, "instance"))
    if os.environ.get("OTEL_CONSOLE", "").strip().lower() in ("1", "true", "yes", "on"):
        console_tracing()
    chat_streamer = streamer if streamer is not None else default_streamer()
    answers = streams if streams is not None else ResumableStreams(os.environ.get("REDIS_URL") or None)
    sessions = store if store is not None else default_store(app.instance_path)
    app.config["STREAMER"] = chat_streamer
    app.config["STREAMS"] = answers
    app.config["SESSION_STORE"] = sessions
    label = f"{chat_streamer.provider}:{chat_streamer.model}"

    def visitor() -> Session | None:
        """The stored session the visitor's cookie names, or None."""
        known = request.cookies.get(SESSION_COOKIE, "")
        return sessions.find(known) if is_session_id(known) else None

    def conversation(messages: list[dict[str, str]], continues: bool) -> llmstreamer.Conversation:
        """The visitor's stored conversation, or a new one holding the history the request sent."""
        found = visitor() if continues else None
        if found is not None:
            return llmstreamer.Conversation.load(
                sessions, found.id, chat_streamer, lock_timeout=LOCK_TIMEOUT, keep_partial=True
            )
        return llmstreamer.Conversation(
            chat_streamer, messages[:-1], store=sessions, lock_timeout=LOCK_TIMEOUT, keep_partial=True
        )

    @app.get("/")
    def index() -> str:
        return render_template("index.html", model=label)

    @app.post("/chat")
    def chat() -> Any:
        try:
            messages, continues = _request_messages(request.get_json(silent=True))
            turn = StoredTurn(conversation(messages, continues))
            # start() needs only stream_chat (and the key, for redaction): the turn has both
            stream_id = answers.start(cast(llmstreamer.Streamer, turn), messages, callbacks=callbacks)
        except (ValueError, llmstreamer.ConfigurationError) as exc:  # bad input: nothing was sent upstream
            return jsonify(error=str(exc)), 400
        except llmstreamer.SessionBusyError as exc:  # another tab's answer is still being written
            return jsonify(error=str(exc)), 409
        except StreamLogError as exc:  # Redis is down: nothing was sent upstream
            return jsonify(error=str(exc)), 503
        response = jsonify(id=stream_id, session=turn.conversation.id)
        response.set_cookie(SESSION_COOKIE, turn.conversation.id, httponly=True, samesite="Lax")
        return response, 201

    @app.get("/history")
    def history() -> Any:
        found = visitor()
        messages = [m.to_dict() for m in found.messages] if found is not None else []
        return jsonify(session=found.id if found is not None else None, messages=messages)

    @app.delete("/history")
    def forget() -> Any:
        response = jsonify(session=None, messages=[])
        response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="Lax")
        return response

    @app.get("/chat/<stream_id>/events")
    def follow(stream_id: str) -> Any:
        return flask_resume(answers, stream_id, keepalive=keepalive)

    @app.post("/chat/<stream_id>/cancel")
    def cancel(stream_id: str) -> Any:
        try:
            return jsonify(cancelled=answers.cancel(stream_id))
        except UnknownStreamError as exc:
            return jsonify(error=str(exc)), 404
        except StreamLogError as exc:
            return jsonify(error=str(exc)), 503

    return app


def main(argv: list[str] | None = None) -> None:
    """Serve the chat page with Flask's threaded development server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--otel", action="store_true", help="print a span per answer (OpenTelemetry console exporter)")
    args = parser.parse_args(argv)
    if args.otel:
        os.environ["OTEL_CONSOLE"] = "1"
    create_app().run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
