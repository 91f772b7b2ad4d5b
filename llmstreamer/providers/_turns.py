"""Conversations as APIs with a separate system prompt and strictly alternating turns want them."""

from __future__ import annotations

from typing import Any, Callable

from .._options import Options
from ..models import Message

__all__ = ["alternating_turns", "system_texts"]


def system_texts(messages: tuple[Message, ...], options: Options, *, keep_empty: bool) -> list[str]:
    """The ``system=`` option, then the text of each system message, in order."""
    found = [m.text for m in messages if m.role == "system" and (keep_empty or m.text)]
    return [options.system, *found] if options.system else found


def alternating_turns(
    messages: tuple[Message, ...],
    assistant: str,
    key: str,
    parts_of: Callable[[Message], list[dict[str, Any]]],
    *,
    skip_empty: bool,
) -> list[dict[str, Any]]:
    """The non-system messages as ``{"role": ..., key: parts}`` turns, user and ``assistant``
    alternating: consecutive messages of one side merge into one turn (tool results are user turns)."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = assistant if message.role == "assistant" else "user"
        parts = parts_of(message)
        if skip_empty and not parts:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1][key].extend(parts)
        else:
            turns.append({"role": role, key: parts})
    return turns
