"""OpenAI Chat Completions: ``POST {base_url}/chat/completions`` streamed as data-only SSE.

Wire: each event is ``data: <chat.completion.chunk>``; the stream ends with ``data: [DONE]``.
With ``stream_options.include_usage`` a last chunk with empty ``choices`` carries the usage.
Refusals (structured outputs) stream in ``delta.refusal``: their text goes to ``on_content``
and the finish reason becomes ``content_filter``. ``delta.reasoning_content`` /
``delta.reasoning`` (sent by OpenAI-compatible servers) go to ``on_thinking``. The translation
itself is shared with Mistral and the compatible servers (``_chat_completions``).
"""

from __future__ import annotations

from typing import ClassVar

from ._chat_completions import ChatCompletionsStreamer

__all__ = ["OpenAIStreamer"]


class OpenAIStreamer(ChatCompletionsStreamer):
    """Streams from OpenAI's Chat Completions API (key ``OPENAI_API_KEY``).

    Example::

        s = OpenAIStreamer(model="gpt-4o-mini")
        print(s.chat([Message.user("Say hi")]).text)
    """

    provider: ClassVar[str] = "openai"
    api_key_env: ClassVar[tuple[str, ...]] = ("OPENAI_API_KEY",)
    requires_key: ClassVar[bool] = True
    base_url_env: ClassVar[str | None] = "OPENAI_BASE_URL"
    default_base_url: ClassVar[str | None] = "https://api.openai.com/v1"
    default_model: ClassVar[str | None] = "gpt-4o-mini"
    # OpenAI wants max_completion_tokens; most compatible servers only know max_tokens.
    max_tokens_field: ClassVar[str] = "max_completion_tokens"
