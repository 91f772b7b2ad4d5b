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
- The conversation is kept on the server, in a session store shared by every worker and process
  (``LLMSTREAMER_STORE``: SQLite in the app's instance folder by default, ``redis://...`` when
  configured), so a restart loses nothing. A cookie names the visitor's session. The page still
  sends its view of the history: a request without a known session starts one from it; later
  requests continue the stored session with the new user message. ``GET /history`` returns the
  stored conversation, for a page that wants to redraw it. Turns on one session never
  interleave: a second tab waits for the first answer, up to ``LOCK_TIMEOUT`` (then 409).
  The server checks what it gets: only ``user`` and ``assistant`` text, at most
  ``MAX_MESSAGES`` messages and ``MAX_CHARS`` characters.
- Stop aborts the fetch. The server notices at its next write (an event, or the keep-alive
  comment sent every ``keepalive`` seconds while the model is silent), closes the body, and
  that cancels the upstream stream: no more tokens are paid for. What was shown is kept
  (``keep_partial``), so the stored history matches the page.
- One stream holds one server thread, so serve it threaded: ``app.run(threaded=True)`` below, or
  gunicorn's ``gthread`` workers (a ``sync`` worker is killed at ``--timeout`` mid-stream).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from flask import Flask, jsonify, render_template, request

import llmstreamer
from llmstreamer.sessions import SessionStore
from llmstreamer.web import flask_response

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_MESSAGES = 100
MAX_CHARS = 32_000
ELIZA_PACE = 0.06  # seconds between Eliza's words, so the page visibly streams
SESSION_COOKIE = "chat_session"
LOCK_TIMEOUT = 10.0  # seconds a turn waits for another turn of the same session


def default_store(instance_path: str) -> SessionStore:
    """The store named by ``LLMSTREAMER_STORE``, else ``sessions.db`` in the app's instance folder."""
    url = os.environ.get("LLMSTREAMER_STORE")
    if not url:
        os.makedirs(instance_path, mode=0o700, exist_ok=True)
        url = "sqlite:///" + os.path.join(instance_path, "sessions.db")
    return llmstreamer.open_session_store(url)


class StoredTurn:
    """One stored conversation, shaped like a streamer for `flask_response`: ``stream_chat``
    sends the last message as the conversation's next turn (stored before ``done`` is sent)."""

    def __init__(self, conversation: llmstreamer.Conversation) -> None:
        self.conversation = conversation
        self.provider = conversation.streamer.provider
        self.model = conversation.streamer.model

    def stream_chat(self, messages: list[dict[str, str]], callbacks: Any = None, **options: Any) -> Any:
        return self.conversation.send(messages[-1]["content"], callbacks, **options)


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
    store: SessionStore | None = None,
) -> Flask:
    """The chat app.

    Args:
        streamer: The streamer every request shares; `default_streamer()` if None.
        callbacks: Server-side callbacks for every stream (logging, metrics).
        keepalive: Seconds of model silence before a keep-alive comment.
        store: Where conversations are kept; `default_store()` if None.
    """
    app = Flask(__name__, root_path=HERE, instance_path=os.path.join(HERE, "instance"))
    chat_streamer = streamer if streamer is not None else default_streamer()
    sessions = store if store is not None else default_store(app.instance_path)
    app.config["STREAMER"] = chat_streamer
    app.config["SESSION_STORE"] = sessions
    label = f"{chat_streamer.provider}:{chat_streamer.model}"

    def conversation(messages: list[dict[str, str]]) -> llmstreamer.Conversation:
        """The visitor's stored conversation, or a new one holding the history the page sent."""
        known = request.cookies.get(SESSION_COOKIE)
        found = sessions.find(known) if known and len(messages) > 1 else None
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
            messages = _history(request.get_json(silent=True))
            turn = StoredTurn(conversation(messages))
            response = flask_response(turn, messages, callbacks=callbacks, keepalive=keepalive)
        except (ValueError, llmstreamer.ConfigurationError) as exc:  # bad input: nothing was sent upstream
            return jsonify(error=str(exc)), 400
        except llmstreamer.SessionBusyError as exc:  # another tab's answer is still streaming
            return jsonify(error=str(exc)), 409
        response.set_cookie(SESSION_COOKIE, turn.conversation.id, httponly=True, samesite="Lax")
        return response

    @app.get("/history")
    def history() -> Any:
        known = request.cookies.get(SESSION_COOKIE)
        found = sessions.find(known) if known else None
        messages = [m.to_dict() for m in found.messages] if found is not None else []
        return jsonify(session=found.id if found is not None else None, messages=messages)

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
