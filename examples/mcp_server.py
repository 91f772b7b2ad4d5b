"""A small MCP server for examples/mcp_tools.py, written with the official MCP SDK (pip install mcp).

It speaks stdio by default (the client starts it); ``--http PORT`` serves Streamable HTTP on
127.0.0.1 instead, at ``http://127.0.0.1:PORT/mcp``.
"""

# No "from __future__ import annotations": the SDK reads the tools' annotations when they are defined.
import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("notes", version="1.0")
NOTES: list[str] = []


@server.tool()
def word_count(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())


@server.tool(name="add-note")
def add_note(text: str) -> str:
    """Keep a note for later."""
    NOTES.append(text)
    return f"note #{len(NOTES)} saved"


@server.tool()
def list_notes() -> list[str]:
    """Every note kept so far."""
    return NOTES


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
