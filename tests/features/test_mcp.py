"""The MCP client against real servers built with the official ``mcp`` SDK, over Streamable HTTP and stdio.

The SDK is a test dependency only: tests/mcpserver.py runs its servers as subprocesses on
127.0.0.1. Wire details the SDK cannot be made to show (a foreign redirect, an unknown protocol
version, a JSON batch) are scripted with FakeLLMServer.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

import llmstreamer
from llmstreamer import (
    APITimeoutError,
    ConfigurationError,
    ImagePart,
    Message,
    RetryPolicy,
    StreamError,
    Timeout,
    ToolCall,
)
from llmstreamer.mcp import MAX_PAGES, MCPClient, MCPError
from llmstreamer.testing import FakeLLMServer, Reply
from llmstreamer.tools import execute

from ..conftest import Recorder, wait_until

pytest.importorskip("mcp")

SCRIPT = Path(__file__).resolve().parents[1] / "mcpserver.py"
STDIO = [sys.executable, str(SCRIPT), "stdio"]
TOOL_NAMES = ["add", "chatty", "echo-text", "fail", "picture", "refuse", "slow", "weather"]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HTTPServer:
    """tests/mcpserver.py over Streamable HTTP in a subprocess on a free loopback port."""

    def __init__(self, mode: str = "http", env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), mode, str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
        assert wait_until(self._listening, timeout=30), "the MCP server did not start"

    def _listening(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture(scope="module")
def sse_server() -> Iterator[HTTPServer]:
    """An SDK server answering with SSE streams."""
    server = HTTPServer("http")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def json_server() -> Iterator[HTTPServer]:
    """An SDK server answering with JSON bodies."""
    server = HTTPServer("http-json")
    yield server
    server.stop()


@pytest.fixture(params=["sse", "json", "stdio"])
def client(request: pytest.FixtureRequest) -> Iterator[MCPClient]:
    """A connected client of each transport, namespaced 'Test-Server'."""
    target: Any = STDIO if request.param == "stdio" else request.getfixturevalue(f"{request.param}_server").url
    with MCPClient(target, namespace="Test-Server", timeout=10) as found:
        yield found


def approve(call: ToolCall) -> bool:
    """confirm_tool that approves every call."""
    return True


def by_name(tools: list[llmstreamer.Tool]) -> dict[str, llmstreamer.Tool]:
    return {t.name: t for t in tools}


# --- listing and calling -------------------------------------------------------------------------


def test_lists_tools_with_namespace_schema_and_exec_permission(client: MCPClient) -> None:
    """tools() names every server tool with the canonical namespace, keeps its schema, and asks permission."""
    assert client.protocol_version == "2025-06-18" and client.server_info["name"] == "llmstreamer-test"
    tools = by_name(client.tools())
    assert sorted(tools) == [f"test_server_{n}" for n in TOOL_NAMES]
    add = tools["test_server_add"]
    assert add.description == "Add two integers." and add.permission == "exec"
    assert add.parameters["required"] == ["a", "b"] and add.parameters["properties"]["a"]["type"] == "integer"


def test_results_text_error_raise_image_and_json(client: MCPClient) -> None:
    """Text, isError, a raising tool, an image and structured content all come back as the model should see them."""
    tools = llmstreamer.Toolbox(client.tools())

    def run(name: str, **arguments: Any) -> tuple[str, bool]:
        result = execute(ToolCall("c", f"test_server_{name}", arguments), tools, approve)
        return result.content, result.is_error

    assert run("add", a=2, b=3) == ("5", False)
    assert run("echo-text", text="héllo") == ("héllo", False)
    assert run("refuse") == ("quota exceeded", True)
    assert run("fail", reason="x") == ("Error executing tool fail", True)
    assert run("picture") == ("[image: image/png, 70 bytes]", False)
    picture = client.call_tool("picture")
    assert isinstance(picture.content[0], ImagePart) and picture.content[0].data.startswith(b"\x89PNG")
    weather = client.call_tool("weather", {"city": "Oslo"})
    assert weather.structured == {"city": "Oslo", "celsius": 18} and json.loads(weather.text) == weather.structured
    unknown = client.call_tool("nope")
    assert unknown.is_error and "nope" in unknown.text


def test_exec_tools_are_refused_without_confirmation(client: MCPClient) -> None:
    """An MCP tool runs only when confirm_tool approves; permission= can make them read tools."""
    tools = llmstreamer.Toolbox(client.tools())
    refused = execute(ToolCall("c", "test_server_add", {"a": 1, "b": 1}), tools)
    assert refused.is_error and refused.content.startswith("refused:")
    assert execute(ToolCall("c", "test_server_add", {"a": 1, "b": 1}), tools, lambda c: (False, "no")).content == "refused: no"


def test_permission_can_be_set_per_tool(sse_server: HTTPServer) -> None:
    """permission= as a dict sets some tools to read; the others stay exec."""
    with MCPClient(sse_server.url, permission={"add": "read"}) as client:
        tools = by_name(client.tools())
    assert tools["add"].permission == "read" and tools["echo-text"].permission == "exec"
    with pytest.raises(ConfigurationError, match="permission must be one of"):
        MCPClient(sse_server.url, permission="root")


def test_server_requests_are_answered_and_notifications_ignored() -> None:
    """A tool that logs, reports progress and pings the client mid-call (stdio) still answers."""
    with MCPClient(STDIO, timeout=10) as client:
        assert client.call_tool("chatty").text == "chatted"


@pytest.mark.parametrize(
    ("flavor", "transport"),
    [("openai", "sse"), ("anthropic", "stdio"), ("gemini", "json"), ("mistral", "sse"), ("ollama", "stdio")],
)
def test_called_from_the_tool_loop(flavor: str, transport: str, request: pytest.FixtureRequest, recorder: Recorder) -> None:
    """Each provider's tool loop calls MCP tools (two in one round) and sends their results back."""
    target: Any = STDIO if transport == "stdio" else request.getfixturevalue(f"{transport}_server").url
    calls = [ToolCall("call_1", "calc_add", {"a": 2, "b": 3}), ToolCall("call_2", "calc_refuse", {})]
    with MCPClient(target, namespace="calc", timeout=10) as client, FakeLLMServer() as server:
        server.add(Reply(tool_calls=calls, finish_reason="tool_calls"), Reply(text=["It is 5."]))
        streamer = llmstreamer.streamer(f"{flavor}:m", api_key="k", base_url=server.base_url(flavor), retry=0)
        handle = streamer.stream_chat([Message.user("2+3?")], recorder, tools=client.tools(), confirm_tool=approve)
        assert handle.wait(20)
        second = json.dumps(server.requests[1].json)
    assert recorder.calls == [
        ("tool_call", "calc_add"),
        ("tool_call", "calc_refuse"),
        ("usage", 10, 1),
        ("tool_result", "calc_add", "5"),
        ("tool_result", "calc_refuse", "quota exceeded"),
        ("content", "It is 5."),
        ("usage", 20, 2),
        ("finish", "It is 5."),
    ]
    assert recorder.response is not None and [r.is_error for r in recorder.response.messages[1].tool_results] == [False, True]
    assert '"5"' in second and "quota exceeded" in second


