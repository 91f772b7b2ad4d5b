"""The tool loop on every HTTP provider with tools: rounds, results on the wire, refusals, limits.

Each test runs against the fake server's flavor of the provider and asserts the whole list of
callbacks and what the NEXT request carried back to the model, in that wire's own shape.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import llmstreamer
from llmstreamer import (
    AnthropicStreamer,
    ConfigurationError,
    GeminiStreamer,
    MistralStreamer,
    OllamaStreamer,
    OpenAIStreamer,
    StreamCancelled,
    Tool,
    ToolCall,
    tool,
)
from llmstreamer.provider import Streamer
from llmstreamer.testing import FakeLLMServer, Reply
from llmstreamer.testing._wire import sse
from llmstreamer.testing._wire_compat import chunk

from ..conftest import Recorder

ROOT = Path(__file__).resolve().parents[2]
FLAVORS = ["openai", "anthropic", "gemini", "mistral", "ollama", "openrouter"]
CLASSES: dict[str, type[Streamer]] = {
    "openai": OpenAIStreamer,
    "anthropic": AnthropicStreamer,
    "gemini": GeminiStreamer,
    "mistral": MistralStreamer,
    "ollama": OllamaStreamer,
}
QUESTION = [llmstreamer.Message.user("Weather in Oslo?")]
RAN: list[str] = []  # what the tools below were run with, in order


@tool
def weather(city: str) -> str:
    """The weather in a city.

    Args:
        city: The city's name.
    """
    RAN.append(city)
    return f"Sunny in {city}"


@tool(permission="exec")
def run_shell(cmd: str) -> str:
    """Run a shell command."""
    RAN.append(cmd)
    return "done"


@tool(name="weather")
def broken_weather(city: str) -> str:
    """The weather in a city."""
    raise RuntimeError("station offline")


PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "The city's name."}},
    "required": ["city"],
}
DECLARED_ONLY = Tool("weather", "The weather in a city.", PARAMETERS)


@pytest.fixture(autouse=True)
def _forget_runs() -> None:
    RAN.clear()


@pytest.fixture(params=FLAVORS)
def flavor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make(server: FakeLLMServer, flavor: str) -> Streamer:
    """The provider of ``flavor`` pointed at the fake server (OpenRouter is the compatible preset)."""
    if flavor == "openrouter":
        return llmstreamer.streamer("openrouter:some/model", api_key="test-key", base_url=server.base_url(flavor), retry=0)
    return CLASSES[flavor](api_key="test-key", base_url=server.base_url(flavor), retry=0)


def run(streamer: Streamer, recorder: Recorder, **options: Any) -> None:
    """Stream the question through the tool loop and wait (bounded) for the terminal callback."""
    assert streamer.stream_chat(QUESTION, recorder, **options).wait(10)


def call(city: str = "Oslo", call_id: str = "call_1", name: str = "weather") -> ToolCall:
    return ToolCall(call_id, name, {"cmd": city} if name == "run_shell" else {"city": city})


def sent_results(flavor: str, body: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The tool results a request carried, as (name or call id, content, marked as an error)."""
    found = []
    if flavor == "anthropic":
        for message in body["messages"]:
            for block in message["content"] if isinstance(message["content"], list) else ():
                if block["type"] == "tool_result":
                    found.append((block["tool_use_id"], block["content"], bool(block.get("is_error"))))
    elif flavor == "gemini":
        for content in body["contents"]:
            for part in content["parts"]:
                if "functionResponse" in part:
                    response = part["functionResponse"]["response"]
                    found.append((part["functionResponse"]["name"], response.get("output", response.get("error")), "error" in response))
    elif flavor == "ollama":
        found = [(m["tool_name"], m["content"], False) for m in body["messages"] if m["role"] == "tool"]
    else:
        found = [(m["tool_call_id"], m["content"], False) for m in body["messages"] if m["role"] == "tool"]
    return found


def key(flavor: str, call_id: str = "call_1", name: str = "weather") -> str:
    """How a result names its call on this wire: by tool name (Gemini, Ollama) or call id."""
    return name if flavor in ("gemini", "ollama") else call_id


# --- the loop -------------------------------------------------------------------------------------


