"""response_format= on each provider's wire, Gemini's schema dialect, and Response.parsed on streamed JSON."""

from __future__ import annotations

from typing import Any, Literal, Optional

import pytest

import llmstreamer
from llmstreamer import (
    AnthropicStreamer,
    ConfigurationError,
    GeminiStreamer,
    Message,
    MistralStreamer,
    OllamaStreamer,
    OpenAIStreamer,
    tool,
)
from llmstreamer._schema import response_schema
from llmstreamer.providers._gemini_schema import gemini_schema as _gemini_schema
from llmstreamer.testing import FakeLLMServer, Reply

HI = [Message.user("Extract it.")]
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
    "required": ["name", "tags"],
    "additionalProperties": False,
}
JSON_TEXT = ['{"name": "Ada", ', '"tags": ["math", ', '"poetry"]}']
PARSED = {"name": "Ada", "tags": ["math", "poetry"]}
WRAPPED = {"type": "json_schema", "json_schema": {"name": "response", "schema": SCHEMA, "strict": True}}


def body(server: FakeLLMServer) -> dict[str, Any]:
    """The JSON body of the last request."""
    return server.requests[-1].json  # type: ignore[no-any-return]


def make(server: FakeLLMServer, flavor: str, **kw: Any) -> Any:
    """A streamer of ``flavor`` pointed at the fake server."""
    if flavor in ("openrouter", "deepseek"):
        return llmstreamer.streamer(f"{flavor}:some/model", api_key="k", base_url=server.base_url(flavor), retry=0)
    classes = {
        "openai": OpenAIStreamer,
        "mistral": MistralStreamer,
        "anthropic": AnthropicStreamer,
        "gemini": GeminiStreamer,
        "ollama": OllamaStreamer,
    }
    return classes[flavor](api_key="k", base_url=server.base_url(flavor), retry=0, **kw)


# --- request shapes -------------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", ["openai", "mistral", "openrouter"])
def test_chat_completions_wrap_a_schema_for_strict_output(server: FakeLLMServer, flavor: str) -> None:
    """A bare JSON Schema becomes response_format {"type": "json_schema", ...} with strict on."""
    make(server, flavor).chat(HI, response_format=SCHEMA)
    assert body(server)["response_format"] == WRAPPED


@pytest.mark.parametrize(
    "given",
    [
        {"type": "json_object"},
        {"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA, "strict": False}},
        {"type": "text"},
    ],
)
def test_chat_completions_send_a_full_response_format_as_is(server: FakeLLMServer, given: dict[str, Any]) -> None:
    """A dict that already says json_schema, json_object or text goes out unchanged."""
    make(server, "openai").chat(HI, response_format=given)
    assert body(server)["response_format"] == given


def test_deepseek_takes_json_mode_only(server: FakeLLMServer) -> None:
    """DeepSeek has JSON mode but no schemas: json_object goes out, a schema is refused before sending."""
    make(server, "deepseek").chat(HI, response_format={"type": "json_object"})
    assert body(server)["response_format"] == {"type": "json_object"}
    with pytest.raises(ConfigurationError, match="JSON mode only"):
        make(server, "deepseek").stream_chat(HI, response_format=SCHEMA)
    assert len(server.requests) == 1


@pytest.mark.parametrize("given", [SCHEMA, WRAPPED])
def test_gemini_sets_the_mime_type_and_a_converted_schema(server: FakeLLMServer, given: dict[str, Any]) -> None:
    """Gemini gets responseMimeType application/json and responseSchema in its own dialect."""
    make(server, "gemini").chat(HI, response_format=given)
    assert body(server)["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "OBJECT",
            "properties": {"name": {"type": "STRING"}, "tags": {"type": "ARRAY", "items": {"type": "STRING"}}},
            "required": ["name", "tags"],
        },
    }


def test_gemini_json_mode_and_a_raw_json_schema_through_extra(server: FakeLLMServer) -> None:
    """json_object sets only the MIME type; responseJsonSchema can be given through extra, merged in."""
    make(server, "gemini").chat(HI, response_format={"type": "json_object"}, extra={"generationConfig": {"responseJsonSchema": SCHEMA}})
    assert body(server)["generationConfig"] == {"responseMimeType": "application/json", "responseJsonSchema": SCHEMA}


@pytest.mark.parametrize(("given", "sent"), [(SCHEMA, SCHEMA), (WRAPPED, SCHEMA), ({"type": "json_object"}, "json")])
def test_ollama_format(server: FakeLLMServer, given: dict[str, Any], sent: Any) -> None:
    """Ollama takes the schema itself as format, or "json" for JSON mode."""
    make(server, "ollama").chat(HI, response_format=given)
    assert body(server)["format"] == sent


