"""Any server that speaks OpenAI's Chat Completions: vLLM, LM Studio, llama.cpp, OpenRouter, Groq...

A server of your own needs only its base URL (and a key if it wants one)::

    s = OpenAICompatibleStreamer(model="my-model", base_url="http://localhost:9000/v1")

The registry's presets (``llmstreamer.streamer("groq:llama-3.3-70b")``) are this class with a
name, a base URL, a key variable and quirks (see `QUIRKS`); ``llmstreamer.providers()`` lists
them.

Tools, ``tool_choice``, ``response_format`` and images go out in OpenAI's shapes; ``reasoning=``
is ``reasoning_effort`` (``xhigh`` sent as ``high``), unless a quirk says otherwise:
OpenRouter takes ``reasoning: {"effort": level}`` (every level, ``none`` and ``xhigh``
included) or, from ``thinking_budget=``, ``reasoning: {"max_tokens": N}``; DeepSeek toggles
thinking with ``thinking: {"type": "enabled" | "disabled"}`` and takes ``reasoning_effort``
``low``, ``high`` or ``max`` (``minimal``/``low`` → ``low``, ``medium``/``high`` → ``high``,
``xhigh`` → ``max``); which DeepSeek models reason at all is the model's own fact (thinking is
on by default in its V4 models). What a server cannot take (images on a text-only API, image
URLs where only inline bytes work, a schema where only JSON mode exists) is refused with
`ConfigurationError` before anything is sent.

PixiGPT does not stream (its own clients have no streaming and its request has no ``stream``
field): its preset sends one request without ``stream`` and fires the answer through the same
callbacks (``_chat_json``); ``reasoning=`` becomes ``enable_thinking`` and ``assistant_id=``
names the assistant.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

import attrs

from .._embed import post_json
from .._http import Request
from .._options import Options
from ..errors import ConfigurationError
from ..models import Event, Message
from ..provider import RoundContext
from ._chat_completions import ChatCompletionsStreamer
from ._chat_json import json_round

__all__ = ["QUIRKS", "OpenAICompatibleStreamer"]

# quirk name -> what it changes
QUIRKS: Mapping[str, str] = {
    "no_done": "a chunk with a finish_reason ends the answer; data: [DONE] may never come (llama.cpp)",
    "reasoning_details": "delta.reasoning_details are kept on the assistant message and sent back (OpenRouter)",
    "choice_reasoning": "reasoning_content may sit on the choice instead of the delta (PixiGPT)",
    "no_stream_options": "do not send stream_options (servers that reject the field)",
    "reasoning_object": 'reasoning= and thinking_budget= go in reasoning: {"effort"} / {"max_tokens"} (OpenRouter)',
    "thinking_toggle": 'reasoning= sets thinking: {"type": "enabled"|"disabled"} and reasoning_effort low/high/max (DeepSeek)',
    "reasoning_content_back": "the thinking of assistant tool-call messages goes back as reasoning_content (DeepSeek)",
    "no_images": "the API takes text only: images are refused before sending (DeepSeek)",
    "image_data_only": "images must be inline bytes: image URLs are refused before sending (LM Studio)",
    "json_object_only": 'response_format takes {"type": "json_object"} only: a JSON Schema is refused (DeepSeek)',
    "no_embeddings": "the API has no /embeddings endpoint: embed() is refused before sending (Groq, DeepSeek)",
    "file_parts": "PDF documents go as OpenAI file parts (OpenRouter); without it they are refused",
    "no_stream": "the API answers one JSON object: one request, its answer fired through the same callbacks (PixiGPT)",
    "enable_thinking": 'reasoning= is sent as enable_thinking: false for "none", true for any other level (PixiGPT)',
}

# DeepSeek's reasoning_effort for each level (its API takes low, high and max)
_DEEPSEEK_EFFORT = {"minimal": "low", "low": "low", "medium": "high", "high": "high", "xhigh": "max"}


class OpenAICompatibleStreamer(ChatCompletionsStreamer):
    """Streams from any OpenAI-compatible Chat Completions server.

    Args:
        model: The model, as the server names it (required).
        name: The provider name shown in errors, thread names and ``Response.provider``
            (a preset's name, e.g. ``"groq"``).
        api_key_env: Environment variables to read the key from when ``api_key`` is not given.
        requires_key: Fail with `ConfigurationError` when no key is found.
        quirks: Names from `QUIRKS` for servers that stray from OpenAI's wire.
        extra: Fields merged into every request body (a per-call ``extra=`` wins over them).
        assistant_id: PixiGPT's assistant, sent as ``assistant_id`` in every request.
        **kwargs: The keywords every streamer takes (``api_key``, ``base_url`` (required here),
            ``timeout``, ``retry``, ``headers``, ...).

    Example::

        s = llmstreamer.streamer("pixigpt:pixi-1", assistant_id="asst_123")
        s = OpenAICompatibleStreamer(model="qwen3", base_url="http://gpu-box:8000/v1", name="lab")
    """

    spec = attrs.evolve(ChatCompletionsStreamer.spec, name="openai-compatible")

    def __init__(
        self,
        model: str | None = None,
        *,
        name: str | None = None,
        api_key_env: str | Iterable[str] | None = (),
        requires_key: bool = False,
        quirks: Iterable[str] = (),
        extra: Mapping[str, Any] | None = None,
        assistant_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigurationError(f"name must be a non-empty string, got {name!r}")
        chosen = frozenset([quirks] if isinstance(quirks, str) else quirks)
        unknown = sorted(chosen - QUIRKS.keys())
        if unknown:
            raise ConfigurationError(f"unknown quirks {unknown}; known quirks: {', '.join(sorted(QUIRKS))}")
        if extra is not None and not isinstance(extra, Mapping):
            raise ConfigurationError(f"extra must be a dict, got {type(extra).__name__}")
        # A preset names itself and brings its own key variables: an evolved copy of the spec.
        spec = attrs.evolve(
            self.spec,
            name=name or self.spec.name,
            api_key_env=(api_key_env,) if isinstance(api_key_env, str) else tuple(api_key_env or ()),
            requires_key=bool(requires_key),
        )
        if "no_done" in chosen:
            # with no [DONE] to end on, the round ends with the body (a usage chunk may follow the finish)
            spec = attrs.evolve(spec, terminal="a finish_reason or data: [DONE]", done_ends_body=False)
        if "reasoning_object" in chosen:
            spec = attrs.evolve(spec, supported_options=spec.supported_options | {"thinking_budget"})
        if "no_embeddings" in chosen:
            spec = attrs.evolve(spec, has_embeddings=False)
        if "file_parts" in chosen:
            spec = attrs.evolve(spec, document_types={"application/pdf"})
        self.spec = spec
        self._finish_is_terminal = "no_done" in chosen
        self._reasoning_details = "reasoning_details" in chosen
        self._choice_reasoning = "choice_reasoning" in chosen
        self.include_usage = "no_stream_options" not in chosen
        self._reasoning_content_back = "reasoning_content_back" in chosen
        self.quirks = chosen
        self._extra = dict(extra or {})
        if assistant_id is not None:
            if not isinstance(assistant_id, str) or not assistant_id:
                raise ConfigurationError(f"assistant_id must be a non-empty string, got {assistant_id!r}")
            self._extra["assistant_id"] = assistant_id
        super().__init__(model, **kwargs)

    def __repr__(self) -> str:
        named = f", name={self.provider!r}" if self.provider != type(self).spec.name else ""
        return f"{super().__repr__()[:-1]}{named})"

    def build_body(self, messages: tuple[Message, ...], options: Options) -> dict[str, Any]:
        body = super().build_body(messages, options)
        if "no_stream" in self.quirks:
            del body["stream"]
            body.pop("stream_options", None)
        return body

    def build_request(self, messages: tuple[Message, ...], options: Options) -> Request:
        if "no_stream" in self.quirks:
            return post_json(self, "/chat/completions", self.build_body(messages, options))
        return super().build_request(messages, options)

    def stream_round(self, messages: tuple[Message, ...], options: Options, context: RoundContext) -> Iterator[Event]:
        if "no_stream" in self.quirks:
            return json_round(self, messages, options, context.token)
        return super().stream_round(messages, options, context)

    def _reasoning_fields(self, options: Options) -> dict[str, Any]:
        level, budget = options.reasoning, options.thinking_budget
        if "enable_thinking" in self.quirks:
            return {"enable_thinking": level != "none"}
        if "reasoning_object" in self.quirks:
            return {"reasoning": {"max_tokens": budget} if budget is not None else {"effort": level}}
        if "thinking_toggle" in self.quirks and level is not None:
            if level == "none":
                return {"thinking": {"type": "disabled"}}
            return {"thinking": {"type": "enabled"}, "reasoning_effort": _DEEPSEEK_EFFORT[level]}
        return super()._reasoning_fields(options)

    def validate(self, messages: tuple[Message, ...], options: Options) -> None:
        super().validate(messages, options)
        quirks = self.quirks
        if options.reasoning is not None and options.thinking_budget is not None:
            raise ConfigurationError("give reasoning or thinking_budget, not both", provider=self.provider)
        for message in messages:
            if "no_images" in quirks and message.images:
                raise ConfigurationError(f"{self.provider} takes text only: remove the images", provider=self.provider)
            if "image_data_only" in quirks and any(image.url for image in message.images):
                raise ConfigurationError(
                    f"{self.provider} takes images as bytes only: load the image first (ImagePart.load(path))",
                    provider=self.provider,
                )
        fmt = options.response_format
        if "json_object_only" in quirks and fmt is not None and fmt.get("type") != "json_object":
            raise ConfigurationError(
                f'{self.provider} has JSON mode only: pass response_format={{"type": "json_object"}} '
                "and describe the shape in the prompt",
                provider=self.provider,
            )
