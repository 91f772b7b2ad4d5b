"""OpenTelemetry for llmstreamer: a GenAI client span per stream, and the GenAI client metrics.

Needs only ``opentelemetry-api`` (``pip install 'llmstreamer[otel]'``); the application brings
the SDK and its exporters. `instrument` makes every stream of the process record:

- one span named ``chat {model}``, kind CLIENT, with the GenAI semantic-convention attributes
  (``gen_ai.operation.name``, ``gen_ai.provider.name`` and the older ``gen_ai.system``,
  ``gen_ai.request.model``, ``gen_ai.request.temperature``/``top_p``/``top_k``/``max_tokens``/
  ``seed``/``stop_sequences``,
  ``gen_ai.response.model``, ``gen_ai.response.id``, ``gen_ai.response.finish_reasons``,
  ``gen_ai.usage.input_tokens``/``output_tokens``, ``server.address``/``server.port``,
  ``error.type``), each retry as a span event named ``retry``, and an ERROR status when the
  stream failed (a cancelled stream is not an error: ``llmstreamer.outcome`` says
  ``cancelled``);
- the histograms ``gen_ai.client.operation.duration`` (s), ``gen_ai.client.token.usage``
  (``{token}``, by ``gen_ai.token.type`` input/output) and
  ``gen_ai.client.operation.time_to_first_chunk`` (s).

The span is the current span inside the stream's callbacks (spans a callback starts are its
children), and its parent is the span that was current where ``stream_chat`` was called: the
context travels to the worker thread. For `Streamer.stream` and `Streamer.chat` the span has the
same parent but is not made current (the loop body is the caller's own code).

Prompts and answers are recorded only when asked (``capture_content=True``, or the environment
variable ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``), as the attributes
``gen_ai.system_instructions``, ``gen_ai.input.messages`` and ``gen_ai.output.messages``. The API
key is never recorded.

Example::

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    llmstreamer.otel.instrument()
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any, Iterator, Mapping
from urllib.parse import urlsplit

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError("llmstreamer.otel needs opentelemetry-api: pip install 'llmstreamer[otel]'") from exc

from . import __version__
from .hooks import EndSummary, Hooks, ResponseInfo, RetryInfo, StartInfo, install_hooks, uninstall_hooks
from .models import ImagePart, Message, TextPart, ThinkingPart, ToolCall, ToolResult

__all__ = ["CONTENT_ENV", "OTelHooks", "instrument", "uninstrument"]

CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

# llmstreamer's provider names -> the well-known gen_ai.provider.name values (others pass as they are)
_PROVIDER_NAMES = {"gemini": "gcp.gemini", "mistral": "mistral_ai"}
# the bucket boundaries the conventions advise
_SECONDS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
_TOKENS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]


class _Stream:
    """The span of one running stream and the attributes its metrics share."""

    __slots__ = ("metric_attributes", "span")

    def __init__(self, span: trace.Span, metric_attributes: dict[str, Any]) -> None:
        self.span = span
        self.metric_attributes = metric_attributes


class OTelHooks(Hooks):
    """Hooks that record GenAI spans and metrics; `instrument` installs one for every stream.

    Give one to a single streamer instead with ``hooks=OTelHooks()``.

    Args:
        tracer_provider: Where spans go (the global tracer provider by default).
        meter_provider: Where metrics go (the global meter provider by default).
        capture_content: Record prompts and answers; None: read ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``.
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        capture_content: bool | None = None,
    ) -> None:
        if capture_content is None:
            capture_content = os.environ.get(CONTENT_ENV, "").strip().lower() in ("1", "true", "yes")
        self.capture_content = capture_content
        self._tracer = trace.get_tracer("llmstreamer", __version__, tracer_provider)
        meter = metrics.get_meter("llmstreamer", __version__, meter_provider)
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=_SECONDS,
        )
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=_TOKENS,
        )
        self._first = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time from the request to the first streamed text.",
            explicit_bucket_boundaries_advisory=_SECONDS,
        )
        self._streams: dict[int, _Stream] = {}

    def on_start(self, info: StartInfo) -> None:
        """Start the stream's span (a child of the caller's current span)."""
        provider = _PROVIDER_NAMES.get(info.provider, info.provider)
        shared: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.system": provider,
            "gen_ai.request.model": info.model,
        }
        where = urlsplit(info.base_url)
        if where.hostname:
            shared["server.address"] = where.hostname
            port = where.port or {"http": 80, "ws": 80, "https": 443, "wss": 443}.get(where.scheme)
            if port:
                shared["server.port"] = port
        attributes = dict(shared)
        requested = (
            ("temperature", info.temperature),
            ("top_p", info.top_p),
            ("top_k", info.top_k),
            ("max_tokens", info.max_tokens),
            ("seed", info.seed),
            ("stop_sequences", info.stop),
        )
        for name, value in requested:
            if value is not None:
                attributes[f"gen_ai.request.{name}"] = value
        if self.capture_content:
            if info.system:
                attributes["gen_ai.system_instructions"] = json.dumps([{"type": "text", "content": info.system}])
            attributes["gen_ai.input.messages"] = json.dumps([_message(m) for m in info.messages])
        span = self._tracer.start_span(f"chat {info.model}", kind=SpanKind.CLIENT, attributes=attributes)
        self._streams[info.stream_id] = _Stream(span, shared)

    @contextlib.contextmanager
    def _scope(self, stream_id: int) -> Iterator[None]:
        """The stream's span made current while its callbacks run (called by the engine)."""
        state = self._streams.get(stream_id)
        if state is None:
            yield
            return
        token = otel_context.attach(trace.set_span_in_context(state.span))
        try:
            yield
        finally:
            otel_context.detach(token)

    def on_response(self, info: ResponseInfo) -> None:
        """Note the HTTP status of the latest response."""
        state = self._streams.get(info.stream_id)
        if state is not None:
            state.span.set_attribute("http.response.status_code", info.status)

    def on_retry(self, info: RetryInfo) -> None:
        """Add a ``retry`` event to the span."""
        state = self._streams.get(info.stream_id)
        if state is not None:
            state.span.add_event(
                "retry", {"retry.attempt": info.attempt, "retry.delay": info.delay, "error.type": info.error_type}
            )

    def on_end(self, summary: EndSummary) -> None:
        """Finish the span's attributes, record the metrics, and end the span."""
        state = self._streams.pop(summary.stream_id, None)
        if state is None:
            return
        span = state.span
        shared = dict(state.metric_attributes)
        if summary.response_model:
            shared["gen_ai.response.model"] = summary.response_model
        if summary.outcome == "error" and summary.error_type:
            shared["error.type"] = summary.error_type
        try:
            attributes: dict[str, Any] = {**shared, "llmstreamer.outcome": summary.outcome}
            attributes["gen_ai.response.finish_reasons"] = [summary.finish_reason]
            if summary.request_id:
                attributes["gen_ai.response.id"] = summary.request_id
            usage = summary.usage
            if usage is not None:
                attributes["gen_ai.usage.input_tokens"] = usage.input_tokens
                attributes["gen_ai.usage.output_tokens"] = usage.output_tokens
            if self.capture_content and summary.response is not None:
                output = _message(summary.response.message)
                output["finish_reason"] = summary.finish_reason
                attributes["gen_ai.output.messages"] = json.dumps([output])
            span.set_attributes(attributes)
            if summary.outcome == "error" and summary.error is not None:
                span.set_status(Status(StatusCode.ERROR, f"{summary.error_type}: {summary.error}"[:500]))
            self._duration.record(summary.duration, shared)
            if summary.time_to_first_token is not None:
                self._first.record(summary.time_to_first_token, shared)
            if usage is not None:
                self._tokens.record(usage.input_tokens, {**shared, "gen_ai.token.type": "input"})
                self._tokens.record(usage.output_tokens, {**shared, "gen_ai.token.type": "output"})
        finally:
            span.end()


