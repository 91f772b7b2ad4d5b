"""The agent and MCP examples run as programs, against the fake server and a real local MCP server."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run an example with ``python`` (bounded) and capture its output."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, check=False)


def test_run_agent_demo_checks_the_weather_and_answers_in_json() -> None:
    """examples/run_agent.py --demo renders agent.md, runs its tool, and prints the JSON answer."""
    done = run(str(EXAMPLES / "run_agent.py"), "--demo")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "Plan a day trip (trip_planner, openai:gpt-4o-mini)",
        "> I am spending a day in Oslo, planning to hike.",
        "What should I pack?",
        "  -> get_weather({'city': 'Oslo'})",
        "  <- 12 °C, showers in the afternoon",
        '{"pack": ["rain jacket", "warm layer", "hiking boots"], "advice": "Hike in the morning, before the showers."}',
        "[stop]",
    ]


def test_run_agent_refuses_input_that_breaks_the_schema() -> None:
    """examples/run_agent.py with no city exits 2 naming the field, before any request."""
    done = run(str(EXAMPLES / "run_agent.py"), "--demo", "--input", '{"town": "Oslo"}')
    assert done.returncode == 2
    assert done.stdout.endswith("refused: agent 'trip_planner': invalid input: 'city' is a required property\n")


def test_mcp_tools_demo_over_stdio() -> None:
    """examples/mcp_tools.py --demo starts examples/mcp_server.py over stdio and runs its tool in the loop."""
    pytest.importorskip("mcp")
    done = run(str(EXAMPLES / "mcp_tools.py"), "--demo")
    assert done.returncode == 0, done.stderr
    assert "  notes_word_count: Count the words in a text." in done.stdout
    assert done.stdout.endswith("  -> notes_word_count({'text': 'to be or not to be'})\n  <- 6\n There are 6 words.\n  [stop]\n")


def test_mcp_tools_demo_over_http() -> None:
    """The same example against examples/mcp_server.py serving Streamable HTTP on loopback."""
    pytest.importorskip("mcp")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "mcp_server.py"), "--http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def listening() -> bool:
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        assert wait_until(listening, timeout=30)
        done = run(str(EXAMPLES / "mcp_tools.py"), "--demo", "--server", f"http://127.0.0.1:{port}/mcp")
    finally:
        server.terminate()
        server.wait(10)
    assert done.returncode == 0, done.stderr
    assert "<- 6\n There are 6 words." in done.stdout
