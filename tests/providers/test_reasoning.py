"""reasoning= and thinking_budget= on each provider's wire, and signed thinking kept across a tool loop."""

from __future__ import annotations

from typing import Any

import pytest

import llmstreamer
from llmstreamer import (
    AnthropicStreamer,
    ConfigurationError,
    GeminiStreamer,
    Message,
    MistralStreamer,
    OpenAICompatibleStreamer,
    OpenAIStreamer,
    TextPart,
    ThinkingPart,
    ToolCall,
    tool,
)
from llmstreamer.testing import FakeLLMServer, Reply

from ..conftest import Recorder

HI = [Message.user("Hi")]


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


def body(server: FakeLLMServer) -> dict[str, Any]:
    """The JSON body of the last request."""
    return server.requests[-1].json  # type: ignore[no-any-return]


def openai(server: FakeLLMServer, model: str = "gpt-5") -> OpenAIStreamer:
    return OpenAIStreamer(model=model, api_key="k", base_url=server.base_url("openai"), retry=0)


def anthropic(server: FakeLLMServer, model: str = "claude-sonnet-4-5") -> AnthropicStreamer:
    return AnthropicStreamer(model=model, api_key="k", base_url=server.base_url("anthropic"), retry=0)


def preset(server: FakeLLMServer, name: str, model: str = "some/model") -> Any:
    return llmstreamer.streamer(f"{name}:{model}", api_key="k", base_url=server.base_url(name), retry=0)


# --- OpenAI and compatible servers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "level", "effort"),
    [
        ("gpt-5", "minimal", "minimal"),
        ("gpt-5.1", "none", "none"),
        ("o3", "low", "low"),
        ("gpt-5", "medium", "medium"),
        ("gpt-5", "xhigh", "high"),
        ("gpt-5.1", "xhigh", "high"),
        ("gpt-5.1-codex-max", "xhigh", "xhigh"),
        ("gpt-5.2", "xhigh", "xhigh"),
        ("gpt-5.4-mini", "xhigh", "xhigh"),
        ("gpt-6", "xhigh", "xhigh"),
    ],
)
def test_openai_reasoning_effort(server: FakeLLMServer, model: str, level: str, effort: str) -> None:
    """reasoning= is reasoning_effort; xhigh reaches only the model families that take it, else high."""
    openai(server, model).chat(HI, reasoning=level)
    assert body(server)["reasoning_effort"] == effort


def test_openai_has_no_thinking_budget(server: FakeLLMServer) -> None:
    """OpenAI's Chat Completions has no token budget for reasoning: thinking_budget is refused before sending."""
    with pytest.raises(ConfigurationError, match="openai does not support the option 'thinking_budget'"):
        openai(server).stream_chat(HI, thinking_budget=2048)
    assert server.requests == []


def test_no_reasoning_option_sends_no_field(server: FakeLLMServer) -> None:
    """Without reasoning= the body has no reasoning field at all (the model's default applies)."""
    openai(server).chat(HI)
    assert "reasoning_effort" not in body(server)


def test_compatible_server_gets_reasoning_effort_with_xhigh_as_high(server: FakeLLMServer) -> None:
    """A generic compatible server gets reasoning_effort; xhigh, unknown there, goes as high."""
    s = OpenAICompatibleStreamer(model="gpt-oss-120b", base_url=server.base_url("openai"))
    s.chat(HI, reasoning="low")
    assert body(server)["reasoning_effort"] == "low"
    s.chat(HI, reasoning="xhigh")
    assert body(server)["reasoning_effort"] == "high"


@pytest.mark.parametrize(("options", "field"), [
    ({"reasoning": "xhigh"}, {"effort": "xhigh"}),
    ({"reasoning": "none"}, {"effort": "none"}),
    ({"reasoning": "minimal"}, {"effort": "minimal"}),
    ({"thinking_budget": 3000}, {"max_tokens": 3000}),
])
def test_openrouter_reasoning_object(server: FakeLLMServer, options: dict[str, Any], field: dict[str, Any]) -> None:
    """OpenRouter takes reasoning: {"effort"} for a level, {"max_tokens"} for a budget, and no reasoning_effort."""
    preset(server, "openrouter").chat(HI, **options)
    assert body(server)["reasoning"] == field and "reasoning_effort" not in body(server)


