"""The clients the benchmark measures, by name; each lives in a module of this package.

A client module imports its library at the top and defines, for each client name it serves,
``prepare(base) -> state`` (build the client for a server base URL such as
``http://127.0.0.1:8000/b/n=20000``) and ``run(state, sink)`` (stream one answer, calling
``sink(text)`` for each text piece as it is delivered, and return when the stream has ended;
raise on failure). An optional ``run_many(state, sinks)`` streams ``len(sinks)`` answers at
once (the default starts one thread per stream calling ``run``). ``SHARED`` says whether one
state serves concurrent streams (as the SDKs document) or each thread prepares its own.

This file imports nothing heavy: a worker process imports only the module of its own client,
so one library's import never pollutes another's measurement.
"""

from __future__ import annotations

import os
from typing import Dict, NamedTuple

__all__ = ["CLIENTS", "ClientInfo"]


class ClientInfo(NamedTuple):
    module: str  # module in this package
    wire: str  # "openai" or "anthropic"
    floor: str  # the client whose time this one's ratios divide by
    what: str  # one line for the tables


CLIENTS: Dict[str, ClientInfo] = {
    "raw": ClientInfo("raw", "openai", "raw", "raw socket + chunked decoder + split + json.loads (floor)"),
    "raw_anth": ClientInfo("raw", "anthropic", "raw_anth", "raw socket floor, Anthropic wire"),
    "lls_cb": ClientInfo("lls", "openai", "raw", "llmstreamer OpenAIStreamer.stream_chat + on_content"),
    "lls_iter": ClientInfo("lls", "openai", "raw", "llmstreamer OpenAIStreamer.stream() iterator"),
    "lls_cb_anth": ClientInfo("lls", "anthropic", "raw_anth", "llmstreamer AnthropicStreamer.stream_chat + on_content"),
    "lls_iter_anth": ClientInfo("lls", "anthropic", "raw_anth", "llmstreamer AnthropicStreamer.stream() iterator"),
    "lls_cb_std": ClientInfo("lls_std", "openai", "raw", "lls_cb without jiter (plain install: stdlib json)"),
    "lls_iter_std": ClientInfo("lls_std", "openai", "raw", "lls_iter without jiter (plain install: stdlib json)"),
    "lls_cb_anth_std": ClientInfo("lls_std", "anthropic", "raw_anth", "lls_cb_anth without jiter (plain install: stdlib json)"),
    "lls_iter_anth_std": ClientInfo(
        "lls_std", "anthropic", "raw_anth", "lls_iter_anth without jiter (plain install: stdlib json)"
    ),
    "openai": ClientInfo("sdk_openai", "openai", "raw", "openai SDK chat.completions.create(stream=True)"),
    "anthropic_create": ClientInfo(
        "sdk_anthropic", "anthropic", "raw_anth", "anthropic SDK messages.create(stream=True)"
    ),
    "anthropic_stream": ClientInfo(
        "sdk_anthropic", "anthropic", "raw_anth", "anthropic SDK messages.stream().text_stream"
    ),
    "requests_sse": ClientInfo(
        "requests_sse", "openai", "raw", "requests + sseclient-py fed by raw.read1(65536) + json.loads"
    ),
}

if os.environ.get("BENCH_BASE_SRC"):  # before/after pairs: see clients/lls_base.py
    for _name in ("lls_cb", "lls_iter", "lls_cb_anth", "lls_iter_anth"):
        _info = CLIENTS[_name]
        CLIENTS[_name + "_base"] = _info._replace(module="lls_base", what=_info.what + " (base commit)")
