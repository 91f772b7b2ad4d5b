"""Value types: messages, parts, usage, responses."""

from __future__ import annotations

import json

import attrs
import pytest

from llmstreamer import (
    ConfigurationError,
    ImagePart,
    Message,
    Response,
    TextPart,
    ThinkingPart,
    ToolCall,
    ToolResult,
    Usage,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def test_named_constructors_build_parts() -> None:
    """Message.user/system/assistant/tool build the expected roles and parts."""
    assert Message.user("hi") == Message("user", (TextPart("hi"),))
    assert Message.system("be brief").text == "be brief"
    call = ToolCall("c1", "f", {"x": 1})
    msg = Message.assistant("ok", thinking=[ThinkingPart("hmm", "sig")], tool_calls=[call])
    assert [type(p).__name__ for p in msg.content] == ["ThinkingPart", "TextPart", "ToolCall"]
    assert msg.thinking == "hmm" and msg.tool_calls == (call,)
    assert Message.tool([ToolResult("c1", "f", "42")]).tool_results[0].content == "42"


def test_unknown_role_is_a_configuration_error() -> None:
    """A role outside system/user/assistant/tool is rejected with the valid ones named."""
    with pytest.raises(ConfigurationError, match="unknown role 'bot'.*assistant"):
        Message("bot", "x")


def test_message_is_immutable() -> None:
    """Messages are frozen values; content is a tuple."""
    msg = Message.user("hi")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        msg.role = "system"  # type: ignore[misc]
    assert isinstance(msg.content, tuple)


def test_content_must_be_parts() -> None:
    """Content that is not text or parts is a clear error."""
    with pytest.raises(ConfigurationError, match="int"):
        Message("user", [1])


def test_dict_round_trip_through_json() -> None:
    """to_dict/from_dict survive JSON for every part kind."""
    messages = [
        Message.system("s"),
        Message.user("look", images=[PNG]),
        Message.assistant("a", thinking=[ThinkingPart("t", "sig", {"opaque": 1})], tool_calls=[ToolCall("c", "f", {"k": "v"}, '{"k":"v"}')]),
        Message.tool([ToolResult("c", "f", "out", is_error=True)]),
        Message.user(images=["https://example.com/cat.jpg"]),
    ]
    back = [Message.from_dict(d) for d in json.loads(json.dumps([m.to_dict() for m in messages]))]
    assert back == messages


def test_plain_text_dict_form() -> None:
    """A text-only message serializes to the familiar {"role", "content": str} form."""
    assert Message.user("hi").to_dict() == {"role": "user", "content": "hi"}
    assert Message.from_dict({"role": "assistant", "content": "yo"}) == Message.assistant("yo")


@pytest.mark.parametrize("bad", [{"content": "x"}, {"role": "user", "content": 3}, {"role": "user", "content": [{"type": "nope"}]}, "text"])
def test_malformed_dicts(bad: object) -> None:
    """Malformed message dicts raise ConfigurationError, never KeyError."""
    with pytest.raises(ConfigurationError):
        Message.from_dict(bad)  # type: ignore[arg-type]


def test_image_mime_detection(tmp_path: object) -> None:
    """Images get their MIME type from their bytes; non-images are refused."""
    assert ImagePart.load(PNG).mime_type == "image/png"
    assert ImagePart.load(b"\xff\xd8\xff\xe0rest").mime_type == "image/jpeg"
    assert ImagePart.load(b"GIF89a...").mime_type == "image/gif"
    assert ImagePart.load(b"RIFF\x00\x00\x00\x00WEBPVP8 ").mime_type == "image/webp"
    assert ImagePart.load("https://x.test/a.jpg").mime_type == "image/jpeg"
    with pytest.raises(ConfigurationError, match="not an image"):
        ImagePart.load(b"plain text")
    with pytest.raises(ConfigurationError, match="cannot read image"):
        ImagePart.load("/no/such/file.png")


def test_image_repr_hides_bytes() -> None:
    """An image part's repr shows its size, not its bytes."""
    assert "16 bytes" not in repr(ImagePart(data=b"x" * 20)) and "20 bytes" in repr(ImagePart(data=b"x" * 20))


def test_usage_total_and_sum() -> None:
    """total_tokens defaults to input + output, and usages add up field by field."""
    a = Usage(10, 5, cached_input_tokens=2)
    assert a.total_tokens == 15
    assert a + Usage(1, 1, reasoning_tokens=3) == Usage(11, 6, 2, 3, 17)


def test_response_parsed() -> None:
    """Response.parsed decodes JSON text, and raises a clear ValueError quoting bad text."""
    assert Response(text='{"a": 1}').parsed == {"a": 1}
    with pytest.raises(ValueError, match="not valid JSON.*'nope"):
        _ = Response(text="nope").parsed


def test_response_usage_tool_call_and_result_json_forms_round_trip() -> None:
    """Response, Usage, ToolCall and ToolResult each have one JSON form that reads back to an equal value."""
    call = ToolCall("c1", "lookup", {"q": "x"}, '{"q": "x"}', signature="sig")
    result = ToolResult("c1", "lookup", "42")
    usage = Usage(7, 5, 1, 2)
    answer = Message("assistant", [TextPart("Done."), call])
    response = Response(
        text="Done.",
        tool_calls=(call,),
        finish_reason="tool_calls",
        usage=usage,
        model="m-1",
        provider="openai",
        request_id="req_1",
        time_to_first_token=0.25,
        duration=1.5,
        message=answer,
        messages=(answer, Message.tool([result])),
    )
    data = json.loads(json.dumps(response.to_dict()))
    assert data["usage"] == usage.to_dict() == {
        "input_tokens": 7,
        "output_tokens": 5,
        "cached_input_tokens": 1,
        "reasoning_tokens": 2,
        "total_tokens": 12,
    }
    assert data["tool_calls"] == [{"id": "c1", "name": "lookup", "arguments": {"q": "x"}, "raw_arguments": '{"q": "x"}', "signature": "sig"}]
    assert Response.from_dict(data) == response
    assert (ToolCall.from_dict(call.to_dict()), ToolResult.from_dict(result.to_dict()), Usage.from_dict(usage.to_dict())) == (call, result, usage)
