"""The ``llmstreamer agent`` commands: run an agent file or a stored agent, list, show, create, delete.

``cli.py`` hooks these in with `add_agent_command`; everything heavy (PyYAML, Jinja2, the
streamer) is imported when a command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from ._cli_printer import Printer
from .errors import ConfigurationError

if TYPE_CHECKING:
    from ._agent_store import AgentStore
    from .agents import Agent
    from .models import ToolCall

__all__ = ["STORE_ENV", "add_agent_command", "default_store"]

STORE_ENV = "LLMSTREAMER_AGENTS"


def default_store() -> str:
    """``$LLMSTREAMER_AGENTS``, else ``$XDG_CONFIG_HOME/llmstreamer/agents`` (``~/.config`` by default)."""
    found = os.environ.get(STORE_ENV)
    if found:
        return found
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(config, "llmstreamer", "agents")


def add_agent_command(commands: Any) -> None:
    """Add ``agent run|list|show|create|delete`` to the CLI's subcommands."""
    agent = commands.add_parser("agent", help="run, list and store agents (Markdown files with YAML front matter)")
    agent.add_argument("--store", metavar="DIR", help=f"the agent store (default: ${STORE_ENV} or ~/.config/llmstreamer/agents)")
    sub = agent.add_subparsers(dest="agent_command", metavar="ACTION")
    sub.required = True

    run = sub.add_parser("run", help="run an agent file or a stored agent")
    run.add_argument("agent", metavar="PATH_OR_NAME", help="an agent .md file, or a stored agent's name (name@version, id)")
    run.add_argument("--input", default=None, metavar="JSON", help="the agent's input, a JSON object")
    run.add_argument("-m", "--model", metavar="PROVIDER[:MODEL]", help="use this model instead of the agent's")
    run.add_argument("--mcp", action="append", default=[], metavar="URL_OR_COMMAND", help="take tools from this MCP server (repeatable)")
    run.add_argument("--files", metavar="ROOT", help="give the agent read-only file tools on ROOT")
    run.add_argument("--yes", action="store_true", help="approve every tool call that needs permission")
    run.add_argument("--json", action="store_true", help="print one JSON object per event, for scripts")
    run.set_defaults(run=_run)

    show = sub.add_parser("show", help="print an agent as Markdown")
    show.add_argument("agent", metavar="PATH_OR_NAME")
    show.set_defaults(run=_show)

    listing = sub.add_parser("list", help="list the stored agents (newest versions)")
    listing.set_defaults(run=_list)

    create = sub.add_parser("create", help="store agent files (a changed file becomes a new version)")
    create.add_argument("paths", nargs="+", metavar="PATH")
    create.set_defaults(run=_create)

    delete = sub.add_parser("delete", help="delete a stored agent (every version) or name@version")
    delete.add_argument("agent", metavar="NAME[@VERSION]")
    delete.set_defaults(run=_delete)


def _store(args: argparse.Namespace) -> AgentStore:
    from ._agent_store import AgentStore

    return AgentStore(args.store or default_store())


def _find(args: argparse.Namespace) -> Agent:
    """A file path (anything that exists or ends in .md) or a stored agent."""
    from .agents import Agent

    ref = args.agent
    if os.path.isfile(ref) or ref.endswith(".md"):
        return Agent.from_file(ref)
    return _store(args).get(ref)


def _show(args: argparse.Namespace) -> int:
    agent = _find(args)
    if agent.version:
        sys.stdout.write(f"# {agent.name}@{agent.version} (id {agent.id})\n")
    sys.stdout.write(agent.to_text())
    return 0


def _list(args: argparse.Namespace) -> int:
    for agent in _store(args).list():
        sys.stdout.write(f"{agent.name:<24} v{agent.version:<4} {agent.title or agent.description or ''}".rstrip() + "\n")
    return 0


def _create(args: argparse.Namespace) -> int:
    from .agents import Agent

    store = _store(args)
    for path in args.paths:
        stored = store.update(Agent.from_file(path))
        sys.stdout.write(f"{stored.name} v{stored.version}\n")
    return 0


def _delete(args: argparse.Namespace) -> int:
    count = _store(args).delete(args.agent)
    if not count:
        raise ConfigurationError(f"no agent {args.agent!r} in {_store(args).path}")
    sys.stdout.write(f"deleted {count} version(s) of {args.agent.partition('@')[0]}\n")
    return 0


def _confirm(approve_all: bool) -> Any:
    def confirm(call: ToolCall) -> tuple[bool, str]:
        if approve_all:
            return True, "approved by --yes"
        if not sys.stdin.isatty():
            return False, "no one is at the terminal to approve it (use --yes)"
        answer = input(f"\n  allow {call.name}({dict(call.arguments)})? [y/N] ").strip().lower()
        return (True, "approved") if answer == "y" else (False, "the user said no")

    return confirm


def _run(args: argparse.Namespace) -> int:
    from ._cli_run import build, outcome, wait
    from .models import Message

    agent = _find(args)
    text = agent.render(args.input)  # a bad input fails here, before anything starts
    clients: list[Any] = []
    try:
        tools: list[Any] = []
        for target in args.mcp:
            from .mcp import MCPClient

            clients.append(MCPClient(target))
            tools += clients[-1].tools()
        if args.files:
            from ._file_tools import file_tools

            tools += list(file_tools(args.files))
        options = agent.options(tools or None)
        if "tools" in options:
            options["confirm_tool"] = _confirm(args.yes)
        streamer = build(args.model or agent._spec(), None)
        printer = Printer(sys.stdout, sys.stderr, as_json=args.json, show_thinking=False)
        wait(lambda: streamer.stream_chat([Message.user(text)], printer, **options))
        return outcome(printer, False)
    finally:
        for client in clients:
            client.close()