def test_anthropic_uses_structured_outputs_with_closed_objects(server: FakeLLMServer) -> None:
    """Anthropic gets output_config.format json_schema, every object closed with additionalProperties false."""
    nested = {
        "type": "object",
        "properties": {
            "person": {"type": "object", "properties": {"name": {"type": "string"}}},
            "pets": {"type": "array", "items": {"$ref": "#/$defs/pet"}},
            "properties": {"type": "string", "enum": ["a", "b"]},
        },
        "$defs": {"pet": {"type": "object", "properties": {"kind": {"type": "string"}}}},
        "default": {"person": {}},
    }
    make(server, "anthropic").chat(HI, response_format=nested)
    assert body(server)["output_config"] == {
        "format": {
            "type": "json_schema",
            "schema": {
                "type": "object",
                "properties": {
                    "person": {"type": "object", "properties": {"name": {"type": "string"}}, "additionalProperties": False},
                    "pets": {"type": "array", "items": {"$ref": "#/$defs/pet"}},
                    "properties": {"type": "string", "enum": ["a", "b"]},
                },
                "$defs": {"pet": {"type": "object", "properties": {"kind": {"type": "string"}}, "additionalProperties": False}},
                "default": {"person": {}},
                "additionalProperties": False,
            },
        }
    }
    assert "anthropic-beta" not in server.requests[-1].headers  # generally available: no beta header


def test_anthropic_structured_output_shares_output_config_with_effort(server: FakeLLMServer) -> None:
    """On adaptive models the format and the effort go in the same output_config."""
    make(server, "anthropic", model="claude-opus-4-6").chat(HI, response_format=SCHEMA, reasoning="high")
    assert body(server)["output_config"] == {"effort": "high", "format": {"type": "json_schema", "schema": SCHEMA}}


def test_anthropic_refuses_json_mode_without_a_schema(server: FakeLLMServer) -> None:
    """Anthropic has no schema-less JSON mode: {"type": "json_object"} fails before sending."""
    with pytest.raises(ConfigurationError, match="no JSON mode without a schema"):
        make(server, "anthropic").stream_chat(HI, response_format={"type": "json_object"})
    assert server.requests == []


def test_a_wrapper_without_a_schema_is_refused(server: FakeLLMServer) -> None:
    """{"type": "json_schema"} without json_schema.schema is a ConfigurationError on providers that unwrap it."""
    for flavor in ("gemini", "ollama", "anthropic"):
        with pytest.raises(ConfigurationError, match='needs "json_schema"'):
            make(server, flavor).stream_chat(HI, response_format={"type": "json_schema"})
    assert server.requests == []
    with pytest.raises(ConfigurationError, match='needs "json_schema"'):
        response_schema({"type": "json_schema", "json_schema": {"name": "x"}})


# --- Response.parsed on streamed JSON -------------------------------------------------------------


@pytest.mark.parametrize("flavor", ["openai", "mistral", "openrouter", "anthropic", "gemini", "ollama"])
@pytest.mark.parametrize("writes", ["event", "byte"])
def test_streamed_json_text_parses(server: FakeLLMServer, flavor: str, writes: str) -> None:
    """The answer streams as JSON text in fragments; Response.parsed decodes the whole of it."""
    server.add(Reply(text=JSON_TEXT, writes=writes))
    response = make(server, flavor).chat(HI, response_format=SCHEMA)
    assert response.text == "".join(JSON_TEXT)
    assert response.parsed == PARSED


def test_parsed_on_text_that_is_not_json_keeps_the_text(server: FakeLLMServer) -> None:
    """A truncated JSON answer raises ValueError quoting the text, which stays on the response."""
    server.add(Reply(text=['{"name": "Ada", ', '"tags": ['], finish_reason="length"))
    response = make(server, "openai").chat(HI, response_format=SCHEMA)
    assert response.finish_reason == "length"
    with pytest.raises(ValueError, match=r"the response is not valid JSON .*'\{\"name\": \"Ada\", \"tags\": \['"):
        _ = response.parsed
    assert response.text == '{"name": "Ada", "tags": ['


# --- Gemini's schema dialect ----------------------------------------------------------------------


