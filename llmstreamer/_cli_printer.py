"""What the command line prints while a stream runs: the answer as text, or one JSON object per event."""

from __future__ import annotations

import json
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import LLMStreamError
    from .models import Response, ToolCall, ToolResult, Usage

__all__ = ["PROG", "Printer", "stats_line"]

PROG = "llmstreamer"


class Printer:
    """Callbacks that print one answer as it arrives: text (thinking on stderr) or JSON lines."""

    def __init__(self, out: IO[str], err: IO[str], *, as_json: bool, show_thinking: bool) -> None:
        self.out = out
        self.err = err
        self.as_json = as_json
        self.show_thinking = show_thinking
        self.dim = err.isatty()
        self.response: Response | None = None
        self.error: LLMStreamError | None = None
        self.line_open = False  # answer text was printed without its final newline

    def _emit(self, **event: Any) -> None:
        self.out.write(json.dumps(event) + "\n")
        self.out.flush()

    def on_content(self, text: str) -> None:
        if self.as_json:
            self._emit(type="content", text=text)
            return
        self.out.write(text)
        self.out.flush()
        self.line_open = not text.endswith("\n")

    def on_thinking(self, text: str) -> None:
        if self.as_json:
            self._emit(type="thinking", text=text)
        elif self.show_thinking:
            self.err.write(f"\x1b[2m{text}\x1b[0m" if self.dim else text)
            self.err.flush()

    def on_tool_call(self, call: ToolCall) -> None:
        if self.as_json:
            self._emit(type="tool_call", **call.to_dict())
        else:
            self.err.write(f"[tool call {call.name}({json.dumps(dict(call.arguments))})]\n")

    def on_tool_result(self, result: ToolResult) -> None:
        if self.as_json:
            self._emit(type="tool_result", **result.to_dict())
        else:
            self.err.write(f"[tool result {result.name}: {result.content[:200]}]\n")

    def on_usage(self, usage: Usage) -> None:
        if self.as_json:
            self._emit(type="usage", **usage.to_dict())

    def on_retry(self, error: LLMStreamError, attempt: int, delay: float) -> None:
        if self.as_json:
            self._emit(type="retry", error=type(error).__name__, message=str(error), attempt=attempt, delay=delay)
        else:
            self.err.write(f"{PROG}: {error}; retry {attempt} in {delay:.1f} s\n")

    def on_finish(self, response: Response) -> None:
        self.response = response
        if self.as_json:
            self._emit(type="finish", **response.to_dict())
        else:
            self.end_line()

    def on_error(self, error: LLMStreamError) -> None:
        self.error = error
        if self.as_json:
            self._emit(type="error", error=type(error).__name__, message=str(error))
        else:
            self.end_line()

    def end_line(self) -> None:
        if self.line_open:
            self.out.write("\n")
            self.out.flush()
            self.line_open = False


def stats_line(response: Response) -> str:
    """The ``--stats`` line: provider and model, time to first token, tokens, tokens/s, duration."""
    parts = [f"{response.provider}:{response.model}"]
    ttft = response.time_to_first_token
    parts.append(f"time to first token {ttft:.3f} s" if ttft is not None else "no text")
    usage = response.usage
    if usage is not None:
        parts.append(f"{usage.input_tokens} input + {usage.output_tokens} output tokens")
        if response.duration > 0:
            parts.append(f"{usage.output_tokens / response.duration:.1f} tokens/s")
    parts.append(f"{response.duration:.3f} s")
    return "stats: " + ", ".join(parts)
