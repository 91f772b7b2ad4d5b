"""The llmstreamer benchmark: one command measures llmstreamer against its peers, same run, same server.

Usage (from the repository root)::

    python benchmarks/run.py --setup        # once: benchmarks/.venv with the pinned peers
    python benchmarks/run.py --quick        # ~2-3 minutes
    python benchmarks/run.py                # full, < 20 minutes

It re-executes itself with ``benchmarks/.venv/bin/python``. Results go to
``benchmarks/out/results-<time>.json`` (and ``latest.json``); ``benchmarks/RESULTS.md`` and the
PNG plots are rewritten from them (``python benchmarks/report.py [JSON]`` re-renders only).

Method (the one of ``shared/research/peer-benchmarks.md``): a loopback server in its own
process serves pre-rendered streams; every client runs in its own fresh interpreter that
imports only its library; clients are interleaved round by round (the order rotates each
round); figures are medians over rounds and every ratio is paired within a round, then the
median is taken.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import http.client
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENV = os.path.join(HERE, ".venv")
VENV_PY = os.path.join(VENV, "bin", "python")
OUT = os.path.join(HERE, "out")
sys.path.insert(0, HERE)

from clients import CLIENTS  # noqa: E402
from wire import cumulative_ends  # noqa: E402

PEER_PACKAGES = (
    "llmstreamer",
    "openai",
    "anthropic",
    "httpx2",
    "httpcore2",
    "pydantic",
    "jiter",
    "requests",
    "urllib3",
    "sseclient-py",
    "attrs",
    "websocket-client",
    "matplotlib",
)

# import-time cases: label -> statement, run with `python -c` in a fresh process each
IMPORTS = {
    "interpreter only (pass)": "pass",
    "llmstreamer deps: requests, websocket, attrs": "import requests, websocket, attrs",
    "import llmstreamer": "import llmstreamer",
    "llmstreamer + OpenAIStreamer": "from llmstreamer import OpenAIStreamer",
    "llmstreamer + AnthropicStreamer": "from llmstreamer import AnthropicStreamer",
    "requests + sseclient": "import requests, sseclient",
    "openai": "import openai",
    "anthropic": "import anthropic",
}

_IMPORT_SNIPPET = """
import time
t = time.perf_counter()
{stmt}
t = time.perf_counter() - t
hwm = 0
for line in open('/proc/self/status'):
    if line.startswith('VmHWM:'):
        hwm = int(line.split()[1])
import sys
sys.stdout.write('%r %d' % (t, hwm))
"""


class Plan:
    """How much of everything: the quick and the full modes."""

    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.rounds_20k = 3 if quick else 5
        self.rounds_100k = 1 if quick else 3
        self.rounds_latency = 1 if quick else 5
        self.rounds_ttft = 2 if quick else 5
        self.ttft_per_round = 30
        self.rounds_import = 3 if quick else 7
        self.rounds_first = 1 if quick else 3
        self.rounds_concurrent = 1 if quick else 3
        self.concurrent_clients = ["raw", "lls_cb", "requests_sse"] + ([] if quick else ["openai", "anthropic_create"])
        self.sse8_reps = 3 if quick else 5
        self.profile_n = 50000 if quick else 100000
        self.profile_reps = 3 if quick else 5


# --- processes -------------------------------------------------------------------------------


class Worker:
    """A ``worker.py serve CLIENT`` process and its line protocol, every read bounded."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [VENV_PY, os.path.join(HERE, "worker.py"), "serve", name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=HERE,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        ready = self._read(60)
        if not ready.get("ready"):
            raise RuntimeError(f"worker {name} failed to start: {ready}")

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put("")

    def _read(self, timeout: float) -> Dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.proc.kill()
            return {"error": f"timed out after {timeout} s"}
        return json.loads(line) if line else {"error": "worker exited"}

    def call(self, op: str, timeout: float = 300, **kw: Any) -> Dict[str, Any]:
        if self.proc.poll() is not None:
            return {"error": "worker exited"}
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        return self._read(timeout)

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                assert self.proc.stdin is not None
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.stdin.close()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(10)


