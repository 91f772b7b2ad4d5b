"""The command line, run as a real process: one-shot, stdin, JSON, stats, errors, interactive chat."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect

from llmstreamer.testing import FakeLLMServer, Reply

ROOT = Path(__file__).resolve().parents[2]
SAD = "I am sad about my mother"
SAD_REPLY = "I'm sure it's not pleasant to be sad about your mother."  # seed 7


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m llmstreamer ARGS`` to completion (bounded) and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "llmstreamer", *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_one_shot_chat_prints_the_answer() -> None:
    """`chat PROMPT` streams Eliza's answer to stdout and exits 0."""
    done = run("chat", "--seed", "7", SAD)
    assert (done.returncode, done.stdout, done.stderr) == (0, SAD_REPLY + "\n", "")


def test_prompt_words_are_joined() -> None:
    """Unquoted prompt words are joined with spaces."""
    done = run("chat", "--seed", "7", *SAD.split())
    assert (done.returncode, done.stdout) == (0, SAD_REPLY + "\n")


def test_prompt_from_piped_stdin() -> None:
    """With no prompt argument and stdin piped, the prompt is read from stdin."""
    done = run("chat", "--seed", "7", stdin=SAD + "\n")
    assert (done.returncode, done.stdout, done.stderr) == (0, SAD_REPLY + "\n", "")


def test_empty_stdin_is_a_usage_error() -> None:
    """An empty piped prompt exits 2 with one line saying so."""
    done = run("chat", stdin="")
    assert done.returncode == 2
    assert done.stderr == "llmstreamer: error: no prompt: give one as an argument or on stdin\n"


def test_json_prints_one_event_per_line() -> None:
    """--json prints one JSON object per event: the words, the usage, then finish."""
    done = run("chat", "--json", "--seed", "7", SAD)
    assert done.returncode == 0
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["type"] for e in events] == ["content"] * 11 + ["usage", "finish"]
    assert "".join(e["text"] for e in events if e["type"] == "content") == SAD_REPLY
    assert events[-2] == {
        "type": "usage",
        "input_tokens": 6,
        "output_tokens": 14,
        "cached_input_tokens": 0,
        "reasoning_tokens": 0,
        "total_tokens": 20,
    }
    finish = events[-1]
    assert (finish["text"], finish["finish_reason"], finish["provider"], finish["model"]) == (
        SAD_REPLY,
        "stop",
        "eliza",
        "eliza-1966-en",
    )


def test_json_includes_thinking_when_asked() -> None:
    """--json --show-thinking on Eliza starts with its reasoning as thinking events."""
    done = run("chat", "--json", "--show-thinking", "--seed", "7", SAD)
    first = json.loads(done.stdout.splitlines()[0])
    assert first == {"type": "thinking", "text": "Keyword 'i' (rank 10), pattern '* i am * @sad *'.\n"}


def test_show_thinking_goes_to_stderr() -> None:
    """--show-thinking prints the thinking on stderr and leaves stdout to the answer."""
    done = run("chat", "--show-thinking", "--seed", "7", SAD)
    assert (done.returncode, done.stdout) == (0, SAD_REPLY + "\n")
    assert done.stderr.startswith("Keyword 'i' (rank 10)")


def test_stats_go_to_stderr() -> None:
    """--stats prints time to first token, tokens, tokens/s and duration on stderr."""
    done = run("chat", "--stats", "--seed", "7", SAD)
    assert (done.returncode, done.stdout) == (0, SAD_REPLY + "\n")
    line = done.stderr.strip()
    assert line.startswith("llmstreamer: stats: eliza:eliza-1966-en, time to first token ")
    assert "6 input + 14 output tokens" in line and "tokens/s" in line and line.endswith(" s")


def test_max_tokens_and_system_reach_the_provider() -> None:
    """--max-tokens cuts the answer; --system and --temperature are accepted by Eliza."""
    done = run("chat", "--seed", "7", "--max-tokens", "3", "--system", "Be kind.", "-t", "0.5", SAD)
    assert (done.returncode, done.stdout) == (0, "I'm sure\n")


def test_unknown_provider_is_a_usage_error() -> None:
    """An unknown provider exits 2 with one line naming the known providers, no traceback."""
    done = run("chat", "-m", "nosuch:model", "Hi")
    assert done.returncode == 2
    assert done.stderr.startswith("llmstreamer: error: unknown provider 'nosuch'; known providers: ")
    assert "eliza" in done.stderr and "openai" in done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1


def test_missing_key_is_a_usage_error() -> None:
    """A provider without its key exits 2 naming the environment variable, no traceback."""
    done = run("chat", "-m", "openai:gpt-4o-mini", "Hi")
    assert done.returncode == 2
    assert "OPENAI_API_KEY" in done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1


def test_model_from_the_environment() -> None:
    """LLMSTREAMER_MODEL picks the default provider when -m is not given."""
    done = run("chat", "Hi", env={"LLMSTREAMER_MODEL": "openai"})
    assert done.returncode == 2 and "OPENAI_API_KEY" in done.stderr


def test_option_the_provider_cannot_honour_is_a_usage_error() -> None:
    """--pace on a provider other than Eliza exits 2; so does a bad argument value."""
    done = run("chat", "-m", "openai", "--pace", "1", "Hi", env={"OPENAI_API_KEY": "sk-test-not-real"})
    assert (done.returncode, done.stderr) == (2, "llmstreamer: error: --pace only applies to eliza\n")
    done = run("chat", "--max-tokens", "many", "Hi")
    assert done.returncode == 2 and "invalid int value" in done.stderr


