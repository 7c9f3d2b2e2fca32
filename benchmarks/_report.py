"""Results out: one JSON per group, ``latest.json``, the plot, and BENCHMARKS.md.

Every figure in the Markdown is read from the results of the run that writes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._findings import FINDINGS
from ._measure import GiB, MiB

Row = Sequence[str]


def write_json(out_dir: Path, meta: dict[str, Any], groups: dict[str, dict[str, Any]]) -> Path:
    """``<group>.json`` for each group and the combined ``latest.json``; the latter's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, group in groups.items():
        (out_dir / f"{name}.json").write_text(json.dumps({"meta": meta, **group}, indent=1))
    latest = out_dir / "latest.json"
    latest.write_text(json.dumps({"meta": meta, "groups": groups}, indent=1))
    return latest


# -- formatting ---------------------------------------------------------------------------
def _num(value: Any, spec: str = ".0f", suffix: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:{spec}}{suffix}"


def _met(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[met]


def _table(header: Row, rows: Sequence[Row]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _value(target: dict[str, Any]) -> str:
    value = target["value"]
    if value is None:
        return "–"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


# -- one section per group -------------------------------------------------------------------
def _throughput(g: dict[str, Any]) -> list[str]:
    p = g["params"]
    lines = [
        f"{p['size_bytes'] / GiB:g} GiB generated file, {p['part_size'] // MiB} MiB parts "
        f"({p['parts']} parts), {p['reps']} repetitions. The ceiling sends with "
        f"`os.sendfile` over {p['raw_sockets']} sockets; curl runs `--parallel --parallel-max "
        f"{p['curl_parallel_max']}`; the naive gather keeps {p['naive_concurrency']} parts in "
        "flight. *sink busy* is the sink process's CPU share during the run (it is never the "
        "bottleneck when well below 100 %).",
        "",
    ]
    rows = []
    for name, s in g["summary"].items():
        rows.append(
            [
                name,
                _num(s.get("mib_s")),
                _num(s.get("ratio_raw"), ".2f"),
                _num(s.get("ratio_curl"), ".2f"),
                _num(s.get("ratio_curl_sha"), ".2f"),
                _num(s.get("cpu_s_per_gib"), ".2f"),
                _num(s.get("peak_rss_mib")),
                _num(s.get("rss_growth_mib"), ".1f"),
                _num(s.get("sink_cpu_share"), ".0%"),
            ]
        )
    header = [
        "client",
        "MiB/s",
        "× raw TCP",
        "× curl",
        "× curl‖sha",
        "CPU s/GiB",
        "peak RSS MiB",
        "RSS growth MiB",
        "sink busy",
    ]
    return lines + _table(header, rows)


def _capped(g: dict[str, Any]) -> list[str]:
    p = g["params"]
    lines = [
        f"Files of concurrency × {p['per_connection_bytes'] // MiB} MiB (the same parts per "
        f"connection at every concurrency), {p['part_size'] / MiB:g} MiB parts, storage capped "
        f"at {p['cap_bytes_per_s'] / MiB:g} MiB/s per connection, checksum on, {p['reps']} "
        "repetitions. *Transfer* runs from the call until the last part PUT is answered "
        "(seen by an aiohttp trace hook); *end-to-end* adds `/complete`, where the emulator "
        "concatenates and hashes the parts. The ideal is min(concurrency × cap, server "
        "ceiling), the server ceiling being what the same emulator takes uncapped from curl "
        f"`--parallel {p['ceiling_parallel']}` in the same repetition. curl rows PUT the same "
        "parts through the same cap (no `/complete`); *server busy* is the emulator's CPU share.",
        "",
    ]
    rows = []
    for name, s in g["summary"].items():
        rows.append(
            [
                name,
                _num(s.get("transfer_mib_s")),
                _num(s.get("mib_s")),
                _num(s.get("ideal_mib_s")),
                _num(s.get("fraction_of_ideal"), ".0%"),
                _num(s.get("end_to_end_fraction"), ".0%"),
                _num(s.get("speedup_vs_sequential"), ".2f", "×"),
                _num(s.get("server_cpu_share"), ".0%"),
            ]
        )
    header = [
        "client",
        "transfer MiB/s",
        "end-to-end MiB/s",
        "ideal MiB/s",
        "transfer / ideal",
        "end-to-end / ideal",
        "transfer vs sequential",
        "server busy",
    ]
    return lines + _table(header, rows)


def _bulk(g: dict[str, Any]) -> list[str]:
    p = g["params"]
    caps = p["caps_per_minute"]
    sets = ", ".join(
        f"{v['files']} files of {v['size'] // 1024} KiB ({k})" for k, v in p["sets"].items()
    )
    lines = [
        f"{sets}, through the emulator (single PUTs), {p['reps']} repetitions. Then "
        f"{p['limited_files']} small files with the emulator's rate limits on "
        f"({caps['initiate']} initiates/min, {caps['default']} requests/min per key), "
        f"time-scaled ×{p['time_scale']:g}; the cap in files/s counts initiate + complete "
        "per file.",
        "",
    ]
    rows = []
    for name, s in g["summary"].items():
        if s.get("cap_fraction") is not None:
            continue
        rows.append(
            [
                name,
                _num(s.get("files_s")),
                _num(s.get("speedup_vs_sequential"), ".2f", "×"),
                _num(s.get("mib_s"), ".1f"),
                _num(s.get("cpu_s"), ".2f"),
                _num(s.get("peak_rss") and s["peak_rss"] / MiB),
                _num(s.get("server_cpu_share"), ".0%"),
            ]
        )
    header = [
        "client [file set]",
        "files/s",
        "vs sequential",
        "MiB/s",
        "client CPU s",
        "peak RSS MiB",
        "emulator busy",
    ]
    lines += _table(header, rows)
    limited = [(n, x) for n, x in g["summary"].items() if x.get("cap_fraction") is not None]
    name, s = limited[0] if limited else ("–", {})
    rows = [
        [
            name,
            _num(s.get("files_s"), ".1f"),
            _num(s.get("cap_files_s"), ".1f"),
            _num(s.get("cap_fraction"), ".1%"),
            _num(s.get("rate_limited")),
            _num(s.get("api_requests")),
            _num(s.get("share_429"), ".2%"),
        ]
    ]
    header = ["client", "files/s", "cap files/s", "of cap", "429s", "API requests", "429 share"]
    return lines + _table(header, rows)


def _overhead(g: dict[str, Any]) -> list[str]:
    p = g["params"]
    lines = [
        f"{p['requests']} `files.get` requests by {p['concurrency']} concurrent workers "
        f"against the emulator, {p['reps']} repetitions; CPU is the client process's own.",
        "",
    ]
    rows = []
    for name, s in g["summary"].items():
        rows.append(
            [
                name,
                _num(s.get("req_s")),
                _num(s.get("cpu_us_per_req")),
                _num(s.get("cpu_ratio_to_bare"), ".2f", "×"),
                _num(s.get("server_cpu_share"), ".0%"),
            ]
        )
    header = ["client", "requests/s", "CPU µs/request", "CPU vs bare", "emulator busy"]
    return lines + _table(header, rows)


def _memory(g: dict[str, Any]) -> list[str]:
    p = g["params"]
    lines = [
        f"Sparse files, concurrency {p['concurrency']}, {p['part_size'] // MiB} MiB parts, "
        f"checksum on, {p['reps']} repetitions. Growth = peak RSS − RSS just before "
        f"`files.upload`; bound = 64 MiB + {p['concurrency']} × the engine's "
        f"{p['chunk'] / MiB:g} MiB read chunk = {p['bound_bytes'] / MiB:.0f} MiB.",
        "",
    ]
    rows = []
    for name, s in g["summary"].items():
        rows.append(
            [
                name,
                _num(s.get("peak_rss_mib")),
                _num(s.get("rss_growth_mib"), ".1f"),
                _num(s.get("rss_growth_max_mib"), ".1f"),
                _num(s.get("mib_s")),
            ]
        )
    header = ["upload", "peak RSS MiB", "growth MiB (median)", "growth MiB (worst)", "MiB/s"]
    return lines + _table(header, rows)


def _profiles(g: dict[str, Any]) -> list[str]:
    """The py-spy summaries of the clients that missed a target."""
    lines: list[str] = []
    for client, prof in g.get("profiles", {}).items():
        lines += [f"**Profile of `{client}`** (one extra run under py-spy):", ""]
        if "error" in prof:
            lines += [f"profile unavailable: {prof['error']}", ""]
            continue
        lines += [
            f"{prof['samples']} samples at {prof['rate']} Hz over a {prof['wall_s']:.2f} s run. "
            "Busy = the share of the run's wall time a thread was working (samples waiting "
            "in select, queues or locks left out; the main thread counted only while its event "
            "loop runs); its hottest frames follow.",
            "",
        ]
        for t in prof["threads"]:
            tops = ", ".join(f"`{x['frame']}` {x['share']:.0%}" for x in t["top"])
            lines.append(f"- {t['thread']}: busy {t['busy']:.0%} — {tops}")
        lines += [""]
        rows = [[f"`{x['frame']}`", f"{x['share']:.0%}"] for x in prof["inclusive"]]
        lines += _table(["frame (SDK and libraries, inclusive)", "share of samples"], rows)
        if prof.get("native"):
            rows = [[f"`{x['frame']}`", f"{x['share']:.0%}"] for x in prof.get("self", [])]
            lines += _table(["innermost frame (Python or C)", "share of samples"], rows)
    return lines


def _tls(g: dict[str, Any]) -> list[str]:
    p = g["params"]
    lines = [
        f"{p['size_bytes'] / GiB:g} GiB generated file, {p['part_size'] // MiB} MiB parts "
        f"({p['parts']} parts), {p['concurrency']} in flight, {p['reps']} repetitions, "
        f"{p['tls']}. *× curl ‖ sha256* compares with curl `--parallel` running beside "
        "`openssl dgst -sha256` of the file (what a checksummed upload has to do). *TLS "
        "conns*: connections nginx saw for the parts (keep-alive holds).",
        "",
    ]
    if p.get("loadavg_before") and p.get("loadavg_after"):
        before, after = p["loadavg_before"], p["loadavg_after"]
        lines[-1:-1] = [
            (f"Run {p['date']}. " if p.get("date") else "")
            + f"Load average (1/5/15 min) before {before[0]:.2f}/{before[1]:.2f}/{before[2]:.2f}, "
            f"after {after[0]:.2f}/{after[1]:.2f}/{after[2]:.2f}."
        ]
    rows = []
    for name, s in g["summary"].items():
        rows.append(
            [
                name,
                _num(s.get("mib_s")),
                _num(s.get("ratio_curl"), ".2f"),
                _num(s.get("ratio_curl_sha"), ".2f"),
                _num(s.get("cpu_s_per_gib"), ".2f"),
                _num(s.get("cpu_vs_curl"), ".2f"),
                _num(s.get("lag_p99_ms"), ".1f"),
                _num(s.get("peak_rss_mib")),
                _num(s.get("rss_growth_mib"), ".1f"),
                _num(s.get("sink_cpu_share"), ".0%"),
                _num(s.get("connections")),
            ]
        )
    header = [
        "client",
        "MiB/s",
        "× curl",
        "× curl ‖ sha256",
        "CPU s/GiB",
        "CPU × curl",
        "loop lag p99 ms",
        "peak RSS MiB",
        "RSS growth MiB",
        "nginx busy",
        "TLS conns",
    ]
    lines += _table(header, rows)
    for name, threads in g.get("cpu_by_thread", {}).items():
        parts = ", ".join(f"{label} {_num(v, '.2f')}" for label, v in threads.items())
        lines += [f"- CPU s/GiB by thread, {name}: {parts}"]
    return [*lines, ""] if g.get("cpu_by_thread") else lines


def _fleet(g: dict[str, Any]) -> list[str]:
    p = g.get("params", {})
    lines = [
        f"{p.get('workers', '?')} processes (or Dask workers) share one key whose cap is "
        f"{p.get('requests', '?')} requests and {p.get('initiate', '?')} initiates per "
        f"{_num(p.get('window'), '.1f')} s (an emulator with scaled caps), "
        f"{p.get('files', '?')} files each; the budget lives in Redis or in each process.",
        "",
    ]
    rows = [
        [
            client,
            _num(r.get("files_s"), ".2f"),
            _num(r.get("cap_files_s"), ".2f"),
            _num(r.get("cap_fraction"), ".1%"),
            f"{r.get('rate_limited', 0)}/{r.get('api_requests', 0)}",
            _num(r.get("cpu_s"), ".1f"),
        ]
        for client, r in g.get("summary", {}).items()
    ]
    header = ["client", "files/s", "cap files/s", "of the cap", "429s / requests", "CPU s"]
    return [*lines, *_table(header, rows), ""]


SECTIONS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "fleet": _fleet,
    "throughput": _throughput,
    "capped": _capped,
    "bulk": _bulk,
    "overhead": _overhead,
    "memory": _memory,
    "tls": _tls,
}


def markdown(meta: dict[str, Any], groups: dict[str, dict[str, Any]], plot: str | None) -> str:
    """The whole BENCHMARKS.md."""
    m = meta
    if m.get("assembled"):
        intro = (
            "Assembled by `python -m benchmarks.run --assemble` from the latest run of each "
            "group (`benchmarks/results/<group>.json`): each section says its own date, commit "
            "and repetitions. A full `nox -s bench` renders one run instead."
        )
    else:
        intro = (
            "Generated by `nox -s bench` (`python -m benchmarks.run`); every figure on this "
            "page comes from that run, whose raw results are in `benchmarks/results/` "
            "(`latest.json`)."
        )
    lines = [
        "# Benchmarks",
        "",
        intro,
        "",
        f"- date: {m['date']}",
        f"- machine: {m['cores']} cores, {m['memory_gib']:.0f} GiB RAM, {m['platform']}",
        f"- Python {m['python']}, aiohttp {m['aiohttp']}, httpx {m.get('httpx') or '–'}, "
        f"{m.get('curl') or 'no curl'}",
        f"- fluidcloud_async {m['fluidcloud_async']} (commit {m.get('commit') or 'unknown'})",
        (
            "- repetitions per group below (medians; ratios are taken within a repetition, "
            "then the median)"
            if m.get("assembled")
            else f"- {m['reps']} repetitions per figure (medians; ratios are taken within a "
            f"repetition, then the median); total run time {m['duration_s'] / 60:.1f} min"
        )
        + (" — **quick mode: tiny sizes, not representative**" if m.get("quick") else ""),
        "- every client runs in its own process (CPU and peak RSS are its own); servers "
        "(sink, emulator) run in other processes on the same machine, over 127.0.0.1",
        "",
    ]
    if plot:
        lines += [f"![throughput]({plot})", ""]
    lines += ["## Targets", ""]
    rows = []
    for g in groups.values():
        for t in g.get("targets", []):
            rows.append([g["title"], t["what"], t["target"], _value(t), _met(t["met"])])
    lines += _table(["group", "figure", "target", "measured", ""], rows)
    for i, (name, g) in enumerate(groups.items(), start=1):
        lines += [f"## {i}. {g['title']}", ""]
        run = g.get("run")
        if run:
            lines += [
                f"(run of {run['date']}, commit {run.get('commit') or 'unknown'}, "
                f"{run['reps']} repetition{'s' if run['reps'] != 1 else ''})",
                "",
            ]
        elif g.get("commit") and g["commit"] != m.get("commit"):
            lines += [f"(ran on commit {g['commit']})", ""]
        if "error" in g:
            lines += [f"The group failed: `{g['error']}`", ""]
            continue
        if "skipped" in g:
            lines += [f"Skipped: {g['skipped']}.", ""]
            continue
        lines += SECTIONS[name](g)
        found = FINDINGS[name](g, m.get("cores")) if name in FINDINGS else []
        if found:
            lines += ["**What limits the missed targets**", "", *found, ""]
        lines += _profiles(g)
        for note in g.get("notes", []):
            lines += [f"- {note}"]
        if g.get("notes"):
            lines += [""]
    return "\n".join(lines).rstrip() + "\n"


def plot(path: Path, groups: dict[str, dict[str, Any]]) -> bool:
    """Throughput bars (group 1) and capped transfer rates vs the ideal (group 2)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    panels = []
    for name, key in (("throughput", "mib_s"), ("capped", "transfer_mib_s")):
        g = groups.get(name)
        if g and "summary" in g:
            rows = [(n, s) for n, s in g["summary"].items() if s.get(key) is not None]
            if name == "capped":  # the uncapped ceiling would squash the capped bars
                rows = [(n, s) for n, s in rows if s.get("ideal_mib_s") is not None]
            panels.append((g, key, rows))
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(7.5 * len(panels), 6), squeeze=False)
    for ax, (g, key, rows) in zip(axes[0], panels, strict=True):
        names = [n for n, _ in rows]
        values = [s[key] for _, s in rows]
        colors = ["tab:blue" if "fluidcloud_async" in n else "tab:gray" for n in names]
        y = list(range(len(names)))
        ax.barh(y, values, color=colors)
        for i, (_, s) in enumerate(rows):
            ideal = s.get("ideal_mib_s")
            if ideal:
                ax.plot([ideal, ideal], [i - 0.4, i + 0.4], color="tab:red", lw=2)
        if any(s.get("ideal_mib_s") for _, s in rows):
            ax.plot([], [], color="tab:red", lw=2, label="ideal min(c × cap, ceiling)")
            ax.legend(loc="lower right")
        ax.set_yticks(y, names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("transfer MiB/s (median)" if key == "transfer_mib_s" else "MiB/s (median)")
        ax.set_title(g["title"], fontsize=10)
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:.0f}", va="center", fontsize=8)
    fig.suptitle("fluidcloud_async (blue) and baselines (grey), same runs", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
