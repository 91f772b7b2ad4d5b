"""The public surface: pinned so it never grows or shrinks by accident."""

from __future__ import annotations

import subprocess
import sys

import llmstreamer

EXPECTED = [
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


def test_all_is_pinned_and_sorted() -> None:
    """__all__ is exactly the documented surface, in sorted order."""
    assert llmstreamer.__all__ == EXPECTED
    assert sorted(llmstreamer.__all__) == llmstreamer.__all__


def test_every_public_name_resolves() -> None:
    """Every name in __all__ can be imported."""
    for name in llmstreamer.__all__:
        assert getattr(llmstreamer, name) is not None, name


def test_error_tree() -> None:
    """The error classes form the tree drawn in errors.py's docstring."""
    L = llmstreamer
    assert all(issubclass(c, L.LLMStreamError) for c in (L.ConfigurationError, L.APIConnectionError, L.APIStatusError, L.StreamError, L.StreamCancelled, L.CallbackError, L.ToolError))
    assert issubclass(L.APITimeoutError, L.APIConnectionError)
    assert issubclass(L.IncompleteStreamError, L.StreamError)
    assert issubclass(L.OverloadedError, L.ServerError)
    assert issubclass(L.SessionBusyError, L.LLMStreamError) and not issubclass(L.SessionBusyError, L.ConfigurationError)
    for cls in (L.BadRequestError, L.AuthenticationError, L.PermissionDeniedError, L.NotFoundError, L.RequestTooLargeError, L.RateLimitError, L.ServerError):
        assert issubclass(cls, L.APIStatusError)


def test_import_is_lazy() -> None:
    """import llmstreamer loads no provider module and not requests."""
    code = "import sys, llmstreamer; print(sorted(m for m in sys.modules if m.startswith(('llmstreamer.providers.', 'requests', 'urllib3'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_providers_is_callable_before_and_after_provider_imports() -> None:
    """The deprecated llmstreamer.providers() works whether or not a provider module was imported."""
    code = (
        "import warnings; warnings.simplefilter('ignore', DeprecationWarning);"
        "import llmstreamer; a = [p.name for p in llmstreamer.providers()];"
        "import llmstreamer.providers.openai; b = [p.name for p in llmstreamer.providers()];"
        "assert a == b and 'openai' in a, (a, b); print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr
