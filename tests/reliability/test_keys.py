"""Key hygiene on every HTTP provider: never in repr, str, logs, errors, URLs, CLI JSON or web events.

Each check runs on every provider, with the paths that are easy to forget: an in-band error
event or a retried error that echoes the key, log records of every logger (urllib3 included) at every level, the
command line's ``--json`` output and the web bridge's ``error`` event.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmstreamer import LLMStreamError, RetryPolicy
from llmstreamer.testing import FakeLLMServer, Reply

from ..conftest import Recorder
from .conftest import CREDENTIAL, HI, KEY, QUICK_RETRY, TEXT, make, stream

ROOT = Path(__file__).resolve().parents[2]
ECHO = {"type": "invalid_request_error", "message": f"Incorrect API key provided: {KEY}", "error": f"bad key {KEY}"}


def no_key(*texts: object) -> None:
    """Assert the key appears in none of ``texts`` (each rendered with str and repr)."""
    for text in texts:
        assert KEY not in str(text) and KEY not in repr(text)


def test_key_not_in_repr_str_or_attributes(flavor: str, server: FakeLLMServer) -> None:
    """A streamer's repr, str and every attribute's repr hide the key."""
    with make(flavor, server.base_url(flavor)) as s:
        no_key(s, *vars(s).values())


def test_key_from_the_environment_is_hidden_and_sent(flavor: str, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key read from the provider's environment variable is hidden the same way, and still sent."""
    s = make(flavor, server.base_url(flavor))
    variable = s.spec.api_key_env[0]
    s.close()
    monkeypatch.setenv(variable, KEY)
    with make(flavor, server.base_url(flavor), api_key=None) as s:
        no_key(s, *vars(s).values())
        s.chat(HI)
    assert KEY in server.requests[0].headers[CREDENTIAL[flavor]]


def test_key_in_no_log_record_error_or_url(flavor: str, server: FakeLLMServer, caplog: pytest.LogCaptureFixture) -> None:
    """Across a success, an HTTP error and an in-band error that echo the key, no log record of any
    logger at any level, no error text or attribute, and no URL holds it."""
    server.add(
        Reply(text=TEXT),
        Reply(status=401, body={"error": {"type": "invalid_api_key", "message": f"Incorrect API key provided: {KEY}"}}),
        Reply(text=["partial"], error=ECHO),
    )
    errors = []
    with caplog.at_level(logging.DEBUG), make(flavor, server.base_url(flavor)) as s:
        s.chat(HI)
        for _ in range(2):
            with pytest.raises(LLMStreamError) as info:
                s.chat(HI)
            errors.append(info.value)
        s.list_models()
    assert {r.name.split(".")[0] for r in caplog.records} >= {"urllib3"}  # DEBUG reached every library
    for record in caplog.records:
        no_key(record.getMessage(), record.args, record.exc_text)
    for error in errors:
        no_key(error, error.message, error.args, vars(error))
    assert all(KEY not in r.path for r in server.requests)  # Gemini sends its key in a header
    assert all(KEY in r.headers[CREDENTIAL[flavor]] for r in server.requests)


def test_retried_error_that_echoes_the_key(flavor: str, server: FakeLLMServer) -> None:
    """An echoed key is gone from the error on_retry gets, as from the one on_error gets."""
    echo = {"type": "overloaded_error", "message": f"overloaded for {KEY}", "error": f"server busy {KEY}"}
    server.add(Reply(error=echo, text=()), Reply(error=echo, text=()))
    seen: list[LLMStreamError] = []

    class Spy(Recorder):
        def on_retry(self, error: LLMStreamError, attempt: int, delay: float) -> None:
            seen.append(error)
            super().on_retry(error, attempt, delay)

    recorder = Spy()
    with make(flavor, server.base_url(flavor), retry=RetryPolicy(retries=1, initial_delay=0.001, jitter=0)) as s:
        stream(s, recorder)
    # Mistral's and Ollama's wires carry this in-band error as an unmapped StreamError: not retried
    assert len(seen) == (0 if flavor in ("mistral", "ollama") else 1) and recorder.error is not None
    for error in [*seen, recorder.error]:
        no_key(error, error.message, vars(error))


# --- the command line and the web bridge ---------------------------------------------------------

# provider -> the environment variable that points it at the fake server
_BASE_URL_ENV = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL", "gemini": "GEMINI_BASE_URL", "ollama": "OLLAMA_HOST"}


