"""Does one serving process per CPU harm anything? Ours with ``--workers 1``, ours with
``--workers 0`` (one per CPU) and the reference (its default), on 1 CPU and on 2.

Usage: ``python -m bench.workers_default [--cpus 1,2] [--rounds 6] [--json FILE]``.

"1 CPU" pins the three servers (and so their tenants) to CPU 0 with ``taskset -c 0`` and
wrk to CPU 1, so the load generator does not take the servers' CPU; "2 CPUs" pins
nothing (wrk shares the 2 CPUs with the servers, as in ``make bench``). The three servers
run at once and are measured in alternating rounds (the order rotates every round), so a
noisy neighbour weighs on all three alike; the figures are medians over the rounds, with
the lowest and highest.

Besides req/s, each round records the CPU time (user + system) the serving processes
used per request: throughput on a shared machine moves with the load, CPU per request
much less. Memory is the server's own processes (the main one and its workers, not the
tenants): Rss summed (counts the pages they share once per process) and Pss summed
(shares them out: what the set really costs). Cold wakes: ours' two alternating, then
the reference's alone (with ours up, its woken app could get a port ours' tenant holds).
Startup: one directory of ours with ``--tenants`` tiny tenants, restarted with SIGUSR2
(tenants keep running) with ``--workers 1`` and ``--workers 0`` in turn; timed from exec
until ``/health`` answers.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import logging
import os
import re
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench import measures
from bench.load import one_request, run_wrk
from bench.measures import FAST_HOST
from bench.procs import Procs
from bench.refbin import reference_binary
from bench.run import WORK, byte_compile, launch, private_network
from bench.servers import Server, write_config

log = logging.getLogger("bench.workers_default")
#: (name, ``ten serve`` options) of ours; the reference runs with none
OURS = (("ours_1", ("--workers", "1")), ("ours_auto", ("--workers", "0")))


def spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def memory_mb(server: Server) -> dict[str, float]:
    kb = server.memory_kb()
    return {"processes": kb["processes"], "rss_mb": kb["rss"] / 1024, "pss_mb": kb["pss"] / 1024}


def cpu_seconds(server: Server) -> float:
    """CPU time (user + system, all threads) the serving processes have used so far."""
    ticks = 0
    for pid in server.serving_pids():
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def taskset(cpus: str | None, argv: list[str]) -> list[str]:
    return ["taskset", "-c", cpus, *argv] if cpus else argv


def proxy_rounds(
    servers: list[Server], direct_port: int, rounds: int, seconds: float, wrk_cpus: str | None
) -> dict[str, Any]:
    """wrk at 32 and at 1 connection against each server in turn, the order rotating."""
    rps: dict[str, list[float]] = {s.directory.name: [] for s in servers}
    #: the serving processes' CPU time per request at 32 connections: what the machine
    #: pays for each request whatever else runs on it (throughput moves with the load)
    cpu_us: dict[str, list[float]] = {s.directory.name: [] for s in servers}
    p50: dict[str, list[float]] = {s.directory.name: [] for s in servers}
    p50["direct"] = []
    targets: list[Server | None] = [*servers, None]  # None: the backend, no proxy
    for round_ in range(rounds):
        shift = round_ % len(targets)
        for target in targets[shift:] + targets[:shift]:
            port = direct_port if target is None else target.port
            name = "direct" if target is None else target.directory.name
            work = servers[0].directory
            if target is not None:
                used = cpu_seconds(target)
                busy = run_wrk(
                    port, FAST_HOST, connections=32, seconds=seconds, work=work, cpus=wrk_cpus
                )
                used = cpu_seconds(target) - used
                if busy.errors:
                    raise RuntimeError(f"{name}: {busy.errors} wrk errors")
                rps[name].append(busy.rps)
                cpu_us[name].append(used / (busy.rps * max(1, round(seconds))) * 1e6)
            one = run_wrk(port, FAST_HOST, connections=1, seconds=seconds, work=work, cpus=wrk_cpus)
            p50[name].append(one.p50_ms)
        log.info("round %d: %s", round_, {k: round(v[-1]) for k, v in rps.items()})
    out: dict[str, Any] = {}
    for name, values in rps.items():
        added = [a - d for a, d in zip(p50[name], p50["direct"], strict=True)]
        out[name] = {
            "rps_c32": spread(values),
            "p50_ms_c1": spread(p50[name]),
            "added_ms_c1": spread(added),
            "rps_c32_rounds": values,
            "cpu_us_per_request_c32": spread(cpu_us[name]),
            "cpu_us_rounds": cpu_us[name],
        }
    out["direct"] = {"p50_ms_c1": spread(p50["direct"])}
    return out


def wake_rounds(servers: list[Server], rounds: int) -> dict[str, Any]:
    """One cold wake per server per round; a wake answered by a pid seen before (an app
    that was not stopped) or not answered counts as failed."""
    wakes: dict[str, list[float]] = {s.directory.name: [] for s in servers}
    pids: dict[str, set[int]] = {name: set() for name in wakes}
    failed = dict.fromkeys(wakes, 0)
    for round_ in range(rounds):
        shift = round_ % len(servers)
        for server in servers[shift:] + servers[:shift]:
            name = server.directory.name
            with contextlib.suppress(RuntimeError):  # not running (after a failed wake)
                server.stop_instance("cold", "w")
            time.sleep(0.3)  # as measures.cold_wake: let the stopped app's port settle
            answer: list[bytes] = []
            began = time.monotonic()
            error = one_request(server.port, "w.cold.localhost", timeout=30, answer=answer)
            took = time.monotonic() - began
            found = re.search(rb'"pid": (\d+)', answer[0]) if answer else None
            pid = int(found.group(1)) if found else None
            if error is not None or pid is None or pid in pids[name]:
                tail = answer[0][-200:] if answer else b""
                log.warning("%s: wake failed (%s, pid %s): %r", name, error, pid, tail)
                failed[name] += 1
                continue
            pids[name].add(pid)
            wakes[name].append(took * 1000)
    return {name: {"wake_ms": spread(wakes[name]), "failed": failed[name]} for name in wakes}


def startup_rounds(
    python: list[str], procs: Procs, directory: Path, tenants: int, rounds: int
) -> dict[str, Any]:
    """One directory of ours with ``tenants`` tenants, restarted with each worker count."""
    write_config(directory, procs.marker, log_lines=1000)
    server = Server("ours", python, directory, procs, OURS[0][1])
    launch(server)
    began = time.monotonic()

    def spawn(index: int) -> None:
        server.spawn("tiny", f"n{index}")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(spawn, range(tenants)))
    log.info("%d tenants in %.1f s", tenants, time.monotonic() - began)
    startup: dict[str, list[float]] = {name: [] for name, _ in OURS}
    memory: dict[str, list[dict[str, float]]] = {name: [] for name, _ in OURS}
    try:
        for round_ in range(rounds):
            order = OURS if round_ % 2 == 0 else OURS[::-1]
            for name, serve_args in order:
                server.stop(signal.SIGUSR2)
                server.serve_args = serve_args
                startup[name].append(server.start())
                live = len(json.loads(server.api("GET", "/api/instances")))
                if live < tenants:
                    raise RuntimeError(f"{name}: {live} instances after the restart")
                time.sleep(1)  # the workers' first look at the instance rows
                memory[name].append(memory_mb(server))
    finally:
        server.stop(signal.SIGTERM, wait=300)
    return {
        name: {
            "startup_s": spread(startup[name]),
            "processes": memory[name][-1]["processes"],
            "rss_mb": spread([m["rss_mb"] for m in memory[name]]),
            "pss_mb": spread([m["pss_mb"] for m in memory[name]]),
        }
        for name, _ in OURS
    }


def measure(
    cpus: int, ref_bin: Path, procs: Procs, run_dir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    server_cpus = "0" if cpus == 1 else None
    wrk_cpus = "1" if cpus == 1 else None
    python = taskset(server_cpus, [sys.executable, "-m", "tenement"])
    results: dict[str, Any] = {}
    servers: list[Server] = []
    try:
        # the reference first: it hands out tenant ports without checking they are free
        for key, name, command, serve_args in (
            ("reference", "reference", taskset(server_cpus, [str(ref_bin)]), ()),
            *((key, "ours", python, serve) for key, serve in OURS),
        ):
            directory = run_dir / f"c{cpus}-{key}"
            write_config(directory, procs.marker, log_lines=1000)
            server = Server(name, command, directory, procs, serve_args)
            servers.append(server)
            results.setdefault("startup_fresh_s", {})[key] = launch(server)
            status, _ = server.request("GET", "/", host=FAST_HOST)
            if status != 200:
                raise RuntimeError(f"{key}: the fast tenant answered {status}")
        time.sleep(1)
        fast_backend = measures.APPS / "fast_backend.py"
        results["memory_fresh"] = {s.directory.name: memory_mb(s) for s in servers}
        backend = procs.start(
            [*taskset(server_cpus, [measures.tenant_python(), str(fast_backend)]), procs.marker],
            cwd=run_dir,
            env={"PORT": str(direct_port := measures.free_port())},
        )
        try:
            measures.wait_answer(direct_port, "direct", timeout=10)
            results["proxy"] = proxy_rounds(
                servers, direct_port, args.rounds, args.seconds, wrk_cpus
            )
        finally:
            procs.end(backend)
        # ours alternating; the reference alone after: it hands out tenant ports without
        # checking they are free, so with ours up its woken app may get a port one of
        # ours' tenants holds, and the wake request reaches that tenant
        results["wake"] = wake_rounds(servers[1:], args.wake_rounds)
        for server in servers[1:]:
            server.stop(signal.SIGTERM, wait=60)
        results["wake"].update(wake_rounds(servers[:1], args.wake_rounds))
    finally:
        for server in servers:
            server.stop(signal.SIGTERM, wait=60)
        procs.kill_marked()
    if args.tenants:
        results["startup_tenants"] = startup_rounds(
            python, procs, run_dir / f"c{cpus}-many", args.tenants, args.startup_rounds
        )
        procs.kill_marked()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workers_default", description=__doc__)
    parser.add_argument("--cpus", default="1,2", help="comma-separated: 1, 2 or both")
    parser.add_argument("--rounds", type=int, default=6, help="proxy rounds")
    parser.add_argument("--seconds", type=float, default=4, help="each wrk run")
    parser.add_argument("--wake-rounds", type=int, default=9)
    parser.add_argument("--tenants", type=int, default=1000, help="0: no startup phase")
    parser.add_argument("--startup-rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    ref_bin = reference_binary()
    private_network(sys.argv[1:] if argv is None else argv, "bench.workers_default")
    byte_compile()
    WORK.mkdir(parents=True, exist_ok=True)
    run_dir = WORK / f"wd-{time.strftime('%H%M%S')}-{os.getpid()}"
    run_dir.mkdir()
    procs = Procs()
    results: dict[str, Any] = {"load_before": measures.load_average()}
    try:
        for cpus in (int(c) for c in args.cpus.split(",")):
            results[f"cpus_{cpus}"] = measure(cpus, ref_bin, procs, run_dir, args)
            results[f"load_after_{cpus}"] = measures.load_average()
    finally:
        procs.close()
    text = json.dumps(results, indent=2)
    if args.json:
        args.json.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
