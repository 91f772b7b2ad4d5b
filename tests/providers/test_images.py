"""Images in user messages on each provider's wire, and the refusals of those that cannot take them."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

import llmstreamer
from llmstreamer import (
    AnthropicStreamer,
    ConfigurationError,
    GeminiStreamer,
    ImagePart,
    Message,
    MistralStreamer,
    OllamaStreamer,
    OpenAIStreamer,
)
from llmstreamer.testing import FakeLLMServer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 8
B64 = base64.b64encode(PNG).decode()
URL = "https://x.test/cat.jpg"
CLASSES = {
    "openai": OpenAIStreamer,
    "mistral": MistralStreamer,
    "anthropic": AnthropicStreamer,
    "gemini": GeminiStreamer,
    "ollama": OllamaStreamer,
}


def make(server: FakeLLMServer, flavor: str) -> Any:
    """A streamer of ``flavor`` (a provider or a compatible preset) pointed at the fake server."""
    if flavor in CLASSES:
        return CLASSES[flavor](api_key="k", base_url=server.base_url(flavor), retry=0)
    return llmstreamer.streamer(f"{flavor}:some/model", api_key="k", base_url=server.base_url(flavor), retry=0)


def first_message(server: FakeLLMServer, flavor: str) -> Any:
    """The first message (or Gemini content) of the last request."""
    sent = server.requests[-1].json
    return sent["contents"][0] if flavor == "gemini" else sent["messages"][0]


def openai_parts(url: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": url}}]}


BYTES = {
    "openai": openai_parts(f"data:image/png;base64,{B64}"),
    "mistral": openai_parts(f"data:image/png;base64,{B64}"),
    "openrouter": openai_parts(f"data:image/png;base64,{B64}"),
    "lmstudio": openai_parts(f"data:image/png;base64,{B64}"),
    "anthropic": {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": B64}},
        ],
    },
    "gemini": {"role": "user", "parts": [{"text": "What is this?"}, {"inlineData": {"mimeType": "image/png", "data": B64}}]},
    "ollama": {"role": "user", "content": "What is this?", "images": [B64]},
}
URLS = {
    "openai": openai_parts(URL),
    "mistral": openai_parts(URL),
    "openrouter": openai_parts(URL),
    "anthropic": {
        "role": "user",
        "content": [{"type": "text", "text": "What is this?"}, {"type": "image", "source": {"type": "url", "url": URL}}],
    },
    "gemini": {"role": "user", "parts": [{"text": "What is this?"}, {"fileData": {"mimeType": "image/jpeg", "fileUri": URL}}]},
}


@pytest.mark.parametrize("flavor", sorted(BYTES))
def test_image_bytes_reach_each_wire(server: FakeLLMServer, flavor: str) -> None:
    """Image bytes go inline: a data URL, a base64 source block, inlineData, or Ollama's images list."""
    make(server, flavor).chat([Message.user("What is this?", images=[PNG])])
    assert first_message(server, flavor) == BYTES[flavor]


@pytest.mark.parametrize("flavor", sorted(URLS))
def test_image_urls_reach_the_wires_that_take_them(server: FakeLLMServer, flavor: str) -> None:
    """An image URL goes as a URL where the API fetches it itself."""
    make(server, flavor).chat([Message.user("What is this?", images=[URL])])
    assert first_message(server, flavor) == URLS[flavor]


@pytest.mark.parametrize(
    ("flavor", "image", "message"),
    [
        ("ollama", URL, "bytes only"),
        ("lmstudio", URL, "bytes only"),
        ("deepseek", PNG, "takes text only"),
        ("deepseek", URL, "takes text only"),
    ],
)
def test_images_a_wire_cannot_take_are_refused_before_sending(server: FakeLLMServer, flavor: str, image: Any, message: str) -> None:
    """A text-only API refuses any image, an inline-only one refuses URLs: ConfigurationError, nothing sent."""
    with pytest.raises(ConfigurationError, match=message):
        make(server, flavor).stream_chat([Message.user("What is this?", images=[image])])
    assert server.requests == []


@pytest.mark.parametrize("flavor", ["openai", "mistral", "openrouter"])
def test_images_outside_user_messages_are_refused(server: FakeLLMServer, flavor: str) -> None:
    """Chat Completions takes images in user messages only."""
    with pytest.raises(ConfigurationError, match="images only in user messages"):
        make(server, flavor).stream_chat([Message.user("Hi"), Message("assistant", [ImagePart(data=PNG)])])
    assert server.requests == []


def test_an_image_file_keeps_its_detected_type(server: FakeLLMServer, tmp_path: Path) -> None:
    """An image given as a path is read and sent with the MIME type its bytes show."""
    path = tmp_path / "photo.bin"
    path.write_bytes(JPEG)
    make(server, "anthropic").chat([Message.user("And this?", images=[str(path)])])
    block = first_message(server, "anthropic")["content"][1]
    assert block["source"] == {"type": "base64", "media_type": "image/jpeg", "data": base64.b64encode(JPEG).decode()}
