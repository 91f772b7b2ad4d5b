"""Single-process measurements of llmstreamer's internals, each run in a fresh interpreter.

- ``python micro.py sse8 [REPS]``: parse one 8 MiB SSE event with llmstreamer's `SSEParser`, fed
  in 64 KiB pieces as ``read1`` delivers them (one ``data:`` line, and the same size as 8,192
  ``data:`` lines of 1 KiB); median seconds.
- ``python micro.py profile BASE N [REPS] [WIRE]``: where the time of one ``N``-chunk stream goes
  (``WIRE`` ``openai``, the default, or ``anthropic``).
  ``BASE`` is a benchmark server URL (``http://127.0.0.1:PORT``). The stages are timed
  cumulatively on the real path and in isolation on captured data, then the whole stream runs
  under cProfile (on the calling thread: ``_engine.dispatch``, exactly what the worker thread of
  ``stream_chat`` runs).

Both print one JSON object on stdout.
"""

from __future__ import annotations

import cProfile
import gc
import json
import os
import pstats
import statistics
import sys
import time
from typing import Any, Callable, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from wire import expected_text  # noqa: E402


def _best_of(fn: Callable[[], Any], reps: int) -> List[float]:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def sse8(reps: int) -> Dict[str, Any]:
    from llmstreamer._sse import SSEParser

    size = 8 << 20
    one_line = b"data: " + b"x" * size + b"\n\n"
    many = b"".join(b"data: " + b"y" * 1023 + b"\n" for _ in range(size // 1024)) + b"\n"
    out: Dict[str, Any] = {}
    for label, body in (("one data line", one_line), ("1 KiB data lines", many)):
        pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)]
        checked: List[bool] = []

        def parse(pieces: List[bytes] = pieces, checked: List[bool] = checked) -> None:
            parser = SSEParser()
            events = []
            for piece in pieces:
                events.extend(parser.feed(piece))
            checked.append(len(events) == 1 and len(events[0][1]) >= size - 8192)

        times = _best_of(parse, reps)
        out[label] = {
            "bytes": len(body),
            "median_s": statistics.median(times),
            "min_s": min(times),
            "max_s": max(times),
            "ok": all(checked),
        }
    return out


def _streamer(base: str, wire: str) -> Any:
    """The llmstreamer client of ``wire`` (``openai`` or ``anthropic``) for a server prefix ``base``."""
    from llmstreamer import AnthropicStreamer, OpenAIStreamer

    if wire == "anthropic":
        return AnthropicStreamer(model="claude-sonnet-4-6", api_key="sk-ant-bench", base_url=base)
    return OpenAIStreamer(model="gpt-4o-mini", api_key="sk-bench", base_url=base + "/v1")


