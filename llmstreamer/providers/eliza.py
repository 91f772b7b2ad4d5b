"""Eliza: Joseph Weizenbaum's 1966 DOCTOR script, run locally (no key, no network).

The script lives in ``eliza_doctor.json`` (read once, kept immutable). Answering one message:

1. Normalise: lower-case, split into words and punctuation, expand contractions ("i'm" →
   "i am"). A message that is *only* a quit phrase ("bye", "see you later") gets a goodbye.
2. Split into clauses at punctuation and "but"; collect every keyword of every clause (whole
   words only, so "his history" holds no "hi") and order them by rank, highest first, then by
   position. Greetings are keywords of the lowest rank, so "Hi, I need help" answers the need.
3. For each keyword in that order, try its decomposition patterns (``*`` any words, ``?`` one
   word, ``@group`` one word of a group, other words literally) against its clause. The first
   match picks a reassembly; a rule's reassemblies are used in turn (cycling), starting at an
   offset derived from the seed. ``{n}`` in a reassembly is the n-th capture (``*``, ``?`` or
   ``@group``), *reflected* ("my" → "your", "i am" → "you are", "you" → "I" before a verb,
   else "me"); ``=name`` hands the clause to another keyword's rules.
4. A "my ..." statement is remembered (at most ten, oldest first). When no keyword matches,
   the oldest memory is recalled and forgotten; with no memory, a default reply is used.

Every call replays the conversation's earlier user messages through a fresh state, so the
cycling and the memory follow the conversation given, nothing is shared between streams, and a
seed makes every answer reproducible.
"""

from __future__ import annotations

import math
import random
from typing import Any, Iterator

from .._embed import Batch, EmbedOptions
from .._options import COMMON_OPTIONS, Options
from ..errors import ConfigurationError
from ..models import Event, Message, Model, Usage
from ..provider import ProviderSpec, RoundContext, Streamer
from . import _eliza_embed
from ._eliza_engine import CREATED, Session, estimate, find_quit, load_scripts, tokenize

__all__ = ["ElizaStreamer"]


