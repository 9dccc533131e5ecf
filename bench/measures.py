"""The measurements, one function each; every one returns plain numbers for the report.

Each takes a running :class:`~bench.servers.Server` (or the direct backend's port) and the
run's :class:`Plan` (how long and how many: the full run or ``--quick``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import os
import re
import signal
import statistics
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any

import attrs

from bench.load import Load, one_request, run_wrk
from bench.procs import Procs
from bench.servers import APPS, Server, free_port, tenant_python

log = logging.getLogger(__name__)
FAST_HOST = "t1.fast.localhost"


@attrs.frozen
class Plan:
    """How much of each measurement to do."""

    wrk_runs: int = 3
    wrk_seconds: float = 5
    #: rounds of the head-to-head proxy comparison (:func:`head_to_head`)
    rounds: int = 8
    repeats: int = 7
    restarts: int = 3
    tenants: int = 1000
    log_lines: int = 1_000_000
    log_timeout: float = 120


QUICK = Plan(
    wrk_runs=1,
    wrk_seconds=1,
    rounds=2,
    repeats=2,
    restarts=1,
    tenants=20,
    log_lines=20_000,
    log_timeout=30,
)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def load_average() -> float:
    return os.getloadavg()[0]


def wrk_series(port: int, host: str, plan: Plan, work: Path) -> dict[str, float]:
    """Medians of ``plan.wrk_runs`` wrk runs at 1 and at 32 connections."""
    out: dict[str, float] = {}
    for connections in (1, 32):
        runs = [
            run_wrk(port, host, connections=connections, seconds=plan.wrk_seconds, work=work)
            for _ in range(plan.wrk_runs)
        ]
        out[f"rps_c{connections}"] = median([r.rps for r in runs])
        out[f"p50_ms_c{connections}"] = median([r.p50_ms for r in runs])
        out[f"p99_ms_c{connections}"] = median([r.p99_ms for r in runs])
        out[f"errors_c{connections}"] = sum(r.errors for r in runs)
    return out


def head_to_head(ours: Server, reference: Server, plan: Plan) -> dict[str, Any]:
    """Both servers up at once, wrk at 32 connections against each in turn for
    ``plan.rounds`` rounds (ours then the reference, then the other way round, ...).

    The machine is shared: one server measured minutes after the other may meet another
    load. Within a round both meet the same one, so the rounds' ratios compare them.

    Returns:
        each server's req/s per round, and the median of the rounds' ratios (ours over
        the reference).
    """
    rates: dict[str, list[float]] = {"ours": [], "reference": []}
    for round_ in range(plan.rounds):
        pair = (ours, reference) if round_ % 2 == 0 else (reference, ours)
        for server in pair:
            result = run_wrk(
                server.port,
                FAST_HOST,
                connections=32,
                seconds=plan.wrk_seconds,
                work=server.directory,
            )
            if result.errors:
                raise RuntimeError(f"{server.name}: {result.errors} wrk errors in round {round_}")
            rates[server.name].append(result.rps)
    ratios = [a / b for a, b in zip(rates["ours"], rates["reference"], strict=True)]
    return {
        "rps_ours": rates["ours"],
        "rps_reference": rates["reference"],
        "ratios": ratios,
        "ratio_median": median(ratios),
        "ratio_min": min(ratios),
    }


def direct_backend(procs: Procs, plan: Plan, work: Path) -> dict[str, float]:
    """wrk straight at the fast backend: the limit for both proxies."""
    proc, port = start_app(procs, "fast_backend.py", work)
    try:
        wait_answer(port, "direct", timeout=10)
        return wrk_series(port, "direct", plan, work)
    finally:
        procs.end(proc)


def start_app(procs: Procs, script: str, work: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``bench/apps/<script>`` on a free port, outside any server."""
    port = free_port()
    proc = procs.start(
        [tenant_python(), str(APPS / script), procs.marker], cwd=work, env={"PORT": str(port)}
    )
    return proc, port


def wait_answer(port: int, host: str, timeout: float) -> float:
    """Poll with new connections every ~1 ms until a 200; returns the seconds it took."""
    began = time.monotonic()
    while one_request(port, host, timeout=5) is not None:
        if time.monotonic() - began > timeout:
            raise RuntimeError(f"nothing answered on port {port} within {timeout}s")
        time.sleep(0.001)
    return time.monotonic() - began


