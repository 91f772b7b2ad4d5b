"""Tools: the model calls your Python functions, llmstreamer runs them and streams the answer.

One ``stream_chat`` runs the whole loop: the model asks for ``get_weather``, the function runs,
its result goes back, and the model's next round streams to ``on_content``. ``save_note`` writes,
so it runs only when ``confirm_tool`` approves (here: you answer y on a terminal)::

    python examples/tools.py --demo                       # no key, no network: a scripted fake server
    python examples/tools.py --model openai:gpt-4o-mini   # needs OPENAI_API_KEY
    python examples/tools.py --model anthropic --question "Note that Oslo is sunny."
    python examples/tools.py --model openai-compatible:qwen3 --base-url http://localhost:8000/v1
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Optional

import llmstreamer
from llmstreamer import Message, StreamCallbacks, ToolCall, ToolResult

FORECASTS = {"oslo": "18 °C and sunny", "lima": "22 °C and cloudy"}
NOTES: list[str] = []


@llmstreamer.tool
def get_weather(city: str, unit: Optional[str] = None) -> str:
    """The current weather in a city.

    Args:
        city: The city's name, e.g. "Oslo".
        unit: "celsius" (the default) or "fahrenheit".
    """
    return FORECASTS.get(city.lower(), f"no forecast for {city}")


@llmstreamer.tool(permission="write")
def save_note(text: str) -> str:
    """Save a short note for the user.

    Args:
        text: What to write down.
    """
    NOTES.append(text)
    return f"saved note #{len(NOTES)}"


def confirm(call: ToolCall) -> tuple[bool, str]:
    """Ask on the terminal before a write tool runs; refuse when nobody can answer."""
    if not sys.stdin.isatty():
        return False, "no one is at the terminal to approve it"
    answer = input(f"\n  allow {call.name}({call.arguments})? [y/N] ").strip().lower()
    return (True, "approved") if answer == "y" else (False, "the user said no")


def demo_server() -> Any:
    """A started fake server scripted with the two rounds of a weather question."""
    from llmstreamer.testing import FakeLLMServer, Reply

    server = FakeLLMServer()
    call = ToolCall("call_1", "get_weather", {"city": "Oslo"})
    server.add(
        Reply(text="Let me check the weather.", tool_calls=[call], finish_reason="tool_calls"),
        Reply(text=" It is 18 °C and sunny in Oslo."),
    )
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="openai:gpt-4o-mini", help="provider[:model] (default: openai:gpt-4o-mini)")
    parser.add_argument("--base-url", help="where the provider's API lives (e.g. a local OpenAI-compatible server)")
    parser.add_argument("--demo", action="store_true", help="answer from a scripted fake server: no key, no network")
    parser.add_argument("--question", default="What's the weather in Oslo?")
    args = parser.parse_args(argv)

    server = demo_server() if args.demo else None
    try:
        if server is not None:
            streamer = llmstreamer.streamer("openai:gpt-4o-mini", api_key="demo", base_url=server.base_url("openai"))
        else:
            streamer = llmstreamer.streamer(args.model, **({"base_url": args.base_url} if args.base_url else {}))
    except llmstreamer.ConfigurationError as exc:
        print(f"{exc}\n\nRun `python examples/tools.py --demo` to see the tool loop without a key,")
        print("or set the provider's key (e.g. OPENAI_API_KEY) and pick it with --model.")
        return 0
    try:
        with streamer:
            return ask(streamer, args.question)
    finally:
        if server is not None:
            server.close()


def ask(streamer: llmstreamer.Streamer, question: str) -> int:
    """Stream one question through the tool loop, printing every step; 0 on success."""
    failures: list[llmstreamer.LLMStreamError] = []

    def on_tool_call(call: ToolCall) -> None:
        print(f"\n  -> {call.name}({call.arguments})", flush=True)

    def on_tool_result(result: ToolResult) -> None:
        print(f"  <- {result.content}" + ("  (error)" if result.is_error else ""), flush=True)

    def on_finish(response: llmstreamer.Response) -> None:
        usage = response.usage
        tokens = f", {usage.total_tokens} tokens" if usage else ""
        print(f"\n  [{response.finish_reason} after {len(response.round_usage)} rounds{tokens}]")

    callbacks = StreamCallbacks(
        on_content=lambda text: print(text, end="", flush=True),
        on_tool_call=on_tool_call,  # the model asked for a call
        on_tool_result=on_tool_result,  # it ran (or was refused); the result goes back to the model
        on_finish=on_finish,
        on_error=failures.append,
    )
    print(f"> {question}")
    handle = streamer.stream_chat(
        [Message.user(question)],
        callbacks,
        tools=[get_weather, save_note],
        confirm_tool=confirm,
        max_iterations=5,
    )
    if not handle.wait(timeout=300):
        handle.cancel()
        handle.wait(timeout=5)
    if failures:
        print(f"\nfailed: {failures[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
