"""One ModelSocket generation as normalized events: text, token counts, and tool rounds.

A ``gen`` streams ``seq_text`` on its ``cid`` until ``seq_gen_finish``. Hidden text (special
tokens) never becomes content. Token counts come from ``seq_text`` (the latest wins), never from
``seq_gen_finish``, which has none. On ``seq_tool_call`` the tools run here and their results go
back as ``tool_return`` under the SAME ``cid`` with the generation's options (``gen_opts``),
and the same stream goes on. When a called tool is a declaration only (no function), the
stream ends with ``finish_reason`` ``tool_calls`` instead, as on the HTTP providers, and the
generation is left `Paused` on the server: ``Seq.tool_return`` continues it.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Generator, Mapping

import attrs

from ..._accumulate import parse_arguments
from ..._cancel import CancelToken
from ..._options import Options
from ...errors import ConfigurationError, StreamError
from ...models import Event, Message, ToolCall, ToolResult, Usage
from ._wire import PROVIDER, closed_error, event_error

if TYPE_CHECKING:
    from ...tools import Toolbox
    from ._connection import Connection, Inbox

__all__ = ["Outcome", "Paused", "check_options", "gen_options", "render", "stream", "toolbox_of", "wire_results"]

log = logging.getLogger("llmstreamer.providers.modelsocket")

_NUMBER_FIELDS = ("temperature", "top_p", "top_k", "max_tokens", "seed")


def gen_options(options: Options) -> dict[str, Any]:
    """The fields of a ``gen`` command (also sent as a ``tool_return``'s ``gen_opts``)."""
    data: dict[str, Any] = {"role": "assistant"}
    for name in _NUMBER_FIELDS:
        value = getattr(options, name)
        if value is not None:
            data[name] = value
    if options.stop:
        data["stop_strings"] = list(options.stop)
    if options.extra:
        data.update(options.extra)
    return data


def render(message: Message) -> tuple[str, str]:
    """A message as an ``append``: (role, text). Tool calls and results from history become text."""
    if message.role == "tool":
        lines = [f"Result of tool {r.name} (call {r.call_id}): {r.content}" for r in message.tool_results]
        return "system", "\n".join(lines)
    calls = [f"Called tool {c.name} with {c.raw_arguments or json.dumps(dict(c.arguments))}" for c in message.tool_calls]
    return message.role, "\n".join([message.text, *calls] if message.text else calls)


def toolbox_of(tools: Any) -> Toolbox | None:
    """The ``tools=`` option as a `Toolbox`, or None when there are no tools."""
    if tools is None:
        return None
    from ...tools import Toolbox

    box = Toolbox.of(tools)
    return box if len(box) else None


def check_options(options: Options) -> None:
    """Refuse, before anything is sent, what a generation cannot take (a negative seed, bad tools)."""
    if options.seed is not None and options.seed < 0:
        raise ConfigurationError(f"seed must not be negative, got {options.seed}", provider=PROVIDER)
    toolbox_of(options.tools)


@attrs.define
class Paused:
    """A generation waiting for tool results the caller runs: its cid's queue and the calls."""

    inbox: Inbox
    items: list[Any]  # the seq_tool_call's calls, as the server sent them
    calls: list[ToolCall]
    rounds: int
    options: Options


@attrs.define
class Outcome:
    """How a generation ended: ``finished`` (the sequence is ready again), with an ``inband``
    error for its own cid (the server refused the command; the sequence is still sane), or
    ``paused`` on tool calls the caller runs (the server waits for their ``tool_return``)."""

    finished: bool = False
    inband: bool = False
    paused: Paused | None = None


def stream(
    conn: Connection,
    seq_id: str,
    toolbox: Toolbox | None,
    options: Options,
    token: CancelToken,
    outcome: Outcome,
    resume: tuple[Paused, list[dict[str, Any]]] | None = None,
) -> Generator[Event, None, None]:
    """Run one ``gen`` on ``seq_id``, tool rounds included; ends with a ``stop`` event (not ``done``).

    With ``resume`` (a paused generation and the results for its calls) no ``gen`` is sent: the
    results go back as ``tool_return`` on the paused cid and its stream goes on.
    """
    gen = gen_options(options)
    if resume is None:
        inbox = conn.command({"command": "gen", **gen}, seq_id=seq_id)
        rounds = 0
    else:
        inbox, rounds = resume[0].inbox, resume[0].rounds
    token.attach(inbox.wake)
    counts: tuple[int, int] | None = None
    told: tuple[int, int] | None = None  # the counts last given as a usage event
    hidden = False
    try:
        if resume is not None:
            conn.reply(inbox.cid, {"command": "tool_return", "results": resume[1], "gen_opts": dict(gen)}, seq_id=seq_id)
        while True:
            event = conn.next(inbox, token)
            kind = event.get("event")
            if kind == "seq_text":
                text = event.get("text") or ""
                if not isinstance(text, str):
                    raise StreamError(f"seq_text carries {type(text).__name__}, not text", provider=PROVIDER)
                hidden = bool(event.get("hidden"))
                if text and not hidden:
                    yield Event("content", text)
                given, made = event.get("num_input_tokens"), event.get("num_output_tokens")
                if type(given) is int and type(made) is int:
                    counts = (given, made)  # told as one usage event when the generation stops or pauses
                continue
            if counts is not None and counts != told:
                told = counts
                yield Event("usage", data=Usage(input_tokens=counts[0], output_tokens=counts[1]))
            if kind == "seq_tool_call":
                rounds += 1
                stopped = yield from _tool_round(conn, inbox, seq_id, toolbox, options, token, event, rounds, gen, outcome)
                if stopped:
                    return
            elif kind == "seq_gen_finish":
                outcome.finished = True
                limit = options.max_tokens
                # No counts on seq_gen_finish: a cut shows as max_tokens reached without the hidden EOS.
                cut = limit is not None and counts is not None and counts[1] >= limit and not hidden and not rounds
                yield Event("stop", "length" if cut else "stop")
                return
            elif kind == "error":
                outcome.inband = event.get("cid") == inbox.cid
                raise event_error(event)
            elif kind == "seq_closed":
                raise closed_error(event)
            else:
                log.debug("modelsocket: %s ignored during a generation", kind)
    finally:
        token.detach(inbox.wake)
        if outcome.paused is None:
            conn.forget(inbox)


def _tool_round(
    conn: Connection,
    inbox: Inbox,
    seq_id: str,
    toolbox: Toolbox | None,
    options: Options,
    token: CancelToken,
    event: Mapping[str, Any],
    rounds: int,
    gen: Mapping[str, Any],
    outcome: Outcome,
) -> Generator[Event, None, bool]:
    """Run the calls of one ``seq_tool_call`` and send their results.

    True when the stream stops here: past max_iterations, or on a declaration-only tool (the
    caller runs the calls: the generation is left paused in ``outcome``).
    """
    from ...tools import Toolbox, execute

    raw = event.get("tool_calls")
    if not isinstance(raw, list) or not raw:
        raise StreamError("seq_tool_call came without tool_calls", provider=PROVIDER)
    calls = [_tool_call(item, f"call_{rounds}_{n}") for n, item in enumerate(raw, 1)]
    for call in calls:
        yield Event("tool_call", data=call)
    if rounds > options.max_iterations:
        yield Event("stop", "max_iterations")
        return True
    box = toolbox if toolbox is not None else Toolbox.of(None)
    if any(box.get(c.name) is not None and box.get(c.name).fn is None for c in calls):  # type: ignore[union-attr]
        outcome.paused = Paused(inbox, list(raw), calls, rounds, options)
        yield Event("stop", "tool_calls")
        return True
    results = []
    for call in calls:
        result = execute(call, box, options.confirm_tool)
        results.append(result)
        yield Event("tool_result", data=result)
    if token.reason is not None:
        raise token.error(PROVIDER)
    wire = [_result(item, result) for item, result in zip(raw, results)]
    conn.reply(inbox.cid, {"command": "tool_return", "results": wire, "gen_opts": dict(gen)}, seq_id=seq_id)
    return False


def _tool_call(item: Any, fallback_id: str) -> ToolCall:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise StreamError(f"a tool call without a name: {str(item)[:120]}", provider=PROVIDER)
    args = item.get("args")
    raw = args if isinstance(args, str) else "" if args is None else json.dumps(args)
    arguments, error = parse_arguments(raw)
    given = item.get("id")
    return ToolCall(given if isinstance(given, str) and given else fallback_id, item["name"], arguments, raw, error)


def _result(item: Mapping[str, Any], result: ToolResult) -> dict[str, Any]:
    out = {"name": result.name, "result": result.content}
    given = item.get("id")
    if isinstance(given, str) and given:
        out["id"] = given  # echo the server's own call id, never one made up here
    return out


def wire_results(paused: Paused, results: Any) -> list[dict[str, Any]]:
    """The ``tool_return`` results for a paused generation's calls, from `ToolResult`\\ s or strings.

    Results are matched to the calls by ``call_id`` when they carry the calls' ids, else by
    position; there must be one per call.
    """
    from ...errors import ConfigurationError

    given = [results] if isinstance(results, (str, ToolResult)) else list(results)
    calls = paused.calls
    if len(given) != len(calls):
        raise ConfigurationError(f"{len(calls)} tool call(s) wait for results, got {len(given)}", provider=PROVIDER)
    by_id = {r.call_id: r for r in given if isinstance(r, ToolResult)}
    if len(by_id) == len(calls) and set(by_id) == {c.id for c in calls}:
        given = [by_id[c.id] for c in calls]
    out = []
    for item, call, result in zip(paused.items, calls, given):
        if isinstance(result, str):
            result = ToolResult(call.id, call.name, result)
        elif not isinstance(result, ToolResult):
            raise ConfigurationError(f"a tool result is a ToolResult or a str, got {type(result).__name__}", provider=PROVIDER)
        out.append(_result(item, result))
    return out
