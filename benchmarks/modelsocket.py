# ruff: noqa: RUF001, RUF002 -- the typographic signs in the tables are meant
"""ModelSocket receive throughput: the raw-socket floor, a plain websocket-client loop, llmstreamer.

Usage (from the repository root)::

    python benchmarks/modelsocket.py [--rounds 5] [--write]

One loopback server (``ms_server.py``, its own process) writes ``seq_text`` frames in bulk.
Each client (``clients/ms.py``) runs in its own fresh process and keeps one connection; rounds
interleave the clients (the order rotates each round). Two shapes: one sequence of 20,000
frames, and 20 sequences of 1,000 frames at once on the one connection. frames/s = frames ÷
(first request → last ``seq_closed``), median of rounds; × floor = this client's time ÷ the
floor's in the same round, median; 20 seq ÷ 1 seq = the client's 20-sequence frame rate ÷ its
one-sequence rate in the same round, median. ``--write`` replaces the ModelSocket section of
RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

START, END = "<!-- modelsocket:start -->", "<!-- modelsocket:end -->"
SHAPES = ((20000, 1), (1000, 20))


def worker(name: str, url: str) -> None:
    """One client in this process: read ``n k`` lines, stream, print one JSON line per run."""
    from clients.ms import CLIENTS
    from wire import expected_text

    client = CLIENTS[name]
    state = client["prepare"](url)
    for line in sys.stdin:
        n, k = map(int, line.split())
        c0, t0 = time.process_time(), time.perf_counter()
        texts = client["run"](state, n, k)
        t1, c1 = time.perf_counter(), time.process_time()
        ok = len(texts) == k and all(t == expected_text(n) for t in texts)
        print(json.dumps({"wall": t1 - t0, "cpu": c1 - c0, "ok": ok}), flush=True)


def main() -> None:
    import run  # the venv and the log line of the main benchmark

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", default="ms_raw,ms_wsc,ms_lls")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if os.path.realpath(sys.prefix) != os.path.realpath(run.VENV):
        os.execv(run.VENV_PY, [run.VENV_PY, os.path.abspath(__file__), *sys.argv[1:]])
    names = args.clients.split(",")
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    server = subprocess.Popen([run.VENV_PY, os.path.join(HERE, "ms_server.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=HERE)
    assert server.stdout is not None and server.stdin is not None
    url = f"ws://127.0.0.1:{int(server.stdout.readline().split()[1])}/ws"
    procs: Dict[str, subprocess.Popen] = {}
    results: Dict[str, Dict[str, List[Dict[str, Any]]]] = {name: {f"{n}x{k}": [] for n, k in SHAPES} for name in names}

    def call(name: str, n: int, k: int) -> Dict[str, Any]:
        p = procs[name]
        assert p.stdin is not None and p.stdout is not None
        p.stdin.write(f"{n} {k}\n")
        p.stdin.flush()
        line = p.stdout.readline()  # bounded: the worker's own waits time out at 600 s
        return json.loads(line) if line else {"error": "the worker died"}

    try:
        for name in names:
            procs[name] = subprocess.Popen(
                [run.VENV_PY, os.path.abspath(__file__), "worker", name, url],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=HERE,
            )
            for n, k in SHAPES:  # warm-up
                call(name, n, k)
        for r in range(args.rounds):
            for n, k in SHAPES:
                for name in run.rotated(names, r):
                    results[name][f"{n}x{k}"].append(call(name, n, k))
            run.log(f"  modelsocket round {r + 1}/{args.rounds} done")
    finally:
        for p in procs.values():
            assert p.stdin is not None
            p.stdin.close()
            p.wait(30)
        server.stdin.close()
        server.wait(10)
    from clients.ms import CLIENTS

    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "git": run.machine()["git"],
        "load": f"{load_start} at start, {' '.join(f'{x:.2f}' for x in os.getloadavg())} at end",
    }
    os.makedirs(run.OUT, exist_ok=True)
    with open(os.path.join(run.OUT, "modelsocket-latest.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    floor = results[names[0]]
    lines = [
        START,
        "## ModelSocket: frames received over one WebSocket",
        "",
        f"`python benchmarks/modelsocket.py` ({meta['when']}, llmstreamer at git {meta['git']}, {args.rounds} rounds, "
        f"load average {meta['load']}). One loopback server writes `seq_text` frames in bulk; each client keeps "
        "one connection and, per run, opens its sequences, appends a prompt, generates, closes. "
        "frames/s = frames ÷ (first request → last `seq_closed`), median; × floor paired per round; "
        "20 seq ÷ 1 seq = the 20-sequence frame rate ÷ the one-sequence rate, paired per round.",
        "",
        "| client | what | 1 × 20,000: frames/s | CPU µs/frame | × floor time | 20 × 1,000: frames/s | × floor time | 20 seq ÷ 1 seq | correct |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in names:
        one, many = results[name]["20000x1"], results[name]["1000x20"]
        f1, fm = floor["20000x1"], floor["1000x20"]
        rate1 = [20000 / x["wall"] for x in one]
        ratem = [20000 / x["wall"] for x in many]
        lines.append(
            f"| {name} | {CLIENTS[name]['what']} | {statistics.median(rate1):,.0f} "
            f"| {statistics.median(x['cpu'] for x in one) / 20000 * 1e6:.1f} "
            f"| {statistics.median(a['wall'] / b['wall'] for a, b in zip(one, f1)):.2f}× "
            f"| {statistics.median(ratem):,.0f} "
            f"| {statistics.median(a['wall'] / b['wall'] for a, b in zip(many, fm)):.2f}× "
            f"| {statistics.median(m / o for m, o in zip(ratem, rate1)):.2f} "
            f"| {sum(x['ok'] for x in one + many)}/{len(one + many)} |"
        )
    lines.append(END)
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write:
        from sections import put_section

        put_section(section, START, END)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[2], sys.argv[3])
    else:
        main()