def _message(message: Message) -> dict[str, Any]:
    """A message in the conventions' JSON shape: ``{"role", "parts": [...]}``."""
    parts: list[Mapping[str, Any]] = []
    for part in message.content:
        if isinstance(part, TextPart):
            parts.append({"type": "text", "content": part.text})
        elif isinstance(part, ThinkingPart):
            if part.text:
                parts.append({"type": "reasoning", "content": part.text})
        elif isinstance(part, ToolCall):
            parts.append({"type": "tool_call", "id": part.id, "name": part.name, "arguments": dict(part.arguments)})
        elif isinstance(part, ToolResult):
            parts.append({"type": "tool_call_response", "id": part.call_id, "result": part.content})
        elif isinstance(part, ImagePart):
            parts.append({"type": "uri", "modality": "image", "uri": part.url} if part.url else {"type": "blob", "modality": "image", "mime_type": part.mime_type})
    return {"role": message.role, "parts": parts}


_installed: list[OTelHooks] = []


def instrument(
    *,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
    capture_content: bool | None = None,
) -> OTelHooks:
    """Record a GenAI span and metrics for every stream of the process (see the module docs).

    Calling it again replaces the previous instrumentation; `uninstrument` removes it.
    Returns the installed `OTelHooks`.
    """
    uninstrument()
    hooks = OTelHooks(tracer_provider=tracer_provider, meter_provider=meter_provider, capture_content=capture_content)
    install_hooks(hooks)
    _installed.append(hooks)
    return hooks


def uninstrument() -> None:
    """Stop recording spans and metrics for new streams (running ones finish theirs)."""
    while _installed:
        uninstall_hooks(_installed.pop())