def test_two_rounds_in_wire_order(server: FakeLLMServer, flavor: str, recorder: Recorder) -> None:
    """A round with a call, the tool's result, and the next round arrive as one whole, ordered list of callbacks."""
    server.add(
        Reply(text=["Let me check."], tool_calls=[call()], finish_reason="tool_calls"),
        Reply(text=["Sunny."]),
    )
    run(make(server, flavor), recorder, tools=[weather])
    assert recorder.calls == [
        ("content", "Let me check."),
        ("tool_call", "weather"),
        ("usage", 10, 1),
        ("tool_result", "weather", "Sunny in Oslo"),
        ("content", "Sunny."),
        ("usage", 20, 2),
        ("finish", "Let me check.Sunny."),
    ]
    response = recorder.response
    assert response is not None and response.finish_reason == "stop"
    assert [m.role for m in response.messages] == ["assistant", "tool", "assistant"]
    assert response.tool_calls[0].arguments == {"city": "Oslo"}
    assert len(server.requests) == 2 and RAN == ["Oslo"]
    assert sent_results(flavor, server.requests[1].json) == [(key(flavor), "Sunny in Oslo", False)]


def test_parallel_calls_run_in_order_and_go_back_together(server: FakeLLMServer, flavor: str, recorder: Recorder) -> None:
    """Two calls in one round both run, in order, and the next request carries both results."""
    server.add(
        Reply(tool_calls=[call("Oslo"), call("Lima", "call_2")], finish_reason="tool_calls"),
        Reply(text=["Both sunny."]),
    )
    run(make(server, flavor), recorder, tools=[weather])
    assert recorder.calls == [
        ("tool_call", "weather"),
        ("tool_call", "weather"),
        ("usage", 10, 1),
        ("tool_result", "weather", "Sunny in Oslo"),
        ("tool_result", "weather", "Sunny in Lima"),
        ("content", "Both sunny."),
        ("usage", 20, 2),
        ("finish", "Both sunny."),
    ]
    assert sorted(RAN) == ["Lima", "Oslo"]  # they ran concurrently; the results above keep call order
    assert sent_results(flavor, server.requests[1].json) == [
        (key(flavor), "Sunny in Oslo", False),
        (key(flavor, "call_2"), "Sunny in Lima", False),
    ]


def test_refused_exec_tool_sends_the_reason_to_the_model(server: FakeLLMServer, flavor: str, recorder: Recorder) -> None:
    """An exec tool that confirm_tool refuses never runs; the model reads "refused: <reason>" next round."""
    server.add(
        Reply(tool_calls=[call("rm -rf /", name="run_shell")], finish_reason="tool_calls"),
        Reply(text=["Understood."]),
    )
    run(make(server, flavor), recorder, tools=[run_shell], confirm_tool=lambda c: (False, "not on my machine"))
    assert recorder.calls == [
        ("tool_call", "run_shell"),
        ("usage", 10, 1),
        ("tool_result", "run_shell", "refused: not on my machine"),
        ("content", "Understood."),
        ("usage", 20, 2),
        ("finish", "Understood."),
    ]
    assert RAN == []
    marked = flavor in ("anthropic", "gemini")  # the wires that can say a result is an error
    assert sent_results(flavor, server.requests[1].json) == [
        (key(flavor, name="run_shell"), "refused: not on my machine", marked)
    ]


def test_a_tool_that_raises_sends_an_error_result(server: FakeLLMServer, flavor: str, recorder: Recorder) -> None:
    """A tool's exception becomes an error result for the model; the stream goes on to the next round."""
    server.add(Reply(tool_calls=[call()], finish_reason="tool_calls"), Reply(text=["Sorry."]))
    run(make(server, flavor), recorder, tools=[broken_weather])
    error = "error: RuntimeError: station offline"
    assert recorder.calls == [
        ("tool_call", "weather"),
        ("usage", 10, 1),
        ("tool_result", "weather", error),
        ("content", "Sorry."),
        ("usage", 20, 2),
        ("finish", "Sorry."),
    ]
    assert sent_results(flavor, server.requests[1].json) == [(key(flavor), error, flavor in ("anthropic", "gemini"))]


