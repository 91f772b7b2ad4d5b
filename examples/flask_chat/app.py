"""A streaming chat page on Flask: the answer appears word by word, and a Stop button cancels it.

Run it (no key, no network: Eliza answers unless ``LLMSTREAMER_MODEL`` names another model)::

    pip install "llmstreamer[flask]"
    python examples/flask_chat/app.py                 # http://127.0.0.1:5000
    LLMSTREAMER_MODEL=openai:gpt-4o-mini python examples/flask_chat/app.py
    gunicorn -k gthread --threads 8 --chdir examples/flask_chat "app:create_app()"

How it works:

- ``POST /chat`` takes ``{"messages": [{"role", "content"}, ...]}`` and answers with server-sent
  events from `llmstreamer.web.flask_response`. The page reads them with ``fetch`` and a streamed
  body (``EventSource`` can only GET, and the history does not fit in a URL).
- The conversation lives in the page: it sends the whole history with each request. The server
  keeps no state, so any worker of any process can answer any request, a restart loses nothing,
  and there is no session store to expire or to guard. The server checks what it gets: only
  ``user`` and ``assistant`` text, at most ``MAX_MESSAGES`` messages and ``MAX_CHARS`` characters.
- Stop aborts the fetch. The server notices at its next write (an event, or the keep-alive
  comment sent every ``keepalive`` seconds while the model is silent), closes the body, and
  that cancels the upstream stream: no more tokens are paid for.
- One stream holds one server thread, so serve it threaded: ``app.run(threaded=True)`` below, or
  gunicorn's ``gthread`` workers (a ``sync`` worker is killed at ``--timeout`` mid-stream).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from flask import Flask, jsonify, render_template, request

import llmstreamer
from llmstreamer.web import flask_response

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
    streamer: llmstreamer.Streamer | None = None, *, callbacks: Any = None, keepalive: float = 15.0
) -> Flask:
    """The chat app.

    Args:
        streamer: The streamer every request shares; `default_streamer()` if None.
        callbacks: Server-side callbacks for every stream (logging, metrics).
        keepalive: Seconds of model silence before a keep-alive comment.
    """
    app = Flask(__name__, root_path=HERE)
    chat_streamer = streamer if streamer is not None else default_streamer()
    app.config["STREAMER"] = chat_streamer
    label = f"{chat_streamer.provider}:{chat_streamer.model}"

    @app.get("/")
    def index() -> str:
        return render_template("index.html", model=label)

    @app.post("/chat")
    def chat() -> Any:
        try:
            messages = _history(request.get_json(silent=True))
            return flask_response(chat_streamer, messages, callbacks=callbacks, keepalive=keepalive)
        except (ValueError, llmstreamer.ConfigurationError) as exc:  # bad input: nothing was sent upstream
            return jsonify(error=str(exc)), 400

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
