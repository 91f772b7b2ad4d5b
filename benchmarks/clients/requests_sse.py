"""requests + sseclient-py, fed the low-latency way: ``resp.raw.read1(65536)`` chunks.

``SSEClient(resp)`` and ``iter_content``/``iter_lines`` hold events back on close-delimited
bodies (see ``shared/research/peer-benchmarks.md``); ``read1`` hands over what has arrived.
One ``requests.Session`` per thread. The body is read to its end so the connection is pooled.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Tuple

import requests
import sseclient

_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say something"}], "stream": True}
_HEADERS = {"Accept": "text/event-stream", "Authorization": "Bearer sk-bench"}


def prepare(base: str) -> Tuple[requests.Session, str]:
    return requests.Session(), base + "/v1/chat/completions"


def run(state: Tuple[requests.Session, str], sink: Callable[[str], Any]) -> None:
    session, url = state
    resp = session.post(url, json=_BODY, headers=_HEADERS, stream=True, timeout=(10, 120))
    resp.raise_for_status()
    read1 = resp.raw.read1
    loads = json.loads
    for event in sseclient.SSEClient(iter(lambda: read1(65536, decode_content=True), b"")).events():
        data = event.data
        if data == "[DONE]":
            continue
        choices = loads(data)["choices"]
        if choices:
            text = choices[0]["delta"].get("content")
            if text:
                sink(text)
    if resp.raw.closed:  # fully read: back to the pool, as requests does after iter_content
        resp.raw.release_conn()
    else:
        resp.close()


CLIENTS: Dict[str, Dict[str, Any]] = {"requests_sse": {"prepare": prepare, "run": run, "shared": False}}
