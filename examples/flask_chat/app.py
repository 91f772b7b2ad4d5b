"""A streaming chat page on Flask whose answers survive reloads, reconnects and worker changes.

Run it (no key, no network: Eliza answers unless ``LLMSTREAMER_MODEL`` names another model)::

    pip install "llmstreamer[flask]"
    python examples/flask_chat/app.py                 # http://127.0.0.1:5000, logs in memory
    LLMSTREAMER_MODEL=openai:gpt-4o-mini python examples/flask_chat/app.py

    pip install "llmstreamer[flask,redis]"            # several workers and machines: share a Redis
    REDIS_URL=redis://127.0.0.1:6379/0 gunicorn -w 4 -k gthread --threads 8 \\
        --chdir examples/flask_chat "app:create_app()"

How it works:

- ``POST /chat`` takes ``{"messages": [{"role", "content"}, ...]}``, starts the answer with
  `llmstreamer.web.ResumableStreams.start` and returns ``{"id": ...}`` at once. The answer is
  generated on a worker thread, apart from any connection, and every event goes to a log:
  Redis Streams when ``REDIS_URL`` is set, else this process's memory.
- ``GET /chat/<id>/events`` follows the answer as server-sent events with ``id:`` lines
  (`llmstreamer.web.flask_resume`). The page uses ``EventSource``, which reconnects by itself
  with ``Last-Event-ID``; whichever worker gets the reconnect replays the rest from the log.
  The page keeps the conversation and the running answer's id in ``localStorage``, so a reload,
  or a second tab, follows the same answer from its start.
- ``POST /chat/<id>/cancel`` (the Stop button) cancels the answer from whichever worker gets
  it: the producing worker stops the upstream request within a second, and every page
  following the answer receives the final ``error`` event (``StreamCancelled``).
- Without Redis the log lives in one process, so serve it with one process (threads are
  fine): ``app.run(threaded=True)`` below, or ``gunicorn -w 1 -k gthread --threads 8``.
  With Redis, any number of workers and machines share the answers.
- The server checks what it gets: only ``user`` and ``assistant`` text, at most
  ``MAX_MESSAGES`` messages and ``MAX_CHARS`` characters.
- One follower holds one server thread while it streams, so serve it threaded (gunicorn's
  ``gthread`` workers; a ``sync`` worker is killed at ``--timeout`` mid-stream).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from flask import Flask, jsonify, render_template, request

import llmstreamer
from llmstreamer.web import ResumableStreams, StreamLogError, UnknownStreamError, flask_resume

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_MESSAGES = 100
MAX_CHARS = 32_000
ELIZA_PACE = 0.06  # seconds between Eliza's words, so the page visibly streams


def default_streamer() -> llmstreamer.Streamer:
    """The streamer named by ``LLMSTREAMER_MODEL`` (``provider:model``), else Eliza."""
    spec = os.environ.get("LLMSTREAMER_MODEL") or "eliza"
    if spec.partition(":")[0].strip().lower() == "eliza":
        return llmstreamer.streamer(spec, pace=ELIZA_PACE)
    return llmstreamer.streamer(spec)


def _history(body: Any) -> list[dict[str, str]]:
    """The conversation the page sent, checked; raises ValueError with a reason for the page."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages:
        raise ValueError('send {"messages": [{"role": "user", "content": "..."}]}')
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


def create_app(
    streamer: llmstreamer.Streamer | None = None,
    *,
    callbacks: Any = None,
    keepalive: float = 15.0,
    streams: ResumableStreams | None = None,
) -> Flask:
    """The chat app.

    Args:
        streamer: The streamer every request shares; `default_streamer()` if None.
        callbacks: Server-side callbacks for every answer (logging, metrics), run in the
            process that generates it.
        keepalive: Seconds of model silence before a keep-alive comment.
        streams: Where answers are logged; else Redis at ``REDIS_URL``, or this process.
    """
    app = Flask(__name__, root_path=HERE)
    chat_streamer = streamer if streamer is not None else default_streamer()
    answers = streams if streams is not None else ResumableStreams(os.environ.get("REDIS_URL") or None)
    app.config["STREAMER"] = chat_streamer
    app.config["STREAMS"] = answers
    label = f"{chat_streamer.provider}:{chat_streamer.model}"

    @app.get("/")
    def index() -> str:
        return render_template("index.html", model=label)

    @app.post("/chat")
    def chat() -> Any:
        try:
            messages = _history(request.get_json(silent=True))
            stream_id = answers.start(chat_streamer, messages, callbacks=callbacks)
        except (ValueError, llmstreamer.ConfigurationError) as exc:  # bad input: nothing was sent upstream
            return jsonify(error=str(exc)), 400
        except StreamLogError as exc:  # Redis is down: nothing was sent upstream
            return jsonify(error=str(exc)), 503
        return jsonify(id=stream_id), 201

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
    args = parser.parse_args(argv)
    create_app().run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
