"""``llmstreamer embed``: vectors one per line or as JSON, options passed on, errors as exit codes."""

from __future__ import annotations

import io
import json

import pytest

from llmstreamer.cli import main
from llmstreamer.testing import FakeLLMServer, fake_embedding


def test_plain_output_one_line_per_text(server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Each text's vector is one line of space-separated numbers, in order."""
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url("openai"))
    assert main(["embed", "-m", "openai:text-embedding-3-small", "--dimensions", "4", "one", "two words"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [[float(x) for x in line.split()] for line in lines] == [fake_embedding("one", 4), fake_embedding("two words", 4)]
    assert server.requests[0].json == {
        "model": "text-embedding-3-small", "input": ["one", "two words"], "encoding_format": "float", "dimensions": 4,
    }


def test_json_output(server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints provider, model, vectors and usage as one object; --task-type reaches Gemini."""
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    monkeypatch.setenv("GEMINI_BASE_URL", server.base_url("gemini"))
    assert main(["embed", "-m", "gemini", "--json", "--task-type", "retrieval_query", "hi"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"provider": "gemini", "model": "gemini-embedding-001", "vectors": [fake_embedding("hi")], "usage": None}
    assert server.requests[0].json["requests"][0]["taskType"] == "RETRIEVAL_QUERY"


def test_eliza_by_default_and_normalize(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """With nothing configured, Eliza embeds offline; --normalize keeps unit length."""
    monkeypatch.delenv("LLMSTREAMER_MODEL", raising=False)
    assert main(["embed", "--normalize", "--dimensions", "8", "hello"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    values = [float(x) for x in line.split()]
    assert len(values) == 8 and sum(v * v for v in values) == pytest.approx(1.0)


def test_stdin_lines_are_texts(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Without TEXT arguments, each non-empty line of a piped stdin is one text."""
    monkeypatch.setattr("sys.stdin", io.StringIO("first\n\nsecond\n"))
    assert main(["embed", "-m", "eliza", "--dimensions", "4"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_usage_errors_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A provider without embeddings, or no text at all, exits 2 with a message."""
    monkeypatch.setenv("GROQ_API_KEY", "k")
    assert main(["embed", "-m", "groq:llama", "x"]) == 2
    assert "has no embeddings" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["embed", "-m", "eliza"]) == 2
    assert "at least one TEXT" in capsys.readouterr().err


def test_provider_failure_exits_1(server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A provider error exits 1 and names the error."""
    from llmstreamer.testing import Reply

    server.add(Reply(status=401))
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url("openai"))
    assert main(["embed", "-m", "openai", "x"]) == 1
    assert "401" in capsys.readouterr().err
