"""What real servers taught: numeric-string error codes, LiteLLM's call id, wording, empty messages."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmstreamer import (
    AnthropicStreamer,
    ConfigurationError,
    GeminiStreamer,
    LLMStreamError,
    Message,
    MistralStreamer,
    OllamaStreamer,
    OpenAICompatibleStreamer,
    OpenAIStreamer,
    RateLimitError,
    ServerError,
    StreamError,
    ToolCall,
    ToolResult,
)
from llmstreamer._wire_errors import error_from_event, request_id_of
from llmstreamer.provider import HTTPStreamer
from llmstreamer.testing import FakeLLMServer, Reply

HI = [Message.user("Hi")]


def make(server: FakeLLMServer, flavor: str) -> HTTPStreamer:
    """A streamer of ``flavor`` on the fake server, without retries."""
    url = server.base_url(flavor)
    if flavor == "openai":
        return OpenAIStreamer(api_key="sk-test-key", base_url=url, retry=0)
    if flavor == "anthropic":
        return AnthropicStreamer(api_key="sk-test-key", base_url=url, retry=0)
    if flavor == "mistral":
        return MistralStreamer(api_key="sk-test-key", base_url=url, retry=0)
    if flavor == "gemini":
        return GeminiStreamer(api_key="sk-test-key", base_url=url, retry=0)
    if flavor == "ollama":
        return OllamaStreamer(model="llama3.2", base_url=url, retry=0)
    return OpenAICompatibleStreamer(model="m", base_url=url, name=flavor, retry=0)


def fail(streamer: HTTPStreamer) -> LLMStreamError:
    with pytest.raises(LLMStreamError) as info:
        streamer.chat(HI)
    return info.value


# LiteLLM's upstream failure: no usable type, the upstream status as a string code
def litellm_error(code: str) -> dict[str, Any]:
    return {"message": "upstream failed", "type": None, "param": None, "code": code, "status": None}


@pytest.mark.parametrize(("code", "cls"), [("500", ServerError), ("429", RateLimitError), ("503", ServerError)])
@pytest.mark.parametrize("flavor", ["openai", "anthropic", "mistral", "gemini", "openrouter"])
def test_in_band_string_code_maps_like_the_status(server: FakeLLMServer, flavor: str, code: str, cls: type) -> None:
    """An in-band error whose code is a status written as a string gets that status's class and status_code."""
    server.add(Reply(text=["so", " far"], error=litellm_error(code)))
    err = fail(make(server, flavor))
    assert type(err) is cls and err.status_code == int(code)  # type: ignore[attr-defined]
    assert err.partial is not None and err.partial.text == "so far"


@pytest.mark.parametrize(("code", "cls"), [("500", ServerError), ("429", RateLimitError)])
def test_ollama_in_band_error_object_with_string_code(server: FakeLLMServer, code: str, cls: type) -> None:
    """An Ollama-wire error line carrying an error object maps by its numeric-string code too."""
    piece = json.dumps({"model": "llama3.2", "message": {"role": "assistant", "content": "so"}, "done": False}) + "\n"
    server.add(Reply(events=[piece, json.dumps({"error": litellm_error(code)}) + "\n"]))
    err = fail(make(server, "ollama"))
    assert type(err) is cls and err.status_code == int(code)  # type: ignore[attr-defined]
    assert err.partial is not None and err.partial.text == "so"


def test_a_200_json_body_with_a_string_code_is_that_status(server: FakeLLMServer) -> None:
    """A 200 whose JSON body is an error with code "502" is a ServerError with status_code 502."""
    server.add(Reply(body={"error": litellm_error("502")}))
    err = fail(make(server, "openai"))
    assert type(err) is ServerError and err.status_code == 502


def test_non_numeric_string_codes_stay_error_types() -> None:
    """A code that is a name ("rate_limit_exceeded") is still read as the error type."""
    err = error_from_event({"error": {"message": "slow", "code": "rate_limit_exceeded"}}, provider="x")
    assert type(err) is RateLimitError and err.error_type == "rate_limit_exceeded"


def test_litellm_call_id_is_the_request_id_when_x_request_id_is_absent(server: FakeLLMServer) -> None:
    """LiteLLM's x-litellm-call-id becomes Response.request_id; x-request-id wins when both are sent."""
    assert request_id_of({"x-litellm-call-id": "abc"}) == "abc"
    assert request_id_of({"x-request-id": "req", "x-litellm-call-id": "abc"}) == "req"
    server.add(Reply(text="Hi", headers={"x-litellm-call-id": "call-123"}))
    response = make(server, "mistral").chat(HI)  # the fake Mistral wire sends no x-request-id
    assert response.request_id == "call-123"


def test_json_body_message_uses_the_right_article(server: FakeLLMServer) -> None:
    """A 200 JSON body that is no error reads "got an application/json body"."""
    server.add(Reply(body={"hello": "world"}))
    err = fail(make(server, "openai"))
    assert type(err) is StreamError and "got an application/json body" in str(err)


# --- 10. messages that say nothing are refused before any request --------------------------------


@pytest.mark.parametrize(
    ("messages", "where"),
    [
        ([Message.user("")], r"messages\[0\] \(user\)"),
        ([Message.user("Hi"), Message.assistant("")], r"messages\[1\] \(assistant\)"),
        ([Message.system(""), Message.user("Hi")], r"messages\[0\] \(system\)"),
        ([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None}, {"role": "user", "content": "?"}], r"messages\[1\] \(assistant\)"),
    ],
)
@pytest.mark.parametrize("flavor", ["openai", "anthropic", "ollama"])
def test_a_message_with_no_content_is_refused_before_sending(server: FakeLLMServer, flavor: str, messages: Any, where: str) -> None:
    """An empty message is a ConfigurationError naming its index and role, and nothing is sent."""
    with pytest.raises(ConfigurationError, match=where + " has no content"):
        make(server, flavor).stream_chat(messages)
    assert server.requests == []


def test_an_assistant_message_with_only_tool_calls_is_fine(server: FakeLLMServer) -> None:
    """An assistant message carrying tool calls and no text is valid history."""
    call = ToolCall("call_1", "weather", {"city": "Oslo"})
    history = [Message.user("Weather?"), Message("assistant", [call]), Message.tool([ToolResult("call_1", "weather", "Sunny")])]
    server.add(Reply(text="Sunny."))
    assert make(server, "openai").chat(history).text == "Sunny."


def test_a_message_with_only_a_document_is_fine(server: FakeLLMServer) -> None:
    """A user message that holds a document and no text says something: it is sent, not refused."""
    from llmstreamer import DocumentPart

    server.add(Reply(text="Read it."))
    pdf = DocumentPart(data=b"%PDF-1.4 tiny", mime_type="application/pdf", name="a.pdf")
    assert make(server, "anthropic").chat([Message("user", [pdf])]).text == "Read it."
    assert server.requests[0].json["messages"][0]["content"][0]["type"] == "document"


def test_an_empty_answer_does_not_break_the_conversation(server: FakeLLMServer) -> None:
    """A turn whose answer was empty is kept in the history but not sent again, so the next turn works."""
    from llmstreamer import Conversation

    server.add(Reply(text=[]), Reply(text="Second."))
    conversation = Conversation(make(server, "openai"))
    assert conversation.send("Hi").result().text == ""
    assert conversation.send("Again?").result().text == "Second."
    assert [m["role"] for m in server.requests[1].json["messages"]] == ["user", "user"]
    assert [m.role for m in conversation.messages] == ["user", "assistant", "user", "assistant"]