def test_pagination_follows_every_page() -> None:
    """A server listing 23 tools five per page gives all 23, in order, over the cursors."""
    with MCPClient([*STDIO[:2], "stdio", "--paged", "23"], timeout=10) as client:
        names = [t.name for t in client.tools()]
        assert client.call_tool("tool_022").text == "ran tool_022"
    assert names == [f"tool_{i:03d}" for i in range(23)]


# --- failures --------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["sse", "json", "stdio"])
def test_a_slow_server_hits_the_timeout_and_the_client_goes_on(transport: str, request: pytest.FixtureRequest) -> None:
    """A call past the timeout fails with APITimeoutError (an error result in the loop); the next call works."""
    target: Any = STDIO if transport == "stdio" else request.getfixturevalue(f"{transport}_server").url
    with MCPClient(target, timeout=Timeout(connect=10, read=0.5)) as client:
        begun = time.monotonic()
        with pytest.raises(APITimeoutError, match=r"did not answer tools/call within 0.5 s"):
            client.call_tool("slow", {"seconds": 5})
        assert time.monotonic() - begun < 3
        tools = llmstreamer.Toolbox(client.tools())
        result = execute(ToolCall("c", "slow", {"seconds": 5}), tools, approve)
        assert result.is_error and "did not answer tools/call within 0.5 s" in result.content
        assert client.call_tool("add", {"a": 1, "b": 2}).text == "3"