def test_gemini_schema_of_a_typed_tool() -> None:
    """What @tool makes from Optional, Literal, list and dict hints becomes Gemini's dialect."""

    @tool
    def find(query: str, limit: Optional[int] = None, mode: Literal["fast", "exact"] = "fast", tags: Optional[list[str]] = None, meta: Optional[dict[str, int]] = None) -> str:
        """Find things."""
        return ""

    assert _gemini_schema(find.parameters) == {
        "type": "OBJECT",
        "properties": {
            "query": {"type": "STRING"},
            "limit": {"type": "INTEGER", "default": None, "nullable": True},
            "mode": {"type": "STRING", "enum": ["fast", "exact"], "default": "fast"},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "default": None, "nullable": True},
            "meta": {"type": "OBJECT", "default": None, "nullable": True},
        },
        "required": ["query"],
    }


@pytest.mark.parametrize(
    ("schema", "converted"),
    [
        ({"type": ["string", "null"]}, {"type": "STRING", "nullable": True}),
        ({"type": "null"}, {"nullable": True}),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, {"type": "INTEGER", "nullable": True}),
        ({"oneOf": [{"type": "integer"}, {"type": "string"}]}, {"anyOf": [{"type": "INTEGER"}, {"type": "STRING"}]}),
        ({"type": ["integer", "string"]}, {"anyOf": [{"type": "INTEGER"}, {"type": "STRING"}]}),
        ({"type": "integer", "enum": [1, 2, None]}, {"type": "INTEGER", "enum": ["1", "2"], "nullable": True}),
        ({"enum": ["a", "b"]}, {"type": "STRING", "enum": ["a", "b"]}),
        ({"const": "fixed"}, {"type": "STRING", "enum": ["fixed"]}),
        ({"type": "object", "additionalProperties": {"type": "integer"}}, {"type": "OBJECT"}),
        ({"type": "string", "format": "date-time", "pattern": "^2", "$comment": "x"}, {"type": "STRING", "format": "date-time", "pattern": "^2"}),
        ({"allOf": [{"type": "object", "properties": {"a": {"type": "number", "minimum": 0}}}]}, {"type": "OBJECT", "properties": {"a": {"type": "NUMBER", "minimum": 0}}}),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "ghost"]}, {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}, "required": ["a"]}),
    ],
)
def test_gemini_schema_conversions(schema: dict[str, Any], converted: dict[str, Any]) -> None:
    """Each JSON Schema construct maps to what Gemini's OpenAPI subset can say."""
    assert _gemini_schema(schema) == converted


def test_gemini_schema_inlines_local_references() -> None:
    """$ref to $defs (or definitions) are inlined, siblings of the $ref kept; the definitions are dropped."""
    schema = {
        "type": "object",
        "properties": {"pet": {"$ref": "#/$defs/Pet", "description": "The pet."}, "owner": {"$ref": "#/definitions/Person"}},
        "$defs": {"Pet": {"type": "object", "properties": {"kind": {"type": "string"}}}},
        "definitions": {"Person": {"type": "string"}},
    }
    assert _gemini_schema(schema) == {
        "type": "OBJECT",
        "properties": {
            "pet": {"type": "OBJECT", "properties": {"kind": {"type": "STRING"}}, "description": "The pet."},
            "owner": {"type": "STRING"},
        },
    }


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"$ref": "https://example.com/schema.json"}, "only local"),
        ({"$ref": "#/$defs/Missing", "$defs": {}}, "only local"),
        ({"$ref": "#/$defs/Node", "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}}}, "recursive"),
    ],
)
def test_gemini_schema_refuses_what_it_cannot_inline(schema: dict[str, Any], message: str) -> None:
    """External, missing and recursive references are ConfigurationErrors naming the reference."""
    with pytest.raises(ConfigurationError, match=message):
        _gemini_schema(schema)


def test_gemini_refuses_a_bad_schema_before_sending(server: FakeLLMServer) -> None:
    """A schema Gemini's dialect cannot hold fails the call before any request is sent."""
    recursive = {"$ref": "#/$defs/N", "$defs": {"N": {"type": "object", "properties": {"n": {"$ref": "#/$defs/N"}}}}}
    with pytest.raises(ConfigurationError, match="recursive"):
        make(server, "gemini").stream_chat(HI, response_format=recursive)
    node = {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}
    broken = llmstreamer.Tool("walk", "Walk a list.", {"type": "object", "properties": {"n": {"$ref": "#/$defs/N"}}, "$defs": {"N": node}})
    with pytest.raises(ConfigurationError, match="recursive"):
        make(server, "gemini").stream_chat(HI, tools=[broken])
    assert server.requests == []
