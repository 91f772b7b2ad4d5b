"""The public surface, pinned: every public module's public names, not only llmstreamer.__all__.

A name without an underscore in a module without an underscore is a promise. Adding one is a
decision: update PUBLIC here (and CHANGELOG); a name that is not meant for users goes private.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import warnings

import llmstreamer

PUBLIC = {
    "llmstreamer": [
        "APIConnectionError", "APIStatusError", "APITimeoutError", "Agent", "AgentStore", "AnthropicStreamer",
        "AuthenticationError", "BadRequestError", "CallbackError", "ConfigurationError", "Conversation",
        "DocumentPart", "ElizaStreamer", "Embeddings", "Event", "GeminiStreamer", "HTTPStreamer", "ImagePart",
        "IncompleteStreamError", "LLMStreamError", "Message", "MistralStreamer", "Model", "ModelSocketClient",
        "ModelSocketStreamer", "NotFoundError", "OllamaStreamer", "OpenAICompatibleStreamer",
        "OpenAIStreamer", "OverloadedError", "PermissionDeniedError", "ProviderInfo", "RateLimitError",
        "RequestTooLargeError", "Response", "RetryPolicy", "ServerError", "SessionBusyError",
        "StreamCallbacks", "StreamCancelled", "StreamError", "StreamHandle", "StreamHandler", "Streamer",
        "TextPart", "ThinkingPart", "Timeout", "Tool", "ToolCall", "ToolError", "ToolResult", "Toolbox",
        "Usage", "__version__", "file_tools", "list_providers", "open_session_store", "providers",
        "set_default_hooks", "streamer", "tool",
    ],
    "llmstreamer.agents": [
        "Agent", "FIELDS", "load_extra",
    ],
    "llmstreamer.base": [
        "HTTPStreamer", "StreamHandle", "Streamer", "loads",
    ],
    "llmstreamer.callbacks": [
        "CALLBACK_NAMES", "StreamCallbacks", "StreamHandler", "resolve",
    ],
    "llmstreamer.cli": [
        "DEFAULT_MODEL", "MODEL_ENV", "main",
    ],
    "llmstreamer.conversation": [
        "Conversation",
    ],
    "llmstreamer.errors": [
        "APIConnectionError", "APIStatusError", "APITimeoutError", "AuthenticationError", "BadRequestError",
        "CallbackError", "ConfigurationError", "IncompleteStreamError", "LLMStreamError", "NotFoundError",
        "OverloadedError", "PermissionDeniedError", "RateLimitError", "RequestTooLargeError", "ServerError",
        "SessionBusyError", "StreamCancelled", "StreamError", "StreamLogError", "ToolError",
        "UnknownStreamError", "error_for_status", "status_for_type",
    ],
    "llmstreamer.hooks": [
        "EndSummary", "HOOK_NAMES", "Hooks", "LogHooks", "RequestInfo", "ResponseInfo", "RetryInfo",
        "StartInfo", "WireEvent", "active_hooks", "check_hooks", "install_hooks", "set_default_hooks",
        "uninstall_hooks",
    ],
    "llmstreamer.mcp": [
        "CallResult", "DEFAULT_TIMEOUT", "MAX_PAGES", "MCPClient", "MCPError", "Permission",
    ],
    "llmstreamer.models": [
        "DocumentPart", "Event", "ImagePart", "Message", "Model", "Part", "ROLES", "Response", "TextPart",
        "ThinkingPart", "ToolCall", "ToolResult", "Usage",
    ],
    "llmstreamer.otel": [
        "CONTENT_ENV", "OTelHooks", "instrument", "uninstrument",
    ],
    "llmstreamer.pixigpt": [
        "Assistant", "CodeOutput", "DEFAULT_BASE_URL", "Media", "Moderation", "PROVIDER", "PixiGPTClient",
        "RerankResult", "Run", "Source", "Thread", "ThreadMessage", "VisionResult",
    ],
    "llmstreamer.provider": [
        "CancelToken", "HTTPStreamer", "Options", "ProviderSpec", "Request", "RoundContext", "StreamHandle",
        "Streamer", "loads",
    ],
    "llmstreamer.providers": [

    ],
    "llmstreamer.providers.anthropic": [
        "ADAPTIVE_MAX_TOKENS", "API_VERSION", "AnthropicStreamer", "DEFAULT_MAX_TOKENS", "EFFORTS",
        "MIN_THINKING_BUDGET", "STOP_REASONS", "THINKING_BUDGETS",
    ],
    "llmstreamer.providers.compatible": [
        "OpenAICompatibleStreamer", "QUIRKS",
    ],
    "llmstreamer.providers.eliza": [
        "ElizaStreamer",
    ],
    "llmstreamer.providers.gemini": [
        "CALLING_MODES", "FINISH_REASONS", "GeminiStreamer",
    ],
    "llmstreamer.providers.mistral": [
        "MistralStreamer",
    ],
    "llmstreamer.providers.modelsocket": [
        "DEFAULT_URL", "ModelSocketClient", "ModelSocketStreamer", "Seq",
    ],
    "llmstreamer.providers.ollama": [
        "DEFAULT_PORT", "DONE_REASONS", "ERROR_HINTS", "OllamaStreamer",
    ],
    "llmstreamer.providers.openai": [
        "OpenAIStreamer",
    ],
    "llmstreamer.registry": [
        "BUILTIN", "ENTRY_POINT_GROUP", "PRESETS", "Preset", "ProviderInfo", "list_providers", "providers",
        "resolve", "streamer",
    ],
    "llmstreamer.retry": [
        "RetryPolicy", "Timeout", "parse_retry_after",
    ],
    "llmstreamer.sessions": [
        "Branch", "FORMAT_VERSION", "IMAGE_TOKENS", "Lease", "MAX_NAME", "Session", "SessionInfo",
        "SessionMessage", "SessionStore", "check_labels", "check_name", "estimate_tokens", "is_session_id",
        "new_id", "open_session_store",
    ],
    "llmstreamer.testing": [
        "CallbackRecorder", "FakeLLMServer", "RecordedRequest", "Reply", "fake_embedding", "instant_retries",
        "words",
    ],
    "llmstreamer.testing.modelsocket": [
        "CloseSeq", "Drop", "Fail", "FakeModelSocketServer", "FakeSeq", "GenRequest", "Generation", "Hidden",
        "Hold", "Raw", "SUBPROTOCOL", "ToolCalls",
    ],
    "llmstreamer.tools": [
        "PERMISSIONS", "Tool", "Toolbox", "execute", "prepare", "tool", "tool_prompt",
    ],
    "llmstreamer.web": [
        "Messages", "ResumableSSE", "ResumableStreams", "SSEStream", "StreamEvent", "StreamLogError",
        "UnknownStreamError", "flask_response", "flask_resume", "relay", "sse_stream",
    ],
}


def _public_modules() -> list[str]:
    """llmstreamer and every submodule whose dotted path has no underscore part."""
    found = [m.name for m in pkgutil.walk_packages(llmstreamer.__path__, "llmstreamer.")]
    return ["llmstreamer", *sorted(n for n in found if not any(p.startswith("_") for p in n.split(".")[1:]))]


def _public_names(name: str) -> list[str]:
    """``__all__`` plus every name the module itself defines at the top level without an underscore."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module(name)
    defined: set[str] = set()
    for node in ast.parse(inspect.getsource(module)).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined.add(node.target.id)
    public = {d for d in defined if not d.startswith("_") and d != "log"}
    return sorted(set(getattr(module, "__all__", ())) | public)


def test_every_public_module_is_pinned() -> None:
    """The set of public modules is the pinned one: a new public module is a decision too."""
    assert _public_modules() == list(PUBLIC)


def test_every_public_name_is_pinned() -> None:
    """Each public module offers exactly its pinned names."""
    assert {name: _public_names(name) for name in _public_modules()} == PUBLIC


def test_every_listed_name_exists() -> None:
    """Every name of every __all__ can be imported from its module."""
    for name in _public_modules():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = importlib.import_module(name)
        for attr in getattr(module, "__all__", ()):
            assert hasattr(module, attr), f"{name}.{attr}"
