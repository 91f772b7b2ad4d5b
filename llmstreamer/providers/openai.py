"""OpenAI Chat Completions: ``POST {base_url}/chat/completions`` streamed as data-only SSE.

Wire: each event is ``data: <chat.completion.chunk>``; the stream ends with ``data: [DONE]``.
With ``stream_options.include_usage`` a last chunk with empty ``choices`` carries the usage.
Refusals (structured outputs) stream in ``delta.refusal``: their text goes to ``on_content``
and the finish reason becomes ``content_filter``. ``delta.reasoning_content`` /
``delta.reasoning`` (sent by OpenAI-compatible servers) go to ``on_thinking``. The translation
itself is shared with Mistral and the compatible servers (``_chat_completions``): tools,
``tool_choice`` and ``response_format`` (strict JSON Schema) are described there.

``reasoning=`` is sent as ``reasoning_effort`` (``none``, ``minimal``, ``low``, ``medium``,
``high``, ``xhigh``) as given, except that ``xhigh`` becomes ``high`` for models before
gpt-5.1-codex-max (only it and the gpt-5.2 family onwards take ``xhigh``). Which levels a model
accepts is OpenAI's rule (gpt-5.1 takes ``none`` but not ``minimal``; models before it take no
``none``); an unsupported one comes back as a `BadRequestError`. OpenAI keeps the reasoning
text itself hidden in Chat Completions, so ``on_thinking`` stays silent; the reasoning tokens
are counted in ``Usage.reasoning_tokens``. ``thinking_budget`` has no Chat Completions field and
is refused.

``max_tokens=`` goes out as ``max_completion_tokens`` to api.openai.com (the default base URL)
and as ``max_tokens`` to any other base URL: OpenAI-compatible servers honour that field and
may ignore the newer one, so a local server never silently runs without the limit.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from .._http import origin
from ._chat_completions import ChatCompletionsStreamer

__all__ = ["OpenAIStreamer"]

_OPENAI_HOST = "api.openai.com"
_VERSION = re.compile(r"gpt-(\d+)(?:\.(\d+))?")


class OpenAIStreamer(ChatCompletionsStreamer):
    """Streams from OpenAI's Chat Completions API (key ``OPENAI_API_KEY``).

    Example::

        s = OpenAIStreamer(model="gpt-4o-mini")
        print(s.chat([Message.user("Say hi")]).text)
    """

    spec = attrs.evolve(
        ChatCompletionsStreamer.spec,
        name="openai",
        api_key_env="OPENAI_API_KEY",
        requires_key=True,
        base_url_env="OPENAI_BASE_URL",
        default_base_url="https://api.openai.com/v1",
        default_model="gpt-4o-mini",
        default_embedding_model="text-embedding-3-small",
        embed_batch_size=2048,  # inputs per /embeddings request
        document_types={"application/pdf"},  # as file parts
    )
    # OpenAI wants max_completion_tokens; OpenAI-compatible servers (llama.cpp, vLLM, LiteLLM,
    # Ollama...) honour max_tokens and may silently ignore the other: chosen by the base URL.
    max_tokens_field = "max_completion_tokens"

    def __init__(self, model: str | None = None, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        if origin(self.base_url)[1] != _OPENAI_HOST:
            self.max_tokens_field = "max_tokens"

    def _takes_xhigh(self) -> bool:
        """``xhigh`` exists from gpt-5.1-codex-max and the gpt-5.2 family onwards."""
        if "codex-max" in self.model:
            return True
        match = _VERSION.search(self.model)
        return match is not None and (int(match.group(1)), int(match.group(2) or 0)) >= (5, 2)