def app_start(procs: Procs, plan: Plan, work: Path) -> dict[str, float]:
    """The cold app's own start-to-accept time: exec until its first 200 answer."""
    times = [time_app_alone(procs, work) for _ in range(plan.repeats)]
    return {"app_start_ms": median(times) * 1000}


def time_app_alone(procs: Procs, work: Path) -> float:
    """Seconds from exec of the cold app (no server involved) to its first 200 answer."""
    began = time.monotonic()
    proc, port = start_app(procs, "cold_app.py", work)
    try:
        wait_answer(port, "app", timeout=30)
        return time.monotonic() - began
    finally:
        procs.end(proc, signal.SIGKILL)


def proxy(server: Server, plan: Plan) -> dict[str, float]:
    return wrk_series(server.port, FAST_HOST, plan, server.directory)


def cold_wake(server: Server, plan: Plan) -> dict[str, float]:
    """Stop ``cold:w``, then time one request to ``w.cold.localhost`` (it wakes the app).

    Each answer names the app's pid: a wake that reached an old or foreign process is
    counted as failed, as is an error answer. Failures do not end the series.

    Before each wake the app is also started alone (``wake_app_ms``): the target is a
    ratio of the two, and on a shared machine the app's own start moved by 20% between
    a measurement at the start of a run and one minutes later.
    """
    times, failures, alone = [], [], []
    pids: set[int] = set()
    for _ in range(plan.repeats):
        with contextlib.suppress(RuntimeError):  # not running (after a failed wake)
            server.stop_instance("cold", "w")
        listed = [i["id"] for i in json.loads(server.api("GET", "/api/instances"))]
        if "cold:w" in listed:
            raise RuntimeError(f"{server.name}: cold:w still listed after its DELETE")
        time.sleep(0.3)  # let the stopped app's port and the server settle
        alone.append(time_app_alone(server.procs, server.directory))
        answer: list[bytes] = []
        began = time.monotonic()
        error = one_request(server.port, "w.cold.localhost", timeout=30, answer=answer)
        took = time.monotonic() - began
        if error is None:
            found = re.search(rb'"pid": (\d+)', answer[0])
            pid = int(found.group(1)) if found else None
            if pid is None or pid in pids:
                error = f"answer from an old or foreign process: {answer[0][-80:]!r}"
            else:
                pids.add(pid)
        if error is None:
            times.append(took)
        else:
            failures.append(f"{error} after {took:.1f}s")
            log.warning("%s: wake request failed: %s after %.1fs", server.name, error, took)
    with contextlib.suppress(RuntimeError):
        server.stop_instance("cold", "w")
    return {
        "wake_ms": median(times) * 1000,
        "wake_max_ms": max(times, default=float("nan")) * 1000,
        "wake_app_ms": median(alone) * 1000,
        "wake_failed": len(failures),
        "wake_errors": "; ".join(failures),
    }


def spawn_stop(server: Server, plan: Plan) -> dict[str, float]:
    """API spawn of a cold app (until the call returns), then its stop."""
    spawns, stops = [], []
    for index in range(plan.repeats):
        began = time.monotonic()
        server.spawn("cold", f"s{index}")
        spawned = time.monotonic()
        server.stop_instance("cold", f"s{index}")
        stopped = time.monotonic()
        spawns.append(spawned - began)
        stops.append(stopped - spawned)
    return {"spawn_ms": median(spawns) * 1000, "stop_ms": median(stops) * 1000}


def restart_under_load(server: Server, plan: Plan) -> dict[str, float]:
    """Restart the server ``plan.restarts`` times while 4 clients send requests.

    Ours runs behind a held socket (as systemd's socket unit does) and restarts with
    SIGUSR2 (``RestartKillSignal=``). The reference restarts as it can: SIGTERM, then
    start again.
    """
    ours = server.name == "ours"
    downtime = []
    with Load(server.port, FAST_HOST, clients=4) as load:
        time.sleep(1)
        for _ in range(plan.restarts):
            began = time.monotonic()
            server.stop(signal.SIGUSR2 if ours else signal.SIGTERM)
            server.start()
            downtime.append(time.monotonic() - began)
            time.sleep(1)
    stats = load.stats
    log.info("%s restart errors: %s", server.name, stats.errors)
    return {
        "restart_ok": stats.ok,
        "restart_failed": stats.failed,
        "restart_longest_ms": stats.longest * 1000,
        "restart_cycle_ms": median(downtime) * 1000,
        "restart_errors": json.dumps(stats.errors),
    }


