"""Run an agent file: a Markdown prompt with YAML front matter, its input checked against a schema.

``agent.md`` names its model, system prompt, answer format, input schema and the tools it may
use; its body is the (Jinja2) template of the first message. ``Agent.run`` validates the input,
renders the message, and streams the answer through the tool loop::

    python examples/run_agent.py --demo                          # no key, no network: a scripted fake server
    python examples/run_agent.py --input '{"city": "Lima"}'      # needs OPENAI_API_KEY (the agent's provider)
    python examples/run_agent.py --model anthropic:claude-haiku-4-5 --input '{"city": "Oslo", "activities": ["hike"]}'
    python examples/run_agent.py --input '{"town": "Oslo"}'      # refused before any request: 'city' is required

Needs the agents extra: pip install 'llmstreamer[agents]'.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import llmstreamer
from llmstreamer import StreamCallbacks, ToolCall

AGENT = Path(__file__).with_name("agent.md")
FORECASTS = {"oslo": "12 °C, showers in the afternoon", "lima": "22 °C and cloudy"}


@llmstreamer.tool
def get_weather(city: str) -> str:
    """Today's weather in a city.

    Args:
        city: The city's name, e.g. "Oslo".
    """
    return FORECASTS.get(city.lower(), f"no forecast for {city}")


def demo_server() -> Any:
    """A started fake server scripted with the agent's two rounds: a weather check, then the JSON answer."""
    from llmstreamer.testing import FakeLLMServer, Reply

    answer = {"pack": ["rain jacket", "warm layer", "hiking boots"], "advice": "Hike in the morning, before the showers."}
    server = FakeLLMServer()
    server.add(
        Reply(tool_calls=[ToolCall("call_1", "get_weather", {"city": "Oslo"})], finish_reason="tool_calls"),
        Reply(text=json.dumps(answer)),
    )
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default='{"city": "Oslo", "activities": ["hike"]}', help="the agent's input (JSON)")
    parser.add_argument("--model", help="provider[:model] instead of the agent's own")
    parser.add_argument("--demo", action="store_true", help="answer from a scripted fake server: no key, no network")
    args = parser.parse_args(argv)

    agent = llmstreamer.Agent.from_file(AGENT)
    print(f"{agent.title} ({agent.name}, {agent.provider}:{agent.model})")
    try:
        print(f"> {agent.render(args.input)}")  # validated against the input schema first
    except llmstreamer.ConfigurationError as exc:
        print(f"refused: {exc}")
        return 2
    server = demo_server() if args.demo else None
    try:
        if server is not None:
            streamer = llmstreamer.streamer("openai:gpt-4o-mini", api_key="demo", base_url=server.base_url("openai"))
        else:
            streamer = llmstreamer.streamer(args.model) if args.model else agent.streamer()
    except llmstreamer.ConfigurationError as exc:
        print(f"{exc}\n\nRun `python examples/run_agent.py --demo` to see it without a key.")
        if server is not None:
            server.close()
        return 0
    failures: list[llmstreamer.LLMStreamError] = []
    callbacks = StreamCallbacks(
        on_content=lambda text: print(text, end="", flush=True),
        on_tool_call=lambda call: print(f"  -> {call.name}({dict(call.arguments)})"),
        on_tool_result=lambda result: print(f"  <- {result.content}"),
        on_finish=lambda response: print(f"\n[{response.finish_reason}]"),
        on_error=failures.append,
    )
    try:
        with streamer:
            handle = agent.run(args.input, callbacks, tools=[get_weather], streamer=streamer)
            if not handle.wait(timeout=300):
                handle.cancel()
                handle.wait(timeout=5)
    finally:
        if server is not None:
            server.close()
    if failures:
        print(f"failed: {failures[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
