"""OpenAICompatibleStreamer and its presets (quirks on the fake server), and OpenAI on the shared base."""

from __future__ import annotations

import json
from typing import Any

import pytest

import llmstreamer
from llmstreamer import (
    AuthenticationError,
    ConfigurationError,
    IncompleteStreamError,
    Message,
    Model,
    OpenAICompatibleStreamer,
    OpenAIStreamer,
    RateLimitError,
    ServerError,
    TextPart,
    ThinkingPart,
    ToolCall,
    Usage,
)
from llmstreamer._options import make_options
from llmstreamer.registry import PRESETS
from llmstreamer.testing import FakeLLMServer, Reply
from llmstreamer.testing._wire import sse
from llmstreamer.testing._wire_compat import chunk

from ..conftest import Recorder

HI = [Message.user("Hi")]

# preset -> (base URL, key variable or None, requires a key)
EXPECTED_PRESETS = {
    "openrouter": ("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", True),
    "groq": ("https://api.groq.com/openai/v1", "GROQ_API_KEY", True),
    "deepseek": ("https://api.deepseek.com", "DEEPSEEK_API_KEY", True),
    "together": ("https://api.together.xyz/v1", "TOGETHER_API_KEY", True),
    "vllm": ("http://localhost:8000/v1", "VLLM_API_KEY", False),
    "lmstudio": ("http://localhost:1234/v1", None, False),
    "llamacpp": ("http://localhost:8080/v1", "LLAMA_API_KEY", False),
    "pixigpt": ("https://pixigpt.com/v1", "PIXIGPT_API_KEY", True),
}


def preset(server: FakeLLMServer, name: str, model: str = "some/model", **kw: Any) -> OpenAICompatibleStreamer:
    """The preset ``name`` pointed at the fake server (which renders that preset's flavor)."""
    kw.setdefault("api_key", "test-key")
    built = llmstreamer.streamer(f"{name}:{model}", base_url=server.base_url(name), **kw)
    assert isinstance(built, OpenAICompatibleStreamer)
    return built


# --- a server of your own ------------------------------------------------------------------------


@pytest.mark.parametrize("writes", ["whole", "event", "byte"])
def test_custom_server_needs_only_a_base_url(server: FakeLLMServer, recorder: Recorder, writes: str) -> None:
    """streamer("openai-compatible:model", base_url=...) streams exact text, with no key and no auth header."""
    server.add(Reply(text=["Hel", "lo", " wörld"], writes=writes))
    s = llmstreamer.streamer("openai-compatible:my-model", base_url=server.base_url("openai"))
    s.stream_chat(HI, recorder).wait(5)
    assert recorder.calls == [("content", "Hel"), ("content", "lo"), ("content", " wörld"), ("usage", 10, 3), ("finish", "Hello wörld")]
    assert recorder.response is not None and recorder.response.provider == "openai-compatible"
    assert "authorization" not in server.requests[0].headers


def test_custom_server_without_base_url_fails_clearly() -> None:
    """Without a base_url the compatible streamer cannot start, and says so."""
    with pytest.raises(ConfigurationError, match="needs a base_url"):
        OpenAICompatibleStreamer(model="m")


