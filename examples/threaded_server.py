"""Many concurrent streams in one process: a threaded WSGI server, one shared streamer, a bounded pool.

Run it (standard library server, no framework; Eliza answers unless ``LLMSTREAMER_MODEL`` says
otherwise)::

    python examples/threaded_server.py --workers 4    # http://127.0.0.1:8000
    curl -N "http://127.0.0.1:8000/chat?q=I+am+sad+about+my+mother"

Every request gets a server thread, which writes the events of its answer. The model streams
themselves run on the streamer's ``executor``, a ``ThreadPoolExecutor`` of ``--workers``
threads: at most that many talk to the provider at once, whatever the number of clients, and
the others wait their turn (their clients get ``: keep-alive`` comments meanwhile). That caps
upstream concurrency, and so the provider's rate limits and your bill, while the server keeps
accepting clients. A client that leaves, even while waiting, has its stream cancelled.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import Executor, ThreadPoolExecutor
from socketserver import ThreadingMixIn
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import llmstreamer
from llmstreamer.web import sse_stream

ELIZA_PACE = 0.06  # seconds between Eliza's words

StartResponse = Callable[..., Any]


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """The standard library's WSGI server, one thread per request."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def default_streamer(executor: Executor) -> llmstreamer.Streamer:
    """The streamer named by ``LLMSTREAMER_MODEL`` (else Eliza), its streams run on ``executor``."""
    spec = os.environ.get("LLMSTREAMER_MODEL") or "eliza"
    if spec.partition(":")[0].strip().lower() == "eliza":
        return llmstreamer.streamer(spec, executor=executor, pace=ELIZA_PACE)
    return llmstreamer.streamer(spec, executor=executor)


def make_app(streamer: llmstreamer.Streamer, *, keepalive: float = 15.0) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """A WSGI app: ``GET /chat?q=...`` answers with server-sent events."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/chat":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"try /chat?q=hello\n"]
        question = parse_qs(environ.get("QUERY_STRING", "")).get("q", [""])[0]
        try:
            body = sse_stream(streamer, [{"role": "user", "content": question}], keepalive=keepalive)
        except llmstreamer.ConfigurationError as exc:
            start_response("400 Bad Request", [("Content-Type", "text/plain; charset=utf-8")])
            return [f"{exc.message}\n".encode()]
        headers = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no")]
        start_response("200 OK", headers)
        return body

    return app


def serve(app: Any, host: str = "127.0.0.1", port: int = 8000) -> ThreadingWSGIServer:
    """A threaded server for ``app``, bound and ready: call ``serve_forever()``."""
    server: ThreadingWSGIServer = make_server(host, port, app, server_class=ThreadingWSGIServer, handler_class=_QuietHandler)
    return server


def main(argv: list[str] | None = None) -> None:
    """Serve until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=4, help="streams that may run at once (default 4)")
    args = parser.parse_args(argv)
    executor = ThreadPoolExecutor(max_workers=args.workers, thread_name_prefix="chat-stream")
    server = serve(make_app(default_streamer(executor)), args.host, args.port)
    print(f"serving on http://{args.host}:{server.server_port}/chat?q=hello ({args.workers} streams at once)", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        executor.shutdown(wait=False, cancel_futures=True)


if __name__ == "__main__":
    main()
