# ruff: noqa: RUF001, RUF002 -- the typographic signs in the tables are meant
"""Peak memory of 200 concurrent streams started from 200 threads, against the raw-socket floor.

Usage (from the repository root)::

    python benchmarks/memory.py [--runs 5] [--write]

Each client runs in a fresh process (``worker.py threads``): 200 threads each stream 1,000
chunks 1 ms apart from one shared client (``lls_iter``: iterating ``stream()``; ``lls_cb``:
``stream_chat`` and waiting on its handle), as a threaded web server's request threads would;
the floor (``raw``) uses a socket per thread. Growth = peak RSS (``VmHWM``) − RSS before the
streams start; the ratio to the floor's growth is paired per run (clients interleaved, the
order rotating each run). ``--write`` replaces the memory section of RESULTS.md. With
``BENCH_BASE_SRC`` set (see ``clients/lls_base.py``) the base commit's clients run too.
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

import run  # noqa: E402  (the server, the venv, rotation and logging of the main benchmark)
from clients import CLIENTS  # noqa: E402
from sections import put_section  # noqa: E402

STREAMS, CHUNKS = 200, 1000
START, END = "<!-- memory:start -->", "<!-- memory:end -->"


def one(server: run.BenchServer, name: str) -> Dict[str, Any]:
    """One fresh process of ``name`` running the 200 threaded streams."""
    base = server.base(n=CHUNKS, d=1)
    try:
        proc = subprocess.run(
            [run.VENV_PY, os.path.join(HERE, "worker.py"), "threads", name, base, str(STREAMS), str(CHUNKS)],
            capture_output=True,
            text=True,
            cwd=HERE,
            timeout=600,
        )
        return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
    except (IndexError, ValueError, subprocess.TimeoutExpired) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def table(results: Dict[str, List[Dict[str, Any]]], meta: Dict[str, Any]) -> str:
    """The markdown section for RESULTS.md."""
    floor = results["raw"]
    lines = [
        START,
        "## Memory: 200 streams started from 200 threads",
        "",
        f"`python benchmarks/memory.py` ({meta['when']}, llmstreamer at git {meta['git']}, {meta['runs']} runs, "
        f"load average {meta['load_start']} at start, {meta['load_end']} at end). 200 threads each stream "
        "1,000 chunks 1 ms apart from one shared client, as a threaded server's request threads do "
        "(`raw`: a socket per thread, the floor). growth = peak RSS (`VmHWM`) − RSS before the "
        "streams start; × floor paired per run (clients interleaved), median.",
        "",
        "| client | what | streams correct | RSS before MiB | peak MiB | growth MiB | growth × floor | wall × floor | CPU s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, runs in results.items():
        ok = [r for r in runs if "error" not in r]
        if not ok:
            lines.append(f"| {name} | {CLIENTS[name].what} | error: {runs[0].get('error', '')[:80]} | | | | | | |")
            continue
        growth = [(r["rss_peak_kib"] - r["rss_before_kib"]) / 1024 for r in ok]
        ratios = [
            (r["rss_peak_kib"] - r["rss_before_kib"]) / (f["rss_peak_kib"] - f["rss_before_kib"])
            for r, f in zip(runs, floor)
            if "error" not in r and "error" not in f
        ]
        walls = [r["wall"] / f["wall"] for r, f in zip(runs, floor) if "error" not in r and "error" not in f]
        lines.append(
            f"| {name} | {CLIENTS[name].what} | {'/'.join(str(r['correct']) for r in ok)} of {STREAMS} "
            f"| {statistics.median(r['rss_before_kib'] for r in ok) / 1024:.1f} "
            f"| {statistics.median(r['rss_peak_kib'] for r in ok) / 1024:.1f} "
            f"| {statistics.median(growth):.1f} ({min(growth):.1f} – {max(growth):.1f}) "
            f"| {statistics.median(ratios):.2f}× | {statistics.median(walls):.2f}× "
            f"| {statistics.median(r['cpu'] for r in ok):.2f} |"
        )
    lines.append(END)
    return "\n".join(lines) + "\n"


def write(section: str) -> None:
    """Replace (or append) the memory section of RESULTS.md."""
    put_section(section, START, END)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clients", default="raw,lls_iter,lls_cb")
    parser.add_argument("--write", action="store_true", help="replace the memory section of RESULTS.md")
    args = parser.parse_args()
    if os.path.realpath(sys.prefix) != os.path.realpath(run.VENV):
        os.execv(run.VENV_PY, [run.VENV_PY, os.path.abspath(__file__), *sys.argv[1:]])
    names = args.clients.split(",")
    if os.environ.get("BENCH_BASE_SRC"):
        names += [n + "_base" for n in names if n.startswith("lls_")]
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    server = run.BenchServer()
    results: Dict[str, List[Dict[str, Any]]] = {name: [] for name in names}
    try:
        for r in range(args.runs):
            for name in run.rotated(names, r):
                results[name].append(one(server, name))
                run.log(f"  {name} run {r + 1}/{args.runs}: {json.dumps(results[name][-1])[:200]}")
    finally:
        server.close()
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "git": run.machine()["git"],
        "runs": args.runs,
        "load_start": load_start,
        "load_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    os.makedirs(run.OUT, exist_ok=True)
    with open(os.path.join(run.OUT, "memory-latest.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    section = table(results, meta)
    print(section)
    if args.write:
        write(section)


if __name__ == "__main__":
    main()
