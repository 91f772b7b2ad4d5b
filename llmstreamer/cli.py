"""The command line: ``llmstreamer chat``, ``sessions``, ``agent``, ``embed``, ``models``, ``providers``.

Only cheap modules are imported here; the streamer (and with it ``requests`` and the provider
module) is loaded when a command needs one, so ``llmstreamer --help`` starts fast.

Exit codes: 0 done, 1 the provider failed, 2 a usage error (bad arguments, unknown provider,
missing key, an option the provider cannot honour), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import sys
import threading
from typing import IO, TYPE_CHECKING, Any, Callable, Sequence

from . import __version__, _cli_sessions
from ._options import REASONING_LEVELS
from .conversation import Conversation
from .errors import CallbackError, ConfigurationError, LLMStreamError, StreamCancelled
from .models import Message

if TYPE_CHECKING:
    from ._turn import TurnHandle
    from .base import Streamer, StreamHandle
    from .models import Response, ToolCall, ToolResult, Usage

__all__ = ["main"]

PROG = "llmstreamer"
MODEL_ENV = "LLMSTREAMER_MODEL"
DEFAULT_MODEL = "eliza"
ELIZA_PACE = 0.05  # seconds between Eliza's words when a person is watching

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Stream chat completions from many LLM providers. With no key set, chat with Eliza.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    chat = commands.add_parser(
        "chat",
        help="stream an answer (one-shot, from stdin, or an interactive chat)",
        description="Stream the answer to PROMPT. Without a prompt: read it from stdin when stdin is piped, "
        "else start an interactive chat (/reset starts over, /exit or Ctrl-D leaves).",
    )
    chat.add_argument("prompt", nargs="*", help="the message to send (words are joined with spaces)")
    chat.add_argument(
        "-m",
        "--model",
        metavar="PROVIDER[:MODEL]",
        help=f"e.g. openai:gpt-4o-mini or anthropic (default: ${MODEL_ENV}, else {DEFAULT_MODEL})",
    )
    chat.add_argument("-s", "--system", help="a system prompt")
    chat.add_argument("-t", "--temperature", type=float, help="sampling temperature")
    chat.add_argument("--max-tokens", type=int, metavar="N", help="cap the answer at N tokens")
    chat.add_argument("--seed", type=int, metavar="N", help="a seed, for providers that honour one (Eliza does)")
    chat.add_argument("--reasoning", choices=REASONING_LEVELS, help="how hard the model should think")
    chat.add_argument(
        "--show-thinking", action="store_true", help="print the model's thinking (on stderr) as it arrives"
    )
    chat.add_argument("--json", action="store_true", help="print one JSON object per event, for scripts")
    chat.add_argument(
        "--stats",
        action="store_true",
        help="print time to first token, tokens, output tokens/s over the whole answer, and duration on stderr",
    )
    chat.add_argument(
        "--pace",
        type=_seconds,
        metavar="SECONDS",
        help=f"Eliza only: delay between words (default {ELIZA_PACE} on a terminal, else 0)",
    )
    _cli_sessions.add_chat_arguments(chat)
    chat.set_defaults(run=_chat)

    models = commands.add_parser("models", help="list the models a provider offers")
    models.add_argument("provider", nargs="?", help=f"a provider name (default: that of ${MODEL_ENV}, else eliza)")
    models.set_defaults(run=_models)

    providers = commands.add_parser("providers", help="list the providers and whether their key is set")
    providers.set_defaults(run=_providers)
    from ._cli_embed import add_embed

    add_embed(commands)
    _cli_sessions.add_commands(commands)
    from ._cli_agents import add_agent_command

    add_agent_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Example::

        llmstreamer chat "I am sad about my mother"
        llmstreamer chat -m openai:gpt-4o-mini --stats "Say hi"
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse has reported
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return EXIT_INTERRUPTED
    except ConfigurationError as err:
        _say(f"error: {err.message}")
        return EXIT_USAGE
    except LLMStreamError as err:
        _say(f"error: {err}")
        return EXIT_FAILED


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _say(line: str) -> None:
    sys.stderr.write(f"{PROG}: {line}\n")
    sys.stderr.flush()


# --- chat ----------------------------------------------------------------------------------


class _Printer:
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
            self._emit(type="tool_call", id=call.id, name=call.name, arguments=dict(call.arguments))
        else:
            self.err.write(f"[tool call {call.name}({json.dumps(dict(call.arguments))})]\n")

    def on_tool_result(self, result: ToolResult) -> None:
        if self.as_json:
            self._emit(type="tool_result", call_id=result.call_id, name=result.name, content=result.content,
                       is_error=result.is_error)  # fmt: skip
        else:
            self.err.write(f"[tool result {result.name}: {result.content[:200]}]\n")

    def on_usage(self, usage: Usage) -> None:
        if self.as_json:
            self._emit(type="usage", **_usage_dict(usage))

    def on_retry(self, error: LLMStreamError, attempt: int, delay: float) -> None:
        if self.as_json:
            self._emit(type="retry", error=type(error).__name__, message=str(error), attempt=attempt, delay=delay)
        else:
            self.err.write(f"{PROG}: {error}; retry {attempt} in {delay:.1f} s\n")

    def on_finish(self, response: Response) -> None:
        self.response = response
        if self.as_json:
            self._emit(
                type="finish",
                text=response.text,
                thinking=response.thinking,
                finish_reason=response.finish_reason,
                provider=response.provider,
                model=response.model,
                request_id=response.request_id,
                usage=_usage_dict(response.usage) if response.usage else None,
                time_to_first_token=response.time_to_first_token,
                duration=response.duration,
            )
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


def _usage_dict(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_input_tokens": usage.cached_input_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "total_tokens": usage.total_tokens,
    }


def _stats(response: Response) -> str:
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


def _build(spec: str, pace: float | None) -> Streamer:
    """The streamer for ``provider[:model]``; Eliza gets its pace."""
    from .registry import resolve, streamer

    cls, _ = resolve(spec.partition(":")[0].strip().lower())
    kwargs: dict[str, Any] = {}
    if getattr(cls, "provider", None) == "eliza":
        kwargs["pace"] = pace if pace is not None else (ELIZA_PACE if sys.stdout.isatty() else 0.0)
    elif pace is not None:
        raise ConfigurationError("--pace only applies to eliza")
    return streamer(spec, **kwargs)


def _chat_options(args: argparse.Namespace, streamer: Streamer) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name in ("system", "temperature", "max_tokens", "seed", "reasoning"):
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    if args.show_thinking and "reasoning" not in options and streamer.provider == "eliza":
        options["reasoning"] = "low"  # Eliza's thinking costs nothing: show it when asked
    return options


def _wait(start: Callable[[], StreamHandle | TurnHandle]) -> None:
    """Start a stream and wait for it; Ctrl-C cancels it cleanly, then raises KeyboardInterrupt.

    A SIGINT handler is installed *before* the stream starts, so an interrupt that comes while
    the worker thread is being started (before there is a handle to cancel) is not lost: it is
    remembered and the stream cancelled as soon as the handle exists. Without it, the worker
    (a non-daemon thread) could keep the process alive after the interrupt.
    """
    interrupted = threading.Event()
    handles: list[StreamHandle | TurnHandle] = []

    def on_interrupt(signum: int, frame: Any) -> None:
        interrupted.set()
        for handle in handles:
            handle.cancel()

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_interrupt) if in_main else None
    try:
        handle = start()
        handles.append(handle)
        if interrupted.is_set():
            handle.cancel()
        while not handle.wait(0.5):  # a bounded wait, so the handler runs promptly everywhere
            pass
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
    if interrupted.is_set():
        raise KeyboardInterrupt


def _outcome(printer: _Printer, stats: bool) -> int:
    """Report how one answer ended; returns the exit code it deserves."""
    error = printer.error
    if error is None:
        if stats and printer.response is not None:
            _say(_stats(printer.response))
        return EXIT_OK
    if isinstance(error, StreamCancelled):
        return EXIT_INTERRUPTED
    if isinstance(error, CallbackError) and isinstance(error.__cause__, BrokenPipeError):
        devnull = os.open(os.devnull, os.O_WRONLY)  # stdout was closed by the reader: stop quietly
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    if not printer.as_json:
        _say(f"error: {error}")
    return EXIT_USAGE if isinstance(error, ConfigurationError) else EXIT_FAILED


def _chat(args: argparse.Namespace) -> int:
    prompt = " ".join(args.prompt).strip()
    interactive = not prompt and sys.stdin.isatty()
    if not prompt and not interactive:
        prompt = sys.stdin.read().strip()
        if not prompt:
            raise ConfigurationError("no prompt: give one as an argument or on stdin")
    spec = args.model or os.environ.get(MODEL_ENV)
    conversation = _cli_sessions.open_conversation(args, spec, functools.partial(_build, pace=args.pace), DEFAULT_MODEL)
    streamer = conversation.streamer if conversation is not None else _build(spec or DEFAULT_MODEL, args.pace)
    options = _chat_options(args, streamer)

    def printer() -> _Printer:
        return _Printer(sys.stdout, sys.stderr, as_json=args.json, show_thinking=args.show_thinking)

    if interactive:
        return _interactive(streamer, options, printer, args.stats, conversation)
    callbacks = printer()
    if conversation is not None:
        _wait(lambda: conversation.send(prompt, callbacks, **options))
    else:
        _wait(lambda: streamer.stream_chat([Message.user(prompt)], callbacks, **options))
    return _outcome(callbacks, args.stats)


def _interactive(
    streamer: Streamer, options: dict[str, Any], printer: Callable[[], _Printer], stats: bool, conversation: Conversation | None
) -> int:
    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:
        pass
    is_quit = getattr(streamer, "is_quit", None)
    conversation = Conversation(streamer) if conversation is None else conversation
    _out(f"Chatting with {streamer.provider}:{streamer.model}. /reset starts over, /exit or Ctrl-D leaves.")

    def turn(start: Callable[[_Printer], StreamHandle | TurnHandle]) -> int:
        callbacks = printer()
        _wait(lambda: start(callbacks))
        return _outcome(callbacks, stats)

    while True:
        try:
            line = input("> ")
        except EOFError:
            _out()
            return EXIT_OK
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            return EXIT_OK
        if text == "/reset":
            conversation.reset()
            _out("(the conversation was reset)")
            continue
        if text.startswith("/"):
            done = _cli_sessions.slash(text, conversation, turn, options)
            if done is None:
                _out(f"unknown command {text}; commands: /reset, /exit; {_cli_sessions.SLASH_HELP}")
            elif done in (EXIT_USAGE, EXIT_INTERRUPTED):
                return done
            continue
        code = turn(functools.partial(conversation.send, text, **options))
        if code in (EXIT_USAGE, EXIT_INTERRUPTED):
            return code
        if is_quit is not None and code == EXIT_OK and is_quit(text):
            return EXIT_OK


# --- models, providers ---------------------------------------------------------------------


def _models(args: argparse.Namespace) -> int:
    name = args.provider or (os.environ.get(MODEL_ENV) or DEFAULT_MODEL).partition(":")[0]
    from .registry import streamer

    for model in streamer(name.strip().lower()).list_models():
        _out(model.id)
    return EXIT_OK


_KEY_STATUS = {
    (False, False): "no key needed",
    (False, True): "no key needed",
    (True, False): "key not set",
    (True, True): "key set",
}


def _providers(args: argparse.Namespace) -> int:
    from .registry import providers

    for info in providers():
        status = _KEY_STATUS[(info.requires_key, info.configured)]
        _out(f"{info.name:<20} {status:<14} {' or '.join(info.key_env)}".rstrip())
    return EXIT_OK
