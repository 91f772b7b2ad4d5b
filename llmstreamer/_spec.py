"""`ProviderSpec`: the facts of one provider as a frozen value (a class states it, a preset evolves it)."""

from __future__ import annotations

from typing import Iterable

import attrs

__all__ = ["LEGACY_FACTS", "ProviderSpec"]


def _names(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _option_names(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


@attrs.frozen(kw_only=True)
class ProviderSpec:
    """What a provider is: its name, where its key and URL come from, what it supports.

    Attributes:
        name: The provider's name (``streamer("name:model")``, errors, thread names).
        api_key_env: Environment variables the key is read from, in order.
        requires_key: Refuse to start without a key.
        base_url_env: An environment variable that overrides the default URL.
        default_base_url: Where the API lives by default.
        default_model: The model used when none is given.
        supported_options: The ``stream_chat`` options honoured beyond the engine's own.
        terminal: The terminal event, as `IncompleteStreamError` messages name it.
        runs_tools: True when the provider runs tool calls inside a round itself.
        framing: ``"sse"`` or ``"ndjson"`` (HTTP providers).
        done_ends_body: The decoder's ``done`` is the wire's terminal event ([DONE],
            message_stop, Ollama's done line): the round ends there and what follows is never
            read. False for wires whose stream ends only with the body (Gemini), where ``done``
            marks a stated finish (HTTP providers).
        chat_path: The path the chat request is posted to (HTTP providers).
        auth_header: The header that carries the key (HTTP providers).
        auth_prefix: What goes before the key in that header (``"Bearer "``).
        has_embeddings: The provider can `embed` (see ``_embed``).
        embed_batch_size: Inputs per embeddings request.
        embed_options: The ``embed`` options taken (``dimensions``, ``task_type``, ``normalize``).
        default_embedding_model: The model ``embed`` uses while the chat model is the default.
        document_types: MIME types taken as documents (``text/*`` matches every text type);
            other text documents are inlined, other PDFs refused.
    """

    name: str
    api_key_env: tuple[str, ...] = attrs.field(default=(), converter=_names)
    requires_key: bool = False
    base_url_env: str | None = None
    default_base_url: str | None = None
    default_model: str | None = None
    supported_options: frozenset[str] = attrs.field(default=frozenset(), converter=_option_names)
    terminal: str = "its terminal event"
    runs_tools: bool = False
    framing: str = attrs.field(default="sse", validator=attrs.validators.in_(("sse", "ndjson")))
    done_ends_body: bool = True
    chat_path: str = "/chat/completions"
    auth_header: str = "Authorization"
    auth_prefix: str = "Bearer "
    has_embeddings: bool = False
    embed_batch_size: int = 256
    embed_options: frozenset[str] = attrs.field(default=frozenset(), converter=_option_names)
    default_embedding_model: str | None = None
    document_types: frozenset[str] = attrs.field(default=frozenset(), converter=_option_names)


# class attributes of the first plug-in interface -> the ProviderSpec field each one became
LEGACY_FACTS = {
    "provider": "name",
    "api_key_env": "api_key_env",
    "requires_key": "requires_key",
    "base_url_env": "base_url_env",
    "default_base_url": "default_base_url",
    "default_model": "default_model",
    "supported_options": "supported_options",
    "terminal": "terminal",
    "runs_tools": "runs_tools",
    "framing": "framing",
}