def test_invalid_json_arguments_reach_the_model_as_an_error(server: FakeLLMServer, flavor: str, recorder: Recorder) -> None:
    """Arguments that are not a JSON object never run the tool: the model gets the reason instead of a crash."""
    bad = ToolCall("call_1", "weather", {}, '{"city": "Oslo"')
    server.add(Reply(tool_calls=[bad], finish_reason="tool_calls"), Reply(text=["Retrying."]))
    run(make(server, flavor), recorder, tools=[weather])
    assert RAN == []
    assert recorder.kinds() == ["tool_call", "usage", "tool_result", "content", "usage", "finish"]
    result = recorder.calls[2]
    # Gemini's wire carries arguments as an object: text there is "not a JSON object"
    reason = "must be a JSON object, got str" if flavor == "gemini" else "are not valid JSON"
    assert result[:2] == ("tool_result", "weather") and result[2].startswith("error: the arguments") and reason in result[2]
    assert recorder.response is not None and recorder.response.tool_calls[0].error is not None
    [(_, content, _)] = sent_results(flavor, server.requests[1].json)
    assert content == result[2]


def test_max_iterations_stops_before_running_the_last_calls(server: FakeLLMServer, flavor: str, recorder: Recorder) -> None:
    """After max_iterations rounds the stream ends with finish_reason "max_iterations"; the last calls do not run."""
    server.add(
        Reply(tool_calls=[call("Oslo")], finish_reason="tool_calls"),
        Reply(tool_calls=[call("Lima", "call_2")], finish_reason="tool_calls"),
        Reply(text=["Never requested."]),
    )
    run(make(server, flavor), recorder, tools=[weather], max_iterations=2)
    assert recorder.calls == [
        ("tool_call", "weather"),
        ("usage", 10, 1),
        ("tool_result", "weather", "Sunny in Oslo"),
        ("tool_call", "weather"),
        ("usage", 20, 2),
        ("finish", ""),
    ]
    response = recorder.response
    assert response is not None and response.finish_reason == "max_iterations"
    assert [c.arguments["city"] for c in response.tool_calls] == ["Oslo", "Lima"]
    assert response.message.tool_calls == (response.tool_calls[1],)  # the unrun call, for the caller
    assert RAN == ["Oslo"] and len(server.requests) == 2


class _Canceller(Recorder):
    """A recorder that cancels its own stream from on_tool_result."""

    def __init__(self) -> None:
        super().__init__()
        self.handle: Any = None
        self.ready = threading.Event()

    def on_tool_result(self, result: Any) -> None:
        super().on_tool_result(result)
        assert self.ready.wait(5)
        self.handle.cancel()


def test_cancel_between_rounds_never_requests_the_next(server: FakeLLMServer, flavor: str) -> None:
    """cancel() from on_tool_result ends the stream with StreamCancelled before the next round is requested."""
    server.add(Reply(tool_calls=[call()], finish_reason="tool_calls"), Reply(text=["Never requested."]))
    recorder = _Canceller()
    recorder.handle = make(server, flavor).stream_chat(QUESTION, recorder, tools=[weather])
    recorder.ready.set()
    assert recorder.handle.wait(10)
    assert recorder.calls == [
        ("tool_call", "weather"),
        ("usage", 10, 1),
        ("tool_result", "weather", "Sunny in Oslo"),
        ("error", "StreamCancelled"),
    ]
    error = recorder.error
    assert isinstance(error, StreamCancelled) and error.partial is not None
    assert error.partial.finish_reason == "cancelled" and error.partial.tool_calls[0].name == "weather"
    assert len(server.requests) == 1


def test_declared_tools_without_functions_end_the_turn(server: FakeLLMServer, flavor: str, recorder: Recorder) -> None:
    """A call to a declaration-only tool ends the turn with finish_reason "tool_calls" and nothing run."""
    server.add(Reply(text=["Let me check."], tool_calls=[call()], finish_reason="tool_calls"))
    run(make(server, flavor), recorder, tools=[DECLARED_ONLY])
    assert recorder.calls == [
        ("content", "Let me check."),
        ("tool_call", "weather"),
        ("usage", 10, 1),
        ("finish", "Let me check."),
    ]
    response = recorder.response
    assert response is not None and response.finish_reason == "tool_calls"
    assert response.tool_calls[0].arguments == {"city": "Oslo"} and len(server.requests) == 1


# --- the tool definitions and tool_choice on each wire --------------------------------------------

