"""The scripts of `FakeModelSocketServer`: what a generation sends, step by step, and the fake sequences."""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable, Mapping, Union

import attrs

from ._reply import words

__all__ = [
    "CloseSeq",
    "Drop",
    "Fail",
    "FakeSeq",
    "GenRequest",
    "GenSource",
    "Generation",
    "Hidden",
    "Hold",
    "Raw",
    "Step",
    "ToolCalls",
    "echo",
]


@attrs.frozen
class Hidden:
    """Hidden text (a special token such as ``<|eot_id|>``): sent with ``hidden: true``."""

    text: str


@attrs.frozen
class ToolCalls:
    """A ``seq_tool_call``: the generation then waits for a ``tool_return`` on its own cid.

    Each call is ``{"name", "args" (JSON text), "id"?}``.
    """

    calls: tuple[Mapping[str, Any], ...] = attrs.field(converter=tuple)


@attrs.frozen
class Fail:
    """An ``error`` event. ``route``: ``"cid"`` (the generation's), ``"seq"`` (only the seq_id) or
    ``"none"`` (neither: the generation goes on). ``code``/``details`` as the real server sends them."""

    message: str = "the model failed"
    code: str | None = None
    details: Mapping[str, Any] | None = None
    route: str = attrs.field(default="cid", validator=attrs.validators.in_(("cid", "seq", "none")))


@attrs.frozen
class CloseSeq:
    """The server closes the sequence mid-generation: ``seq_closed`` without a cid, with ``error``."""

    error: str | None = "the sequence was evicted"


@attrs.frozen
class Drop:
    """Drop the connection abruptly (no close frame), as a network failure would."""


@attrs.frozen
class Hold:
    """Send nothing more for this generation until ``event`` is set."""

    event: threading.Event


@attrs.frozen
class Raw:
    """Send this text as one frame, verbatim (malformed JSON, unknown events...)."""

    text: str


Step = Union[str, Hidden, ToolCalls, Fail, CloseSeq, Drop, Hold, Raw]


def _steps(value: str | Iterable[Step]) -> tuple[Step, ...]:
    return words(value) if isinstance(value, str) else tuple(value)


@attrs.frozen
class Generation:
    """What the model "generates" for one ``gen``: visible chunks and scripted events, in order.

    ``steps`` is a string (split into word chunks) or a list of steps: ``str`` chunks, `Hidden`,
    `ToolCalls`, `Fail`, `CloseSeq`, `Drop`, `Hold`, `Raw`. ``eos`` is the hidden text sent before
    ``seq_gen_finish`` (None: none). A ``max_tokens`` in the request cuts the chunks short.
    """

    steps: tuple[Step, ...] = attrs.field(default=(), converter=_steps)
    eos: str | None = "<|eot_id|>"


@attrs.frozen
class GenRequest:
    """A ``gen`` as a script function sees it: the sequence's context so far and the options."""

    seq_id: str
    cid: str
    model: str
    context: tuple[tuple[str, str], ...]
    options: Mapping[str, Any]


GenSource = Union[Generation, Callable[[GenRequest], Generation]]


def echo(request: GenRequest) -> Generation:
    """The default script: answer ``You said: <the last user text>``."""
    said = next((text for role, text in reversed(request.context) if role == "user"), "")
    return Generation(f"You said: {said}")


@attrs.define
class FakeSeq:
    """A sequence on the fake server: its model, context (``(role, text)`` pairs) and state."""

    id: str
    model: str
    context: list[tuple[str, str]] = attrs.Factory(list)
    state: str = "ready"
    tools_enabled: bool = False
    skip_prelude: bool = False
    parent: str | None = None
    owner: Any = attrs.field(default=None, repr=False)

    def tokens(self) -> int:
        """The context's size in "tokens" (words)."""
        return sum(len(text.split()) + 1 for _, text in self.context)
