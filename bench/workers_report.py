"""The markdown table of ``bench.workers_default`` runs: ``python -m bench.workers_report
RUN.json ... > bench/WORKERS_DEFAULT.md`` (the prose around it is written by hand).

Every figure pools the rounds of all the runs given: the median, then the lowest and
highest in brackets. Ratios are taken within a round (the servers measured back to back)
and then pooled, which cancels most of what the shared machine did between rounds.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

COLUMNS = ("ours_1", "ours_auto", "reference")


def _spread(values: list[float], digits: int) -> str:
    if not values:
        return "—"
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:,.{digits}f} [{low:,.{digits}f}-{high:,.{digits}f}]"


def _key(cpus: int, column: str) -> str:
    return f"c{cpus}-{column}"


def table(runs: list[dict[str, Any]], cpus: int) -> list[str]:
    sections = [run[f"cpus_{cpus}"] for run in runs if f"cpus_{cpus}" in run]

    def pooled(column: str, *path: str) -> list[float]:
        """The values at ``path`` in every run that has them (older runs lack some)."""
        values: list[float] = []
        for section in sections:
            node: Any = section
            for key in path:
                node = node.get(_key(cpus, column) if key == "*" else key) if node else None
            if node is not None:
                values += node if isinstance(node, list) else [node]
        return values

    def cpu_ratio(top: str, bottom: str) -> list[float]:
        a = pooled(top, "proxy", "*", "cpu_us_rounds")
        b = pooled(bottom, "proxy", "*", "cpu_us_rounds")
        return [x / y for x, y in zip(a, b, strict=True)]

    def per_round_ratio(top: str, bottom: str) -> list[float]:
        a = pooled(top, "proxy", "*", "rps_c32_rounds")
        b = pooled(bottom, "proxy", "*", "rps_c32_rounds")
        return [x / y for x, y in zip(a, b, strict=True)]

    def memory(column: str, which: str, kind: str) -> list[float]:
        if which == "fresh":
            return pooled(column, "memory_fresh", "*", kind)
        if column == "reference":
            return []
        values: list[float] = []
        for section in sections:
            values.append(section["startup_tenants"][column][kind]["median"])
        return values

    def processes(column: str) -> str:
        counts = {int(v) for v in pooled(column, "memory_fresh", "*", "processes")}
        return "/".join(str(c) for c in sorted(counts))

    def startup(column: str) -> list[float]:
        if column == "reference":
            return []
        return [s["startup_tenants"][column]["startup_s"]["median"] for s in sections]

    def wake(column: str) -> list[float]:
        return [s["wake"][_key(cpus, column)]["wake_ms"]["median"] for s in sections]

    rounds = len(pooled("ours_1", "proxy", "*", "rps_c32_rounds"))
    rows = [
        ("serving processes", *(processes(c) for c in COLUMNS)),
        (
            f"proxy req/s, 32 connections ({rounds} rounds)",
            *(_spread(pooled(c, "proxy", "*", "rps_c32_rounds"), 0) for c in COLUMNS),
        ),
        (
            "... per round, over ours `--workers 1`",
            "1",
            _spread(per_round_ratio("ours_auto", "ours_1"), 2),
            _spread(per_round_ratio("reference", "ours_1"), 2),
        ),
        (
            "... per round, over the reference",
            _spread(per_round_ratio("ours_1", "reference"), 2),
            _spread(per_round_ratio("ours_auto", "reference"), 2),
            "1",
        ),
        (
            f"CPU time of the serving processes per request, 32 connections (us;"
            f" {len(pooled('ours_1', 'proxy', '*', 'cpu_us_rounds'))} rounds)",
            *(_spread(pooled(c, "proxy", "*", "cpu_us_rounds"), 0) for c in COLUMNS),
        ),
        (
            "... per round, over ours `--workers 1`",
            "1",
            _spread(cpu_ratio("ours_auto", "ours_1"), 2),
            _spread(cpu_ratio("reference", "ours_1"), 2),
        ),
        (
            "added latency, 1 connection (p50 ms over direct)",
            *(_spread(pooled(c, "proxy", "*", "added_ms_c1", "median"), 3) for c in COLUMNS),
        ),
        ("cold wake (ms; medians of the runs)", *(_spread(wake(c), 1) for c in COLUMNS)),
        (
            "RSS, fresh (MB; summed over the serving processes)",
            *(_spread(memory(c, "fresh", "rss_mb"), 1) for c in COLUMNS),
        ),
        (
            "PSS, fresh (MB; shared pages split among them)",
            *(_spread(memory(c, "fresh", "pss_mb"), 1) for c in COLUMNS),
        ),
        (
            "RSS, 1,000 tenants adopted (MB; summed)",
            *(_spread(memory(c, "tenants", "rss_mb"), 1) for c in COLUMNS),
        ),
        (
            "PSS, 1,000 tenants adopted (MB)",
            *(_spread(memory(c, "tenants", "pss_mb"), 1) for c in COLUMNS),
        ),
        (
            "startup to ready, 1,000 instances recorded (s; medians of the runs)",
            *(_spread(startup(c), 3) for c in COLUMNS),
        ),
    ]
    lines = [
        f"| {cpus} CPU{'s' if cpus > 1 else ''} | ours `--workers 1` | ours `--workers 0`"
        " (one per CPU) | reference (its default) |",
        "|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def main(argv: list[str]) -> int:
    runs = [json.loads(Path(path).read_text()) for path in argv]
    for cpus in (1, 2):
        print("\n".join(table(runs, cpus)))
        print()
    loads = [
        f"{run.get('load_before', 0):.1f} / {run.get('load_after_1', 0):.1f} / "
        f"{run.get('load_after_2', 0):.1f}"
        for run in runs
    ]
    print(f"Load average (1 min) before, after 1 CPU, after 2 CPUs, per run: {'; '.join(loads)}.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
