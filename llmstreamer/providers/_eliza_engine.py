"""The ELIZA engine: the DOCTOR script compiled from ``eliza_doctor.json``, and a session that answers.

See `llmstreamer.providers.eliza` for how an answer is found.
"""


from __future__ import annotations

import collections
import functools
import hashlib
import json
import re
from importlib import resources
from typing import Any, Mapping, Sequence

import attrs

__all__ = ["CREATED", "Session", "estimate", "find_quit", "load_scripts", "tokenize"]

_SCRIPT_FILE = "eliza_doctor.json"
CREATED = -126230400  # 1966-01-01T00:00:00Z
_MEMORY_SIZE = 10
_CLAUSE_WORDS = 200  # patterns see at most this many words of a clause
_GOTO_DEPTH = 4
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[.,;:!?]")
_SLOT = re.compile(r"\{(\d+)\}")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")
_PUNCT = frozenset(".,;:!?")


def estimate(chars: int) -> int:
    """Tokens for ``chars`` characters of text: about four characters a token."""
    return (chars + 3) // 4


# --- the script: immutable, loaded once ---------------------------------------------------


@attrs.frozen
class _Rule:
    pattern: str
    elements: tuple[tuple[str, Any], ...]  # ("word", w) | ("any", None) | ("one", None) | ("group", words)
    replies: tuple[str, ...]


@attrs.frozen
class _Keyword:
    name: str
    rank: int
    rules: tuple[_Rule, ...]


@attrs.frozen
class _Script:
    model: str
    language: str
    description: str
    delimiters: frozenset[str]
    substitutions: Mapping[str, tuple[str, ...]]
    reflections: Mapping[str, str]
    pair_reflections: Mapping[tuple[str, str], str]
    subject_forms: Mapping[str, str]
    verbs: frozenset[str]
    quits: frozenset[tuple[str, ...]]
    goodbyes: tuple[str, ...]
    index: Mapping[str, tuple[tuple[_Keyword, tuple[str, ...]], ...]]  # first word → (keyword, phrase)
    by_name: Mapping[str, _Keyword]
    memory: tuple[_Rule, ...]
    defaults: tuple[str, ...]


def _compile_rule(pattern: str, replies: Sequence[str], groups: Mapping[str, frozenset[str]]) -> _Rule:
    elements: list[tuple[str, Any]] = []
    for item in pattern.split():
        if item == "*":
            elements.append(("any", None))
        elif item == "?":
            elements.append(("one", None))
        elif item.startswith("@"):
            elements.append(("group", groups[item[1:]]))
        else:
            elements.append(("word", item))
    captures = sum(1 for kind, _ in elements if kind != "word")
    for reply in replies:
        for slot in _SLOT.findall(reply):
            if not 1 <= int(slot) <= captures:
                raise ValueError(f"eliza script: {reply!r} uses {{{slot}}} but {pattern!r} has {captures} captures")
    return _Rule(pattern, tuple(elements), tuple(replies))


def _compile(model: str, raw: Mapping[str, Any]) -> _Script:
    groups = {name: frozenset(words) for name, words in raw["groups"].items()}
    keywords: list[_Keyword] = []
    index: dict[str, list[tuple[_Keyword, tuple[str, ...]]]] = collections.defaultdict(list)
    for entry in raw["keywords"]:
        words: list[str] = []
        for word in entry["words"]:
            words.extend(sorted(groups[word[1:]]) if word.startswith("@") else [word])
        rules = tuple(_compile_rule(r["pattern"], r["replies"], groups) for r in entry["rules"])
        keyword = _Keyword(entry["words"][0].lstrip("@"), int(entry["rank"]), rules)
        keywords.append(keyword)
        for word in words:
            phrase = tuple(word.split())
            index[phrase[0]].append((keyword, phrase))
    by_name = {k.name: k for k in keywords}
    for keyword in keywords:
        for rule in keyword.rules:
            for reply in rule.replies:
                if reply.startswith("=") and reply[1:] not in by_name:
                    raise ValueError(f"eliza script: {reply!r} names no keyword")
    return _Script(
        model=model,
        language=raw["language"],
        description=raw["description"],
        delimiters=frozenset(raw["delimiters"]),
        substitutions={k: tuple(v.split()) for k, v in raw["substitutions"].items()},
        reflections=dict(raw["reflections"]),
        pair_reflections={(a, b): v for k, v in raw["pair_reflections"].items() for a, b in [k.split()]},
        subject_forms=dict(raw["subject_forms"]),
        verbs=frozenset(raw["verbs"]),
        quits=frozenset(tuple(q.split()) for q in raw["quits"]),
        goodbyes=tuple(raw["goodbyes"]),
        index={k: tuple(v) for k, v in index.items()},
        by_name=by_name,
        memory=tuple(_compile_rule(r["pattern"], r["replies"], groups) for r in raw["memory"]),
        defaults=tuple(raw["defaults"]),
    )