def profile(base: str, n: int, reps: int = 5, wire: str = "openai") -> Dict[str, Any]:
    from llmstreamer import Message, StreamCallbacks, _engine
    from llmstreamer._accumulate import Accumulator
    from llmstreamer._cancel import CancelToken
    from llmstreamer._sse import SSEParser
    from llmstreamer.models import Event

    url = f"{base}/b/n={n}"
    expected = expected_text(n)
    streamer = _streamer(url, wire)
    msgs = [Message.user("Say something")]
    stages: Dict[str, float] = {}

    def med(fn: Callable[[], Any]) -> float:
        # the fastest of the repetitions (as timeit reports): stages differ by fractions of a µs
        fn()  # warm
        gc.collect()
        return min(_best_of(fn, reps)) / n * 1e6  # µs per chunk

    # 1. the transport alone: send + read1 loop, bytes discarded (captured once for the offline stages)
    transport = streamer.transport
    captured: List[bytes] = []
    opts = _engine.prepare(streamer, msgs, {}).options

    def read_only(capture: bool = False) -> None:
        token = CancelToken()
        req = streamer.build_request(tuple(msgs), opts)
        resp = transport.send(req, token, streamer.timeout)
        for chunk in transport.body(resp, token, streamer.timeout):
            if capture:
                captured.append(chunk)
        transport.release(resp, token, reuse=True)

    read_only(capture=True)
    stages["read1 (urllib3 + chunked decoding, via Transport.body)"] = med(read_only)

    # 2-5. offline on the captured bytes
    def sse_only() -> List[Any]:
        parser = SSEParser()
        items: List[Any] = []
        for chunk in captured:
            items.extend(parser.feed(chunk))
        return items

    items = sse_only()
    stages["SSE split + UTF-8 decode (SSEParser.feed)"] = med(sse_only)
    datas = [d for _, d, _ in items if d[:1] == "{"]
    loads = json.loads
    def loads_all() -> None:
        for d in datas:
            loads(d)

    stages["json.loads"] = med(loads_all)

    def decode_all(keep: bool = False) -> List[Any]:
        decode = streamer.new_decoder()
        out: List[Any] = []
        for name, data, _ in items:
            got = decode(name, data)
            if keep:
                out.extend(got)
        return out

    events = decode_all(keep=True)
    stages["decoder (json.loads + field checks + Event)"] = med(decode_all)
    texts = [e.text for e in events if e.type == "content"]

    def construct() -> None:
        for t in texts:
            Event("content", t)

    stages["Event construction alone"] = med(construct)

    def accumulate() -> None:
        acc = Accumulator(streamer.provider, streamer.model)
        for ev in events:
            acc.handle(ev)

    stages["Accumulator.handle"] = med(accumulate)

    # 6-9. the real path, cumulatively
    def provider_round() -> None:
        for _ in streamer.stream_round(tuple(msgs), opts, _engine.RoundContext(CancelToken())):
            pass

    stages["cum: provider stream_round (read1 + SSE + decoder + generator)"] = med(provider_round)

    def run_events() -> None:
        for _ in _engine.prepare(streamer, msgs, {}).events():
            pass

    stages["cum: Run.events (+ accumulator, engine generator hops)"] = med(run_events)
    sink: List[str] = []

    def dispatch() -> None:
        sink.clear()
        _engine.dispatch(_engine.prepare(streamer, msgs, {}), {"on_content": sink.append})

    stages["cum: _engine.dispatch with on_content (+ dispatch, callback)"] = med(dispatch)
    ok = "".join(sink) == expected

    def stream_chat() -> None:
        sink.clear()
        streamer.stream_chat(msgs, StreamCallbacks(on_content=sink.append)).result(timeout=120)

    stages["cum: stream_chat (+ worker thread, handle)"] = med(stream_chat)
    ok = ok and "".join(sink) == expected

    # what-ifs: the same work done the floor's way, to size the suggestions
    whatif: Dict[str, float] = {}

    def bulk_read() -> None:
        # the socket's own buffered reader (under http.client), chunked framing decoded in bulk
        token = CancelToken()
        req = streamer.build_request(tuple(msgs), opts)
        resp = transport.send(req, token, streamer.timeout)
        fp = resp.raw._fp.fp  # http.client's BufferedReader over the socket
        buf, pos = b"", 0
        done = False
        while not done:
            data = fp.read1(65536)
            if not data:
                break
            buf = buf[pos:] + data if pos < len(buf) else data
            pos = 0
            size_n = len(buf)
            while True:
                i = buf.find(b"\r\n", pos)
                if i < 0:
                    break
                size = int(buf[pos:i], 16)
                if size == 0:
                    done = True
                    break
                end = i + 2 + size
                if end + 2 > size_n:
                    break
                pos = end + 2
        resp.close()

    whatif["read: socket BufferedReader.read1 + bulk chunked decoding (vs read1 row)"] = med(bulk_read)
    joined = b"".join(captured)

    def bulk_split() -> None:
        for ev in joined.split(b"\n\n"):
            if ev[:6] == b"data: " and b"\n" not in ev:
                ev[6:].decode()

    whatif["SSE: bytes split(b'\\n\\n') + data-only fast path + decode (vs SSE row)"] = med(bulk_split)
    scan_once = json.JSONDecoder().scan_once  # the C scanner json.loads ends up in

    def scan_all() -> None:
        for d in datas:
            _, end = scan_once(d, 0)
            if end != len(d):
                raise ValueError("trailing data")

    whatif["JSON: stdlib C scanner called directly, JSONDecoder().scan_once (vs json.loads row)"] = med(scan_all)
    try:
        import jiter

        bdatas = [d.encode() for d in datas]
        from_json = jiter.from_json

        def jiter_all() -> None:
            for d in bdatas:
                from_json(d)

        whatif[f"JSON: jiter {jiter.__version__} from_json on bytes (vs json.loads row)"] = med(jiter_all)
    except ImportError:
        pass

    # cProfile of the whole dispatch, on this thread
    gc.collect()
    prof = cProfile.Profile()
    sink.clear()
    run = _engine.prepare(streamer, msgs, {})
    t0 = time.perf_counter()
    prof.enable()
    _engine.dispatch(run, {"on_content": sink.append})
    prof.disable()
    wall = time.perf_counter() - t0
    ok = ok and "".join(sink) == expected  # before the TTFT streams below add to the sink
    stats = pstats.Stats(prof)
    rows = []
    for (filename, line, func), (_cc, nc, tt, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {"function": _short(filename, line, func), "ncalls": nc, "own_s": tt, "cum_s": ct, "per_call_us": tt / nc * 1e6}
        )
    rows.sort(key=lambda r: -r["own_s"])
    by_pkg: Dict[str, float] = {}
    for r in rows:
        by_pkg[_package(r["function"])] = by_pkg.get(_package(r["function"]), 0.0) + r["own_s"]
    # cProfile of warm time-to-first-token: many short streams through stream_chat
    short = _streamer(f"{base}/b/n=1", wire)
    short.chat(msgs)  # pool a connection
    count = 200
    tprof = cProfile.Profile()
    t0 = time.perf_counter()
    tprof.enable()
    for _ in range(count):
        _engine.dispatch(_engine.prepare(short, msgs, {}), {"on_content": sink.append})
    tprof.disable()
    twall = time.perf_counter() - t0
    tstats = pstats.Stats(tprof)
    trows = [
        {"function": _short(f, ln, fn), "ncalls": nc, "own_us_per_stream": tt / count * 1e6, "cum_us_per_stream": ct / count * 1e6}
        for (f, ln, fn), (_cc, nc, tt, ct, _) in tstats.stats.items()  # type: ignore[attr-defined]
    ]
    trows.sort(key=lambda r: -r["cum_us_per_stream"])
    ttft_top = [r for r in trows if r["cum_us_per_stream"] >= 10][:30]
    ttft_whatif = _ttft_whatif(short, msgs, count)
    return {
        "ttft_profile": {
            "streams": count,
            "wall_per_stream_us": twall / count * 1e6,
            "top_cum": ttft_top,
            "whatif_median_us": ttft_whatif,
        },
        "n": n,
        "reps": reps,
        "ok": ok,
        "stages_us_per_chunk": stages,
        "whatif_us_per_chunk": whatif,
        "read_chunks": len(captured),
        "events": len(items),
        "cprofile_wall_s": wall,
        "cprofile_top": rows[:25],
        "cprofile_packages": sorted(by_pkg.items(), key=lambda kv: -kv[1])[:12],
    }