def _kill_mid_call(client: MCPClient, marker: Path, kill: Any, recorder: Recorder) -> str:
    """Run slow() from a stream, kill the server once the call has started; return the tool's result text."""
    with FakeLLMServer() as server:
        server.add(Reply(tool_calls=[ToolCall("call_1", "slow", {"seconds": 30})], finish_reason="tool_calls"), Reply(text=["Gone."]))
        streamer = llmstreamer.streamer("openai:m", api_key="k", base_url=server.base_url("openai"), retry=0)
        handle = streamer.stream_chat([Message.user("go")], recorder, tools=client.tools(), confirm_tool=approve)
        assert wait_until(marker.exists, timeout=15), "slow() never started"
        kill()
        assert handle.wait(15)
    result = recorder.calls[2]
    assert recorder.calls[:2] == [("tool_call", "slow"), ("usage", 10, 1)] and result[:2] == ("tool_result", "slow")
    assert recorder.calls[3:] == [("content", "Gone."), ("usage", 20, 2), ("finish", "Gone.")]
    assert recorder.response is not None and recorder.response.messages[1].tool_results[0].is_error
    return str(result[2])


def test_stdio_server_killed_mid_call_ends_that_call_not_the_stream(tmp_path: Path, recorder: Recorder) -> None:
    """Killing a stdio server mid-call gives that call an error result; the stream goes on to finish."""
    marker = tmp_path / "started"
    client = MCPClient(STDIO, timeout=20, env={"MCP_TEST_STARTED": str(marker)}).connect()
    try:
        text = _kill_mid_call(client, marker, lambda: os.kill(client._channel.pid, signal.SIGKILL), recorder)
        with pytest.raises(llmstreamer.APIConnectionError, match="is gone"):
            client.call_tool("add", {"a": 1, "b": 1})
    finally:
        client.close()
    assert text.startswith("error: the MCP server") and "exited while tools/call was running" in text


def test_http_server_killed_mid_call_ends_that_call_not_the_stream(tmp_path: Path, recorder: Recorder) -> None:
    """Killing an HTTP server mid-call gives that call an error result; the stream goes on to finish."""
    marker = tmp_path / "started"
    server = HTTPServer("http", env={"MCP_TEST_STARTED": str(marker)})
    client = MCPClient(server.url, timeout=20, retry=0).connect()
    try:
        text = _kill_mid_call(client, marker, lambda: os.kill(server.process.pid, signal.SIGKILL), recorder)
    finally:
        client.close()
        server.stop()
    assert text.startswith("error: the connection to http://127.0.0.1:") and "dropped" in text


def test_a_forgotten_session_starts_again(sse_server: HTTPServer) -> None:
    """When the server forgets the session (404), the client initializes again and the call succeeds."""
    with MCPClient(sse_server.url) as client:
        old = client._channel.session_id
        gone = requests.delete(sse_server.url, headers={"Mcp-Session-Id": old, "MCP-Protocol-Version": "2025-06-18"}, timeout=5)
        assert gone.status_code == 200
        assert client.call_tool("add", {"a": 2, "b": 2}).text == "4"
        assert client._channel.session_id not in (None, old)


