"""MCP tools: the model calls the tools of a Model Context Protocol server, over stdio or HTTP.

`MCPClient` starts (or connects to) the server, and ``client.tools()`` gives its tools as
llmstreamer `Tool`s, namespaced (``notes_word_count``), usable in ``tools=`` on every provider.
They run code elsewhere, so each call waits for ``confirm_tool`` (here: y on a terminal, or
``--yes``)::

    python examples/mcp_tools.py --demo                    # a scripted fake model + examples/mcp_server.py
    python examples/mcp_tools.py --model openai:gpt-4o-mini --question "How many words in 'to be or not to be'?"
    python examples/mcp_tools.py --server http://127.0.0.1:8000/mcp --model anthropic   # an HTTP MCP server

The local server needs the official SDK: pip install mcp.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import llmstreamer
from llmstreamer import Message, StreamCallbacks, ToolCall
from llmstreamer.mcp import MCPClient

SERVER = [sys.executable, str(Path(__file__).with_name("mcp_server.py"))]


def demo_server() -> Any:
    """A started fake model that calls the MCP server's word_count, then answers with the count."""
    from llmstreamer.testing import FakeLLMServer, Reply

    server = FakeLLMServer()
    call = ToolCall("call_1", "notes_word_count", {"text": "to be or not to be"})
    server.add(
        Reply(text="Let me count.", tool_calls=[call], finish_reason="tool_calls"),
        Reply(text=" There are 6 words."),
    )
    return server


def confirmer(approve_all: bool) -> Any:
    """confirm_tool: approve everything with --yes, else ask on the terminal (refuse when nobody is there)."""

    def confirm(call: ToolCall) -> tuple[bool, str]:
        if approve_all:
            return True, "approved by --yes"
        if not sys.stdin.isatty():
            return False, "no one is at the terminal to approve it"
        answer = input(f"\n  allow {call.name}({dict(call.arguments)})? [y/N] ").strip().lower()
        return (True, "approved") if answer == "y" else (False, "the user said no")

    return confirm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", help="an MCP server URL or command (default: examples/mcp_server.py over stdio)")
    parser.add_argument("--model", default="openai:gpt-4o-mini", help="provider[:model]")
    parser.add_argument("--question", default="How many words are in 'to be or not to be'?")
    parser.add_argument("--yes", action="store_true", help="approve every tool call")
    parser.add_argument("--demo", action="store_true", help="a scripted fake model: no key, no network")
    args = parser.parse_args(argv)

    fake = demo_server() if args.demo else None
    try:
        if fake is not None:
            streamer = llmstreamer.streamer("openai:gpt-4o-mini", api_key="demo", base_url=fake.base_url("openai"))
        else:
            streamer = llmstreamer.streamer(args.model)
    except llmstreamer.ConfigurationError as exc:
        print(f"{exc}\n\nRun `python examples/mcp_tools.py --demo` to see it without a key.")
        return 0
    try:
        with MCPClient(args.server or SERVER, namespace="notes", timeout=30) as client, streamer:
            info = client.server_info
            tools = client.tools()
            print(f"MCP server {info.get('name')} {info.get('version')} (protocol {client.protocol_version}):")
            for found in tools:
                print(f"  {found.name}: {found.description}")
            return ask(streamer, args.question, tools, confirmer(args.yes or args.demo))
    except llmstreamer.LLMStreamError as exc:
        print(f"the MCP server failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if fake is not None:
            fake.close()


def ask(streamer: llmstreamer.Streamer, question: str, tools: list[llmstreamer.Tool], confirm: Any) -> int:
    """Stream one question through the tool loop with the MCP tools; 0 on success."""
    failures: list[llmstreamer.LLMStreamError] = []
    callbacks = StreamCallbacks(
        on_content=lambda text: print(text, end="", flush=True),
        on_tool_call=lambda call: print(f"\n  -> {call.name}({dict(call.arguments)})", flush=True),
        on_tool_result=lambda result: print(f"  <- {result.content}" + ("  (error)" if result.is_error else "")),
        on_finish=lambda response: print(f"\n  [{response.finish_reason}]"),
        on_error=failures.append,
    )
    print(f"> {question}")
    handle = streamer.stream_chat([Message.user(question)], callbacks, tools=tools, confirm_tool=confirm)
    if not handle.wait(timeout=300):
        handle.cancel()
        handle.wait(timeout=5)
    if failures:
        print(f"\nfailed: {failures[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
