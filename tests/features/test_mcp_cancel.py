"""Cancelling a stream while an MCP tools/call runs: the client stops waiting and sends notifications/cancelled."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import llmstreamer
from llmstreamer import Message, StreamCancelled, ToolCall
from llmstreamer.mcp import MCPClient
from llmstreamer.testing import FakeLLMServer, Reply

from ..conftest import Recorder, wait_until
from .test_mcp import INIT, STDIO, HTTPServer, answering, approve

pytest.importorskip("mcp")

SLOW = {"name": "slow", "inputSchema": {"type": "object", "properties": {"seconds": {"type": "number"}}}}


def _cancel_mid_call(client: MCPClient, started: Any, calls: int, recorder: Recorder) -> None:
    """Stream a round of ``calls`` slow() calls, cancel once ``started()`` is true, and check the callbacks."""
    with FakeLLMServer() as server:
        tool_calls = [ToolCall(f"call_{n}", "slow", {"seconds": 30}) for n in range(calls)]
        server.add(Reply(tool_calls=tool_calls, finish_reason="tool_calls"), Reply(text=["Never."]))
        streamer = llmstreamer.streamer("openai:m", api_key="k", base_url=server.base_url("openai"), retry=0)
        handle = streamer.stream_chat([Message.user("go")], recorder, tools=client.tools(), confirm_tool=approve)
        assert wait_until(started, timeout=15), "slow() never started"
        handle.cancel()
        assert handle.wait(10)
        assert len(server.requests) == 1  # no next round
    assert recorder.calls == [*[("tool_call", "slow")] * calls, ("usage", 10, 1), ("error", "StreamCancelled")]
    assert isinstance(recorder.error, StreamCancelled)


@pytest.mark.parametrize(
    ("transport", "calls"), [("stdio", 1), ("stdio", 2), ("http", 1), ("http-json", 1)]
)  # fmt: skip
def test_cancel_tells_the_real_server(tmp_path: Path, recorder: Recorder, transport: str, calls: int) -> None:
    """The SDK's server sees its slow() handlers cancelled by our notification; the client keeps working."""
    marker = tmp_path / "log"
    env = {"MCP_TEST_STARTED": str(marker)}
    server = None if transport == "stdio" else HTTPServer(transport, env=env)
    target: Any = STDIO if server is None else server.url
    client = MCPClient(target, timeout=20, retry=0, **({"env": env} if server is None else {})).connect()

    def lines(word: str) -> int:
        return marker.read_text().split().count(word) if marker.exists() else 0

    try:
        _cancel_mid_call(client, lambda: lines("started") == calls, calls, recorder)
        assert wait_until(lambda: lines("cancelled") == calls, timeout=10), marker.read_text()
        assert client.call_tool("add", {"a": 1, "b": 2}).text == "3"
    finally:
        client.close()
        if server is not None:
            server.stop()


def test_cancel_sends_the_notification_on_the_wire(recorder: Recorder) -> None:
    """Over HTTP the client POSTs notifications/cancelled with the call's requestId and a reason, in its session."""
    arrived, release = threading.Event(), threading.Event()

    def hang(req: Any) -> Reply:
        arrived.set()
        release.wait(10)
        return Reply(status=500, body="")  # the client is gone by now

    with FakeLLMServer() as mcp:
        mcp.add(
            answering(INIT, headers={"Mcp-Session-Id": "s1"}),
            Reply(status=202, body=""),  # notifications/initialized
            answering({"tools": [SLOW]}),
            hang,  # tools/call
            Reply(status=202, body=""),  # notifications/cancelled
            Reply(status=200, body=""),  # DELETE
        )
        client = MCPClient(mcp.url + "/mcp", timeout=20, retry=0).connect()
        try:
            _cancel_mid_call(client, arrived.is_set, 1, recorder)
        finally:
            release.set()
            client.close()
        sent = [(r.method, r.json.get("method") if r.json else None) for r in mcp.requests]
        call, note = mcp.requests[3].json, mcp.requests[4].json
        assert mcp.requests[4].headers["mcp-session-id"] == "s1"
    assert sent == [
        ("POST", "initialize"),
        ("POST", "notifications/initialized"),
        ("POST", "tools/list"),
        ("POST", "tools/call"),
        ("POST", "notifications/cancelled"),
        ("DELETE", None),
    ]
    assert note == {
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": call["id"], "reason": "the stream was cancelled"},
    }