def test_close_deletes_the_session(sse_server: HTTPServer) -> None:
    """close() sends DELETE: the old session id is unknown to the server afterwards."""
    client = MCPClient(sse_server.url).connect()
    session = client._channel.session_id
    client.close()
    body = {"jsonrpc": "2.0", "id": 9, "method": "tools/list"}
    headers = {"Mcp-Session-Id": session, "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
    assert requests.post(sse_server.url, json=body, headers=headers, timeout=5).status_code == 404


def test_a_missing_command_is_a_connection_error() -> None:
    """A stdio command that does not exist fails to connect with a clear message."""
    with pytest.raises(llmstreamer.APIConnectionError, match="cannot start the MCP server"):
        MCPClient(["/nonexistent/mcp-server"]).connect()


# --- the wire, scripted ----------------------------------------------------------------------------

INIT = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "fake", "version": "0"}}


def test_bearer_token_never_follows_a_redirect_to_another_origin() -> None:
    """A 307 to another origin drops Authorization; the token shows in no error message."""
    token = "Bearer sk-secret-token-123456"
    with FakeLLMServer() as there, FakeLLMServer() as here:
        here.add(Reply(status=307, headers={"Location": there.url + "/mcp"}, body=""))
        there.add(Reply(status=500, body={"error": "nope"}))
        with pytest.raises(llmstreamer.ServerError) as caught:
            MCPClient(here.url + "/mcp", headers={"Authorization": token}, retry=0).connect()
        assert here.requests[0].headers["authorization"] == token
        assert "authorization" not in there.requests[0].headers
    assert "sk-secret" not in str(caught.value) and "sk-secret" not in repr(MCPClient("http://h/mcp", headers={"Authorization": token}))


def test_an_unknown_protocol_version_is_refused() -> None:
    """A server answering initialize with a revision the client does not speak is an error, before any tool call."""
    with FakeLLMServer() as server:
        server.add(Reply(body={"jsonrpc": "2.0", "id": 1, "result": {**INIT, "protocolVersion": "1999-01-01"}}))
        with pytest.raises(StreamError, match="speaks MCP '1999-01-01'"):
            MCPClient(server.url + "/mcp", retry=0).connect()


def sse(*messages: dict[str, Any]) -> str:
    """An SSE body carrying ``messages`` as the Streamable HTTP transport frames them."""
    return "".join(f"event: message\ndata: {json.dumps(m)}\n\n" for m in messages)


def test_sse_answers_carry_requests_and_notifications_first() -> None:
    """An SSE answer with a notification, a ping and a sampling request first: ping answered, sampling refused."""
    ping = {"jsonrpc": "2.0", "id": "s1", "method": "ping"}
    sample = {"jsonrpc": "2.0", "id": "s2", "method": "sampling/createMessage", "params": {"messages": []}}
    note = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "hi"}}
    result = {"jsonrpc": "2.0", "id": 2, "result": {"tools": [{"name": "t", "inputSchema": {"type": "object"}}]}}
    with FakeLLMServer() as server:
        server.add(
            Reply(body={"jsonrpc": "2.0", "id": 1, "result": INIT}, headers={"Mcp-Session-Id": "abc"}),
            Reply(status=202, body=""),  # notifications/initialized
            Reply(body=sse(note, ping, sample, result), content_type="text/event-stream"),
            Reply(status=202, body=""),  # our answer to the ping
            Reply(status=202, body=""),  # our refusal of the sampling request
            Reply(status=200, body=""),  # DELETE
        )
        with MCPClient(server.url + "/mcp", retry=0) as client:
            assert [t.name for t in client.tools()] == ["t"]
        sent = server.requests
    assert [r.method for r in sent] == ["POST", "POST", "POST", "POST", "POST", "DELETE"]
    assert sent[3].json == {"jsonrpc": "2.0", "id": "s1", "result": {}}
    assert sent[4].json["id"] == "s2" and sent[4].json["error"]["code"] == -32601
    assert all(r.headers.get("mcp-session-id") == "abc" for r in sent[1:])
    assert "mcp-protocol-version" not in sent[0].headers and sent[2].headers["mcp-protocol-version"] == "2025-06-18"