def spawn_concurrency(server: Server) -> int:
    """API spawns in flight at once: 8 for ours, which answers 429 to a client with 10
    token checks in progress (its rate limiter counts pending checks, valid or not); 32 for
    the reference, whose Argon2 check on every call makes one at a time very slow."""
    return 8 if server.name == "ours" else 32


def many_tenants(server: Server, plan: Plan) -> dict[str, float]:
    """Spawn ``plan.tenants`` tiny tenants; the server's memory (all its serving
    processes), ``ten ps``, then startup to ready."""
    idle = server.memory_kb()
    failures: list[str] = []
    began = time.monotonic()

    def spawn(index: int) -> None:
        try:
            server.spawn("tiny", f"n{index}")
        except (RuntimeError, OSError) as exc:
            failures.append(str(exc))

    with concurrent.futures.ThreadPoolExecutor(spawn_concurrency(server)) as pool:
        list(pool.map(spawn, range(plan.tenants)))
    spawn_seconds = time.monotonic() - began
    if failures:
        log.warning("%s: %d spawns failed, e.g. %s", server.name, len(failures), failures[0])
    live = len(json.loads(server.api("GET", "/api/instances")))
    time.sleep(1)  # and workers have read the new instance rows
    loaded = server.memory_kb()
    ps = median([server.ten_ps() for _ in range(max(3, plan.repeats // 2))])
    # startup with every tenant recorded: ours leaves them running (SIGUSR2) and adopts
    # them; the reference's are orphaned by a SIGKILL and it cleans them up on boot
    ours = server.name == "ours"
    server.stop(signal.SIGUSR2 if ours else signal.SIGKILL)
    startup = server.start()
    after = len(json.loads(server.api("GET", "/api/instances")))
    return {
        "tenants": plan.tenants,
        "tenants_live": live,
        "tenants_spawn_s": spawn_seconds,
        "spawn_concurrency": spawn_concurrency(server),
        "serving_processes": loaded["processes"],
        "rss_idle_mb": idle["rss"] / 1024,
        "rss_tenants_mb": loaded["rss"] / 1024,
        "pss_idle_mb": idle["pss"] / 1024,
        "pss_tenants_mb": loaded["pss"] / 1024,
        "ps_ms": ps * 1000,
        "startup_tenants_s": startup,
        "tenants_after_restart": after,
    }


def logs(server: Server, plan: Plan) -> dict[str, float]:
    """A tenant writes ``plan.log_lines`` lines; how fast they become searchable; search.

    Ingest is followed through the newest entry (every line carries its number) until the
    final marker shows up or ``plan.log_timeout`` passes; the searches then run over what
    the server has by then (``lines_in``).
    """
    began = time.monotonic()
    server.spawn("chatty", "l1")
    lines_in, ingest = 0, float("nan")
    elapsed = 0.0
    while elapsed < plan.log_timeout:
        time.sleep(0.5)
        newest = json.loads(server.api("GET", "/api/logs?process=chatty&limit=1"))
        elapsed = time.monotonic() - began
        if not newest:
            continue
        message = newest[-1]["message"]
        if "chatty-done-marker" in message:
            lines_in, ingest = plan.log_lines, elapsed
            break
        found = re.search(r"needle-(\d+)", message)
        if found:
            lines_in = int(found.group(1)) + 1
    else:
        log.warning(
            "%s: %d of %d lines in after %ss",
            server.name,
            lines_in,
            plan.log_lines,
            plan.log_timeout,
        )
    rate = lines_in / (ingest if ingest == ingest else elapsed)

    def timed_search(text: str) -> tuple[float, int]:
        times, count = [], 0
        for _ in range(3):
            q = urllib.parse.urlencode({"search": text, "limit": 100})
            t0 = time.monotonic()
            count = len(json.loads(server.api("GET", f"/api/logs?{q}", timeout=120)))
            times.append(time.monotonic() - t0)
        return median(times), count

    hit_time, hits = timed_search(f"needle-{max(lines_in, 2) // 2}")
    miss_time, _ = timed_search("no-such-line-anywhere")
    server.stop_instance("chatty", "l1")
    return {
        "log_lines": plan.log_lines,
        "lines_in": lines_in,
        "ingest_s": ingest,
        "ingest_lines_per_s": rate,
        "search_hit_ms": hit_time * 1000,
        "search_hits": hits,
        "search_miss_ms": miss_time * 1000,
    }
