"""How long `ten` client commands take, ours against the reference: median of N runs each.

Usage: ``python -m bench.cli_startup [--runs 10] [--ours CMD] [--ref PATH]``.

Each command runs in a fresh temp directory holding a small tenement.toml; ``ps`` and
``spawn`` (of bench/apps/tiny.py, whose start is in the figure) talk to a ``ten serve`` of
the same implementation on a loopback port. The floor is a bare ``python -c pass`` with the
same interpreter: no command of ours can beat it. Prints a Markdown table (milliseconds,
wall clock, medians). The machine may be shared: compare medians from one run.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.procs import Procs
from bench.refbin import reference_binary
from bench.servers import APPS, free_port, tenant_python

CONFIG = """\
[settings]
data_dir = "{data}"
tenant_users = false  # as bench/servers.py: the apps are in this checkout

[service.app]
command = "{python} -S {tiny} {marker}"
isolation = "process"
health = "/health"

[instances]
app = ["one"]
"""

#: the commands that need no server, as run from the directory holding tenement.toml
LOCAL: tuple[tuple[str, ...], ...] = (
    ("--version",),
    ("--help",),
    ("config",),
    ("config", "--check"),
    ("token-gen",),
)


def _median_ms(runs: int, once: Callable[[int], None]) -> float:
    times = []
    for index in range(runs):
        began = time.perf_counter()
        once(index)
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} exited {out.returncode}: {out.stderr.strip()}")


def _wait_healthy(port: int, deadline: float) -> None:
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server on port {port} not healthy in time")
        time.sleep(0.05)


def measure(argv: list[str], runs: int, procs: Procs) -> dict[str, float | None]:
    """Median milliseconds per command for one implementation (``argv`` runs its `ten`).

    A command this implementation lacks (the reference has no ``config --check``) is None.
    """
    results: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory(prefix="ten-startup-") as tmp:
        directory = Path(tmp)
        (directory / "tenement.toml").write_text(
            CONFIG.format(
                data=directory / "data",
                python=tenant_python(),
                tiny=APPS / "tiny.py",
                marker=procs.marker,
            )
        )
        # PYTHONDONTWRITEBYTECODE would make every run compile our modules afresh, which an
        # installed tenement (byte-compiled by pip) never does
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TENEMENT_") and k != "PYTHONDONTWRITEBYTECODE"
        }
        for args in LOCAL:
            try:
                _run([*argv, *args], directory, env)
            except RuntimeError as exc:
                print(f"skipped: {exc}", file=sys.stderr)
                results["ten " + " ".join(args)] = None
                continue
            command = [*argv, *args]
            results["ten " + " ".join(args)] = _median_ms(
                runs, lambda _, command=command: _run(command, directory, env)
            )
        port = free_port()
        server = procs.start(
            [*argv, "serve", "--port", str(port)],
            cwd=directory,
            env=env,
        )
        try:
            _wait_healthy(port, time.monotonic() + 30)
            token = (directory / "data" / "api_token").read_text().strip()
            client = ["--server", f"http://127.0.0.1:{port}", "--token", token]
            results["ten ps"] = _median_ms(
                runs, lambda _: _run([*argv, "ps", *client], directory, env)
            )
            results["ten spawn"] = _median_ms(
                runs, lambda i: _run([*argv, "spawn", f"app:s{i}", *client], directory, env)
            )
            for index in range(runs):
                _run([*argv, "stop", f"app:s{index}", *client], directory, env)
        finally:
            procs.end(server)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--ours", default=f"{sys.executable} -m tenement")
    parser.add_argument("--ref", default=None, help="the reference `ten` (default: bench's)")
    options = parser.parse_args()
    ref = options.ref or str(reference_binary())
    floor = _median_ms(
        options.runs, lambda _: _run([sys.executable, "-c", "pass"], Path.cwd(), dict(os.environ))
    )
    procs = Procs()
    try:
        ours = measure(shlex.split(options.ours), options.runs, procs)
        theirs = measure([ref], options.runs, procs)
    finally:
        procs.close()
    print(f"| command | ours (ms) | reference 0.2.2 (ms) |  (median of {options.runs})")
    print("|---|---:|---:|")

    def cell(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.0f}"

    for name, value in ours.items():
        print(f"| `{name}` | {cell(value)} | {cell(theirs[name])} |")
    print(f"| floor: `python -c pass` | {floor:.0f} | |")


if __name__ == "__main__":
    main()
