"""Chat over a WebSocket with flask-sock: each answer streams as JSON frames through `llmstreamer.web.relay`.

Run it (Eliza answers unless ``LLMSTREAMER_MODEL`` names another model)::

    pip install "llmstreamer[flask]" flask-sock
    python examples/websocket_relay.py               # http://127.0.0.1:5001

The protocol: the client sends one text frame per user message; the server answers with frames
``{"type": "content", "text": ...}`` (and ``thinking``, ``tool_call``, ``usage``), then one
``{"type": "done", ...}`` or ``{"type": "error", ...}``; ``{"type": "keepalive"}`` frames come
while the model is silent. The conversation is kept on the server for the life of the socket
(the socket is the session). Closing the socket mid-answer cancels the upstream stream: the next
frame ``relay`` sends fails, and that cancels it.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from flask import Flask
from flask_sock import Sock

import llmstreamer
from llmstreamer.web import relay

ELIZA_PACE = 0.06  # seconds between Eliza's words, so the answer visibly streams

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>llmstreamer over a WebSocket</title>
<link rel="icon" href="data:,">
<style>
 body { font: 16px/1.5 system-ui, sans-serif; max-width: 720px; margin: 2em auto; padding: 0 1em; }
 #log p { white-space: pre-wrap; margin: .4em 0; } .user { color: #2f6fed; } .error { color: #b42318; }
 form { display: flex; gap: .5em; } input { flex: 1; font: inherit; padding: .4em; }
</style></head><body>
<h1>llmstreamer over a WebSocket</h1>
<div id="log"></div>
<form id="form"><input id="prompt" autocomplete="off" placeholder="Type a message"><button>Send</button></form>
<script>
const log = document.getElementById("log");
const ws = new WebSocket(location.href.replace(/^http/, "ws").replace(/\\/?$/, "/ws"));
let answer = null;
function line(cls, text) {
  const p = document.createElement("p"); p.className = cls; p.textContent = text; log.appendChild(p); return p;
}
ws.onmessage = (event) => {
  const frame = JSON.parse(event.data);
  if (frame.type === "content") answer.textContent += frame.text;
  else if (frame.type === "error") line("error", `${frame.error}: ${frame.message}`);
};
document.getElementById("form").onsubmit = (event) => {
  event.preventDefault();
  const prompt = document.getElementById("prompt");
  if (!prompt.value.trim()) return;
  line("user", prompt.value);
  answer = line("assistant", "");
  ws.send(prompt.value);
  prompt.value = "";
};
</script></body></html>
"""


def default_streamer() -> llmstreamer.Streamer:
    """The streamer named by ``LLMSTREAMER_MODEL`` (``provider:model``), else Eliza."""
    spec = os.environ.get("LLMSTREAMER_MODEL") or "eliza"
    if spec.partition(":")[0].strip().lower() == "eliza":
        return llmstreamer.streamer(spec, pace=ELIZA_PACE)
    return llmstreamer.streamer(spec)


def create_app(streamer: llmstreamer.Streamer | None = None, *, keepalive: float = 10.0) -> Flask:
    """The app: the page at ``/`` and the chat socket at ``/ws``."""
    app = Flask(__name__)
    sock = Sock(app)
    chat_streamer = streamer if streamer is not None else default_streamer()

    @app.get("/")
    def index() -> str:
        return PAGE

    @sock.route("/ws")
    def chat(ws: Any) -> None:
        history: list[dict[str, Any]] = []
        while True:
            text = ws.receive()  # raises ConnectionClosed when the client leaves
            history.append({"role": "user", "content": text})
            try:
                response = relay(ws.send, chat_streamer, history, keepalive=keepalive)
            except llmstreamer.CallbackError:
                return  # send failed: the client went away mid-answer (the stream is cancelled)
            except llmstreamer.ConfigurationError as exc:  # refused before anything was sent
                history.pop()
                ws.send(json.dumps({"type": "error", "error": type(exc).__name__, "message": exc.message}))
                continue
            except llmstreamer.LLMStreamError:
                history.pop()  # the client got the error frame; the failed turn is left out
                continue
            history.extend(m.to_dict() for m in response.messages)

    return app


def main(argv: list[str] | None = None) -> None:
    """Serve the app with Flask's threaded development server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    args = parser.parse_args(argv)
    create_app().run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