class BenchServer:
    """``server.py`` in its own process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [VENV_PY, os.path.join(HERE, "server.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=HERE,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.root = f"http://127.0.0.1:{self.port}"

    def base(self, **params: Any) -> str:
        return f"{self.root}/b/" + ",".join(f"{k}={v}" for k, v in params.items())

    def sendlog(self, rid: str) -> List[float]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", f"/_sendlog?rid={rid}")
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def _cpu_snapshot() -> tuple:
    """(wall s, machine busy s, this process tree's CPU s): what other processes used is the difference."""
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    busy = sum(fields) - fields[3] - fields[4]  # minus idle and iowait
    stats: Dict[int, List[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stats[int(entry)] = f.read().rsplit(")", 1)[1].split()
            except OSError:
                pass
    ours, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        parent = frontier.pop()
        for pid, st in stats.items():
            if int(st[1]) == parent and pid not in ours:
                ours.add(pid)
                frontier.append(pid)
    mine = sum(sum(int(x) for x in stats[pid][11:15]) for pid in ours if pid in stats)
    return time.monotonic(), busy / tick, mine / tick


def foreign_cores(before: tuple, after: tuple) -> float:
    """Average cores used by processes outside this benchmark between two snapshots."""
    wall = after[0] - before[0]
    return max(0.0, ((after[1] - before[1]) - (after[2] - before[2])) / wall) if wall > 0 else 0.0


def rotated(items: List[str], r: int) -> List[str]:
    k = r % len(items)
    return items[k:] + items[:k]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- sections --------------------------------------------------------------------------------


def ceiling(server: BenchServer, reps: int) -> List[Dict[str, Any]]:
    """Events/s the server delivers to a reader that only counts event ends (its ceiling)."""
    import socket

    out = []
    for wire, path, body in (
        ("openai", "/v1/chat/completions", b"{}"),
        ("anthropic", "/v1/messages", b"{}"),
    ):
        for n in (20000, 100000):
            prefix = f"/b/n={n}"
            pre = 1 if wire == "openai" else 3
            post = 2 if wire == "openai" else 3
            rates, ok = [], True
            sock = socket.create_connection(("127.0.0.1", server.port))
            for _ in range(reps + 1):
                req = (
                    f"POST {prefix}{path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode() + body
                t0 = time.perf_counter()
                sock.sendall(req)
                count, tail = 0, b""
                head: Optional[bytes] = b""
                while True:
                    data = sock.recv(1 << 20)
                    if not data:
                        raise RuntimeError("server closed")
                    if head is not None:  # still in the response head: skip past it
                        head += data
                        end = head.find(b"\r\n\r\n")
                        if end < 0:
                            continue
                        data, head = head[end + 4 :], None
                    joined = tail + data
                    count += joined.count(b"\n\n") - tail.count(b"\n\n")
                    tail = joined[-8:]
                    if tail.endswith(b"0\r\n\r\n"):
                        break
                dt = time.perf_counter() - t0
                rates.append((pre + n + post) / dt)
                ok = ok and count == pre + n + post
            sock.close()
            out.append({"wire": wire, "n": n, "rates": rates[1:], "ok": ok})
    return out


def throughput(
    server: BenchServer, workers: Dict[str, Worker], n: int, rounds: int, warm: bool
) -> Dict[str, List[Dict[str, Any]]]:
    names = list(workers)
    base = server.base(n=n)
    results: Dict[str, List[Dict[str, Any]]] = {name: [] for name in names}
    if warm:
        for name in names:
            workers[name].call("throughput", base=base, n=n)
    for r in range(rounds):
        for name in rotated(names, r):
            results[name].append(workers[name].call("throughput", base=base, n=n))
        log(f"  throughput n={n} round {r + 1}/{rounds} done")
    return results


def latency(server: BenchServer, workers: Dict[str, Worker], rounds: int) -> Dict[str, Dict[str, List[Any]]]:
    n, delay = 50, 20
    ends = cumulative_ends(n)
    out: Dict[str, Dict[str, List[Any]]] = {"chunked": {}, "close": {}}
    names = list(workers)
    for r in range(rounds):
        for te in ("chunked", "close"):
            for name in rotated(names, r):
                rid = f"{name}-{te}-{r}-{time.monotonic_ns()}"
                res = workers[name].call("latency", base=server.base(n=n, d=delay, te=te, rid=rid), n=n)
                sent = server.sendlog(rid)
                entry: Dict[str, Any] = {"ok": bool(res.get("ok")), "error": res.get("error")}
                if "pieces" in res and len(sent) == n:
                    pieces = res["pieces"]
                    lat, k = [], 0
                    for i, end in enumerate(ends):
                        while k < len(pieces) and pieces[k][1] < end:
                            k += 1
                        if k == len(pieces):
                            entry["ok"] = False
                            break
                        lat.append((pieces[k][0] - sent[i]) * 1000.0)
                    entry["ms"] = lat
                else:
                    entry["ok"] = False
                out[te].setdefault(name, []).append(entry)
        log(f"  latency round {r + 1}/{rounds} done")
    return out


def ttft(server: BenchServer, workers: Dict[str, Worker], rounds: int, count: int) -> Dict[str, List[Any]]:
    n = 8
    base = server.base(n=n)
    names = list(workers)
    for name in names:
        workers[name].call("ttft", base=base, n=n, count=3)  # build the client, pool a connection
    out: Dict[str, List[Any]] = {name: [] for name in names}
    for r in range(rounds):
        for name in rotated(names, r):
            out[name].append(workers[name].call("ttft", base=base, n=n, count=count))
    return out


def imports(rounds: int) -> Dict[str, List[Dict[str, float]]]:
    labels = list(IMPORTS)
    out: Dict[str, List[Dict[str, float]]] = {label: [] for label in labels}
    for r in range(rounds + 1):  # round 0 warms the page cache and the .pyc files
        for label in rotated(labels, r):
            code = _IMPORT_SNIPPET.format(stmt=IMPORTS[label])
            t0 = time.perf_counter()
            proc = subprocess.run([VENV_PY, "-c", code], capture_output=True, text=True, cwd="/tmp", timeout=120)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                out[label].append({"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"})  # type: ignore[dict-item]
                continue
            imp, hwm = proc.stdout.split()
            if r:
                out[label].append({"import": float(imp), "wall": wall, "rss_kib": int(hwm)})
    return out


def importtime(stmt: str, reps: int) -> Dict[str, Any]:
    """``python -X importtime`` of ``stmt``: median self and cumulative µs per module."""
    selfs: Dict[str, List[int]] = {}
    cums: Dict[str, List[int]] = {}
    for _ in range(reps + 1):
        proc = subprocess.run([VENV_PY, "-X", "importtime", "-c", stmt], capture_output=True, text=True, cwd="/tmp", timeout=120)
        for line in proc.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            own, cum, name = (part.strip() for part in line[len("import time:") :].split("|"))
            selfs.setdefault(name, []).append(int(own))
            cums.setdefault(name, []).append(int(cum))
    rows = [
        {"module": name, "self_us": statistics.median(selfs[name]), "cum_us": statistics.median(cums[name])}
        for name in selfs
    ]
    rows.sort(key=lambda r: -r["self_us"])
    return {"stmt": stmt, "top_self": rows[:15], "llmstreamer": [r for r in rows if r["module"].startswith("llmstreamer")]}


def cli_help(rounds: int) -> Dict[str, Any]:
    """Process time of ``python -m llmstreamer --help`` and of the console script, if the CLI exists."""
    if not os.path.exists(os.path.join(ROOT, "llmstreamer", "cli.py")):
        return {"pending": "llmstreamer/cli.py does not exist yet"}
    cases = {
        "python -m llmstreamer --help": [VENV_PY, "-m", "llmstreamer", "--help"],
        "llmstreamer --help (console script)": [os.path.join(VENV, "bin", "llmstreamer"), "--help"],
        "python -c pass (interpreter only)": [VENV_PY, "-c", "pass"],
    }
    out: Dict[str, Any] = {label: [] for label in cases}
    for r in range(rounds + 1):
        for label in rotated(list(cases), r):
            t0 = time.perf_counter()
            proc = subprocess.run(cases[label], capture_output=True, text=True, cwd="/tmp", timeout=60)
            wall = time.perf_counter() - t0
            if r:
                out[label].append({"wall": wall, "rc": proc.returncode, "lines": len(proc.stdout.splitlines())})
    return out


def first_request(server: BenchServer, names: List[str], rounds: int) -> Dict[str, List[Any]]:
    base = server.base(n=8)
    out: Dict[str, List[Any]] = {name: [] for name in names}
    for r in range(rounds):
        for name in rotated(names, r):
            proc = subprocess.run(
                [VENV_PY, os.path.join(HERE, "worker.py"), "first", name, base],
                capture_output=True,
                text=True,
                cwd=HERE,
                timeout=120,
            )
            try:
                out[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            except (IndexError, ValueError):
                out[name].append({"error": proc.stderr.strip()[-300:]})
    return out


def concurrency(server: BenchServer, names: List[str], runs: int) -> Dict[str, List[Any]]:
    streams, n = 200, 1000
    base = server.base(n=n, d=1)
    out: Dict[str, List[Any]] = {name: [] for name in names}
    for r in range(runs):
        for name in rotated(names, r):
            try:
                proc = subprocess.run(
                    [VENV_PY, os.path.join(HERE, "worker.py"), "concurrent", name, base, str(streams), str(n)],
                    capture_output=True,
                    text=True,
                    cwd=HERE,
                    timeout=600,
                )
                out[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            except (IndexError, ValueError, subprocess.TimeoutExpired) as exc:
                out[name].append({"error": f"{type(exc).__name__}: {exc}"})
            log(f"  concurrency {name} run {r + 1}/{runs}: {json.dumps(out[name][-1])[:160]}")
    return out


def micro(args: List[str], timeout: float = 600) -> Dict[str, Any]:
    proc = subprocess.run(
        [VENV_PY, os.path.join(HERE, "micro.py"), *args], capture_output=True, text=True, cwd=HERE, timeout=timeout
    )
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": proc.stderr.strip()[-2000:]}


# --- the machine -----------------------------------------------------------------------------


def machine() -> Dict[str, Any]:
    from importlib import metadata

    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
            mem = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration):
        pass
    versions = {}
    for pkg in PEER_PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "-"
    digest = hashlib.sha256()
    src = os.path.join(ROOT, "llmstreamer")
    for dirpath, _, files in sorted(os.walk(src)):
        for name in sorted(files):
            if name.endswith(".py"):
                with open(os.path.join(dirpath, name), "rb") as f:
                    digest.update(name.encode() + f.read())
    git = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", ROOT, "status", "--porcelain", "--", "llmstreamer"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory": mem,
        "kernel": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "versions": versions,
        "git": git,
        "llmstreamer_dirty_files": len(dirty.splitlines()) if dirty else 0,
        "llmstreamer_sources_sha256": digest.hexdigest()[:16],
    }


# --- main ------------------------------------------------------------------------------------


def setup() -> None:
    """Create benchmarks/.venv with the pinned peers and llmstreamer (editable)."""
    if not os.path.exists(VENV_PY):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    pip = [VENV_PY, "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "-r", os.path.join(HERE, "requirements.txt")], check=True)
    # compat mode: a plain path entry, so no import hook sits in front of every import
    subprocess.run([*pip, "-e", ROOT, "--config-settings", "editable_mode=compat"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark llmstreamer against its peers.")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and runs (~2-3 minutes)")
    parser.add_argument("--setup", action="store_true", help="create benchmarks/.venv and exit")
    parser.add_argument("--no-report", action="store_true", help="write the JSON only")
    parser.add_argument(
        "--only", default="", help="comma-separated sections: ceiling,throughput,latency,ttft,imports,first,cli,concurrency,sse8,profile"
    )
    parser.add_argument("--clients", default="", help="comma-separated client names (default: all)")
    args = parser.parse_args()
    if args.setup:
        setup()
        return
    if not os.path.exists(VENV_PY):
        raise SystemExit("benchmarks/.venv is missing: run `python benchmarks/run.py --setup` first")
    if os.path.realpath(sys.prefix) != os.path.realpath(VENV):
        os.execv(VENV_PY, [VENV_PY, os.path.abspath(__file__), *sys.argv[1:]])
    plan = Plan(args.quick)
    only = set(filter(None, args.only.split(",")))

    foreign: Dict[str, float] = {}
    mark = [_cpu_snapshot(), ""]

    def want(section: str) -> bool:
        """Whether to run ``section``; also closes the previous section's count of foreign CPU."""
        if only and section not in only:
            return False
        now = _cpu_snapshot()
        if mark[1]:
            foreign[mark[1]] = foreign_cores(mark[0], now)
        mark[:] = [now, section]
        return True

    started = time.time()
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "") + (f" --only {args.only}" if only else "")
    command += f" --clients {args.clients}" if args.clients else ""
    res: Dict[str, Any] = {
        "meta": {
            "command": command,
            "mode": "quick" if args.quick else "full",
            "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load_start": os.getloadavg(),
            "machine": machine(),
            "plan": vars(plan),
            "clients": {name: info._asdict() for name, info in CLIENTS.items()},
        }
    }
    m = res["meta"]["machine"]
    log(
        f"{command}: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), {m['memory']}, "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {m['implementation']} {m['python']}, "
        f"llmstreamer git {m['git']} (+{m['llmstreamer_dirty_files']} uncommitted files)"
    )
    log("versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()))
    server = BenchServer()
    names = [n for n in CLIENTS if not args.clients or n in args.clients.split(",")]
    workers: Dict[str, Worker] = {}
    try:
        if want("ceiling"):
            log("server ceiling")
            res["ceiling"] = ceiling(server, 3)
        if not only or only & {"throughput", "latency", "ttft"}:
            log("starting workers")
            workers = {name: Worker(name) for name in names}
        if want("throughput"):
            log("throughput")
            res["throughput"] = {
                "20000": throughput(server, workers, 20000, plan.rounds_20k, warm=True),
                "100000": throughput(server, workers, 100000, plan.rounds_100k, warm=False),
            }
        if want("latency"):
            log("latency")
            res["latency"] = latency(server, workers, plan.rounds_latency)
        if want("ttft"):
            log("time to first token")
            res["ttft"] = ttft(server, workers, plan.rounds_ttft, plan.ttft_per_round)
        for w in workers.values():
            w.close()
        workers = {}
        if want("imports"):
            log("imports")
            res["imports"] = imports(plan.rounds_import)
            res["importtime"] = importtime("from llmstreamer import OpenAIStreamer", 3)
        if want("first"):
            log("first request in a fresh process")
            res["first"] = first_request(server, names, plan.rounds_first)
        if want("cli"):
            log("CLI --help")
            res["cli"] = cli_help(plan.rounds_import)
        if want("concurrency"):
            log("200 concurrent streams x 1,000 chunks")
            res["concurrency"] = concurrency(server, plan.concurrent_clients, plan.rounds_concurrent)
        if want("sse8"):
            log("8 MiB event")
            res["sse8"] = micro(["sse8", str(plan.sse8_reps)])
        if want("profile"):
            log("profile of the hot path")
            res["profile"] = micro(["profile", server.root, str(plan.profile_n), str(plan.profile_reps)])
    finally:
        for w in workers.values():
            w.close()
        server.close()
    if mark[1]:
        foreign[mark[1]] = foreign_cores(mark[0], _cpu_snapshot())
    res["meta"]["load_end"] = os.getloadavg()
    res["meta"]["foreign_cores_by_section"] = foreign
    res["meta"]["duration_s"] = time.time() - started
    os.makedirs(OUT, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = os.path.join(OUT, f"results-{stamp}.json")
    for p in (path, os.path.join(OUT, "latest.json")):
        with open(p, "w") as f:
            json.dump(res, f, indent=1)
    log(f"wrote {os.path.relpath(path, ROOT)} in {res['meta']['duration_s']:.0f} s")
    if not args.no_report:
        import report

        report.write(res)
        log("wrote benchmarks/RESULTS.md and plots")


def median(values: List[float]) -> Optional[float]:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


if __name__ == "__main__":
    main()
