"""Instructions per proxied request: a cost that does not move with the machine's load.

Usage: ``python -m bench.instructions [--requests 4000] [--connections 32]``. Prints the
user-space instructions (callgrind's ``Ir``) one serving process executes per request it
proxies. On a shared machine wrk's requests per second move by +-20% between identical
runs, and the CPU time per request (``python -m bench.profile --cpu``) by +-10%; repeat
runs of this agree within ~0.5%, so a change worth 1% shows. Compare two trees by running
it from each (``cd`` there: the code measured is the checkout this file is in).

What runs:

- a ``ten serve`` that leads: it spawns the fast backend tenant (``bench/apps``);
- a second ``ten serve`` on the same directory, under ``valgrind --tool=callgrind``. It
  stands by (``tenement/server/roles.py``): it proxies from the shared rows, through the
  express lane, as every extra process of ``ten serve --workers`` does. The leader cannot
  be the one measured: valgrind 3.19 (Debian 12) lacks ``pidfd_open``, which it needs
  for its tenants. The standby's periodic work (reports to the leader, row refreshes,
  lease polls, heartbeats; a few a second) is switched off, and its deadlines are kept
  in 5 s slots instead of 50 ms (``tenement/deadlines.py``: the sweep wakes once a slot):
  a run lasts ~50x longer under valgrind, so what runs by the clock weighs ~50x more than
  it does for real, and moves with the machine's load (+-5% of the count, before);
- a keep-alive client in this process: ``--connections`` connections, each sending its
  next request when the last answer is in, until ``--requests`` were answered.

Instrumentation starts after a warm-up, and the count covers exactly the measured
requests (``callgrind_control --zero`` before, ``--dump`` after). Needs valgrind
(``apt-get install valgrind``). No timing, and nothing here is a pass or a fail.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.procs import Procs
from bench.servers import Server, write_config

ROOT = Path(__file__).resolve().parents[1]
HOST = "t1.fast.localhost"
#: run as ``python -c``: the standby, with its periodic work off and its deadlines' sweep
#: slowed (see the module's doc)
BOOT = (
    "import tenement.server.roles as roles, tenement.server.standby as standby; "
    "standby.REPORT_SECONDS = standby.REFRESH_SECONDS = 1e9; "
    "roles.LEASE_POLL_SECONDS = roles.HEARTBEAT_SECONDS = 1e9; "
    "import tenement.deadlines as deadlines; deadlines.Deadlines.__init__.__defaults__ = (5.0,); "
    "import sys; sys.argv[0] = 'ten'; from tenement.cli import main; main()"
)
_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


def load(port: int, requests: int, connections: int) -> None:
    """Send ``requests`` GETs for the fast tenant over ``connections`` keep-alive
    connections, one at a time on each, and read every answer.

    Raises:
        RuntimeError: an answer was not a 200, or the server closed a connection.
    """
    request = f"GET / HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: bench\r\n\r\n".encode()
    selector = selectors.DefaultSelector()
    socks = []
    sent = answered = 0
    try:
        for _ in range(min(connections, requests)):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setblocking(False)
            socks.append(sock)
            selector.register(sock, selectors.EVENT_READ, bytearray())
            sock.sendall(request)
            sent += 1
        while answered < requests:
            for key, _ in selector.select():
                sock, buffer = key.fileobj, key.data
                data = sock.recv(65536)  # type: ignore[union-attr]
                if not data:
                    raise RuntimeError("the server closed a connection")
                buffer += data
                while (end := buffer.find(b"\r\n\r\n")) >= 0:
                    length = _LENGTH.search(buffer, 0, end + 2)
                    whole = end + 4 + (int(length[1]) if length else 0)
                    if len(buffer) < whole:
                        break
                    if not buffer.startswith(b"HTTP/1.1 200 "):
                        raise RuntimeError(f"unexpected answer: {bytes(buffer[:60])!r}")
                    del buffer[:whole]
                    answered += 1
                    if sent < requests:
                        sock.sendall(request)  # type: ignore[union-attr]
                        sent += 1
    finally:
        for sock in socks:
            sock.close()
        selector.close()


def total_instructions(dump: Path) -> int:
    """The ``totals:`` line of a callgrind dump."""
    for line in dump.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"{dump} has no totals line")


def _pin(pid: int, cpus: set[int]) -> None:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(pid, cpus)


def measure(requests: int, connections: int, warmup: int, work: Path) -> float:
    """Instructions per request of a standby ``ten serve`` under callgrind."""
    os.environ["PYTHONPATH"] = str(ROOT)  # the servers run this checkout's code
    procs = Procs()
    directory = work / "servers"
    write_config(directory, procs.marker, log_lines=10)
    python = sys.executable
    try:
        # one serving process each: the measured one is the standby itself
        one = ("--workers", "1")
        leader = Server("ours", [python, "-m", "tenement"], directory, procs, one)
        leader.token_gen()
        leader.start()
        leader.request("GET", "/", host=HOST)  # the tenant is up: its row says running
        out = work / "callgrind.out"
        valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        valgrind.append(f"--callgrind-out-file={out}")
        standby = Server("ours", [*valgrind, python, "-c", BOOT], directory, procs, one)
        standby.token = leader.token
        standby.start()
        assert leader.proc is not None and standby.proc is not None
        # the measured process on one CPU, everything else on the others
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) > 1:
            rest = set(cpus[1:])
            _pin(standby.proc.pid, {cpus[0]})
            found = subprocess.run(["pgrep", "-f", procs.marker], capture_output=True, text=True)
            for pid in [leader.proc.pid, os.getpid(), *map(int, found.stdout.split())]:
                _pin(pid, rest)
        load(standby.port, warmup, connections)

        def control(*options: str) -> None:
            subprocess.run(
                ["callgrind_control", *options, str(standby.proc.pid)],  # type: ignore[union-attr]
                check=True,
                capture_output=True,
            )

        control("--instr=on")
        control("--zero")
        load(standby.port, requests, connections)
        control("--dump")
        control("--instr=off")
        return total_instructions(work / "callgrind.out.1") / requests
    finally:
        procs.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=2000, help="requests before counting")
    args = parser.parse_args(argv)
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            missing = f"bench.instructions: {tool} is missing: apt-get install valgrind"
            print(missing, file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="tenement-instructions-") as work:
        per_request = measure(args.requests, args.connections, args.warmup, Path(work))
    print(
        f"{per_request:,.0f} instructions per proxied request "
        f"({args.requests} requests, {args.connections} connections, {ROOT})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