def test_openrouter_refuses_a_level_and_a_budget_together(server: FakeLLMServer) -> None:
    """reasoning and thinking_budget contradict each other on OpenRouter: refused before sending."""
    with pytest.raises(ConfigurationError, match="not both"):
        preset(server, "openrouter").stream_chat(HI, reasoning="high", thinking_budget=1000)
    assert server.requests == []


@pytest.mark.parametrize(("level", "fields"), [
    ("none", {"thinking": {"type": "disabled"}}),
    ("minimal", {"thinking": {"type": "enabled"}, "reasoning_effort": "low"}),
    ("low", {"thinking": {"type": "enabled"}, "reasoning_effort": "low"}),
    ("medium", {"thinking": {"type": "enabled"}, "reasoning_effort": "high"}),
    ("high", {"thinking": {"type": "enabled"}, "reasoning_effort": "high"}),
    ("xhigh", {"thinking": {"type": "enabled"}, "reasoning_effort": "max"}),
])
def test_deepseek_thinking_toggle(server: FakeLLMServer, level: str, fields: dict[str, Any]) -> None:
    """DeepSeek turns thinking on or off with thinking.type and takes reasoning_effort low, high or max."""
    preset(server, "deepseek", "deepseek-v4-flash").chat(HI, reasoning=level)
    sent = body(server)
    assert {k: sent[k] for k in ("thinking", "reasoning_effort") if k in sent} == fields


def test_deepseek_has_no_thinking_budget(server: FakeLLMServer) -> None:
    """DeepSeek has no token budget for thinking: thinking_budget is refused."""
    with pytest.raises(ConfigurationError, match="thinking_budget"):
        preset(server, "deepseek").stream_chat(HI, thinking_budget=1000)


def test_deepseek_tool_loop_sends_its_reasoning_back(server: FakeLLMServer, recorder: Recorder) -> None:
    """In a DeepSeek tool loop the thinking of the tool-call message goes back as reasoning_content."""
    server.add(
        Reply(thinking=["Need ", "weather."], tool_calls=[ToolCall("call_1", "weather", {"city": "Oslo"})], finish_reason="tool_calls"),
        Reply(text=["Sunny."]),
    )
    s = preset(server, "deepseek", "deepseek-v4-flash")
    assert s.stream_chat(HI, recorder, tools=[weather], reasoning="high").wait(10)
    assert recorder.calls == [
        ("thinking", "Need "),
        ("thinking", "weather."),
        ("tool_call", "weather"),
        ("usage", 10, 1),
        ("tool_result", "weather", "Sunny in Oslo"),
        ("content", "Sunny."),
        ("usage", 20, 2),
        ("finish", "Sunny."),
    ]
    assistant = server.requests[1].json["messages"][1]
    assert assistant["reasoning_content"] == "Need weather."
    assert assistant["tool_calls"][0]["function"] == {"name": "weather", "arguments": '{"city": "Oslo"}'}


@pytest.mark.parametrize(("level", "effort"), [("none", "none"), ("minimal", "high"), ("medium", "high"), ("xhigh", "high")])
def test_mistral_reasoning_effort_is_high_or_none(server: FakeLLMServer, level: str, effort: str) -> None:
    """Mistral's adjustable reasoning takes reasoning_effort "high" or "none" only."""
    MistralStreamer(api_key="k", base_url=server.base_url("mistral")).chat(HI, reasoning=level)
    assert body(server)["reasoning_effort"] == effort


# --- Anthropic ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "budget"), [("minimal", 1024), ("low", 2048), ("medium", 8192), ("high", 16384), ("xhigh", 32000)])
def test_anthropic_level_becomes_a_thinking_budget(server: FakeLLMServer, level: str, budget: int) -> None:
    """A reasoning level sends thinking enabled with its budget, and max_tokens leaves room past it."""
    anthropic(server).chat(HI, reasoning=level)
    sent = body(server)
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert sent["max_tokens"] == budget + 4096 and "output_config" not in sent