def test_tools_are_listed_once_until_the_server_says_they_changed() -> None:
    """tools() keeps the list; a tools/list_changed notification (or refresh=True) lists them again."""
    listing = {"tools": [{"name": "t", "inputSchema": {"type": "object"}}]}
    changed = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}

    def call_with_notice(req: Any) -> Reply:
        answer = {"jsonrpc": "2.0", "id": req.json["id"], "result": {"content": [{"type": "text", "text": "ok"}]}}
        return Reply(body=sse(changed, answer), content_type="text/event-stream")

    with FakeLLMServer() as server:
        server.add(answering(INIT), Reply(status=202, body=""), answering(listing))
        server.add(call_with_notice, answering(listing), answering(listing))
        client = MCPClient(server.url + "/mcp", retry=0)
        first = client.tools()
        assert client.tools() == first  # no second tools/list
        assert client.call_tool("t").text == "ok"  # the answer brings tools/list_changed
        client.tools()
        client.tools(refresh=True)
        methods = [r.json["method"] for r in server.requests if r.json]
        client.close()
    assert methods == ["initialize", "notifications/initialized", "tools/list", "tools/call", "tools/list", "tools/list"]


def test_json_rpc_errors_raise_mcp_error() -> None:
    """A JSON-RPC error answer raises MCPError with its code; through a tool it is an error result."""
    error = {"jsonrpc": "2.0", "id": 3, "error": {"code": -32602, "message": "bad arguments"}}
    with FakeLLMServer() as server:
        server.add(
            Reply(body={"jsonrpc": "2.0", "id": 1, "result": INIT}),
            Reply(status=202, body=""),
            Reply(body={"jsonrpc": "2.0", "id": 2, "result": {"tools": [{"name": "t"}]}}),
            Reply(body=error),
        )
        client = MCPClient(server.url + "/mcp", retry=0)
        [found] = client.tools()
        result = execute(ToolCall("c", "t", {}), llmstreamer.Toolbox([found]), approve)
        client.close()
    assert result.is_error and "bad arguments (code -32602)" in result.content
    assert MCPError.__mro__[1] is StreamError


def test_namespace_is_canonical_and_arguments_are_checked() -> None:
    """Namespaces are lowercased with '-' and '.' made '_'; bad targets fail at once."""
    assert MCPClient("http://127.0.0.1:1/mcp", namespace="My-Server.v2").namespace == "my_server_v2"
    with pytest.raises(ConfigurationError, match="needs an http"):
        MCPClient([])
    with pytest.raises(ConfigurationError, match="headers= applies to HTTP"):
        MCPClient(["server"], headers={"Authorization": "x"})


def test_one_client_serves_many_threads(client: MCPClient) -> None:
    """Eight threads calling one client at once each get their own answer."""
    answers: dict[int, str] = {}

    def work(n: int) -> None:
        answers[n] = client.call_tool("add", {"a": n, "b": 100}).text

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert answers == {n: str(n + 100) for n in range(8)}


def answering(result: dict[str, Any], **reply: Any) -> Any:
    """A FakeLLMServer reply source answering whatever request came with ``result`` under its id."""

    def source(req: Any) -> Reply:
        return Reply(body={"jsonrpc": "2.0", "id": req.json["id"], "result": result}, **reply)

    return source


def test_initialize_is_retried_after_a_503() -> None:
    """A 503 to initialize is retried (the server did nothing); the session then starts."""
    with FakeLLMServer() as server:
        server.add(Reply(status=503, body={"error": "warming up"}), answering(INIT), Reply(status=202, body=""))
        client = MCPClient(server.url + "/mcp", retry=RetryPolicy(retries=1, initial_delay=0.01)).connect()
        assert client.server_info == {"name": "fake", "version": "0"}
        client.close()
    assert [r.json["method"] for r in server.requests[:3]] == ["initialize", "initialize", "notifications/initialized"]


