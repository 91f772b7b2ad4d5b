"""examples/otel_console.py: the console exporters show the stream span between its caller's span and a callback's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_console_example_prints_nested_spans_and_metrics() -> None:
    """examples/otel_console.py prints the stream span under its caller's span, a callback span under it, and the metrics."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(root / "examples" / "otel_console.py")],
        capture_output=True, text=True, timeout=60, cwd=root, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    decoder, out, found = json.JSONDecoder(), done.stdout, []
    at = out.find("{\n")
    while at >= 0:
        value, end = decoder.raw_decode(out, at)
        found.append(value)
        at = out.find("{\n", end)
    spans = {v["name"]: v for v in found if "span_id" in v.get("context", {})}
    assert sorted(spans) == ["chat eliza", "handle request", "save answer"]
    assert spans["chat eliza"]["parent_id"] == spans["handle request"]["context"]["span_id"]
    assert spans["save answer"]["parent_id"] == spans["chat eliza"]["context"]["span_id"]
    assert spans["chat eliza"]["kind"] == "SpanKind.CLIENT" and spans["chat eliza"]["attributes"]["gen_ai.operation.name"] == "chat"
    (report,) = [v for v in found if "resource_metrics" in v]
    names = {m["name"] for rm in report["resource_metrics"] for sm in rm["scope_metrics"] for m in sm["metrics"]}
    assert names == {"gen_ai.client.operation.duration", "gen_ai.client.operation.time_to_first_chunk", "gen_ai.client.token.usage"}
    assert "llmstreamer.hooks: stream 1: eliza" in done.stderr
