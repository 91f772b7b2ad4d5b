"""Fuzz llmstreamer's stream parsers and every provider's event decoder (not part of CI).

Targets:

- ``sse``, ``ndjson``: random bytes, split at random places (empty reads included), through
  `SSEParser` / `NDJSONParser`, with and without ``max_event_bytes``. Nothing but
  `LLMStreamError` may escape; the SSE parser must also agree with itself fed whole.
- a provider name (``openai``, ``anthropic``, ``gemini``, ``mistral``, ``ollama``, ``deepseek``):
  structure-aware: a valid stream of that provider (rendered by the fake server's wire
  modules: text, thinking, tool calls, errors, usage) is mutated event by event (JSON values
  replaced by values of other types, keys deleted or added from the wire vocabulary, events
  dropped, duplicated or swapped, data replaced by raw text) and then checked twice:

  1. **decoder level**: the events go straight into ``streamer.new_decoder()``; any exception that
     is not an `LLMStreamError` is a *finding* (a foreign exception the engine would have to
     wrap: worth fixing in the provider).
  2. **engine level**: the same events as wire bytes, split at random, through the real engine
     (``Streamer.stream`` with a round that replays them: framing, decoder, accumulator, tool
     loop). Anything but `LLMStreamError` escaping is a *bug*.

With atheris installed the search is coverage-guided (libFuzzer); without it, inputs are random.
Findings go to ``--findings`` (JSON lines, one per distinct exception site) and a summary is
printed at the end.

Usage::

    python tools/fuzz.py openai --seconds 600
    python tools/fuzz.py sse --seconds 600 --findings /tmp/fuzz-sse.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import traceback
from typing import Any, Callable, Iterator

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

try:
    import atheris
except ImportError:  # a plain random search instead
    atheris = None

if atheris is not None:
    with atheris.instrument_imports(include=["llmstreamer"]):
        import llmstreamer
        from llmstreamer import LLMStreamError, Message, ToolCall, Usage
        from llmstreamer._options import make_options
        from llmstreamer._sse import NDJSONParser, SSEParser
        from llmstreamer.provider import HTTPStreamer
        from llmstreamer.testing import RecordedRequest, Reply
        from llmstreamer.testing._wire import flavor_of, render
else:
    import llmstreamer
    from llmstreamer import LLMStreamError, Message, ToolCall, Usage
    from llmstreamer._options import make_options
    from llmstreamer._sse import NDJSONParser, SSEParser
    from llmstreamer.provider import HTTPStreamer
    from llmstreamer.testing import RecordedRequest, Reply
    from llmstreamer.testing._wire import flavor_of, render

PROVIDERS = ("openai", "anthropic", "gemini", "mistral", "ollama", "deepseek")
HI = (Message.user("Hi"),)


class Source:
    """Choices drawn from the fuzzer's bytes (atheris) or from a seeded PRNG."""

    def __init__(self, data: bytes) -> None:
        self._fdp = atheris.FuzzedDataProvider(data) if atheris is not None else None
        self._rng = random.Random(data)

    def int(self, low: int, high: int) -> int:
        if self._fdp is not None:
            return int(self._fdp.ConsumeIntInRange(low, high))
        return self._rng.randint(low, high)

    def bytes(self, most: int) -> bytes:
        n = self.int(0, most)
        if self._fdp is not None:
            return bytes(self._fdp.ConsumeBytes(n))
        return bytes(self._rng.getrandbits(8) for _ in range(n))

    def text(self, most: int) -> str:
        return self.bytes(most).decode("utf-8", "replace")

    def pick(self, items: list[Any] | tuple[Any, ...]) -> Any:
        return items[self.int(0, len(items) - 1)]

    def rest(self) -> bytes:
        if self._fdp is not None:
            return bytes(self._fdp.ConsumeBytes(self._fdp.remaining_bytes()))
        return self.bytes(400)


# --- findings ---------------------------------------------------------------------------------