OPENAI_TOOLS = [{"type": "function", "function": {"name": "weather", "description": "The weather in a city.", "parameters": PARAMETERS}}]
DEFINITIONS: dict[str, Any] = {
    "openai": ("tools", OPENAI_TOOLS),
    "openrouter": ("tools", OPENAI_TOOLS),
    "mistral": ("tools", OPENAI_TOOLS),
    "ollama": ("tools", OPENAI_TOOLS),
    "anthropic": ("tools", [{"name": "weather", "description": "The weather in a city.", "input_schema": PARAMETERS}]),
    "gemini": (
        "tools",
        [
            {
                "functionDeclarations": [
                    {
                        "name": "weather",
                        "description": "The weather in a city.",
                        "parameters": {
                            "type": "OBJECT",
                            "properties": {"city": {"type": "STRING", "description": "The city's name."}},
                            "required": ["city"],
                        },
                    }
                ]
            }
        ],
    ),
}
OPENAI_CHOICES = {"auto": "auto", "none": "none", "required": "required", "weather": {"type": "function", "function": {"name": "weather"}}}
CHOICES: dict[str, tuple[str, dict[str, Any]]] = {
    "openai": ("tool_choice", OPENAI_CHOICES),
    "openrouter": ("tool_choice", OPENAI_CHOICES),
    "mistral": ("tool_choice", {**OPENAI_CHOICES, "required": "any"}),
    "anthropic": (
        "tool_choice",
        {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"}, "weather": {"type": "tool", "name": "weather"}},
    ),
    "gemini": (
        "toolConfig",
        {
            "auto": {"functionCallingConfig": {"mode": "AUTO"}},
            "none": {"functionCallingConfig": {"mode": "NONE"}},
            "required": {"functionCallingConfig": {"mode": "ANY"}},
            "weather": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}},
        },
    ),
}


@pytest.mark.parametrize(
    ("flavor", "choice"),
    [
        (f, c)
        for f in FLAVORS
        for c in (None, "auto", "none", "required", "weather")
        if f != "ollama" or c in (None, "auto")  # Ollama has no tool_choice: refusal tested below
    ],
)
def test_requests_carry_definitions_and_choice_in_the_wire_shape(server: FakeLLMServer, flavor: str, choice: Any) -> None:
    """Tool definitions and tool_choice go out in each wire's own shape (nothing for an unset choice)."""
    streamer = make(server, flavor)
    streamer.chat(QUESTION, tools=[DECLARED_ONLY], **({} if choice is None else {"tool_choice": choice}))
    body = server.requests[0].json
    field, definitions = DEFINITIONS[flavor]
    assert body[field] == definitions
    if flavor == "ollama":
        assert "tool_choice" not in body
        return
    choice_field, choices = CHOICES[flavor]
    if choice is None:
        assert choice_field not in body
    else:
        assert body[choice_field] == choices[choice]


def test_a_tool_with_no_parameters_declares_none_to_gemini(server: FakeLLMServer) -> None:
    """Gemini refuses an OBJECT without properties, so a tool without parameters declares none."""
    now = tool(name="now")(lambda: "noon")
    make(server, "gemini").chat(QUESTION, tools=[now])
    assert server.requests[0].json["tools"] == [{"functionDeclarations": [{"name": "now", "description": ""}]}]


@pytest.mark.parametrize("choice", ["none", "required", "weather"])
def test_ollama_refuses_tool_choice_other_than_auto(server: FakeLLMServer, choice: str) -> None:
    """Ollama cannot force or forbid tools: any tool_choice but "auto" fails before a request."""
    with pytest.raises(ConfigurationError, match="ollama has no tool_choice"):
        make(server, "ollama").stream_chat(QUESTION, tools=[weather], tool_choice=choice)
    assert server.requests == []


# --- streamed argument fragments ------------------------------------------------------------------

ESCAPED = ['{"city": "Z\\u00', 'e9rich ', "\\ud83d", '\\ude00"}']