def test_provider_error_exits_1_with_one_line() -> None:
    """A provider error exits 1 with one clear line on stderr, no traceback and no key."""
    key = "sk-test-secret-123"
    with FakeLLMServer() as server:
        server.add(Reply(status=401, error={"type": "invalid_api_key", "message": "Incorrect API key provided"}))
        done = run(
            "chat",
            "-m",
            "openai:gpt-4o-mini",
            "Hi",
            env={"OPENAI_API_KEY": key, "OPENAI_BASE_URL": server.base_url("openai")},
        )
    assert done.returncode == 1
    assert done.stderr.startswith("llmstreamer: error: openai 401")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr and key not in done.stderr


def test_models_lists_eliza_models() -> None:
    """`models eliza` prints the model ids, one a line."""
    done = run("models", "eliza")
    assert (done.returncode, done.stdout) == (0, "eliza-1966-en\n")


def test_providers_lists_key_status() -> None:
    """`providers` lists every provider with whether its key is set."""
    done = run("providers", env={"ANTHROPIC_API_KEY": "sk-test-not-real"})
    lines = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert done.returncode == 0
    assert "no key needed" in lines["eliza"]
    assert "key not set" in lines["openai"] and "OPENAI_API_KEY" in lines["openai"]
    assert "key set" in lines["anthropic"] and "sk-test" not in done.stdout


def test_help_exits_0_and_needs_no_provider() -> None:
    """`--help` works, and importing the CLI loads neither requests nor any provider module."""
    done = run("--help")
    assert done.returncode == 0 and "chat" in done.stdout
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, llmstreamer.cli; print(sorted(m for m in sys.modules "
         "if m.startswith(('requests', 'urllib3', 'websocket', 'llmstreamer.providers.', 'llmstreamer._engine')) or m == 'llmstreamer.provider'))"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=True,
    )  # fmt: skip
    assert probe.stdout.strip() == "[]"


def test_no_command_is_a_usage_error() -> None:
    """Running with no command exits 2 with the usage."""
    done = run()
    assert done.returncode == 2 and "usage: llmstreamer" in done.stderr


def test_quickstart_example_runs_offline() -> None:
    """examples/quickstart.py chats with Eliza with no key and no network."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True, text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    assert "> I am sad about my mother." in done.stdout and "sad about your mother" in done.stdout
    assert "> She never listens to me." in done.stdout
    assert done.stdout.count("[stop after") == 2


# --- interactive, through a pseudo-terminal ------------------------------------------------


def spawn(*args: str) -> tuple[pexpect.spawn, io.StringIO]:
    """Start an interactive chat on a pseudo-terminal; the log keeps everything it printed."""
    log = io.StringIO()
    child = pexpect.spawn(
        sys.executable,
        ["-m", "llmstreamer", "chat", *args],
        cwd=str(ROOT),
        env={**os.environ, "TERM": "dumb"},
        encoding="utf-8",
        timeout=20,
        dimensions=(24, 200),
    )
    child.logfile_read = log
    return child, log


def finish(child: pexpect.spawn) -> int:
    """Wait (bounded) for the process to end; its exit status."""
    child.expect(pexpect.EOF, timeout=20)
    child.close()
    status: Any = child.exitstatus
    return int(status)


def test_interactive_chat_keeps_history_and_resets() -> None:
    """Two turns share a history, /reset forgets it, and a goodbye ends the chat with exit 0."""
    child, log = spawn("--seed", "7", "--pace", "0")
    try:
        child.expect_exact("Chatting with eliza:eliza")
        child.expect_exact("> ")
        child.sendline(SAD)
        child.expect_exact(SAD_REPLY)
        child.expect_exact("> ")
        child.sendline("My job is boring")
        child.expect_exact("Does that suggest anything else which belongs to you?")
        child.expect_exact("> ")
        child.sendline("Hmm")  # remembers the mother
        child.expect_exact("Earlier you mentioned your mother.")
        child.expect_exact("> ")
        child.sendline("/reset")
        child.expect_exact("(the conversation was reset)")
        child.expect_exact("> ")
        child.sendline("Hmm")  # nothing remembered any more
        child.expect_exact("I am not sure I understand you fully.")
        child.expect_exact("> ")
        child.sendline("bye")
        child.expect_exact("Goodbye. I hope our talk has helped.")
        assert finish(child) == 0
    finally:
        child.close(force=True)
    assert "Traceback" not in log.getvalue()


def test_interactive_chat_ends_on_ctrl_d() -> None:
    """Ctrl-D at the prompt ends the chat with exit 0."""
    child, log = spawn("--pace", "0")
    try:
        child.expect_exact("> ")
        child.sendeof()
        assert finish(child) == 0
    finally:
        child.close(force=True)
    assert "Traceback" not in log.getvalue()


def test_ctrl_c_during_a_paced_answer_exits_130() -> None:
    """Ctrl-C while Eliza is pacing its words cancels the stream and exits 130, no traceback."""
    child, log = spawn("--seed", "7", "--pace", "30")
    try:
        child.expect_exact("> ")
        child.sendline(SAD)
        child.expect_exact("I'm")  # the first word; the next one is 30 s away
        child.sendintr()
        assert finish(child) == 130
    finally:
        child.close(force=True)
    output = log.getvalue()
    assert "Traceback" not in output and "KeyboardInterrupt" not in output
    assert "pleasant" not in output
