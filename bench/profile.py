"""Profile our proxy path: py-spy samples ``ten serve`` while wrk loads it.

Usage: ``python -m bench.profile [--seconds 15] [--connections 32]``. Prints the top
functions by self time (the innermost frame of each sample) and writes the raw folded
stacks to ``bench/.work/profile-*.txt`` (load them into speedscope or flamegraph.pl).

``--cpu ROUNDS`` profiles nothing: it loads the server ROUNDS times and prints the
server's CPU time per proxied request (user + system, from ``/proc``). On a shared
machine requests per second move by +-20% between identical runs; the CPU a request
costs moves far less, so compare changes with this.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.load import run_wrk
from bench.procs import Procs
from bench.servers import Server, write_config

WORK = Path(__file__).resolve().parent / ".work"
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def package_of(path: str) -> str:
    """``trio``, ``hypercorn``, ``tenement``... for a frame's file (py-spy shortens paths to
    their ``sys.path`` entry); a single-file module such as ``contextlib.py`` is ``stdlib``."""
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    if "/" in path.lstrip("/") and not path.startswith("/"):
        return path.split("/", 1)[0]
    return "stdlib" if path else "?"


def self_times(folded: str) -> tuple[collections.Counter[str], collections.Counter[str], int]:
    """Samples per innermost function (``func (file)``) and per package, and the total."""
    counts: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    total = 0
    for line in folded.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        leaf = stack.split(";")[-1]
        match = _FRAME.match(leaf)
        if match:
            path = match["file"]
            short = "/".join(path.split("/")[-2:]) if path else "?"
            leaf = f"{match['func']} ({short})"
            packages[package_of(path)] += int(number)
        counts[leaf] += int(number)
        total += int(number)
    return counts, packages, total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pin(server_pid: int) -> None:
    """The server on CPU 0; its tenants, this process and wrk (started from it) on the
    others. Unpinned, which core the server shared with wrk moved the CPU a request
    costs by 20% from one server start to the next."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return
    os.sched_setaffinity(server_pid, {cpus[0]})
    rest = set(cpus[1:])
    children = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(server_pid)], capture_output=True, text=True
    ).stdout.split()
    for child in children:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(child), rest)
    os.sched_setaffinity(0, rest)


def cpu_per_request(server: Server, args: argparse.Namespace, run_dir: Path) -> None:
    """Print, per round, req/s and the server's CPU microseconds per request."""
    assert server.proc is not None
    server.request("GET", "/", host="t1.fast.localhost")  # wake the backend, then pin
    pin(server.proc.pid)
    costs = []
    for _ in range(args.cpu):
        before = cpu_seconds(server.proc.pid)
        result = run_wrk(
            server.port,
            "t1.fast.localhost",
            connections=args.connections,
            seconds=args.seconds,
            work=run_dir,
        )
        used = cpu_seconds(server.proc.pid) - before
        costs.append(used / (result.rps * args.seconds) * 1e6)
        print(f"wrk -c{args.connections}: {result.rps:.0f} req/s, {costs[-1]:.0f} us CPU/request")
    print(f"median: {statistics.median(costs):.0f} us CPU/request")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--cpu", type=int, metavar="ROUNDS", help="CPU per request, no profile")
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    run_dir = WORK / f"profile-{time.strftime('%Y%m%d-%H%M%S')}"
    procs = Procs()
    try:
        write_config(run_dir, procs.marker, log_lines=10)
        # one serving process: the profile is of the process that serves
        server = Server(
            "ours", [sys.executable, "-m", "tenement"], run_dir, procs, ("--workers", "1")
        )
        server.token_gen()
        server.start()
        if args.cpu:
            cpu_per_request(server, args, run_dir)
            return 0
        out = run_dir / "folded.txt"
        spy_proc = subprocess.Popen(
            [
                spy,
                "record",
                "--format",
                "raw",
                "--nonblocking",
                "--rate",
                "250",
                "--duration",
                str(int(args.seconds)),
                "--output",
                str(out),
                "--pid",
                str(server.proc.pid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        result = run_wrk(
            server.port,
            "t1.fast.localhost",
            connections=args.connections,
            seconds=args.seconds - 1,
            work=run_dir,
        )
        spy_proc.wait(60)
        counts, packages, total = self_times(out.read_text())
        print(f"wrk -c{args.connections}: {result.rps:.0f} req/s, p50 {result.p50_ms:.2f} ms")
        print(f"{total} samples; top {args.top} by self time:")
        for func, count in counts.most_common(args.top):
            print(f"{100 * count / total:5.1f}%  {func}")
        print("self time by package:")
        for package, count in packages.most_common():
            print(f"{100 * count / total:5.1f}%  {package}")
        print(f"folded stacks: {out}")
    finally:
        procs.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