class ElizaStreamer(Streamer):
    """Weizenbaum's ELIZA (the DOCTOR script), local and free: the default when nothing is configured.

    Args:
        model: ``"eliza"`` (an alias of ``"eliza-1966-en"``) or ``"eliza-1966-en"``.
        seed: Makes the answers reproducible: the same conversation and seed give the same
            answers. Default: a random seed chosen once per streamer (``self.seed``).
        pace: Seconds to wait between streamed words (default 0: as fast as possible).
        **kwargs: The other `Streamer` arguments (accepted; Eliza needs no key or URL).

    Options: ``seed`` overrides the constructor's seed for one call. ``max_tokens`` cuts the
    answer after the last whole word that keeps it within the estimate (about four characters
    a token) and finishes with ``"length"``. ``stop`` cuts the answer before the first stop
    sequence (finish ``"stop"``). ``reasoning`` (any level but ``"none"``) streams Eliza's
    reasoning as thinking: the keyword and pattern chosen, and what it remembers.
    ``system``, ``temperature``, ``top_p``, ``top_k`` and ``thinking_budget`` are accepted and
    ignored (the script is the persona; there is nothing to sample). ``tools`` are accepted and
    never called; ``tool_choice`` may only be ``"auto"`` or ``"none"``. ``response_format``
    raises `ConfigurationError`: Eliza cannot write JSON. Images and tool messages are ignored:
    Eliza reads the text of user messages.

    Usage is estimated as ``(len + 3) // 4`` tokens: input over the text of all messages,
    output over the answer streamed (plus the thinking, also counted in ``reasoning_tokens``).

    Example::

        eliza = ElizaStreamer(seed=1)
        print(eliza.chat([Message.user("I am sad about my mother")]).text)
    """

    spec = ProviderSpec(
        name="eliza",
        default_model="eliza",
        supported_options=COMMON_OPTIONS | {"top_k", "seed", "thinking_budget"},
        terminal="the end of its answer",
        has_embeddings=True,
        embed_batch_size=1024,
        embed_options={"dimensions", "task_type"},
    )

    def __init__(self, model: str | None = None, *, seed: int | None = None, pace: float = 0.0, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        aliases, scripts = load_scripts()
        name = aliases.get(self.model, self.model)
        if name not in scripts:
            known = ", ".join(sorted({*aliases, *scripts}))
            raise ConfigurationError(f"unknown eliza model {self.model!r}; models: {known}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ConfigurationError(f"seed must be an integer, got {seed!r}")
        if isinstance(pace, bool) or not isinstance(pace, (int, float)) or not (0 <= pace < math.inf):
            raise ConfigurationError(f"pace must be a number of seconds >= 0, got {pace!r}")
        self._script = scripts[name]
        self.seed: int = random.randrange(2**32) if seed is None else seed
        self.pace = float(pace)

    def embed_batch(self, texts: tuple[str, ...], options: EmbedOptions) -> Batch:
        """Local hashed n-gram vectors (``_eliza_embed``), 256 long unless ``dimensions`` says
        otherwise; ``task_type`` changes nothing here. Usage is the usual estimate."""
        size = options.dimensions or _eliza_embed.DIMENSIONS
        usage = Usage(input_tokens=sum(estimate(len(t)) for t in texts))
        return Batch([_eliza_embed.vector(t, size) for t in texts], "eliza-hashed-ngrams", usage)

    def list_models(self) -> list[Model]:
        """The Eliza scripts this package ships (``eliza`` is an alias of the English one)."""
        return [Model(name, self.provider, CREATED, "eliza") for name in sorted(load_scripts()[1])]

    def is_quit(self, text: str) -> bool:
        """True when ``text`` is only a quit phrase ("bye", "goodbye."): Eliza says goodbye to it."""
        return find_quit(self._script, tokenize(self._script, text)) is not None

    def validate(self, messages: tuple[Message, ...], options: Options) -> None:
        last = messages[-1]
        if last.role != "user":
            raise ConfigurationError(
                f"eliza answers the user: the last message must be from the user, not {last.role!r}"
            )
        if not last.text.strip():
            raise ConfigurationError("eliza needs words: the last user message has no text")
        if options.tool_choice not in (None, "auto", "none"):
            raise ConfigurationError(
                f"eliza never calls tools: tool_choice must be 'auto' or 'none', got {options.tool_choice!r}"
            )

    def stream_round(self, messages: tuple[Message, ...], options: Options, context: RoundContext) -> Iterator[Event]:
        script = self._script
        session = Session(script, self.seed if options.seed is None else options.seed)
        said = [m.text for m in messages if m.role == "user" and m.text.strip()]
        for text in said[:-1]:
            session.respond(text)
        answer = session.respond(said[-1])
        yield Event("meta", data={"model": script.model})
        thinking = 0
        if options.reasoning not in (None, "none"):
            for line in answer.trace:
                thinking += len(line) + 1
                yield Event("thinking", line + "\n")
        text, finish = answer.text, "stop"
        for stop in options.stop or ():
            cut = text.find(stop)
            if cut >= 0:
                text = text[:cut].rstrip()
        words = text.split(" ") if text else []
        sent = 0
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            if options.max_tokens is not None and estimate(sent + len(piece)) > options.max_tokens:
                finish = "length"
                break
            cancelled = context.token.wait(self.pace) if i and self.pace else context.token.reason is not None
            if cancelled:
                return  # the engine reports StreamCancelled, with what was sent as its partial
            sent += len(piece)
            yield Event("content", piece)
        reasoning = estimate(thinking)
        prompt = estimate(sum(len(m.text) for m in messages))
        yield Event("usage", data=Usage(prompt, estimate(sent) + reasoning, reasoning_tokens=reasoning))
        yield Event("stop", finish)
        yield Event("done")