def test_compatible_body_uses_max_tokens_and_asks_for_usage(server: FakeLLMServer) -> None:
    """The compatible wire sends max_tokens (not max_completion_tokens), seed, stop and stream_options."""
    s = OpenAICompatibleStreamer(model="m", base_url=server.base_url("openai"), api_key="k")
    s.chat(HI, system="Sys", max_tokens=64, temperature=0.5, top_p=0.5, stop="STOP", seed=1)
    request = server.requests[0]
    assert request.headers["authorization"] == "Bearer k"
    assert request.json == {
        "model": "m",
        "messages": [{"role": "system", "content": "Sys"}, {"role": "user", "content": "Hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.5,
        "top_p": 0.5,
        "max_tokens": 64,
        "stop": ["STOP"],
        "seed": 1,
    }


def test_constructor_extra_goes_into_every_body_and_per_call_extra_wins(server: FakeLLMServer) -> None:
    """Fields given as extra= to the constructor are sent each time; a per-call extra= overrides them."""
    s = OpenAICompatibleStreamer(model="m", base_url=server.base_url("openai"), extra={"a": 1, "b": 2})
    s.chat(HI)
    s.chat(HI, extra={"b": 3})
    assert [(r.json["a"], r.json["b"]) for r in server.requests] == [(1, 2), (1, 3)]


def test_no_stream_options_quirk_leaves_the_field_out(server: FakeLLMServer) -> None:
    """The no_stream_options quirk keeps stream_options out of the body."""
    s = OpenAICompatibleStreamer(model="m", base_url=server.base_url("openai"), quirks=["no_stream_options"])
    s.chat(HI)
    assert "stream_options" not in server.requests[0].json


def test_unknown_quirk_and_bad_arguments_are_rejected() -> None:
    """An unknown quirk names the known ones; a bad name or extra is a ConfigurationError."""
    known = (
        "known quirks: choice_reasoning, enable_thinking, file_parts, image_data_only, json_object_only, no_done, no_embeddings, no_images, "
        "no_stream, no_stream_options, reasoning_content_back, reasoning_details, reasoning_object, thinking_toggle"
    )
    with pytest.raises(ConfigurationError, match=known):
        OpenAICompatibleStreamer(model="m", base_url="http://x", quirks=["fast_mode"])
    with pytest.raises(ConfigurationError, match="name"):
        OpenAICompatibleStreamer(model="m", base_url="http://x", name="")
    with pytest.raises(ConfigurationError, match="extra"):
        OpenAICompatibleStreamer(model="m", base_url="http://x", extra=["a"])  # type: ignore[arg-type]


def test_named_server_reports_its_name_and_hides_its_key() -> None:
    """name= becomes the provider name; the key never shows in the repr."""
    s = OpenAICompatibleStreamer(model="m", base_url="http://lab:8000/v1", name="lab", api_key="secret-xyz")
    assert s.provider == "lab"
    assert repr(s) == "OpenAICompatibleStreamer(model='m', base_url='http://lab:8000/v1', name='lab')"
    assert OpenAICompatibleStreamer.spec.name == "openai-compatible"


# --- presets ------------------------------------------------------------------------------------


def test_the_presets_are_the_documented_ones() -> None:
    """Every preset has its documented base URL, key variable and key requirement."""
    found = {}
    for name, preset in PRESETS.items():
        assert preset.provider == "openai-compatible" and preset.name == name
        found[name] = (preset.base_url, preset.key_env, preset.requires_key)
    assert found == EXPECTED_PRESETS


@pytest.mark.parametrize("name", sorted(EXPECTED_PRESETS))
def test_every_preset_builds_with_its_key_variable(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """With its key variable set, each preset builds, named after itself, at its base URL."""
    base_url, key_env, _ = EXPECTED_PRESETS[name]
    if key_env:
        monkeypatch.setenv(key_env, "sk-from-env")
    s = llmstreamer.streamer(f"{name}:some-model")
    assert isinstance(s, OpenAICompatibleStreamer)
    assert (s.provider, s.model, s.base_url) == (name, "some-model", base_url)
    assert s.api_key.value == ("sk-from-env" if key_env else None)


@pytest.mark.parametrize("name", sorted(n for n, v in EXPECTED_PRESETS.items() if v[2]))
def test_preset_without_its_key_names_the_variable(name: str) -> None:
    """A preset that needs a key fails without it, naming the preset and its variable."""
    key_env = EXPECTED_PRESETS[name][1]
    with pytest.raises(ConfigurationError, match=f"no API key for {name}: .*{key_env}"):
        llmstreamer.streamer(f"{name}:some-model")


def test_groq_by_spec_streams_from_its_path(monkeypatch: pytest.MonkeyPatch, server: FakeLLMServer) -> None:
    """streamer("groq:llama-3.3-70b") works: key from GROQ_API_KEY, model and path as expected."""
    monkeypatch.setenv("GROQ_API_KEY", "gsk-test")
    s = llmstreamer.streamer("groq:llama-3.3-70b", base_url=server.base_url("groq"))
    response = s.chat(HI)
    assert (response.text, response.provider) == ("Hello from the fake server.", "groq")
    request = server.requests[0]
    assert (request.path, request.json["model"]) == ("/groq/v1/chat/completions", "llama-3.3-70b")
    assert request.headers["authorization"] == "Bearer gsk-test"


def test_preset_status_errors_map_by_status(server: FakeLLMServer) -> None:
    """A preset's error bodies (numeric codes) map to the error tree by status."""
    server.add(Reply(status=401), Reply(status=429, headers={"retry-after": "2"}))
    s = preset(server, "openrouter", retry=0)
    with pytest.raises(AuthenticationError, match="No auth credentials found"):
        s.chat(HI)
    with pytest.raises(RateLimitError) as caught:
        s.chat(HI)
    assert caught.value.retry_after == 2.0 and caught.value.provider == "openrouter"


def test_preset_list_models(server: FakeLLMServer) -> None:
    """list_models() on a preset reads GET /models (OpenAI shape), named after the preset."""
    assert preset(server, "deepseek").list_models() == [
        Model("fake/model-a", "deepseek", 1700000000, "fake"),
        Model("fake/model-b", "deepseek", 1700000100, "fake"),
    ]
    assert server.requests[0].path == "/deepseek/v1/models"


# --- OpenRouter: reasoning and reasoning_details -----------------------------------------------


def test_openrouter_reasoning_streams_as_thinking_and_details_are_kept(server: FakeLLMServer, recorder: Recorder) -> None:
    """delta.reasoning goes to on_thinking; reasoning_details are kept verbatim on a ThinkingPart's data."""
    server.add(Reply(thinking=["Think", "ing."], signature="sig-abc", text=["Hi", " there"], comments=True))
    preset(server, "openrouter").stream_chat(HI, recorder).wait(5)
    assert recorder.calls == [
        ("thinking", "Think"),
        ("thinking", "ing."),
        ("content", "Hi"),
        ("content", " there"),
        ("usage", 10, 2),
        ("finish", "Hi there"),
    ]
    response = recorder.response
    assert response is not None
    details = [
        {"type": "reasoning.text", "text": "Think", "format": "anthropic-claude-v1", "index": 0},
        {"type": "reasoning.text", "text": "ing.", "format": "anthropic-claude-v1", "index": 0},
        {"type": "reasoning.text", "signature": "sig-abc", "format": "anthropic-claude-v1", "index": 0},
    ]
    assert response.message.content == (ThinkingPart("Thinking."), ThinkingPart("", data=details), TextPart("Hi there"))
    assert response.thinking == "Thinking."


def test_openrouter_reasoning_details_round_trip(server: FakeLLMServer) -> None:
    """The assistant message sent back carries the reasoning_details exactly as they were received."""
    server.add(Reply(thinking=["Plan"], signature="sig-1", text="Answer"))
    s = preset(server, "openrouter")
    first = s.chat(HI)
    s.chat([*HI, first.message, Message.user("And then?")])
    sent = server.requests[1].json["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": "Answer",
        "reasoning_details": [
            {"type": "reasoning.text", "text": "Plan", "format": "anthropic-claude-v1", "index": 0},
            {"type": "reasoning.text", "signature": "sig-1", "format": "anthropic-claude-v1", "index": 0},
        ],
    }
    assert sent[2] == {"role": "user", "content": "And then?"}


def test_reasoning_details_arriving_with_tool_calls_precede_them(server: FakeLLMServer) -> None:
    """Encrypted details that arrive with the tool call are kept, before the call, and sent back."""
    model = "google/gemini-3-pro"
    encrypted = {"type": "reasoning.encrypted", "data": "opaque==", "format": "google-gemini-v1", "index": 0}
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"k": 1}'}}
    events = [
        chunk(model, {"role": "assistant", "content": ""}),
        chunk(model, {"role": "assistant", "content": None, "reasoning_details": [encrypted], "tool_calls": [call]}),
        chunk(model, {"role": "assistant", "content": None}, "tool_calls"),
        sse("[DONE]"),
    ]
    server.add(Reply(events=events))
    s = preset(server, "openrouter", model=model)
    response = s.chat(HI)
    assert response.message.content == (ThinkingPart("", data=[encrypted]), ToolCall("call_1", "lookup", {"k": 1}, '{"k": 1}'))
    s.chat([*HI, response.message])
    assert server.requests[1].json["messages"][1]["reasoning_details"] == [encrypted]


def test_reasoning_details_are_ignored_without_the_quirk(server: FakeLLMServer) -> None:
    """A server without the reasoning_details quirk neither keeps nor sends reasoning_details."""
    server.add(Reply(thinking=["Plan"], text="Answer"))
    s = OpenAICompatibleStreamer(model="m", base_url=server.base_url("openrouter"))
    response = s.chat(HI)
    assert response.message.content == (ThinkingPart("Plan"), TextPart("Answer"))
    s.chat([*HI, Message("assistant", [ThinkingPart("", data=[{"type": "reasoning.text"}]), TextPart("A")])])
    assert "reasoning_details" not in server.requests[1].json["messages"][1]


def test_openrouter_in_band_error_chunk(server: FakeLLMServer, recorder: Recorder) -> None:
    """OpenRouter's mid-stream error chunk (error + finish_reason "error") ends in the mapped error."""
    server.add(Reply(text=["Partial"], error={"code": 502, "message": "Provider disconnected"}))
    preset(server, "openrouter").stream_chat(HI, recorder).wait(5)
    assert recorder.calls == [("content", "Partial"), ("error", "ServerError")]
    error = recorder.error
    assert isinstance(error, ServerError) and error.status_code == 502 and error.message == "Provider disconnected"
    assert error.partial is not None and error.partial.text == "Partial"


# --- DeepSeek: reasoning_content and usage on the finish chunk ---------------------------------


@pytest.mark.parametrize("writes", ["whole", "event", "byte"])
def test_deepseek_reasoning_content_and_cached_usage(server: FakeLLMServer, recorder: Recorder, writes: str) -> None:
    """DeepSeek's reasoning_content streams as thinking; usage on the finish chunk counts cache hits as cached."""
    usage = Usage(input_tokens=20, output_tokens=7, cached_input_tokens=12, reasoning_tokens=3)
    server.add(Reply(thinking=["Hm", "m."], text=["Four", "."], usage=usage, writes=writes))
    preset(server, "deepseek", model="deepseek-reasoner").stream_chat(HI, recorder).wait(5)
    assert recorder.calls == [
        ("thinking", "Hm"),
        ("thinking", "m."),
        ("content", "Four"),
        ("content", "."),
        ("usage", 20, 7),
        ("finish", "Four."),
    ]
    response = recorder.response
    assert response is not None
    assert response.usage == Usage(input_tokens=20, output_tokens=7, cached_input_tokens=12, reasoning_tokens=3)
    assert response.message.content == (ThinkingPart("Hm" "m."), TextPart("Four."))


def test_deepseek_thinking_is_not_sent_back(server: FakeLLMServer) -> None:
    """Thinking parts stay out of the assistant messages sent back (DeepSeek rejects reasoning_content)."""
    s = preset(server, "deepseek")
    s.chat([*HI, Message.assistant("A", thinking=[ThinkingPart("why")]), Message.user("Q")])
    assert server.requests[0].json["messages"][1] == {"role": "assistant", "content": "A"}


@pytest.mark.parametrize(("finish", "normalized"), [("length", "length"), ("content_filter", "content_filter"), ("abort", "error")])
def test_compatible_finish_reasons(server: FakeLLMServer, finish: str, normalized: str) -> None:
    """Finish reasons of compatible servers, vLLM's abort included, are normalized."""
    server.add(Reply(text="x", finish_reason=finish))
    assert preset(server, "deepseek").chat(HI).finish_reason == normalized


def test_deepseek_truncation_is_incomplete(server: FakeLLMServer) -> None:
    """A preset without the no_done quirk still needs data: [DONE]."""
    server.add(Reply(text="Cut", truncate=True))
    with pytest.raises(IncompleteStreamError) as caught:
        preset(server, "deepseek").chat(HI)
    assert caught.value.partial is not None and caught.value.partial.text == "Cut"


# --- llama.cpp: no [DONE] -----------------------------------------------------------------------


@pytest.mark.parametrize("writes", ["whole", "byte"])
def test_llamacpp_finish_chunk_ends_the_stream(server: FakeLLMServer, recorder: Recorder, writes: str) -> None:
    """With the no_done quirk the finish chunk (with usage) completes the answer; no [DONE] is needed."""
    server.add(Reply(text=["Local", " answer"], writes=writes))
    preset(server, "llamacpp", api_key=None).stream_chat(HI, recorder).wait(5)
    assert recorder.calls == [("content", "Local"), ("content", " answer"), ("usage", 10, 2), ("finish", "Local answer")]


def test_llamacpp_without_a_finish_chunk_is_incomplete(server: FakeLLMServer, recorder: Recorder) -> None:
    """With the no_done quirk, a body that ends before any finish_reason is still truncation."""
    server.add(Reply(text=["Half"], truncate=True))
    preset(server, "llamacpp").stream_chat(HI, recorder).wait(5)
    assert recorder.calls == [("content", "Half"), ("error", "IncompleteStreamError")]
    assert "finish_reason" in str(recorder.error)


def test_openai_stays_strict_about_done(server: FakeLLMServer) -> None:
    """OpenAI itself never takes a finish chunk as the end: a stream without [DONE] is incomplete."""
    s = OpenAIStreamer(api_key="k", base_url=server.base_url("llamacpp"))
    with pytest.raises(IncompleteStreamError, match=r"data: \[DONE\]"):
        s.chat(HI)


# --- OpenAI on the shared base keeps its wire ----------------------------------------------------


def test_openai_body_keeps_its_own_fields(server: FakeLLMServer) -> None:
    """OpenAI sends seed and stream_options, and max_tokens to a base URL that is not api.openai.com."""
    OpenAIStreamer(api_key="k", base_url=server.base_url("openai")).chat(HI, max_tokens=9, seed=5)
    body = server.requests[0].json
    assert (body["max_tokens"], body["seed"], body["stream_options"]) == (9, 5, {"include_usage": True})
    assert "max_completion_tokens" not in body


@pytest.mark.parametrize(
    ("base_url", "field"),
    [
        (None, "max_completion_tokens"),
        ("https://api.openai.com/v1", "max_completion_tokens"),
        ("https://API.OpenAI.com:443/v1/", "max_completion_tokens"),
        ("http://127.0.0.1:8080/v1", "max_tokens"),
        ("https://proxy.example/openai/v1", "max_tokens"),
    ],
)
def test_openai_token_limit_field_follows_the_base_url(base_url: str | None, field: str) -> None:
    """max_completion_tokens goes to api.openai.com only; OpenAI-compatible servers get max_tokens."""
    streamer = llmstreamer.streamer("openai:gpt-4o-mini", api_key="k", base_url=base_url)
    request = streamer.build_request((Message.user("Hi"),), make_options("openai", streamer.supported_options, {"max_tokens": 7}))
    body = json.loads(request.body or b"{}")
    assert body[field] == 7 and len({"max_tokens", "max_completion_tokens"} & body.keys()) == 1


def test_openai_refusal_finishes_as_content_filter(server: FakeLLMServer) -> None:
    """A refusal streamed in delta.refusal is the answer's text, with finish_reason content_filter."""
    model = "gpt-4o-mini"
    events = [
        chunk(model, {"role": "assistant", "content": None, "refusal": ""}),
        chunk(model, {"refusal": "I can't"}),
        chunk(model, {"refusal": " help."}),
        chunk(model, {}, "stop"),
        sse("[DONE]"),
    ]
    server.add(Reply(events=events))
    response = OpenAIStreamer(api_key="k", base_url=server.base_url("openai")).chat(HI)
    assert (response.text, response.finish_reason) == ("I can't help.", "content_filter")
