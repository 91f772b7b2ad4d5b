"""Documents: the exact request shape per provider, text inlined where there is no document type,
PDFs refused before any request where a provider cannot read them, and nothing fetched."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Iterator

import pytest

import llmstreamer
from llmstreamer import ConfigurationError, DocumentPart, Message, ModelSocketStreamer, TextPart
from llmstreamer.testing import FakeLLMServer
from llmstreamer.testing.modelsocket import FakeModelSocketServer

PDF_BYTES = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PDF_B64 = base64.b64encode(PDF_BYTES).decode()
PDF = DocumentPart(PDF_BYTES, "application/pdf", "report.pdf")
TXT = DocumentPart(b"plain words", "text/plain", "notes.txt")
MD = DocumentPart("# Title\n\nsome *markdown* é".encode(), "text/markdown", "readme.md")
MD_INLINE = "File: readme.md\nContent-Type: text/markdown\n\n# Title\n\nsome *markdown* é"


def make(server: FakeLLMServer, spec: str) -> Any:
    return llmstreamer.streamer(spec, api_key="k", base_url=server.base_url(spec.split(":")[0]), retry=0)


def ask(*docs: DocumentPart) -> list[Message]:
    return [Message.user("Summarize.", documents=docs)]


def test_anthropic_document_blocks(server: FakeLLMServer) -> None:
    """Anthropic: PDFs as base64 document blocks, plain text as text documents, other text inlined."""
    make(server, "anthropic:claude-sonnet-4-5").chat(ask(PDF, TXT, MD))
    (message,) = server.requests[0].json["messages"]
    assert message == {
        "role": "user",
        "content": [
            {"type": "text", "text": "Summarize."},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64}, "title": "report.pdf"},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}, "title": "notes.txt"},
            {"type": "text", "text": "\n\n" + MD_INLINE},
        ],
    }


def test_gemini_inline_data(server: FakeLLMServer) -> None:
    """Gemini: PDFs and text files as inlineData with their MIME type."""
    make(server, "gemini:gemini-2.5-flash").chat(ask(PDF, MD))
    (content,) = server.requests[0].json["contents"]
    assert content == {
        "role": "user",
        "parts": [
            {"text": "Summarize."},
            {"inlineData": {"mimeType": "application/pdf", "data": PDF_B64}},
            {"inlineData": {"mimeType": "text/markdown", "data": base64.b64encode(MD.data).decode()}},
        ],
    }


@pytest.mark.parametrize("spec", ["openai:gpt-4o", "openrouter:some/model"])
def test_openai_file_parts(server: FakeLLMServer, spec: str) -> None:
    """OpenAI (and OpenRouter): PDFs as file parts with a data URL; text files inlined as text parts."""
    make(server, spec).chat(ask(PDF, TXT))
    (message,) = server.requests[0].json["messages"]
    assert message == {
        "role": "user",
        "content": [
            {"type": "text", "text": "Summarize."},
            {"type": "file", "file": {"filename": "report.pdf", "file_data": f"data:application/pdf;base64,{PDF_B64}"}},
            {"type": "text", "text": "\n\nFile: notes.txt\nContent-Type: text/plain\n\nplain words"},
        ],
    }


@pytest.mark.parametrize("spec", ["mistral:m", "ollama:m", "deepseek:deepseek-chat", "vllm:m", "pixigpt:p"])
def test_text_inlined_where_there_is_no_document_type(server: FakeLLMServer, spec: str) -> None:
    """Providers without a document type get text files as text with a File:/Content-Type: header."""
    make(server, spec).chat(ask(MD))
    (message,) = server.requests[0].json["messages"]
    assert message == {"role": "user", "content": "Summarize.\n\n" + MD_INLINE}


@pytest.mark.parametrize("spec", ["mistral:m", "ollama:m", "deepseek:deepseek-chat", "vllm:m", "pixigpt:p", "groq:g"])
def test_pdf_refused_before_any_request(server: FakeLLMServer, spec: str) -> None:
    """A provider that cannot take a PDF refuses it with ConfigurationError before sending."""
    with pytest.raises(ConfigurationError, match="cannot take PDF documents"):
        make(server, spec).stream_chat(ask(PDF))
    assert server.requests == []


def test_eliza_reads_text_and_refuses_pdf() -> None:
    """Eliza takes a text document as text and refuses a PDF."""
    s = llmstreamer.ElizaStreamer(seed=1)
    assert s.chat(ask(TXT)).text
    with pytest.raises(ConfigurationError, match="cannot take PDF"):
        s.chat(ask(PDF))


@pytest.fixture
def ms() -> Iterator[FakeModelSocketServer]:
    """A fake ModelSocket server."""
    with FakeModelSocketServer(api_key="ms") as srv:
        yield srv


def test_modelsocket_inlines_text_and_refuses_pdf(ms: FakeModelSocketServer) -> None:
    """ModelSocket appends text documents as text and refuses PDFs before opening anything."""
    s = ModelSocketStreamer(model="m", api_key="ms", base_url=ms.url, timeout=5)
    try:
        with pytest.raises(ConfigurationError, match="cannot take PDF"):
            s.stream_chat(ask(PDF))
        assert ms.commands("seq_open") == []
        s.chat(ask(MD))
    finally:
        s.close()
    assert [c["data"]["text"] for c in ms.commands("append")] == ["Summarize.\n\n" + MD_INLINE]


def test_documents_only_in_user_messages(server: FakeLLMServer) -> None:
    """A document in a system or assistant message is refused before sending."""
    with pytest.raises(ConfigurationError, match="user messages"):
        make(server, "anthropic:c").chat([Message("assistant", [PDF]), Message.user("Hi")])
    assert server.requests == []


# --- DocumentPart -------------------------------------------------------------------------------


def test_load_from_a_path_and_bytes(tmp_path: Path) -> None:
    """load() reads a local path (name from it, type sniffed) or bytes (name given)."""
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(PDF_BYTES)
    assert DocumentPart.load(pdf) == PDF
    notes = tmp_path / "notes.md"
    notes.write_text("hello", encoding="utf-8")
    assert DocumentPart.load(str(notes)) == DocumentPart(b"hello", "text/markdown", "notes.md")
    assert DocumentPart.load(b"a,b\n1,2\n", name="data.csv").mime_type == "text/csv"
    assert DocumentPart.load(b"just text").mime_type == "text/plain"
    assert Message.user("x", documents=[pdf]).documents == (PDF,)


@pytest.mark.parametrize("source", ["https://example.org/a.pdf", "http://127.0.0.1/x.txt", "ftp://host/f", "data:text/plain,hi"])
def test_urls_are_never_fetched(source: str) -> None:
    """A URL is refused: llmstreamer does not fetch documents."""
    with pytest.raises(ConfigurationError, match="does not fetch"):
        DocumentPart.load(source)


def test_bad_documents_refused(tmp_path: Path) -> None:
    """Binary that is neither PDF nor text, a non-document MIME type, or a missing file is refused."""
    with pytest.raises(ConfigurationError, match="neither a PDF nor UTF-8"):
        DocumentPart.load(b"\xff\xfe\x00\x81")
    with pytest.raises(ConfigurationError, match="PDF or a text"):
        DocumentPart(b"x", "image/png", "x.png")
    with pytest.raises(ConfigurationError, match="cannot read document"):
        DocumentPart.load(tmp_path / "missing.pdf")


def test_dict_round_trip_takes_inline_data_only() -> None:
    """to_dict/from_dict keep a document inline; a dict naming a path or URL is refused, never read."""
    message = Message.user("Read.", documents=[TXT])
    again = Message.from_dict(message.to_dict())
    assert again == message and again.content[0] == TextPart("Read.")
    for part in ({"type": "document", "path": "/etc/passwd", "mime_type": "text/plain"},
                 {"type": "document", "url": "https://example.org/a.pdf", "mime_type": "application/pdf"},
                 {"type": "document", "data": "not base64!", "mime_type": "text/plain"}):
        with pytest.raises(ConfigurationError, match="malformed document"):
            Message.from_dict({"role": "user", "content": [part]})