def test_anthropic_thinking_budget_and_max_tokens(server: FakeLLMServer) -> None:
    """thinking_budget is sent as given; a max_tokens above it is kept."""
    anthropic(server).chat(HI, thinking_budget=5000, max_tokens=9000)
    assert body(server)["thinking"] == {"type": "enabled", "budget_tokens": 5000}
    assert body(server)["max_tokens"] == 9000


@pytest.mark.parametrize("options", [{"reasoning": "none"}, {"thinking_budget": 0}, {}])
def test_anthropic_no_thinking_sends_no_thinking_field(server: FakeLLMServer, options: dict[str, Any]) -> None:
    """reasoning="none", a budget of 0 or no option at all leave thinking out, with the default max_tokens."""
    anthropic(server).chat(HI, **options)
    assert "thinking" not in body(server) and body(server)["max_tokens"] == 4096


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"thinking_budget": 8000, "max_tokens": 8000}, r"max_tokens \(8000\) must be larger than the thinking budget \(8000\)"),
        ({"reasoning": "high", "max_tokens": 1000}, r"max_tokens \(1000\) must be larger than the thinking budget \(16384\)"),
        ({"thinking_budget": 500}, "at least 1024"),
        ({"reasoning": "low", "thinking_budget": 2000}, "not both"),
        ({"reasoning": "low", "tools": [weather], "tool_choice": "required"}, "forced tool_choice"),
        ({"reasoning": "low", "tools": [weather], "tool_choice": "weather"}, "forced tool_choice"),
        ({"reasoning": "low", "temperature": 0.2}, "temperature 1"),
        ({"reasoning": "low", "top_k": 5}, "top_k"),
        ({"reasoning": "low", "top_p": 0.5}, "top_p"),
    ],
)
def test_anthropic_refuses_what_thinking_cannot_take(server: FakeLLMServer, options: dict[str, Any], message: str) -> None:
    """Combinations the API rejects with thinking fail with ConfigurationError before any request."""
    with pytest.raises(ConfigurationError, match=message):
        anthropic(server).stream_chat(HI, **options)
    assert server.requests == []


def test_anthropic_thinking_allows_what_the_api_allows(server: FakeLLMServer) -> None:
    """With thinking on, temperature 1, top_p 0.95 and tool_choice auto are accepted."""
    anthropic(server).chat(HI, reasoning="low", temperature=1, top_p=0.95, tools=[weather], tool_choice="auto")
    sent = body(server)
    assert (sent["temperature"], sent["top_p"], sent["tool_choice"]) == (1.0, 0.95, {"type": "auto"})


@pytest.mark.parametrize(
    ("model", "level", "effort"),
    [
        ("claude-sonnet-4-6", "low", "low"),
        ("claude-sonnet-4-6", "minimal", "low"),
        ("claude-opus-4-6", "medium", "medium"),
        ("claude-opus-4-7", "xhigh", "max"),
        ("claude-sonnet-4-6", "xhigh", "high"),
        ("claude-sonnet-5", "high", "high"),
    ],
)
def test_anthropic_adaptive_models_get_an_effort(server: FakeLLMServer, model: str, level: str, effort: str) -> None:
    """Claude 4.6 and later think adaptively: thinking {"type": "adaptive"} and output_config.effort, no budget."""
    anthropic(server, model).chat(HI, reasoning=level)
    sent = body(server)
    assert sent["thinking"] == {"type": "adaptive"} and sent["output_config"] == {"effort": effort}
    assert sent["max_tokens"] == 16384


@pytest.mark.parametrize("model", ["claude-sonnet-4-5-20250929", "claude-3-7-sonnet-latest", "claude-opus-4-1", "claude-haiku-4-5", "claude-sonnet-4-20250514"])
def test_anthropic_budget_models_are_told_apart_by_version(server: FakeLLMServer, model: str) -> None:
    """Models before Claude 4.6 (dates in their names notwithstanding) get a fixed thinking budget."""
    anthropic(server, model).chat(HI, reasoning="medium")
    assert body(server)["thinking"] == {"type": "enabled", "budget_tokens": 8192}


