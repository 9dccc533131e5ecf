"""BENCHMARKS.md from one run's results (the dict bench.run builds)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

SERVERS = ("ours", "reference", "ours_other")


def _get(results: dict, *path: str) -> Any:
    node: Any = results
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    if isinstance(node, float) and math.isnan(node):
        return None
    return node


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _ratio(ours: Any, ref: Any) -> str:
    if ours is None or ref is None or not ref:
        return "—"
    return f"{ours / ref:.2f}x"


def median_of(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def _processes(workers: Any) -> str:
    if workers == 0:
        return "one serving process per CPU"
    if workers == 1:
        return "one serving process"
    return f"{workers} serving processes"


def _workers(r: dict) -> tuple[str, str]:
    """How ours ran by default, and the `--workers` value of the other rows (older
    results: one process by default, `--workers 0` for the others)."""
    settings = r.get("workers_settings") or {}
    return _processes(settings.get("default", 1)), str(settings.get("other", 0))


def _verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("pass" if ok else "**miss**")


def _targets(r: dict) -> list[str]:
    rows = []
    n = _get(r, "plan", "tenants")

    def both(section: str, key: str) -> tuple[Any, Any]:
        return _get(r, "ours", section, key), _get(r, "reference", section, key)

    def check(value: Any, test) -> bool | None:  # type: ignore[no-untyped-def]
        return None if value is None else bool(test(value))

    ratio = _get(r, "head_to_head", "ratio_median")
    rounds = _get(r, "head_to_head", "ratios") or []
    default, other = _workers(r)
    rows.append(
        (
            f"Proxy throughput, 32 connections, each server's default (ours: {default}),"
            f" head to head: median of {len(rounds)} alternating rounds (req/s)",
            _fmt(median_of(_get(r, "head_to_head", "rps_ours")), 0),
            _fmt(median_of(_get(r, "head_to_head", "rps_reference")), 0),
            "—" if ratio is None else f"{ratio:.2f}x",
            ">= 1.0x reference",
            _verdict(None if ratio is None else ratio >= 1.0),
        )
    )
    # the same, each server in its own phase of the run: minutes apart on a shared
    # machine, so not the comparison (see "Head to head" below); shown, not judged
    others = _get(r, "ours_other", "proxy", "rps_c32")
    ours, ref = both("proxy", "rps_c32")
    for label, value in (
        ("... each server in its own phase", ours),
        (f"... ours with `--workers {other}`, in its own phase", others),
    ):
        rows.append((label, _fmt(value, 0), _fmt(ref, 0), _ratio(value, ref), "shown", "—"))
    direct = _get(r, "direct", "p50_ms_c1")
    ours, ref = both("proxy", "p50_ms_c1")
    added_ours = None if ours is None or direct is None else ours - direct
    added_ref = None if ref is None or direct is None else ref - direct
    rows.append(
        (
            "Added latency, 1 connection (p50 ms over direct)",
            _fmt(added_ours, 2),
            _fmt(added_ref, 2),
            _ratio(added_ours, added_ref),
            "<= 1 ms",
            _verdict(check(added_ours, lambda v: v <= 1.0)),
        )
    )
    ours, ref = both("wake", "wake_ms")
    # each server's wakes against the app alone, timed between those wakes (older
    # results have only the run's one app measurement)
    app_ours, app_ref = both("wake", "wake_app_ms")
    app_ours = app_ours or _get(r, "app_start", "app_start_ms")
    app_ref = app_ref or _get(r, "app_start", "app_start_ms")

    def of_app(value: Any, app: Any) -> str:
        if value is None or not app:
            return _fmt(value)
        return f"{_fmt(value)} ({value / app:.2f}x its app's {_fmt(app)})"

    rows.append(
        (
            "Cold wake (ms; against the app alone, started between the wakes)",
            of_app(ours, app_ours),
            of_app(ref, app_ref),
            _ratio(ours, ref),
            "<= 1.15x app start",
            _verdict(check(ours, lambda v: app_ours is not None and v <= 1.15 * app_ours)),
        )
    )
    ours, ref = both("restart", "restart_failed")
    rows.append(
        (
            "Restart under load: failed requests",
            _fmt(ours),
            _fmt(ref),
            "—",
            "0",
            _verdict(check(ours, lambda v: v == 0)),
        )
    )
    ours, ref = both("tenants", "startup_tenants_s")
    rows.append(
        (
            f"Startup to ready, {_fmt(n)} instances recorded (s)",
            _fmt(ours, 3),
            _fmt(ref, 3),
            _ratio(ours, ref),
            "< 0.5 s",
            _verdict(check(ours, lambda v: v < 0.5)),
        )
    )
    ours, ref = both("tenants", "rss_tenants_mb")
    rows.append(
        (
            f"Server RSS, {_fmt(n)} live tenants (MB; ours: its serving processes, summed)",
            _fmt(ours),
            _fmt(ref),
            _ratio(ours, ref),
            "< 150 MB",
            _verdict(check(ours, lambda v: v < 150)),
        )
    )
    ours, ref = both("tenants", "ps_ms")
    rows.append(
        (
            f"`ten ps`, {_fmt(n)} live tenants (ms)",
            _fmt(ours, 0),
            _fmt(ref, 0),
            _ratio(ours, ref),
            "< 300 ms",
            _verdict(check(ours, lambda v: v < 300)),
        )
    )
    lines = [
        "| target | ours | reference | ours/ref | goal | result |",
        "|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


#: (section, key, label, digits) of the detail table
DETAILS = [
    ("proxy", "rps_c1", "proxy req/s, 1 connection", 0),
    ("proxy", "p50_ms_c1", "proxy p50 latency, 1 connection (ms)", 3),
    ("proxy", "p99_ms_c1", "proxy p99 latency, 1 connection (ms)", 3),
    ("proxy", "rps_c32", "proxy req/s, 32 connections", 0),
    ("proxy", "p50_ms_c32", "proxy p50 latency, 32 connections (ms)", 2),
    ("proxy", "p99_ms_c32", "proxy p99 latency, 32 connections (ms)", 2),
    ("proxy", "errors_c32", "wrk errors + non-2xx, 32 connections", 0),
    ("wake", "wake_ms", "cold wake, median (ms)", 1),
    ("wake", "wake_max_ms", "cold wake, slowest (ms)", 1),
    ("wake", "wake_app_ms", "cold app alone, started between the wakes (ms)", 1),
    ("wake", "wake_failed", "cold wake: requests failed", 0),
    ("wake", "wake_errors", "cold wake: failures", 0),
    ("spawn", "spawn_ms", "spawn via API, median (ms)", 1),
    ("spawn", "stop_ms", "stop via API, median (ms)", 1),
    ("restart", "restart_ok", "restart under load: requests answered", 0),
    ("restart", "restart_failed", "restart under load: requests failed", 0),
    ("restart", "restart_longest_ms", "restart under load: longest wait (ms)", 0),
    ("restart", "restart_cycle_ms", "restart: stop + start until /health (ms)", 0),
    ("restart", "restart_errors", "restart under load: failure kinds", 0),
    ("tenants", "tenants_live", "tenants live after spawning", 0),
    ("tenants", "tenants_spawn_s", "time to spawn them through the API (s)", 1),
    ("tenants", "spawn_concurrency", "... spawn calls in flight at once", 0),
    ("tenants", "serving_processes", "serving processes (ours: the main one and its workers)", 0),
    ("tenants", "rss_idle_mb", "server RSS, fresh (MB; summed over them)", 1),
    ("tenants", "rss_tenants_mb", "server RSS, with the tenants (MB; summed over them)", 1),
    ("tenants", "pss_idle_mb", "server PSS, fresh (MB; shared pages split among them)", 1),
    ("tenants", "pss_tenants_mb", "server PSS, with the tenants (MB)", 1),
    ("tenants", "ps_ms", "`ten ps` (ms)", 0),
    ("tenants", "startup_tenants_s", "startup to ready with them recorded (s)", 3),
    ("tenants", "tenants_after_restart", "tenants listed after that restart", 0),
    ("logs", "lines_in", "log lines in when the searches ran", 0),
    ("logs", "ingest_s", "log ingest: last line in after (s)", 2),
    ("logs", "ingest_lines_per_s", "log ingest rate (lines/s)", 0),
    ("logs", "search_hit_ms", "search for one line from the middle (ms)", 1),
    ("logs", "search_hits", "... entries found (1 if it is still kept)", 0),
    ("logs", "search_miss_ms", "search matching nothing (ms)", 1),
]


#: (section, key), label, digits: ours with the other `--workers` against the reference
OTHER_WORKERS_DETAILS = [
    (("proxy", "rps_c1"), "proxy req/s, 1 connection", 0),
    (("proxy", "p50_ms_c1"), "proxy p50 latency, 1 connection (ms)", 3),
    (("proxy", "rps_c32"), "proxy req/s, 32 connections", 0),
    (("proxy", "p99_ms_c32"), "proxy p99 latency, 32 connections (ms)", 2),
    (("restart", "restart_failed"), "restart under load, requests failed", 0),
]


def render(r: dict) -> str:
    m = r.get("machine", {})
    plan = r.get("plan", {})
    out = [
        "# Benchmarks",
        "",
        "Our `ten serve` against the reference tenement 0.2.2 (Rust), measured side by side in one",
        "run of `make bench` (`python -m bench.run`; the harness is in `bench/`). Both servers run",
        'the same tenant apps from `bench/apps/` with `isolation = "process"`, one server at a',
        "time (both at once for the head-to-head rounds), each in its own directory. Numbers",
        "are medians of several short runs.",
        "",
    ]
    if r.get("quick"):
        out += ["**This is a `--quick` run: too short to mean much.**", ""]
    out += [
        "## Machine",
        "",
        f"- CPU: {m.get('cpu')}; memory {m.get('memory')}; Linux {m.get('kernel')}",
        f"- Python {m.get('python')}; {m.get('wrk')}",
        f"- ours: {_get(r, 'ours', 'version')}; reference: {_get(r, 'reference', 'version')}",
        f"- run at {m.get('date')}; plan: {plan}",
        "- Network: "
        + (
            "a private network namespace (`unshare --net`), loopback only, so no other"
            " process on the machine could hold a tenant port."
            if r.get("private_network")
            else "the machine's own (shared) loopback."
        ),
        "- The machine was shared: other engineers ran test suites on it during the run. The",
        "  1-minute load average before each measurement is listed under the details; read every",
        "  absolute number with it in mind, and trust the ratios more than the absolutes.",
        "",
        "## Targets",
        "",
        *_targets(r),
        "",
        "## Details",
        "",
        "| measurement | ours | reference | ours/ref |",
        "|---|---|---|---|",
    ]
    direct = r.get("direct", {})
    out.append(
        f"| backend direct (no proxy): req/s at 1 / 32 connections | "
        f"{_fmt(direct.get('rps_c1'), 0)} / {_fmt(direct.get('rps_c32'), 0)} | | |"
    )
    out.append(
        f"| backend direct: p50 ms at 1 / 32 connections | "
        f"{_fmt(direct.get('p50_ms_c1'), 3)} / {_fmt(direct.get('p50_ms_c32'), 2)} | | |"
    )
    out.append(
        f"| cold app alone: exec to first answer (ms) | "
        f"{_fmt(_get(r, 'app_start', 'app_start_ms'))} | | |"
    )
    out.append(
        f"| startup to ready, fresh (s) | {_fmt(_get(r, 'ours', 'startup_s'), 3)} | "
        f"{_fmt(_get(r, 'reference', 'startup_s'), 3)} | |"
    )
    for section, key, label, digits in DETAILS:
        ours, ref = _get(r, "ours", section, key), _get(r, "reference", section, key)
        counted = key in {
            "restart_failed",
            "restart_ok",
            "tenants_live",
            "tenants_after_restart",
            "search_hits",
            "lines_in",
            "errors_c32",
            "wake_failed",
            "spawn_concurrency",
            "serving_processes",
        }
        ratio = _ratio(ours, ref) if isinstance(ours, (int, float)) and not counted else ""
        out.append(f"| {label} | {_fmt(ours, digits)} | {_fmt(ref, digits)} | {ratio} |")
    default, other = _workers(r)
    for key, label, digits in OTHER_WORKERS_DETAILS:
        ours, ref = _get(r, "ours_other", *key), _get(r, "reference", *key)
        ratio = "" if key[1] == "restart_failed" else _ratio(ours, ref)
        label = f"`--workers {other}`: {label}"
        out.append(f"| {label} | {_fmt(ours, digits)} | {_fmt(ref, digits)} | {ratio} |")
    h2h = r.get("head_to_head", {})
    if h2h.get("ratios"):
        rounds = zip(h2h["rps_ours"], h2h["rps_reference"], h2h["ratios"], strict=True)
        out.append(
            f"| head to head, defaults (ours: {default}): req/s per round, ours / reference"
            " (ratio) | "
            + "; ".join(f"{a:,.0f} / {b:,.0f} ({c:.2f})" for a, b, c in rounds)
            + f" | | min {h2h['ratio_min']:.2f}x |"
        )
    loads = []
    for section in ("direct", "app_start", "head_to_head"):
        loads.append(f"{section} {_fmt(_get(r, section, 'load'), 2)}")
    for server in SERVERS:
        for section in ("proxy", "wake", "spawn", "restart", "tenants", "logs"):
            if _get(r, server, section, "load") is not None:
                loads.append(f"{server}/{section} {_fmt(_get(r, server, section, 'load'), 2)}")
    out += ["", f"Load average (1 min) before each measurement: {'; '.join(loads)}.", ""]
    errors = [
        f"- {server}/{section}: {_get(r, server, section, 'error')}"
        for server in SERVERS
        for section in ("proxy", "wake", "spawn", "restart", "tenants", "logs")
        if _get(r, server, section, "error")
    ] + [
        f"- {server}: {_get(r, server, 'error')}" for server in SERVERS if _get(r, server, "error")
    ]
    if _get(r, "head_to_head", "error"):
        errors.append(f"- head_to_head: {_get(r, 'head_to_head', 'error')}")
    if errors:
        out += ["## Measurements that failed", "", *errors, ""]
    out += _workers_default()
    out += METHOD
    return "\n".join(out) + "\n"


#: the measurements behind ours' default number of serving processes (hand-written
#: around ``python -m bench.workers_report``'s tables); kept in every BENCHMARKS.md
WORKERS_DEFAULT = Path(__file__).resolve().parent / "WORKERS_DEFAULT.md"


def _workers_default() -> list[str]:
    if not WORKERS_DEFAULT.exists():
        return []
    return [*WORKERS_DEFAULT.read_text().rstrip("\n").splitlines(), ""]


METHOD = [
    "## How each figure is measured",
    "",
    "- **Proxy**: wrk (`-t2`, `--timeout 10s`) with `Host: t1.fast.localhost` at 1 and 32",
    "  connections, to `bench/apps/fast_backend.py` (a one-thread epoll keep-alive server) through",
    "  each server, and to the backend directly as the limit. Added latency = proxy p50 minus",
    "  direct p50 at 1 connection. wrk, the proxy and the backend share the 2 cores.",
    "- **Defaults against defaults**: every figure is of each server as it runs without",
    "  options: ours with its default `[settings] workers` (named in the first target), the",
    "  reference on every core (tokio's default). Rows marked `--workers N` show ours with",
    "  the other choice (one process per CPU if the default is one process, else one).",
    "- **Head to head**: both servers up at once, each in its own",
    "  directory; wrk at 32 connections against each in turn, the order swapped every round.",
    "  The per-server figures are taken minutes apart, under whatever else the shared",
    "  machine ran then (the same code measured 0.85x-1.17x the reference that way); within",
    "  a round both servers meet the same load, so the throughput target is judged on the",
    "  rounds' median ratio. The details give every round.",
    "- **Cold wake**: `DELETE /api/instances/cold:w`, then one GET to `w.cold.localhost` on a new",
    "  connection, timed until the full answer. The limit is the same app (`cold_app.py`, stdlib",
    "  `http.server`) started directly by the harness, timed from exec to its first answer with",
    "  a 1 ms connect poll, once before each wake, so each server's ratio compares times taken",
    "  under the same load.",
    "- **Spawn / stop**: `POST /api/instances/spawn` of the cold app until the call returns (the",
    "  reference returns after at most 500 ms of TCP readiness polling), then its `DELETE`.",
    "- **Restart under load**: 4 client threads, a new connection per request, no retries; any",
    "  refused, reset or non-200 request counts as failed. Ours runs behind a held listening",
    "  socket passed as `LISTEN_FDS` (what systemd's tenement.socket does) and restarts with",
    "  SIGUSR2 (`RestartKillSignal=`), leaving its tenants running. The reference restarts as it",
    "  can: SIGTERM (it stops every tenant), then start again (it spawns `[instances]` again).",
    "  A refused client tries again after 1 ms, so the reference's failure count mostly says",
    "  how long it was down; what matters is 0 or not. The longest wait is the slowest request",
    "  that did get an answer (ours: queued in the kernel while no server ran).",
    "- **Ours** runs from this checkout (`python -m tenement`), its modules byte-compiled first",
    "  as an installed wheel or .deb has them.",
    "- **Many tenants**: tiny tenants (`python3 -S bench/apps/tiny.py`, a bare accept loop)",
    "  spawned through the API (8 calls at a time to ours: its rate limiter answers 429 to a",
    "  client with 10 token checks in progress; 32 to the reference, whose per-call Argon2",
    "  check makes it slow). RSS is the server's own processes' (ours: the main one and its",
    "  workers) Rss from /proc/PID/smaps_rollup, summed, tenants not included; PSS the same",
    "  with each shared page split among the processes that map it. `ten ps` is the whole",
    "  command, interpreter start included.",
    "  Startup to ready: ours is stopped with SIGUSR2 (tenants keep running) and started",
    "  again, adopting them; the reference is SIGKILLed (its tenants and rows stay) and started",
    "  again, which kills the orphans and clears the rows (it never re-adopts). Timed from",
    "  exec until `GET /health` answers 200.",
    "- **Logs**: a tenant prints the configured number of lines as fast as it can, then a marker;",
    "  ingest is followed through the newest entry (`/api/logs?limit=1`, every 500 ms) from its",
    "  spawn until the marker is in or the time limit passes; the searches (`search=`,",
    "  `limit=100`) then run over what the server holds. The reference keeps only the last",
    "  10,000 lines in memory, so its searches run over those.",
]
