# ruff: noqa: RUF001 -- the typographic signs in the tables are meant
"""Turns a benchmark results JSON into benchmarks/RESULTS.md and the PNG plots.

``python benchmarks/report.py [results.json]`` (default: ``benchmarks/out/latest.json``).
A hand-written block between ``<!-- notes:start -->`` and ``<!-- notes:end -->`` in the
existing RESULTS.md is kept across re-renders.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
from typing import Any, Dict, List, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS_MD = os.path.join(HERE, "RESULTS.md")

LLS = ("lls_cb", "lls_iter", "lls_cb_anth", "lls_iter_anth")


# --- statistics ------------------------------------------------------------------------------


def med(values: Sequence[Optional[float]]) -> Optional[float]:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def pct(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile with linear interpolation (numpy's default)."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def fmt(v: Optional[float], digits: int = 1, unit: str = "") -> str:
    if v is None or v != v:
        return "–"
    return f"{v:,.{digits}f}{unit}"


def ratio(v: Optional[float], digits: int = 1) -> str:
    return "–" if v is None else f"{v:.{digits}f}×"


def paired(a: List[Optional[float]], b: List[Optional[float]]) -> Optional[float]:
    """Median over rounds of a[r] / b[r]."""
    return med([x / y for x, y in zip(a, b) if x is not None and y])


def _walls(rows: List[Dict[str, Any]]) -> List[Optional[float]]:
    return [r.get("wall") if r.get("ok") else None for r in rows]


# --- sections --------------------------------------------------------------------------------


def machine_line(meta: Dict[str, Any]) -> str:
    m = meta["machine"]
    v = m["versions"]
    la0 = " ".join(f"{x:.2f}" for x in meta["load_start"])
    la1 = " ".join(f"{x:.2f}" for x in meta.get("load_end", meta["load_start"]))
    vers = ", ".join(f"{k} {v[k]}" for k in v if v[k] != "-")
    dirty = f", {m['llmstreamer_dirty_files']} uncommitted file(s) in llmstreamer/" if m["llmstreamer_dirty_files"] else ""
    foreign = meta.get("foreign_cores_by_section") or {}
    busy = ", ".join(f"{k} {v:.2f}" for k, v in foreign.items())
    other = (
        f"\n\nCPU used by other processes on the machine while each section ran (cores, average): {busy}."
        if foreign
        else ""
    )
    return (
        f"Machine: {m['kernel']}; {m['cpu']}; {m['cores']} cores ({m['usable_cores']} usable); {m['memory']} RAM; "
        f"{m['implementation']} {m['python']}. Load average at start {la0}, at end {la1}.\n\n"
        f"Versions: {vers}. llmstreamer at git {m['git']}{dirty} (sources sha256 {m['llmstreamer_sources_sha256']})."
        f"{other}"
    )


def throughput_table(res: Dict[str, Any], n: str) -> List[str]:
    data = res["throughput"][n]
    clients = res["meta"]["clients"]
    nn = int(n)
    lines = [
        "| client | what | chunks/s (median) | min – max | CPU µs/chunk | × floor time | text correct |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for name, rows in data.items():
        walls = _walls(rows)
        good = [w for w in walls if w]
        floor = clients[name]["floor"]
        rate = nn / med(good) if good else None
        cpu = med([r.get("cpu") for r in rows if r.get("ok")])
        lines.append(
            f"| {name} | {clients[name]['what']} | {fmt(rate, 0)} | "
            f"{fmt(nn / max(good), 0) if good else '–'} – {fmt(nn / min(good), 0) if good else '–'} | "
            f"{fmt(cpu / nn * 1e6 if cpu else None)} | {ratio(paired(walls, _walls(data[floor])))} | "
            f"{sum(1 for r in rows if r.get('ok'))}/{len(rows)} |"
        )
    return lines


def latency_stats(entries: List[Dict[str, Any]]) -> Dict[str, Any]:
    pooled = [x for e in entries if e.get("ms") for x in e["ms"]]
    p99s = [pct(e["ms"], 99) for e in entries if e.get("ms")]
    return {
        "median": statistics.median(pooled) if pooled else None,
        "p99": med(p99s),
        "max": max(pooled) if pooled else None,
        "ok": all(e.get("ok") for e in entries) and bool(entries),
        "pooled": pooled,
    }


def latency_table(res: Dict[str, Any]) -> List[str]:
    lat = res["latency"]
    lines = [
        "| client | chunked median ms | p99 | max | close median ms | p99 | max | correct |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in lat["chunked"]:
        c = latency_stats(lat["chunked"][name])
        d = latency_stats(lat["close"].get(name, []))
        lines.append(
            f"| {name} | {fmt(c['median'], 2)} | {fmt(c['p99'], 2)} | {fmt(c['max'], 2)} | "
            f"{fmt(d['median'], 2)} | {fmt(d['p99'], 2)} | {fmt(d['max'], 2)} | {c['ok'] and d['ok']} |"
        )
    return lines


def _ttft_round_medians(rows: List[Dict[str, Any]]) -> List[Optional[float]]:
    return [med(r.get("ttft") or []) for r in rows]


def ttft_table(res: Dict[str, Any]) -> List[str]:
    data = res["ttft"]
    first = res.get("first", {})
    clients = res["meta"]["clients"]
    lines = [
        "| client | warm median ms | warm p90 | × floor | first request ms (fresh process) | its module import ms | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rows in data.items():
        every = [x * 1000 for r in rows for x in (r.get("ttft") or []) if x is not None]
        floor = clients[name]["floor"]
        f = first.get(name, [])
        lines.append(
            f"| {name} | {fmt(med(every), 2)} | {fmt(pct(every, 90) if every else None, 2)} | "
            f"{ratio(paired(_ttft_round_medians(rows), _ttft_round_medians(data[floor])))} | "
            f"{fmt(med([x.get('first') and x['first'] * 1000 for x in f]), 1)} | "
            f"{fmt(med([x.get('import') and x['import'] * 1000 for x in f]), 1)} | "
            f"{fmt(med([x.get('rss_kib') and x['rss_kib'] / 1024 for x in f]), 1)} |"
        )
    return lines


def imports_table(res: Dict[str, Any]) -> List[str]:
    data = res["imports"]
    deps = "llmstreamer deps: requests, websocket, attrs"
    lines = [
        "| import | import ms (median) | min – max | × deps (paired) | process ms (median) | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, rows in data.items():
        imps = [r.get("import") for r in rows]
        good = [x * 1000 for x in imps if x is not None]
        lines.append(
            f"| {label} | {fmt(med(good), 1)} | {fmt(min(good) if good else None, 1)} – {fmt(max(good) if good else None, 1)} | "
            f"{ratio(paired(imps, [r.get('import') for r in data.get(deps, [])]) if (med(good) or 0) > 0.05 else None, 2)} | "
            f"{fmt(med([r.get('wall') and r['wall'] * 1000 for r in rows]), 0)} | "
            f"{fmt(med([r.get('rss_kib') and r['rss_kib'] / 1024 for r in rows]), 1)} |"
        )
    return lines


def importtime_table(res: Dict[str, Any]) -> List[str]:
    it = res["importtime"]
    lines = [
        f"`python -X importtime -c \"{it['stmt']}\"`, median of 3 (µs; -X importtime itself inflates the figures). "
        "Heaviest modules by own time:",
        "",
        "| module | self µs | cumulative µs |",
        "|---|---:|---:|",
    ]
    lines += [f"| {r['module'].strip()} | {r['self_us']:,.0f} | {r['cum_us']:,.0f} |" for r in it["top_self"]]
    lines += ["", "llmstreamer's own modules:", "", "| module | self µs | cumulative µs |", "|---|---:|---:|"]
    lines += [f"| {r['module'].strip()} | {r['self_us']:,.0f} | {r['cum_us']:,.0f} |" for r in it["llmstreamer"]]
    return lines


def cli_table(res: Dict[str, Any]) -> List[str]:
    cli = res.get("cli")
    if not cli:
        return ["Not measured in this run."]
    if "pending" in cli:
        return [f"**Pending**: {cli['pending']} (the CLI is being written; re-run once it lands)."]
    lines = ["| command | process ms (median) | min – max | exit code |", "|---|---:|---:|---|"]
    for label, rows in cli.items():
        walls = [r["wall"] * 1000 for r in rows]
        lines.append(
            f"| `{label}` | {fmt(med(walls), 0)} | {fmt(min(walls), 0)} – {fmt(max(walls), 0)} | "
            f"{sorted({r['rc'] for r in rows})} |"
        )
    return lines


def concurrency_table(res: Dict[str, Any]) -> List[str]:
    data = res["concurrency"]
    base = data.get("raw", [])
    lines = [
        "| client | streams correct (per run) | wall s | CPU s | RSS before MiB | peak MiB | wall × raw | CPU × raw | peak × raw | (peak − before) × raw |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def col(rows: List[Dict[str, Any]], key: str) -> List[Optional[float]]:
        return [r.get(key) for r in rows]

    def grown(rows: List[Dict[str, Any]]) -> List[Optional[float]]:
        return [r["rss_peak_kib"] - r["rss_before_kib"] if "rss_peak_kib" in r else None for r in rows]

    for name, rows in data.items():
        errs = {r.get("first_error") or r.get("error") for r in rows} - {None}
        correct = "/".join(str(r.get("correct", 0)) for r in rows) + " of 200"
        if errs:
            correct += f" ({'; '.join(sorted(errs))[:120]})"
        lines.append(
            f"| {name} | {correct} | {fmt(med(col(rows, 'wall')))} | {fmt(med(col(rows, 'cpu')))} | "
            f"{fmt(med([x and x / 1024 for x in col(rows, 'rss_before_kib')]))} | "
            f"{fmt(med([x and x / 1024 for x in col(rows, 'rss_peak_kib')]))} | "
            f"{ratio(paired(col(rows, 'wall'), col(base, 'wall')))} | {ratio(paired(col(rows, 'cpu'), col(base, 'cpu')))} | "
            f"{ratio(paired(col(rows, 'rss_peak_kib'), col(base, 'rss_peak_kib')))} | {ratio(paired(grown(rows), grown(base)))} |"
        )
    return lines


def ceiling_table(res: Dict[str, Any]) -> List[str]:
    lines = ["| wire / N | events/s (median) | min – max | correct |", "|---|---:|---:|---|"]
    for row in res["ceiling"]:
        r = row["rates"]
        lines.append(f"| {row['wire']}/{row['n']} | {fmt(med(r), 0)} | {fmt(min(r), 0)} – {fmt(max(r), 0)} | {row['ok']} |")
    return lines


def sse8_table(res: Dict[str, Any]) -> List[str]:
    data = res["sse8"]
    if "error" in data:
        return [f"Failed: `{data['error'][-300:]}`"]
    lines = ["| 8 MiB event | bytes | median s | min – max | parsed correctly |", "|---|---:|---:|---:|---|"]
    for label, row in data.items():
        lines.append(
            f"| {label} | {row['bytes']:,} | {row['median_s']:.3f} | {row['min_s']:.3f} – {row['max_s']:.3f} | {row['ok']} |"
        )
    return lines


def profile_section(res: Dict[str, Any]) -> List[str]:
    p = res["profile"]
    if "error" in p:
        return [f"Failed: `{p['error'][-500:]}`"]
    st = p["stages_us_per_chunk"]
    lines = [
        f"One OpenAI-wire stream of {p['n']:,} chunks ({p['read_chunks']:,} `read1` results, {p['events']:,} SSE events), "
        f"fastest of {p.get('reps', 5)} repetitions, µs per chunk. Isolated stages run on bytes captured from the real stream; "
        "`cum:` rows run the real path up to that layer.",
        "",
        "| stage | µs/chunk |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v:.2f} |" for k, v in st.items()]
    keys = list(st)
    try:
        read, sse, dec = st[keys[0]], st[keys[1]], st[keys[3]]
        rnd, evs, disp, chat = st[keys[6]], st[keys[7]], st[keys[8]], st[keys[9]]
        lines += [
            "",
            "Derived (differences of the rows above):",
            "",
            f"- generator hops inside the provider round (`_round` − read1 − SSE − decoder): {rnd - read - sse - dec:.2f} µs",
            f"- engine (`Run.events` − provider round; includes the accumulator's {st[keys[5]]:.2f}): {evs - rnd:.2f} µs",
            f"- dispatch + callback (`dispatch` − `Run.events`): {disp - evs:.2f} µs",
            f"- worker thread + handle (`stream_chat` − `dispatch`): {chat - disp:.2f} µs",
        ]
    except (IndexError, KeyError):
        pass
    wi = p.get("whatif_us_per_chunk") or {}
    if wi:
        lines += [
            "",
            "What-ifs (the same work done the floor's way, same data, µs per chunk), to size the suggestions:",
            "",
            "| alternative | µs/chunk |",
            "|---|---:|",
            *[f"| {k} | {v:.2f} |" for k, v in wi.items()],
        ]
    lines += [
        "",
        f"cProfile of `_engine.dispatch` (the worker thread's body), wall {p['cprofile_wall_s']:.2f} s under the profiler "
        "(cProfile roughly doubles Python-level costs: read it for proportions). Own time by package:",
        "",
        "| package | own s | share |",
        "|---|---:|---:|",
    ]
    total = sum(v for _, v in p["cprofile_packages"]) or 1.0
    lines += [f"| {k} | {v:.3f} | {v / total:.0%} |" for k, v in p["cprofile_packages"]]
    lines += ["", "| ncalls | own s | cum s | own µs/call | function |", "|---:|---:|---:|---:|---|"]
    lines += [
        f"| {r['ncalls']} | {r['own_s']:.3f} | {r['cum_s']:.3f} | {r['per_call_us']:.2f} | `{r['function']}` |"
        for r in p["cprofile_top"][:20]
    ]
    tp = p.get("ttft_profile")
    if tp:
        lines += [
            "",
            "### Warm time to first token: where a short stream's time goes",
            "",
            "Median µs of one whole 1-chunk stream on a warm connection (no profiler), through each layer:",
            "",
            "| path | µs (median of {}) |".format(tp["streams"]),
            "|---|---:|",
            *[f"| {k} | {v:,.0f} |" for k, v in tp["whatif_median_us"].items()],
            "",
            f"cProfile of {tp['streams']} such streams through `_engine.dispatch` "
            f"({tp['wall_per_stream_us']:,.0f} µs each under the profiler), by cumulative time per stream:",
            "",
            "| cum µs/stream | own µs/stream | ncalls | function |",
            "|---:|---:|---:|---|",
            *[
                f"| {r['cum_us_per_stream']:,.1f} | {r['own_us_per_stream']:,.1f} | {r['ncalls']} | `{r['function']}` |"
                for r in tp["top_cum"][:25]
            ],
        ]
    return lines


# --- targets ---------------------------------------------------------------------------------


def targets(res: Dict[str, Any]) -> List[str]:
    rows: List[str] = []

    def add(target: str, measured: str, ok: Optional[bool]) -> None:
        verdict = "–" if ok is None else ("met" if ok else "**not met**")
        rows.append(f"| {target} | {measured} | {verdict} |")

    tp = res.get("throughput", {})
    for n in ("20000", "100000"):
        data = tp.get(n)
        if not data:
            continue
        for name in ("lls_cb", "lls_iter"):
            if name in data and "openai" in data:
                speed = paired(_walls(data["openai"]), _walls(data[name]))
                add(f"throughput ≥ 10× the openai SDK's chunks/s ({name}, N={int(n):,})", ratio(speed), speed is not None and speed >= 10)
        for name, floor in (("lls_cb", "raw"), ("lls_iter", "raw"), ("lls_cb_anth", "raw_anth"), ("lls_iter_anth", "raw_anth")):
            if name in data and floor in data:
                r = paired(_walls(data[name]), _walls(data[floor]))
                add(f"time within 1.5× the floor's ({name} ÷ {floor}, N={int(n):,})", ratio(r, 2), r is not None and r <= 1.5)
    lat = res.get("latency")
    if lat:
        for te in ("chunked", "close"):
            for name in LLS:
                if name in lat[te]:
                    s = latency_stats(lat[te][name])
                    add(
                        f"per-chunk latency p99 < 1 ms, {te} ({name})",
                        f"p99 {fmt(s['p99'], 2)} ms (median {fmt(s['median'], 2)}, max {fmt(s['max'], 2)})",
                        s["p99"] is not None and s["p99"] < 1.0,
                    )
    tt = res.get("ttft")
    if tt and "openai" in tt:
        for name in ("lls_cb", "lls_iter"):
            if name in tt:
                r = paired(_ttft_round_medians(tt[name]), _ttft_round_medians(tt["openai"]))
                add(f"warm TTFT ≤ ½ the openai SDK's ({name})", f"{ratio(r, 2)} of openai's", r is not None and r <= 0.5)
    imp = res.get("imports")
    if imp:
        deps = [r.get("import") for r in imp["llmstreamer deps: requests, websocket, attrs"]]
        oai = [r.get("import") for r in imp["openai"]]
        for label in ("import llmstreamer", "llmstreamer + OpenAIStreamer"):
            mine = [r.get("import") for r in imp[label]]
            r1, r2 = paired(mine, deps), paired(mine, oai)
            add(f"`{label}` ≤ 1.3× its dependencies' import", ratio(r1, 2), r1 is not None and r1 <= 1.3)
            add(f"`{label}` ≤ ⅓ of openai's import", ratio(r2, 2), r2 is not None and r2 <= 1 / 3)
    cc = res.get("concurrency")
    if cc and "lls_cb" in cc and "raw" in cc:
        mine, base = cc["lls_cb"], cc["raw"]
        for key, limit, label in (("wall", 2.0, "wall"), ("cpu", 2.0, "CPU"), ("rss_peak_kib", 1.5, "peak RSS")):
            r = paired([x.get(key) for x in mine], [x.get(key) for x in base])
            add(f"200×1000 concurrent: {label} within {limit:g}× the floor's (lls_cb ÷ raw)", ratio(r, 2), r is not None and r <= limit)
        correct = [x.get("correct") for x in mine]
        add("200×1000 concurrent: every stream complete and correct (lls_cb)", f"{correct} of 200", all(c == 200 for c in correct))
    s8 = res.get("sse8")
    if s8 and "error" not in s8:
        for label, row in s8.items():
            add(f"8 MiB event parsed in < 0.2 s ({label})", f"{row['median_s']:.3f} s", row["median_s"] < 0.2 and row["ok"])
    cli = res.get("cli")
    if cli and "pending" in cli:
        add("`llmstreamer --help` process time (reported, no target)", "pending: the CLI does not exist yet", None)
    elif cli:
        for label, cli_rows in cli.items():
            if "help" in label:
                add(
                    f"`{label}` process time (reported, no target)",
                    f"{fmt(med([r['wall'] * 1000 for r in cli_rows]), 0)} ms, exit {sorted({r['rc'] for r in cli_rows})}",
                    None,
                )
    if not rows:
        return []
    return ["| target | measured | verdict |", "|---|---|---|", *rows]


# --- plots -----------------------------------------------------------------------------------


def plots(res: Dict[str, Any]) -> List[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []
    tp = res.get("throughput")
    if tp:
        names = list(tp["20000"])
        fig, ax = plt.subplots(figsize=(9, 0.45 * len(names) + 1.5))
        ys = range(len(names))
        for offset, n, color in ((-0.2, "20000", "#4c72b0"), (0.2, "100000", "#dd8452")):
            vals = []
            for name in names:
                good = [w for w in _walls(tp.get(n, {}).get(name, [])) if w]
                vals.append(int(n) / statistics.median(good) if good else 0)
            bars = ax.barh([y + offset for y in ys], vals, height=0.38, color=color, label=f"N = {int(n):,}")
            for bar, v in zip(bars, vals):
                if v:
                    ax.text(v * 1.05, bar.get_y() + bar.get_height() / 2, f"{v:,.0f}", va="center", fontsize=7)
        ax.set_yticks(list(ys))
        ax.set_yticklabels([f"{n} ★" if n in LLS else n for n in names])
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("chunks/s (median of rounds, log scale; higher is better)")
        ax.set_title("Throughput on loopback, one stream (★ = llmstreamer)")
        ax.legend(loc="lower right")
        ax.set_xlim(right=ax.get_xlim()[1] * 3)
        fig.tight_layout()
        fig.savefig(os.path.join(HERE, "throughput.png"), dpi=110)
        plt.close(fig)
        made.append("throughput.png")
    lat = res.get("latency")
    if lat:
        names = list(lat["chunked"])
        fig, axes = plt.subplots(1, 2, figsize=(11, 0.42 * len(names) + 1.8), sharey=True)
        for ax, te in zip(axes, ("chunked", "close")):
            data = [latency_stats(lat[te].get(name, []))["pooled"] or [float("nan")] for name in names]
            ax.boxplot(data, orientation="horizontal", whis=(1, 99), showfliers=True, flierprops={"markersize": 3})
            ax.axvline(1.0, color="red", linestyle="--", linewidth=0.8, label="1 ms target (p99)")
            ax.set_xscale("log")
            ax.set_title(f"{te} body" if te == "chunked" else "close-delimited body")
            ax.set_xlabel("send → delivery per chunk, ms (log); whiskers p1–p99")
            ax.legend(loc="lower right", fontsize=7)
        axes[0].set_yticks(range(1, len(names) + 1))
        axes[0].set_yticklabels([f"{n} ★" if n in LLS else n for n in names])
        axes[0].invert_yaxis()
        fig.suptitle("Per-chunk delivery latency, 50 chunks 20 ms apart (★ = llmstreamer)")
        fig.tight_layout()
        fig.savefig(os.path.join(HERE, "latency.png"), dpi=110)
        plt.close(fig)
        made.append("latency.png")
    return made


# --- the document ----------------------------------------------------------------------------


def render(res: Dict[str, Any], made: List[str], notes: str) -> str:
    meta = res["meta"]
    plan = meta["plan"]
    out = [
        "# llmstreamer benchmark results",
        "",
        f"Measured {meta['started']} by `{meta['command']}` ({meta['mode']} mode, {meta.get('duration_s', 0):.0f} s). "
        "Re-render with `python benchmarks/report.py benchmarks/out/<results>.json`.",
        "",
        machine_line(meta),
        "",
        f"Rounds: {plan['rounds_20k']} (N=20k), {plan['rounds_100k']} (N=100k), {plan['rounds_latency']} (latency), "
        f"{plan['rounds_ttft']}×{plan['ttft_per_round']} (TTFT), {plan['rounds_import']} (imports, CLI), "
        f"{plan['rounds_first']} (first request), {plan['rounds_concurrent']} (concurrency).",
        "",
        "This machine is small and shared: read the medians and the paired ratios (each taken within one round, "
        "clients interleaved), not the absolute figures alone.",
        "",
        "## Interpretation",
        "",
        notes or "<!-- notes:start -->\n(no notes yet)\n<!-- notes:end -->",
        "",
    ]
    tg = targets(res)
    if tg:
        out += ["## Targets", "", *tg, ""]
    if "throughput" in res:
        out += ["## Throughput", ""]
        if "throughput.png" in made:
            out += ["![throughput](throughput.png)", ""]
        for n in ("20000", "100000"):
            out += [
                f"### N = {int(n):,} chunks (~3.6 characters each), no delay",
                "",
                "One SSE event per HTTP chunk, many chunks per socket write. chunks/s = N ÷ (request start → stream "
                "consumed), median of rounds; CPU = the worker process's CPU time (all threads) ÷ N; "
                "× floor = this client's time ÷ the raw floor's (same wire), paired per round, median.",
                "",
                *throughput_table(res, n),
                "",
            ]
    if "ceiling" in res:
        out += ["### Server ceiling (a raw reader that only counts event ends)", "", *ceiling_table(res), ""]
    if "latency" in res:
        out += ["## Per-chunk delivery latency: 50 chunks, 20 ms apart", ""]
        if "latency.png" in made:
            out += ["![latency](latency.png)", ""]
        out += [
            "Receipt (client: when its callback or iterator hands over the text) − send (server: just before the "
            "socket write), both `time.monotonic()` (CLOCK_MONOTONIC) in two processes, the send times fetched from "
            "the server's log by request id. median: all rounds pooled; p99: median over rounds of each round's "
            "p99; max: the worst chunk of all rounds. chunked = `Transfer-Encoding: chunked`; close = the same "
            "events with the body ended by closing the connection.",
            "",
            *latency_table(res),
            "",
        ]
    if "ttft" in res:
        out += [
            "## Time to first token",
            "",
            "warm = request start → first text, client already built and its connection pooled "
            f"({plan['ttft_per_round']} requests per round, the server answers at once with 8 chunks); "
            "× floor paired per round on the round medians. first request = build the client + first request → "
            "first text, in a fresh process right after importing the client module (whose import time and the "
            "process's peak RSS are shown).",
            "",
            *ttft_table(res),
            "",
        ]
    if "imports" in res:
        out += [
            "## Import time (a fresh process each, median)",
            "",
            "import = `perf_counter` around the import statement inside the process; process = the whole "
            "`python -c` wall time, interpreter start-up included; RSS = peak resident set after the import. "
            "× deps = this import ÷ `import requests, websocket, attrs` in the same round, median.",
            "",
            *imports_table(res),
            "",
        ]
    if "importtime" in res:
        out += ["### What `from llmstreamer import OpenAIStreamer` imports", "", *importtime_table(res), ""]
    if "cli" in res:
        out += ["## `llmstreamer --help`", "", *cli_table(res), ""]
    if "concurrency" in res:
        out += [
            "## 200 concurrent streams × 1,000 chunks, 1 ms apart",
            "",
            "One fresh process per client and run. llmstreamer: one streamer, 200 `stream_chat` handles (one "
            "worker thread each); the SDKs share one client across 200 threads, as they document; raw and "
            "requests use a socket / session per thread. Offered load is 200k chunks/s for ~1 s; a client that "
            "cannot keep up stretches the wall time (late chunks are coalesced by the server). RSS from "
            "/proc/self/status (VmRSS before the streams start, VmHWM = peak). Ratios paired per run.",
            "",
            *concurrency_table(res),
            "",
        ]
    if "sse8" in res:
        out += [
            "## One 8 MiB event through llmstreamer's SSE parser",
            "",
            "`llmstreamer._sse.SSEParser.feed` fed in 64 KiB pieces (as `read1` delivers them); fresh process.",
            "",
            *sse8_table(res),
            "",
        ]
    if "profile" in res:
        out += ["## Where llmstreamer's time goes (hot path)", "", *profile_section(res), ""]
    out += [
        "## How it was measured",
        "",
        "- Server (`benchmarks/server.py`, its own process): raw-socket HTTP/1.1, one thread per connection, "
        "keep-alive. OpenAI `chat.completion.chunk` events (role chunk, content chunks with the `obfuscation` "
        "field, finish chunk, `data: [DONE]`) and Anthropic events (`message_start`, `content_block_start`, "
        "`ping`, `text_delta`s, `content_block_stop`, `message_delta`, `message_stop`). Parameters ride in the "
        "URL prefix (`/b/n=…,d=…,te=…,rid=…`) so every client only needs a base URL. Unpaced bodies are "
        "rendered once and written in 1 MiB slices; paced ones follow an absolute schedule.",
        "- Text: a rotating 16-token vocabulary (non-ASCII é and 🙂, a quote, a backslash, a newline); every "
        "stream's whole text is checked.",
        "- Clients (`benchmarks/clients/`): each in its own fresh interpreter (`worker.py`) that imports only its "
        "library, with one warm-up request before the timed N=20k rounds. Each text piece goes to the same "
        "sink (`list.append`, or a stamping function for latency).",
        "- Floor (`raw`, `raw_anth`): one socket, 64 KiB `recv`, a chunked-transfer decoder, "
        "`split(b'\\n\\n')`, `json.loads` per event: the least a correct Python client must do on this wire.",
        "- Rounds interleave the clients (the order rotates every round); figures are medians; every ratio is "
        "paired within a round (or run) before the median is taken.",
        "- Loopback without TLS: the absolute µs are this machine's; real networks add milliseconds per round "
        "trip. Read the ratios and the per-chunk CPU.",
        "",
    ]
    return "\n".join(out)


def write(res: Dict[str, Any]) -> None:
    notes, kept = "", []
    if os.path.exists(RESULTS_MD):
        with open(RESULTS_MD, encoding="utf-8") as f:
            current = f.read()
        found = re.search(r"<!-- notes:start -->.*?<!-- notes:end -->", current, re.S)
        if found:
            notes = found.group(0)
        # the other scripts (sessions, resumable, memory, modelsocket) write their own marked
        # sections; keep them at the end, in their order
        kept = [m.group(0) for m in re.finditer(r"<!-- (\w+):start -->.*?<!-- \1:end -->", current, re.S) if m.group(1) != "notes"]
    made = plots(res)
    with open(RESULTS_MD, "w", encoding="utf-8") as f:
        text = render(res, made, notes)
        f.write(text.rstrip("\n") + "\n\n" + "\n\n".join(kept) + "\n" if kept else text)


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "out", "latest.json")
    with open(path, encoding="utf-8") as f:
        write(json.load(f))
    print(f"wrote {RESULTS_MD}")


if __name__ == "__main__":
    main()