def test_anthropic_thinking_tool_loop_sends_the_signed_block_back_first(server: FakeLLMServer, recorder: Recorder) -> None:
    """With thinking and tools, the next round's assistant turn starts with the signed thinking block, then the tool_use."""
    server.add(
        Reply(
            thinking=["I should ", "check."],
            signature="sig-123",
            text=["Checking."],
            tool_calls=[ToolCall("toolu_1", "weather", {"city": "Oslo"})],
            finish_reason="tool_calls",
        ),
        Reply(text=["Sunny."]),
    )
    handle = anthropic(server).stream_chat(HI, recorder, tools=[weather], reasoning="low")
    assert handle.wait(10)
    assert recorder.calls == [
        ("thinking", "I should "),
        ("thinking", "check."),
        ("content", "Checking."),
        ("tool_call", "weather"),
        ("usage", 10, 1),
        ("tool_result", "weather", "Sunny in Oslo"),
        ("content", "Sunny."),
        ("usage", 20, 2),
        ("finish", "Checking.Sunny."),
    ]
    second = server.requests[1].json
    assert second["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert second["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should check.", "signature": "sig-123"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny in Oslo"}]},
    ]
    response = recorder.response
    assert response is not None and response.thinking == "I should check."
    assert response.messages[0].content[0] == ThinkingPart("I should check.", signature="sig-123")


def test_anthropic_redacted_thinking_goes_back_verbatim(server: FakeLLMServer) -> None:
    """A redacted_thinking block of a tool-call turn is sent back exactly as received."""
    history = [
        *HI,
        Message("assistant", [ThinkingPart("", data="opaque=="), ToolCall("toolu_1", "weather", {"city": "Oslo"})]),
        Message.tool([llmstreamer.ToolResult("toolu_1", "weather", "Sunny")]),
    ]
    anthropic(server).chat(history, tools=[weather], reasoning="low")
    assert body(server)["messages"][1]["content"] == [
        {"type": "redacted_thinking", "data": "opaque=="},
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
    ]


# --- Gemini ---------------------------------------------------------------------------------------


def test_gemini_thinking_tool_loop_keeps_the_signatures(server: FakeLLMServer, recorder: Recorder) -> None:
    """Gemini's thought and call signatures stream to on_thinking and go back where Gemini put them."""
    server.add(
        Reply(
            thinking=["Think."],
            signature="th-sig",
            text=["Checking."],
            tool_calls=[ToolCall("fc-1", "weather", {"city": "Oslo"}, signature="fc-sig")],
            finish_reason="tool_calls",
        ),
        Reply(text=["Sunny."]),
    )
    s = GeminiStreamer(api_key="k", base_url=server.base_url("gemini"), retry=0)
    assert s.stream_chat(HI, recorder, tools=[weather], reasoning="low").wait(10)
    assert recorder.calls == [
        ("thinking", "Think."),
        ("content", "Checking."),
        ("tool_call", "weather"),
        ("usage", 10, 1),
        ("tool_result", "weather", "Sunny in Oslo"),
        ("content", "Sunny."),
        ("usage", 20, 2),
        ("finish", "Checking.Sunny."),
    ]
    second = server.requests[1].json
    assert second["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "low", "includeThoughts": True}
    assert second["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {"text": "Think.", "thought": True, "thoughtSignature": "th-sig"},
                {"text": "Checking."},
                {"functionCall": {"name": "weather", "args": {"city": "Oslo"}, "id": "fc-1"}, "thoughtSignature": "fc-sig"},
            ],
        },
        {"role": "user", "parts": [{"functionResponse": {"name": "weather", "response": {"output": "Sunny in Oslo"}, "id": "fc-1"}}]},
    ]
    assert recorder.response is not None
    assert recorder.response.messages[0].content[:2] == (ThinkingPart("Think.", signature="th-sig"), TextPart("Checking."))
