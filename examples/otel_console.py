"""OpenTelemetry: each stream becomes a GenAI span with metrics, printed by the console exporters.

Runs with no key and no network on Eliza (the default); ``--model`` picks another provider::

    pip install 'llmstreamer[otel]' opentelemetry-sdk
    python examples/otel_console.py
    python examples/otel_console.py --model openai:gpt-4o-mini     # needs OPENAI_API_KEY
    python examples/otel_console.py --content                      # also record prompt and answer

The stream's span ``chat {model}`` is a child of the ``handle request`` span current where
``stream_chat`` was called, although the stream runs on a worker thread; the ``save answer``
span started inside ``on_finish`` is the stream span's child. In a server, replace the console
exporters with OTLP ones and keep the ``instrument()`` line.
"""

from __future__ import annotations

import argparse
import logging
import sys

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

import llmstreamer
import llmstreamer.otel
from llmstreamer import Message, StreamCallbacks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="eliza", help="provider[:model] (default: eliza)")
    parser.add_argument("--content", action="store_true", help="record the prompt and the answer on the span")
    args = parser.parse_args(argv)

    # The application owns the SDK: where spans and metrics go.
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(tracer_provider)
    meter_provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(ConsoleMetricExporter())])
    metrics.set_meter_provider(meter_provider)

    # One line makes every stream of the process record its span and metrics.
    llmstreamer.otel.instrument(capture_content=args.content)
    # And one more logs a summary line per finished stream (off by default).
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    llmstreamer.set_default_hooks(llmstreamer.hooks.LogHooks())

    tracer = trace.get_tracer("otel_console example")
    failures: list[llmstreamer.LLMStreamError] = []

    def on_finish(response: llmstreamer.Response) -> None:
        print()
        with tracer.start_as_current_span("save answer"):  # a child of the stream's span
            pass

    streamer = llmstreamer.streamer(args.model)
    with tracer.start_as_current_span("handle request"):
        handle = streamer.stream_chat(
            [Message.user("I am sad about my mother.")],
            StreamCallbacks(on_content=lambda t: print(t, end="", flush=True), on_finish=on_finish, on_error=failures.append),
        )
    handle.wait(timeout=120)
    streamer.close()
    meter_provider.shutdown()  # exports the metrics now
    tracer_provider.shutdown()
    if failures:
        print(f"failed: {failures[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