@functools.cache
def load_scripts() -> tuple[Mapping[str, str], Mapping[str, _Script]]:
    """(aliases, scripts by model name), read from the packaged JSON once."""
    text = resources.files(__package__).joinpath(_SCRIPT_FILE).read_text(encoding="utf-8")
    raw = json.loads(text)
    scripts = {name: _compile(name, data) for name, data in raw["scripts"].items()}
    return dict(raw["aliases"]), scripts


# --- one conversation's state: rebuilt on every call ---------------------------------------


@attrs.frozen
class _Word:
    low: str
    text: str


@attrs.frozen
class _Answer:
    text: str
    trace: tuple[str, ...]


@attrs.frozen
class _Memory:
    fragment: str
    reply: str


def _offset(seed: int, key: str, n: int) -> int:
    """Where the cycle of ``key`` starts, for ``seed``: stable across runs and Python versions."""
    digest = hashlib.blake2b(f"{seed}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n


def _match(elements: tuple[tuple[str, Any], ...], words: Sequence[str]) -> list[tuple[int, int]] | None:
    """Match a decomposition against the words of a clause: the capture spans, or None."""

    def walk(ei: int, wi: int, caps: list[tuple[int, int]]) -> list[tuple[int, int]] | None:
        if ei == len(elements):
            return caps if wi == len(words) else None
        kind, value = elements[ei]
        if kind == "any":
            nxt = elements[ei + 1] if ei + 1 < len(elements) else None
            for end in range(wi, len(words) + 1):
                if nxt is not None and nxt[0] == "word" and (end == len(words) or words[end] != nxt[1]):
                    continue  # the literal after a * must come next: skip hopeless splits
                found = walk(ei + 1, end, [*caps, (wi, end)])
                if found is not None:
                    return found
            return None
        if wi == len(words):
            return None
        if kind == "word":
            return walk(ei + 1, wi + 1, caps) if words[wi] == value else None
        if kind == "one" or words[wi] in value:
            return walk(ei + 1, wi + 1, [*caps, (wi, wi + 1)])
        return None

    return walk(0, 0, [])


def tokenize(script: _Script, text: str) -> list[_Word]:
    """The words and punctuation of ``text``, lower-cased copies alongside, contractions expanded."""
    out: list[_Word] = []
    sentence_start = True
    for token in _TOKEN.findall(text.replace("\u2019", "'").replace("\u2018", "'")):
        low = token.lower()
        expanded = script.substitutions.get(low)
        if expanded is not None:
            out.extend(_Word(w, w) for w in expanded)
        elif sentence_start and token[1:] == low[1:]:
            out.append(_Word(low, low))  # "Everyone ..." is quoted back as "everyone"
        else:
            out.append(_Word(low, token))
        sentence_start = token in (".", "!", "?")
    return out


def find_quit(script: _Script, words: Sequence[_Word]) -> tuple[str, ...] | None:
    """The quit phrase the whole message is (punctuation aside), or None."""
    plain = tuple(w.low for w in words if w.low not in _PUNCT)
    return plain if plain in script.quits else None


class Session:
    """The cycling counters and the memory of one conversation, built by replaying it."""

    def __init__(self, script: _Script, seed: int) -> None:
        self.script = script
        self.seed = seed
        self.uses: dict[str, int] = {}
        self.memory: collections.deque[_Memory] = collections.deque(maxlen=_MEMORY_SIZE)

    def pick(self, key: str, replies: Sequence[str]) -> str:
        """The next reply of a cycle: seeded start, then each one in turn."""
        used = self.uses.get(key, 0)
        self.uses[key] = used + 1
        return replies[(_offset(self.seed, key, len(replies)) + used) % len(replies)]

    def respond(self, text: str) -> _Answer:
        """Answer one user message and update the state."""
        script = self.script
        words = tokenize(script, text)
        quit_phrase = find_quit(script, words)
        if quit_phrase is not None:
            trace = (f"Quit phrase {' '.join(quit_phrase)!r}: saying goodbye.",)
            return _Answer(self.pick("goodbye", script.goodbyes), trace)
        clauses: list[list[_Word]] = [[]]
        for word in words:
            if word.low in script.delimiters:
                if clauses[-1]:
                    clauses.append([])
            else:
                clauses[-1].append(word)
        clauses = [c[:_CLAUSE_WORDS] for c in clauses if c]
        stack: list[tuple[int, int, _Keyword, int]] = []
        for ci, clause in enumerate(clauses):
            lows = [w.low for w in clause]
            for pos, low in enumerate(lows):
                for keyword, phrase in script.index.get(low, ()):
                    if tuple(lows[pos : pos + len(phrase)]) == phrase:
                        stack.append((-keyword.rank, len(stack), keyword, ci))
        stack.sort(key=lambda entry: (entry[0], entry[1]))
        answer = None
        for _, _, keyword, ci in stack:
            answer = self.apply(keyword, clauses[ci], 0)
            if answer is not None:
                break
        if answer is None:
            if self.memory:
                memory = self.memory.popleft()
                answer = _Answer(memory.reply, ("No keyword matched.", f"Recalling what you said: {memory.fragment}."))
            else:
                answer = _Answer(self.pick("default", script.defaults), ("No keyword matched and nothing to recall.",))
        self.remember(clauses)
        if self.memory:
            listed = "; ".join(m.fragment for m in self.memory)
            answer = attrs.evolve(answer, trace=(*answer.trace, f"Remembered: {listed}."))
        return answer

    def apply(self, keyword: _Keyword, clause: list[_Word], depth: int) -> _Answer | None:
        lows = [w.low for w in clause]
        for i, rule in enumerate(keyword.rules):
            caps = _match(rule.elements, lows)
            if caps is None:
                continue
            reply = self.pick(f"{keyword.name}/{i}", rule.replies)
            if reply.startswith("="):  # hand the clause to another keyword (bounded, in case of a cycle)
                return self.apply(self.script.by_name[reply[1:]], clause, depth + 1) if depth < _GOTO_DEPTH else None
            trace = (f"Keyword {keyword.name!r} (rank {keyword.rank}), pattern {rule.pattern!r}.",)
            return _Answer(self.assemble(reply, caps, clause), trace)
        return None

    def remember(self, clauses: list[list[_Word]]) -> None:
        """Keep the first "my ..." statement of the message for later."""
        for clause in clauses:
            lows = [w.low for w in clause]
            for i, rule in enumerate(self.script.memory):
                caps = _match(rule.elements, lows)
                if caps is not None:
                    reply = self.pick(f"memory/{i}", rule.replies)
                    start = caps[0][1] if rule.elements[0][0] == "any" else 0  # "my ...", without what came before
                    self.memory.append(_Memory(self.reflect(clause[start:]), self.assemble(reply, caps, clause)))
                    return

    def assemble(self, reply: str, caps: list[tuple[int, int]], clause: list[_Word]) -> str:
        text = _SLOT.sub(lambda m: self.reflect(clause[slice(*caps[int(m.group(1)) - 1])]), reply)
        text = _SPACE_BEFORE_PUNCT.sub(r"\1", " ".join(text.split()))
        return text[:1].upper() + text[1:]

    def reflect(self, words: Sequence[_Word]) -> str:
        """Turn the user's words around: "my mother" → "your mother", "you hate me" → "I hate you"."""
        script = self.script
        out: list[str] = []
        i = 0
        while i < len(words):
            low = words[i].low
            following = words[i + 1].low if i + 1 < len(words) else None
            pair = script.pair_reflections.get((low, following)) if following is not None else None
            if pair is not None:
                out.append(pair)
                i += 2
                continue
            if low in script.subject_forms and following in script.verbs:
                out.append(script.subject_forms[low])
            else:
                out.append(script.reflections.get(low, words[i].text))
            i += 1
        return " ".join(out)
