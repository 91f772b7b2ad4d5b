"""MCP servers built with the official ``mcp`` SDK (a test dependency), for the MCP client's tests.

Run as a program: ``python tests/mcpserver.py {stdio|http|http-json} [PORT] [--paged N]``.
``http`` answers with SSE streams, ``http-json`` with plain JSON bodies. With ``--paged N`` the
server is a low-level SDK ``Server`` listing N tools five per page. The environment variable
``MCP_TEST_STARTED`` names a file each call of ``slow`` touches when it begins, so a test can
kill the server mid-call without guessing when the call arrived; a call the server cancels
(``notifications/cancelled``) adds a ``cancelled`` line to it.
"""

# No "from __future__ import annotations": the SDK reads the tools' annotations at definition time.
import base64
import os
import sys
from typing import Any

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def tools_server() -> Any:
    """An ``MCPServer`` with the tools the tests call."""
    import anyio
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.server.mcpserver.utilities.types import Image
    from mcp_types import CallToolResult, TextContent

    server = MCPServer("llmstreamer-test", version="1.0")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool(name="echo-text")
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    @server.tool()
    def fail(reason: str) -> str:
        """Always raises."""
        raise ValueError(f"cannot: {reason}")

    @server.tool()
    def refuse() -> CallToolResult:
        """Answers with an explicit isError result."""
        return CallToolResult(content=[TextContent(type="text", text="quota exceeded")], is_error=True)

    @server.tool()
    def picture() -> Image:
        """Returns a 1x1 PNG."""
        return Image(data=PNG, format="png")

    @server.tool()
    def weather(city: str) -> dict[str, Any]:
        """Structured weather."""
        return {"city": city, "celsius": 18}

    @server.tool()
    async def chatty(ctx: Context) -> str:
        """Logs, reports progress and pings the client before answering."""
        await ctx.info("working on it")
        await ctx.report_progress(0.5, 1.0)
        await ctx.session.send_ping()
        return "chatted"

    @server.tool()
    async def slow(seconds: float) -> str:
        """Sleeps, then answers."""
        marker = os.environ.get("MCP_TEST_STARTED")
        if marker:
            with open(marker, "a") as fh:
                fh.write("started\n")
        try:
            await anyio.sleep(seconds)
        except anyio.get_cancelled_exc_class():  # the client sent notifications/cancelled
            if marker:
                with open(marker, "a") as fh:
                    fh.write("cancelled\n")
            raise
        return f"slept {seconds}"

    return server


def paged_server(count: int) -> Any:
    """A low-level SDK server listing ``count`` tools, five per page."""
    from mcp.server.lowlevel import Server
    from mcp_types import CallToolResult, ListToolsResult, TextContent, Tool

    tools = [
        Tool(name=f"tool_{i:03d}", description=f"Tool number {i}.", input_schema={"type": "object", "properties": {}})
        for i in range(count)
    ]

    async def list_tools(ctx: Any, params: Any) -> ListToolsResult:
        start = int(params.cursor) if params is not None and params.cursor else 0
        end = start + 5
        return ListToolsResult(tools=tools[start:end], next_cursor=str(end) if end < len(tools) else None)

    async def call_tool(ctx: Any, params: Any) -> CallToolResult:
        return CallToolResult(content=[TextContent(type="text", text=f"ran {params.name}")])

    return Server("paged", on_list_tools=list_tools, on_call_tool=call_tool)


def main(argv: list[str]) -> None:
    mode = argv[0]
    port = int(argv[1]) if len(argv) > 1 and argv[1].isdigit() else 0
    paged = int(argv[argv.index("--paged") + 1]) if "--paged" in argv else 0
    if paged:
        import anyio
        from mcp.server.stdio import stdio_server

        server = paged_server(paged)

        async def serve() -> None:
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())

        anyio.run(serve)
        return
    app = tools_server()
    if mode == "stdio":
        app.run()
    else:
        app.run("streamable-http", host="127.0.0.1", port=port, json_response=mode == "http-json")


if __name__ == "__main__":
    main(sys.argv[1:])