def test_a_cursor_that_never_ends_stops_after_max_pages() -> None:
    """A server whose tools/list always has a next page is cut off after MAX_PAGES pages with an error."""
    page = {"tools": [{"name": "t"}], "nextCursor": "again"}
    with FakeLLMServer(default=answering(page)) as server:
        server.add(answering(INIT), Reply(status=202, body=""))
        client = MCPClient(server.url + "/mcp", retry=0)
        with pytest.raises(StreamError, match=f"goes on past {MAX_PAGES} pages"):
            client.list_tools()
        client.close()
    assert sum(1 for r in server.requests if r.json and r.json.get("method") == "tools/list") == MAX_PAGES


# A stdio server in a few lines that misbehaves politely: log noise on stdout, a notification and
# a request of its own before each answer, and an answer to an id nobody asked for.
NOISY = r"""
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if "id" not in msg or "method" not in msg:
        continue  # notifications and our answers
    out = sys.stdout
    out.write("starting up... not JSON\n")
    out.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/progress", "params": {}}) + "\n")
    out.write(json.dumps({"jsonrpc": "2.0", "id": "x", "method": "roots/list"}) + "\n")
    out.write(json.dumps({"jsonrpc": "2.0", "id": 999, "result": {}}) + "\n")
    out.write(json.dumps([1, 2]) + "\n")
    if msg["method"] == "initialize":
        result = {"protocolVersion": "2025-03-26", "capabilities": {}, "serverInfo": {"name": "noisy"}}
    else:
        result = {"tools": [{"name": "t", "description": "multi\nline"}]}
    out.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}) + "\n")
    out.flush()
    print("stderr noise", file=sys.stderr, flush=True)
"""


def test_stdio_noise_notifications_and_stray_answers_are_ignored() -> None:
    """Non-JSON lines, notifications, stray ids and server requests around each answer do not disturb the client."""
    with MCPClient([sys.executable, "-c", NOISY], timeout=10) as client:
        assert client.protocol_version == "2025-03-26" and client.server_info == {"name": "noisy"}
        assert [(t.name, t.description) for t in client.tools()] == [("t", "multi\nline")]


ENV_REPORTER = r"""
import json, os, sys
for line in sys.stdin:
    msg = json.loads(line)
    if "id" not in msg or "method" not in msg:
        continue
    if msg["method"] == "initialize":
        result = {"protocolVersion": "2025-06-18", "capabilities": {}, "serverInfo": {"name": "env"}}
    else:
        result = {"tools": [{"name": name} for name in sorted(os.environ) if name.isidentifier()]}
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}) + "\n")
    sys.stdout.flush()
"""


def test_stdio_servers_never_inherit_api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stdio server sees PATH and what env= gives it, not the keys in the client's environment."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-do-not-leak")
    monkeypatch.setenv("SOME_TOKEN", "secret")
    with MCPClient([sys.executable, "-c", ENV_REPORTER], env={"SERVER_SETTING": "1"}) as client:
        names = {t.name for t in client.tools()}
    assert "PATH" in names and "SERVER_SETTING" in names
    assert not names & {"OPENAI_API_KEY", "SOME_TOKEN"}


def test_threads_that_all_meet_a_forgotten_session_start_one_new_session(sse_server: HTTPServer) -> None:
    """Eight threads hitting the 404 of a deleted session together: one new session, every call answered."""
    with MCPClient(sse_server.url) as client:
        old = client._channel.session_id
        requests.delete(sse_server.url, headers={"Mcp-Session-Id": old, "MCP-Protocol-Version": "2025-06-18"}, timeout=5)
        start = threading.Barrier(8, timeout=10)
        answers: dict[int, str] = {}

        def work(n: int) -> None:
            start.wait()
            answers[n] = client.call_tool("add", {"a": n, "b": 1}).text

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        inits = client._ids  # every request id came from here: initialize + calls + resends
        assert answers == {n: str(n + 1) for n in range(8)} and client._channel.session_id != old
    assert next(inits) <= 1 + 1 + 8 + 8 + 1 + 1  # at most one new initialize (plus one resend per call)