class Findings:
    """Distinct foreign exceptions, keyed by (level, type, innermost llmstreamer frame)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.seen: dict[tuple[str, str, str], int] = {}
        self.executions = 0

    def add(self, level: str, exc: BaseException, sample: Any) -> None:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if "llmstreamer" in f.filename]
        where = f"{os.path.relpath(frames[-1].filename)}:{frames[-1].lineno}" if frames else "?"
        key = (level, type(exc).__name__, where)
        count = self.seen.get(key, 0)
        self.seen[key] = count + 1
        if count == 0:
            record = {"level": level, "type": type(exc).__name__, "where": where, "message": str(exc)[:300], "sample": repr(sample)[:2000]}
            print(f"FINDING {json.dumps(record)}", file=sys.stderr, flush=True)
            if self.path:
                with open(self.path, "a", encoding="utf-8") as out:
                    out.write(json.dumps(record) + "\n")

    def summary(self) -> str:
        lines = [f"executions: {self.executions}", f"distinct findings: {len(self.seen)}"]
        lines += [f"  {level} {kind} at {where}: {n} times" for (level, kind, where), n in sorted(self.seen.items())]
        return "\n".join(lines)


# --- splitting --------------------------------------------------------------------------------


def split(src: Source, wire: bytes) -> list[bytes]:
    """``wire`` cut at up to 8 places chosen by ``src`` (equal places make empty reads)."""
    cuts = sorted(src.int(0, len(wire)) for _ in range(src.int(0, 8)))
    return [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)])]


# --- parser targets ---------------------------------------------------------------------------


def fuzz_parser(kind: str, findings: Findings) -> Callable[[bytes], None]:
    def one(data: bytes) -> None:
        findings.executions += 1
        src = Source(data)
        cap = src.pick([None, None, 1, 16, 1024])
        wire = src.rest()
        chunks = split(Source(wire[:16]), wire)
        parser: Any = SSEParser(cap) if kind == "sse" else NDJSONParser(cap)
        try:
            got = [item for chunk in chunks for item in parser.feed(chunk)] + parser.close()
        except LLMStreamError:
            return
        except Exception as exc:
            findings.add("parser", exc, (cap, chunks))
            return
        if cap is None:
            whole: Any = SSEParser() if kind == "sse" else NDJSONParser()
            if whole.feed(wire) + whole.close() != got:
                findings.add("parser", AssertionError("a split changed the items"), chunks)

    return one


# --- provider targets -------------------------------------------------------------------------


def make_streamer(flavor: str) -> HTTPStreamer:
    base = f"http://127.0.0.1:9/{flavor}"
    built = llmstreamer.streamer(f"{flavor}:m", api_key="k-fuzz", base_url=base, retry=0)
    assert isinstance(built, HTTPStreamer)
    return built


def seed_streams(streamer: HTTPStreamer) -> list[list[tuple[str, str]]]:
    """Valid streams of this provider as (event name, data) lists, rendered by the fake server."""
    request = streamer.build_request(HI, make_options(streamer.provider, streamer.supported_options, {}))
    path = request.url.split("://", 1)[1].split("/", 1)[1]
    recorded = RecordedRequest("POST", "/" + path, {k.lower(): v for k, v in request.headers.items()}, request.body or b"")
    calls = (ToolCall("call_1", "get_weather", {"city": "Paris"}), ToolCall("call_2", "t", {}, raw_arguments='{"a": [1, 2'))
    replies = [
        Reply(text=["Hel", "lo"]),
        Reply(text=["a"], thinking=["hmm", " yes"], signature="sig"),
        Reply(text=["x"], tool_calls=calls, finish_reason="tool_calls", usage=Usage(5, 7, 2, 1)),
        Reply(text=["p"], error={"type": "overloaded_error", "message": "Overloaded"}),
        Reply(text=["q"], finish_reason="length", truncate=True),
    ]
    streams = []
    for reply in replies:
        events = render(flavor_of("/" + path), reply, recorded).events
        parser: Any = SSEParser() if streamer.spec.framing == "sse" else NDJSONParser()
        items = [(name, data) for chunk in events for name, data, _ in parser.feed(chunk.encode())]
        items += [(name, data) for name, data, _ in parser.close()]
        streams.append(items)
    return streams


def vocabulary(streams: list[list[tuple[str, str]]]) -> tuple[list[str], list[str]]:
    """Every key and every event name the seed streams use."""
    keys: set[str] = set()
    names: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                keys.add(k)
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for stream in streams:
        for name, data in stream:
            names.add(name)
            try:
                walk(json.loads(data))
            except ValueError:
                pass
    return sorted(keys), sorted(names)


_VALUES: list[Any] = [None, True, False, 0, 1, -1, 2**63, 1.5, "", "x", "[DONE]", "STOP", "error", [], {}, [None], [{}], {"type": "text"}, {"text": 1}, "\u0000"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


def _set(root: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    node = root
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return root


def _fresh(src: Source) -> Any:
    """A value from the palette, copied (mutations must never reach the palette itself)."""
    return json.loads(json.dumps(src.pick(_VALUES)))


def mutate_value(src: Source, obj: Any, keys: list[str]) -> Any:
    for _ in range(src.int(1, 4)):
        paths = list(_paths(obj))
        path = src.pick(paths)
        action = src.int(0, 5)
        if action <= 1:
            obj = _set(obj, path, _fresh(src))
        elif action == 2:
            obj = _set(obj, path, src.text(12))
        elif action == 3 and path:  # delete
            node = obj
            for step in path[:-1]:
                node = node[step]
            del node[path[-1]]
        elif action == 4:  # add a known key somewhere
            node = obj
            for step in path:
                node = node[step]
            if isinstance(node, dict):
                node[src.pick(keys)] = _fresh(src)
        else:  # wrap in a list, or unwrap a container
            node = obj
            for step in path:
                node = node[step]
            obj = _set(obj, path, [node] if not isinstance(node, list) else (node[0] if node else {}))
    return obj


def mutate_stream(src: Source, streams: list[list[tuple[str, str]]], keys: list[str], names: list[str]) -> list[tuple[str, str]]:
    events = list(src.pick(streams))
    for _ in range(src.int(0, 6)):
        if not events:
            break
        i = src.int(0, len(events) - 1)
        name, data = events[i]
        action = src.int(0, 9)
        if action <= 4:
            try:
                obj = json.loads(data)
            except ValueError:
                continue
            events[i] = (name, json.dumps(mutate_value(src, obj, keys)))
        elif action == 5:
            events[i] = (src.pick(names), data)
        elif action == 6:
            del events[i]
        elif action == 7:
            events.insert(i, events[i])
        elif action == 8:
            j = src.int(0, len(events) - 1)
            events[i], events[j] = events[j], events[i]
        else:
            events[i] = (name, src.text(40))
    return events


def wire_of(events: list[tuple[str, str]], framing: str) -> bytes:
    """Events back to bytes: SSE (``data`` lines split at LF) or NDJSON lines."""
    if framing == "ndjson":
        return "".join(data.replace("\n", " ") + "\n" for _, data in events).encode("utf-8", "surrogatepass")
    out = []
    for name, data in events:
        head = f"event: {name}\n" if name != "message" else ""
        out.append(head + "".join(f"data: {line}\n" for line in data.replace("\r", "").split("\n")) + "\n")
    return "".join(out).encode("utf-8", "surrogatepass")


def fuzz_provider(flavor: str, findings: Findings) -> Callable[[bytes], None]:
    streamer = make_streamer(flavor)
    streams = seed_streams(streamer)
    keys, names = vocabulary(streams)

    def one(data: bytes) -> None:
        findings.executions += 1
        src = Source(data)
        events = mutate_stream(src, streams, keys, names)
        decode = streamer.new_decoder()
        for name, text in events:  # 1. decoder level
            try:
                list(decode(name, text))
            except LLMStreamError:
                break
            except Exception as exc:
                findings.add("decoder", exc, events)
                break
        chunks = split(src, wire_of(events, streamer.spec.framing))  # 2. engine level

        def replay(messages: Any, options: Any, token: Any) -> Iterator[Any]:
            return streamer.decode_body(iter(chunks))

        streamer.stream_round = replay  # type: ignore[method-assign]
        try:
            for _ in streamer.stream(HI):
                pass
        except LLMStreamError:
            pass
        except Exception as exc:
            findings.add("ENGINE", exc, events)

    return one


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=["sse", "ndjson", *PROVIDERS])
    parser.add_argument("--seconds", type=int, default=600, help="how long to fuzz (default 600)")
    parser.add_argument("--findings", default=None, help="append distinct findings to this JSON-lines file")
    args = parser.parse_args(argv)
    findings = Findings(args.findings)
    one = fuzz_parser(args.target, findings) if args.target in ("sse", "ndjson") else fuzz_provider(args.target, findings)
    started = time.monotonic()
    if atheris is not None:
        import atexit

        atexit.register(lambda: print(findings.summary(), file=sys.stderr, flush=True))

        def guarded(data: bytes) -> None:
            try:
                one(data)
            except Exception as exc:  # a bug of this script: noted, and the search goes on
                findings.add("harness", exc, data)
            if findings.executions % 10000 == 0:
                print(f"[{args.target}] {findings.executions} executions, {len(findings.seen)} findings, "
                      f"{time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)

        options = [f"-max_total_time={args.seconds}", "-rss_limit_mb=4096", "-timeout=30"]
        if args.findings:
            options.append(f"-artifact_prefix={os.path.dirname(os.path.abspath(args.findings))}/")
        atheris.Setup([sys.argv[0], *options], guarded)
        atheris.Fuzz()
        return 0
    rng = random.Random(0)
    while time.monotonic() - started < args.seconds:
        one(rng.randbytes(rng.randint(0, 512)) if hasattr(rng, "randbytes") else os.urandom(rng.randint(0, 512)))
    print(findings.summary(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
