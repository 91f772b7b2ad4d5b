"""Documents a provider cannot take natively, inlined as text before the request (PDFs refused)."""

from __future__ import annotations

from ._documents import PDF, DocumentPart, inline_text, takes
from .errors import ConfigurationError
from .models import Message, TextPart

__all__ = ["inline_documents"]


def inline_documents(messages: tuple[Message, ...], native: frozenset[str], provider: str) -> tuple[Message, ...]:
    """``messages`` with the documents ``native`` does not cover inlined as text; PDFs refused.

    Raises:
        ConfigurationError: a document outside a user message, or a PDF the provider cannot take.
    """
    if not any(type(p) is DocumentPart for m in messages for p in m.content):
        return messages
    out = []
    for message in messages:
        parts = list(message.content)
        if not any(type(p) is DocumentPart for p in parts):
            out.append(message)
            continue
        if message.role != "user":
            raise ConfigurationError("documents belong to user messages", provider=provider)
        for i, part in enumerate(parts):
            if type(part) is not DocumentPart or takes(native, part.mime_type):
                continue
            if part.mime_type == PDF:
                raise ConfigurationError(
                    f"{provider} cannot take PDF documents ({part.name}): extract the text first, "
                    "or use a provider that reads PDFs (anthropic, gemini, openai)",
                    provider=provider,
                )
            parts[i] = TextPart(("\n\n" if i else "") + inline_text(part))
        out.append(Message(message.role, parts))
    return tuple(out)