def _ttft_whatif(streamer: Any, msgs: List[Any], count: int) -> Dict[str, float]:
    """Median µs from sending a warm request to the first body bytes, through three transports."""
    import urllib3

    from llmstreamer import StreamCallbacks, _engine
    from llmstreamer._cancel import CancelToken

    opts = _engine.prepare(streamer, msgs, {}).options
    req = streamer.build_request(tuple(msgs), opts)
    transport = streamer.transport
    url = urllib3.util.parse_url(req.url)
    pool = urllib3.HTTPConnectionPool(url.host, url.port, maxsize=1)
    out: Dict[str, float] = {}

    def timed(fn: Callable[[], Any]) -> float:
        fn()
        times = []
        for _ in range(count):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e6

    def via_transport() -> None:
        token = CancelToken()
        resp = transport.send(req, token, streamer.timeout)
        resp.raw.read1(65536, decode_content=True)
        for _ in transport.body(resp, token, streamer.timeout):
            pass
        transport.release(resp, token, reuse=True)

    def via_urllib3() -> None:
        resp = pool.urlopen(
            "POST", url.request_uri, body=req.body, headers=req.headers, preload_content=False, retries=False,
            redirect=False, timeout=urllib3.Timeout(connect=10, read=120),
        )
        resp.read1(65536, decode_content=True)
        while resp.read1(65536, decode_content=True):
            pass
        resp.release_conn()

    sink: List[str] = []

    def via_stream_chat() -> None:
        streamer.stream_chat(msgs, StreamCallbacks(on_content=sink.append)).result(timeout=60)

    def via_stream() -> None:
        for _ in streamer.stream(msgs):
            pass

    out["whole 1-chunk stream: stream_chat + result()"] = timed(via_stream_chat)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as executor:
        pooled = type(streamer)(model=streamer.model, api_key="sk-bench", base_url=streamer.base_url, executor=executor)

        def via_executor() -> None:
            pooled.stream_chat(msgs, StreamCallbacks(on_content=sink.append)).result(timeout=60)

        out["whole 1-chunk stream: stream_chat(executor=ThreadPoolExecutor(1)) + result()"] = timed(via_executor)
        pooled.close()
    out["whole 1-chunk stream: stream() iterator"] = timed(via_stream)
    out["request + body, llmstreamer Transport (requests adapter)"] = timed(via_transport)
    out["request + body, urllib3 HTTPConnectionPool.urlopen directly"] = timed(via_urllib3)
    return out


def _short(filename: str, line: int, func: str) -> str:
    if filename == "~":
        return f"~:{func}"
    for marker in ("site-packages/", "/work/main/", "/lib/python3.11/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{line}({func})"


def _package(name: str) -> str:
    if name.startswith("~:"):
        return "builtins"
    head = name.split("/", 1)[0] if "/" in name else name.split(":", 1)[0]
    return head if not head.endswith(".py") else "stdlib:" + head[:-3]


def main() -> None:
    mode = sys.argv[1]
    if mode == "sse8":
        result = sse8(int(sys.argv[2]) if len(sys.argv) > 2 else 5)
    elif mode == "profile":
        reps = int(sys.argv[4]) if len(sys.argv) > 4 else 5
        result = profile(sys.argv[2], int(sys.argv[3]), reps, sys.argv[5] if len(sys.argv) > 5 else "openai")
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