@pytest.mark.parametrize("provider", sorted(_BASE_URL_ENV))
def test_cli_json_output_never_holds_the_key(provider: str, server: FakeLLMServer) -> None:
    """`llmstreamer chat --json` reports an error that echoed the key without the key, on stdout and stderr."""
    server.add(Reply(text=["partial"], error=ECHO))
    probe = make(provider, server.base_url(provider))
    key_env = probe.spec.api_key_env[0]
    probe.close()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update({key_env: KEY, _BASE_URL_ENV[provider]: server.base_url(provider)})
    done = subprocess.run(
        [sys.executable, "-m", "llmstreamer", "chat", "--json", "-m", f"{provider}:some-model", "Hi"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
        check=False,
    )
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 1 and events[-1]["type"] == "error", (done.stdout, done.stderr)
    assert "***" in events[-1]["message"]
    no_key(done.stdout, done.stderr)
    assert KEY in server.requests[0].headers[CREDENTIAL[provider]]


def test_web_error_event_never_holds_the_key(flavor: str, server: FakeLLMServer) -> None:
    """The web bridge's SSE ``error`` event for an error that echoed the key does not hold the key."""
    from llmstreamer.web import sse_stream

    server.add(Reply(text=["partial"], error=ECHO))
    with make(flavor, server.base_url(flavor)) as s:
        body = b"".join(sse_stream(s, HI, keepalive=None)).decode()
    assert "event: error" in body
    no_key(body)


# --- hooks, OpenTelemetry and the stream log line --------------------------------------------------


def test_key_in_no_hook_argument_span_metric_or_log_line(flavor: str, server: FakeLLMServer, caplog: pytest.LogCaptureFixture) -> None:
    """With every hook, the OpenTelemetry instrumentation (content on) and the log line installed, a
    success, a retried error, an HTTP error and an in-band error that echo the key leave it in no
    hook argument, span attribute, span event, span status, metric attribute or log record."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import llmstreamer.otel
    from llmstreamer.hooks import LogHooks

    from ..hookspy import HookSpy

    echo = {"type": "overloaded_error", "message": f"overloaded for {KEY}", "error": f"server busy {KEY}"}
    server.add(
        Reply(text=TEXT),
        Reply(status=503, body={"error": {"type": "server_error", "message": f"busy, key {KEY}"}}),
        Reply(text=TEXT),
        Reply(status=401, body={"error": {"type": "invalid_api_key", "message": f"Incorrect API key provided: {KEY}"}}),
        Reply(text=["partial"], error=echo),
    )
    exporter, reader, tracer_provider = InMemorySpanExporter(), InMemoryMetricReader(), TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    llmstreamer.otel.instrument(tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader]), capture_content=True)
    spy = HookSpy()
    try:
        with caplog.at_level(logging.DEBUG), make(flavor, server.base_url(flavor), hooks=[spy, LogHooks(content=True)], retry=QUICK_RETRY) as s:
            s.chat(HI)
            for _ in range(3):
                recorder = stream(s, Recorder())
    finally:
        llmstreamer.otel.uninstrument()
    assert len(spy.values("on_end")) == 4 and spy.values("on_request") and spy.values("on_event")
    for _, value in spy.calls:
        no_key(value, *(getattr(value, f) for f in attrs_names(value)))
    spans = exporter.get_finished_spans()
    assert len(spans) == 4 and recorder.error is not None
    for span in spans:
        no_key(dict(span.attributes or {}), [(e.name, dict(e.attributes or {})) for e in span.events], span.status.description)
    data = reader.get_metrics_data()
    assert data is not None
    points = [dict(p.attributes or {}) for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics for p in m.data.data_points]
    assert points
    no_key(points)
    assert any(r.name == "llmstreamer.hooks" for r in caplog.records)
    for record in caplog.records:
        no_key(record.getMessage(), record.args, record.exc_text)


def attrs_names(value: object) -> list[str]:
    """The field names of an attrs value (its every field is checked, not only its repr)."""
    import attrs

    return [f.name for f in attrs.fields(type(value))] if attrs.has(type(value)) else []


def test_key_in_no_hook_argument_of_a_seq_stream(caplog: pytest.LogCaptureFixture) -> None:
    """The hooks given to ModelSocketClient.connect (and the log line and OpenTelemetry beside them)
    see a Seq's finished stream and its stream whose error echoes the key without the key."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import llmstreamer.otel
    from llmstreamer import ModelSocketClient
    from llmstreamer.hooks import LogHooks
    from llmstreamer.testing.modelsocket import Fail, FakeModelSocketServer, Generation

    from ..hookspy import HookSpy

    exporter, tracer_provider = InMemorySpanExporter(), TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    llmstreamer.otel.instrument(tracer_provider=tracer_provider, capture_content=True)
    spy = HookSpy()
    try:
        with FakeModelSocketServer(api_key=KEY) as ms, caplog.at_level(logging.DEBUG):
            ms.add(Generation("All fine."), Generation(["Hel", Fail(f"bad key {KEY}", code="invalid_request_error")]))
            with ModelSocketClient.connect(ms.url, KEY, timeout=5, hooks=[spy, LogHooks(content=True)]) as client:
                seq = client.open("m", skip_prelude=True)
                seq.append("Hi")
                assert seq.generate().result(5).text == "All fine."
                recorder = Recorder()
                assert seq.generate(recorder).wait(10)
    finally:
        llmstreamer.otel.uninstrument()
    assert recorder.calls == [("content", "Hel"), ("error", "BadRequestError")]
    assert [s.outcome for s in spy.values("on_end")] == ["finished", "error"]
    assert {"on_start", "on_send", "on_event", "on_end"} <= set(spy.names())
    assert any("bad key ***" in e.data for e in spy.values("on_event"))
    for _, value in spy.calls:
        no_key(value, *(getattr(value, f) for f in attrs_names(value)))
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    for span in spans:
        no_key(dict(span.attributes or {}), [(e.name, dict(e.attributes or {})) for e in span.events], span.status.description)
    ours = [r for r in caplog.records if r.name.startswith("llmstreamer")]  # the fake server logs the handshake
    assert any(r.name == "llmstreamer.hooks" for r in ours)
    for record in ours:
        no_key(record.getMessage(), record.args, record.exc_text)
