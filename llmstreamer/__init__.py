"""llmstreamer: stream chat completions from many LLM providers through one callback interface.

Example::

    import llmstreamer
    from llmstreamer import Message, StreamCallbacks

    s = llmstreamer.streamer("openai:gpt-4o-mini")
    h = s.stream_chat([Message.user("Hello")], StreamCallbacks(on_content=print))
    h.wait()

Provider classes, the streamer base, the registry, `Conversation`, the session stores and the
hooks are imported on first use, so
``import llmstreamer`` stays cheap.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from . import providers
from .callbacks import StreamCallbacks, StreamHandler
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    CallbackError,
    ConfigurationError,
    IncompleteStreamError,
    LLMStreamError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    ServerError,
    SessionBusyError,
    StreamCancelled,
    StreamError,
    ToolError,
)
from .models import (
    DocumentPart,
    Event,
    ImagePart,
    Message,
    Model,
    Response,
    TextPart,
    ThinkingPart,
    ToolCall,
    ToolResult,
    Usage,
)
from .retry import RetryPolicy, Timeout

if TYPE_CHECKING:
    from ._agent_store import AgentStore
    from ._embed import Embeddings
    from ._engine import StreamHandle
    from ._file_tools import file_tools
    from .agents import Agent
    from .conversation import Conversation
    from .hooks import set_default_hooks
    from .provider import HTTPStreamer, Streamer
    from .providers.anthropic import AnthropicStreamer
    from .providers.compatible import OpenAICompatibleStreamer
    from .providers.eliza import ElizaStreamer
    from .providers.gemini import GeminiStreamer
    from .providers.mistral import MistralStreamer
    from .providers.modelsocket import ModelSocketClient, ModelSocketStreamer
    from .providers.ollama import OllamaStreamer
    from .providers.openai import OpenAIStreamer
    from .registry import ProviderInfo, list_providers, streamer
    from .sessions import open_session_store
    from .tools import Tool, Toolbox, tool

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

# public name -> module that defines it, imported on first access
_LAZY = {
    "Streamer": "llmstreamer.provider",
    "HTTPStreamer": "llmstreamer.provider",
    "StreamHandle": "llmstreamer._engine",
    "streamer": "llmstreamer.registry",
    "ProviderInfo": "llmstreamer.registry",
    "list_providers": "llmstreamer.registry",
    "OpenAIStreamer": "llmstreamer.providers.openai",
    "AnthropicStreamer": "llmstreamer.providers.anthropic",
    "GeminiStreamer": "llmstreamer.providers.gemini",
    "MistralStreamer": "llmstreamer.providers.mistral",
    "OllamaStreamer": "llmstreamer.providers.ollama",
    "OpenAICompatibleStreamer": "llmstreamer.providers.compatible",
    "ModelSocketStreamer": "llmstreamer.providers.modelsocket",
    "ModelSocketClient": "llmstreamer.providers.modelsocket",
    "ElizaStreamer": "llmstreamer.providers.eliza",
    "Embeddings": "llmstreamer._embed",
    "Tool": "llmstreamer.tools",
    "Toolbox": "llmstreamer.tools",
    "tool": "llmstreamer.tools",
    "file_tools": "llmstreamer._file_tools",
    "Agent": "llmstreamer.agents",
    "AgentStore": "llmstreamer._agent_store",
    "Conversation": "llmstreamer.conversation",
    "open_session_store": "llmstreamer.sessions",
    "set_default_hooks": "llmstreamer.hooks",
}

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "Agent",
    "AgentStore",
    "AnthropicStreamer",
    "AuthenticationError",
    "BadRequestError",
    "CallbackError",
    "ConfigurationError",
    "Conversation",
    "DocumentPart",
    "ElizaStreamer",
    "Embeddings",
    "Event",
    "GeminiStreamer",
    "HTTPStreamer",
    "ImagePart",
    "IncompleteStreamError",
    "LLMStreamError",
    "Message",
    "MistralStreamer",
    "Model",
    "ModelSocketClient",
    "ModelSocketStreamer",
    "NotFoundError",
    "OllamaStreamer",
    "OpenAICompatibleStreamer",
    "OpenAIStreamer",
    "OverloadedError",
    "PermissionDeniedError",
    "ProviderInfo",
    "RateLimitError",
    "RequestTooLargeError",
    "Response",
    "RetryPolicy",
    "ServerError",
    "SessionBusyError",
    "StreamCallbacks",
    "StreamCancelled",
    "StreamError",
    "StreamHandle",
    "StreamHandler",
    "Streamer",
    "TextPart",
    "ThinkingPart",
    "Timeout",
    "Tool",
    "ToolCall",
    "ToolError",
    "ToolResult",
    "Toolbox",
    "Usage",
    "__version__",
    "file_tools",
    "list_providers",
    "open_session_store",
    "providers",
    "set_default_hooks",
    "streamer",
    "tool",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'llmstreamer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
