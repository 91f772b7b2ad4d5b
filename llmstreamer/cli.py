"""The command line: ``llmstreamer chat``, ``sessions``, ``agent``, ``embed``, ``models``, ``providers``.

Only cheap modules are imported here; the streamer (and with it ``requests`` and the provider
module) is loaded when a command needs one, so ``llmstreamer --help`` starts fast.

Exit codes: 0 done, 1 the provider failed, 2 a usage error (bad arguments, unknown provider,
missing key, an option the provider cannot honour), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from typing import TYPE_CHECKING, Any, Callable, Sequence

from . import __version__, _cli_sessions
from ._cli_printer import PROG, Printer
from ._cli_run import ELIZA_PACE, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, build, outcome, say, wait
from ._options import REASONING_LEVELS
from .conversation import Conversation
from .errors import ConfigurationError, LLMStreamError
from .models import Message

if TYPE_CHECKING:
    from ._engine import StreamHandle
    from ._turn import TurnHandle
    from .provider import Streamer

__all__ = ["main"]

MODEL_ENV = "LLMSTREAMER_MODEL"
DEFAULT_MODEL = "eliza"


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
        say(f"error: {err.message}")
        return EXIT_USAGE
    except LLMStreamError as err:
        say(f"error: {err}")
        return EXIT_FAILED


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# --- chat ----------------------------------------------------------------------------------


def _chat_options(args: argparse.Namespace, streamer: Streamer) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name in ("system", "temperature", "max_tokens", "seed", "reasoning"):
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    if args.show_thinking and "reasoning" not in options and streamer.provider == "eliza":
        options["reasoning"] = "low"  # Eliza's thinking costs nothing: show it when asked
    return options


def _chat(args: argparse.Namespace) -> int:
    prompt = " ".join(args.prompt).strip()
    interactive = not prompt and sys.stdin.isatty()
    if not prompt and not interactive:
        prompt = sys.stdin.read().strip()
        if not prompt:
            raise ConfigurationError("no prompt: give one as an argument or on stdin")
    spec = args.model or os.environ.get(MODEL_ENV)
    conversation = _cli_sessions.open_conversation(args, spec, functools.partial(build, pace=args.pace), DEFAULT_MODEL)
    streamer = conversation.streamer if conversation is not None else build(spec or DEFAULT_MODEL, args.pace)
    options = _chat_options(args, streamer)

    def printer() -> Printer:
        return Printer(sys.stdout, sys.stderr, as_json=args.json, show_thinking=args.show_thinking)

    if interactive:
        return _interactive(streamer, options, printer, args.stats, conversation)
    callbacks = printer()
    if conversation is not None:
        wait(lambda: conversation.send(prompt, callbacks, **options))
    else:
        wait(lambda: streamer.stream_chat([Message.user(prompt)], callbacks, **options))
    return outcome(callbacks, args.stats)


def _interactive(
    streamer: Streamer, options: dict[str, Any], printer: Callable[[], Printer], stats: bool, conversation: Conversation | None
) -> int:
    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:
        pass
    is_quit = getattr(streamer, "is_quit", None)
    conversation = Conversation(streamer) if conversation is None else conversation
    _out(f"Chatting with {streamer.provider}:{streamer.model}. /reset starts over, /exit or Ctrl-D leaves.")

    def turn(start: Callable[[Printer], StreamHandle | TurnHandle]) -> int:
        callbacks = printer()
        wait(lambda: start(callbacks))
        return outcome(callbacks, stats)

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
    from .registry import list_providers

    for info in list_providers():
        status = _KEY_STATUS[(info.requires_key, info.configured)]
        _out(f"{info.name:<20} {status:<14} {' or '.join(info.key_env)}".rstrip())
    return EXIT_OK
