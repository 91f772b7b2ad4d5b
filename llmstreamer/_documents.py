"""Documents inside messages: `DocumentPart` (a PDF or a text file) and how providers get them.

A provider states the document types it takes natively (``Streamer.document_types``: MIME
types, ``text/*`` for every text type): Anthropic ``document`` blocks (PDF, plain text), Gemini
``inlineData`` (PDF and text), OpenAI ``file`` parts (PDF). Before a request is built,
`prepare` turns every other text document into plain text with a small header::

    File: notes.md
    Content-Type: text/markdown

    <the text>

(after a blank line when something comes before it in the message), and refuses a PDF the
provider cannot take with `ConfigurationError`, before anything is sent.

Nothing is fetched: `DocumentPart.load` reads a local path or takes bytes, and refuses URLs (a
web app that let a browser name a URL or a path would have the server fetch or read it for a
stranger). Download a remote file yourself and pass its bytes. `Message.from_dict` only takes
inline base64 data, never a path.
"""

from __future__ import annotations

import base64
import os
from typing import Iterable

import attrs

from .errors import ConfigurationError

__all__ = ["PDF", "DocumentPart", "inline_text", "takes"]

PDF = "application/pdf"
_BY_EXTENSION = {
    ".pdf": PDF,
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".csv": "text/csv",
    ".html": "text/html",
    ".htm": "text/html",
    ".xml": "text/xml",
    ".json": "text/plain",
    ".py": "text/x-python",
    ".rst": "text/x-rst",
}


def _check_mime(_inst: object, _attr: object, mime: str) -> None:
    if mime != PDF and not mime.startswith("text/"):
        raise ConfigurationError(f"a document is a PDF or a text/* file, not {mime!r}")


@attrs.frozen
class DocumentPart:
    """A PDF or a text file inside a user message: its bytes, MIME type and file name.

    Build one with `DocumentPart.load` (a path or bytes)::

        Message.user("Summarize this.", documents=["report.pdf"])
        DocumentPart.load(b"a,b\\n1,2\\n", name="data.csv")
    """

    data: bytes = attrs.field(repr=lambda d: f"<{len(d)} bytes>")
    mime_type: str = attrs.field(default=PDF, validator=_check_mime)
    name: str = "document"

    @classmethod
    def load(
        cls, source: str | bytes | os.PathLike[str], *, mime_type: str | None = None, name: str | None = None
    ) -> DocumentPart:
        """A document from a local file path or raw bytes; the type is sniffed when not given.

        Raises:
            ConfigurationError: a URL (nothing is fetched), an unreadable file, or a type that
                is neither PDF nor text.
        """
        if isinstance(source, bytes):
            return cls(source, mime_type or _sniff(source, name or ""), name or "document")
        path = os.fspath(source)
        if "://" in path[:12] or path.startswith("data:"):
            raise ConfigurationError(
                "llmstreamer does not fetch documents from URLs: download the file and pass its bytes"
            )
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise ConfigurationError(f"cannot read document {path!r}: {exc.strerror}") from exc
        label = name or os.path.basename(path) or "document"
        return cls(data, mime_type or _sniff(data, label), label)

    @property
    def base64(self) -> str:
        """The bytes as base64 text."""
        return base64.b64encode(self.data).decode("ascii")

    @property
    def text(self) -> str:
        """The content as text (UTF-8, invalid bytes replaced); empty for a PDF."""
        return "" if self.mime_type == PDF else self.data.decode("utf-8", "replace")


def _sniff(data: bytes, name: str) -> str:
    if data.startswith(b"%PDF-"):
        return PDF
    ext = os.path.splitext(name)[1].lower()
    if ext in _BY_EXTENSION and _BY_EXTENSION[ext] != PDF:
        return _BY_EXTENSION[ext]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError(f"{name or 'the document'} is neither a PDF nor UTF-8 text: pass mime_type=") from None
    return "text/plain"


def inline_text(doc: DocumentPart) -> str:
    """A text document as plain text with its ``File:`` and ``Content-Type:`` header."""
    return f"File: {doc.name}\nContent-Type: {doc.mime_type}\n\n{doc.text}"


def takes(native: Iterable[str], mime: str) -> bool:
    """Whether a provider that takes ``native`` types takes ``mime`` (``text/*`` matches every text type)."""
    return any(mime == kind or (kind.endswith("/*") and mime.startswith(kind[:-1])) for kind in native)