@pytest.mark.parametrize("writes", ["event", "byte"])
def test_openai_arguments_split_inside_escapes_assemble_exactly(server: FakeLLMServer, recorder: Recorder, writes: str) -> None:
    """Fragments cut inside \\u00e9 and between the halves of a surrogate pair decode to the exact text."""
    model = "gpt-4o-mini"
    first = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "weather", "arguments": ""}}
    events = [chunk(model, {"role": "assistant", "content": None, "tool_calls": [first]})]
    events += [chunk(model, {"tool_calls": [{"index": 0, "function": {"arguments": f}}]}) for f in ESCAPED]
    events += [chunk(model, {}, "tool_calls"), sse("[DONE]")]
    server.add(Reply(events=events, writes=writes), Reply(text=["Nice."]))
    run(make(server, "openai"), recorder, tools=[weather])
    assert recorder.calls[:3] == [("tool_call", "weather"), ("tool_result", "weather", "Sunny in Zérich 😀"), ("content", "Nice.")]
    response = recorder.response
    assert response is not None
    made = response.tool_calls[0]
    assert made.arguments == {"city": "Zérich 😀"} and made.raw_arguments == "".join(ESCAPED)
    sent = server.requests[1].json["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert sent == "".join(ESCAPED)  # the arguments go back exactly as they came


def test_anthropic_input_json_split_inside_escapes_assembles_exactly(server: FakeLLMServer) -> None:
    """input_json_delta fragments cut inside escapes assemble into the exact input."""
    start = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [], "usage": {"input_tokens": 3, "output_tokens": 1}}
    block = {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}}
    events = [
        sse({"type": "message_start", "message": start}, "message_start"),
        sse({"type": "content_block_start", "index": 0, "content_block": block}, "content_block_start"),
        *[
            sse({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": f}}, "content_block_delta")
            for f in ["", *ESCAPED]
        ],
        sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}, "message_delta"),
        sse({"type": "message_stop"}, "message_stop"),
    ]
    server.add(Reply(events=events))
    response = make(server, "anthropic").chat(QUESTION, tools=[DECLARED_ONLY])
    assert response.tool_calls == (ToolCall("toolu_1", "weather", {"city": "Zérich 😀"}, "".join(ESCAPED)),)
    assert response.finish_reason == "tool_calls"


def test_interleaved_parallel_fragments_assemble_by_index(server: FakeLLMServer, recorder: Recorder) -> None:
    """OpenAI fragments alternating between index 0 and 1 assemble into two exact calls, in index order."""
    model = "gpt-4o-mini"

    def head(index: int, call_id: str) -> dict[str, Any]:
        return {"index": index, "id": call_id, "type": "function", "function": {"name": "weather", "arguments": ""}}

    def part(index: int, text: str) -> str:
        return chunk(model, {"tool_calls": [{"index": index, "function": {"arguments": text}}]})

    events = [
        chunk(model, {"role": "assistant", "content": None, "tool_calls": [head(0, "call_a")]}),
        chunk(model, {"tool_calls": [head(1, "call_b")]}),
        part(0, '{"ci'),
        part(1, '{"city"'),
        part(0, 'ty": "Os'),
        part(1, ': "Li'),
        part(0, 'lo"}'),
        part(1, 'ma"}'),
        chunk(model, {}, "tool_calls"),
        sse("[DONE]"),
    ]
    server.add(Reply(events=events), Reply(text=["Both."]))
    run(make(server, "openai"), recorder, tools=[weather])
    assert recorder.calls[:4] == [
        ("tool_call", "weather"),
        ("tool_call", "weather"),
        ("tool_result", "weather", "Sunny in Oslo"),
        ("tool_result", "weather", "Sunny in Lima"),
    ]
    response = recorder.response
    assert response is not None
    assert [(c.id, c.raw_arguments) for c in response.tool_calls[:2]] == [("call_a", '{"city": "Oslo"}'), ("call_b", '{"city": "Lima"}')]
    sent = server.requests[1].json["messages"]
    assert [(m["tool_call_id"], m["content"]) for m in sent if m["role"] == "tool"] == [("call_a", "Sunny in Oslo"), ("call_b", "Sunny in Lima")]


# --- examples/tools.py ----------------------------------------------------------------------------


def test_tools_example_runs_its_demo_against_the_fake_server() -> None:
    """examples/tools.py --demo streams both rounds of the tool loop with no key and no network."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "tools.py"), "--demo"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "> What's the weather in Oslo?",
        "Let me check the weather.",
        "  -> get_weather({'city': 'Oslo'})",
        "  <- 18 °C and sunny",
        " It is 18 °C and sunny in Oslo.",
        "  [stop after 2 rounds, 33 tokens]",
    ]


def test_tools_example_without_a_key_explains_itself() -> None:
    """Without a key and without --demo the example says how to run it, and exits cleanly."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "tools.py")],
        capture_output=True, text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "OPENAI_API_KEY" in done.stdout and "--demo" in done.stdout

