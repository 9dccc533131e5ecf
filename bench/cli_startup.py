"""How long `ten` client commands take, ours against the reference: median of N runs each.

Usage: ``python -m bench.cli_startup [--runs 10] [--ours CMD] [--before CMD] [--ref PATH]
[--write BENCHMARKS.md]``.

Each command runs in a fresh temp directory holding a small tenement.toml; ``ps`` and
``spawn`` (of bench/apps/tiny.py, whose start is in the figure) talk to a ``ten serve`` of
the same implementation on a loopback port. The floor is a bare ``python -c pass`` with the
same interpreter: no command of ours can beat it. Prints a Markdown table (milliseconds,
medians, wall clock and the command's own CPU time). The machine may be shared: compare
medians from one run, and trust the CPU figures more than the wall clock under load.

``--before`` adds a column for another tree (e.g. ``env PYTHONPATH=/tmp/old python -m
tenement``), measured in the same run. The implementations take turns run by run, so
that the machine's load falls on each alike. ``--write`` puts the table, with :data:`METHOD`,
into that file as its "CLI start-up" section (replacing the one there); ``bench.run``
keeps that section when it rewrites BENCHMARKS.md (:func:`keep_section`).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import os
import re
import resource
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


#: one command's medians: wall clock and CPU (user + system of the command's process), ms
Timing = tuple[float, float]


def _timed(once: Callable[[], None]) -> Timing:
    """Wall clock and the CPU time of the child processes ``once`` waited for (the
    command; not a server started before), in seconds."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    once()
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime


def _medians(samples: list[Timing]) -> Timing:
    return (
        statistics.median(wall for wall, _ in samples) * 1000,
        statistics.median(cpu for _, cpu in samples) * 1000,
    )


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


class Subject:
    """One implementation's `ten` (``argv``), its temp directory and its ``ten serve``."""

    def __init__(self, argv: list[str], procs: Procs, stack: contextlib.ExitStack) -> None:
        self.argv = argv
        self.directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ten-")))
        (self.directory / "tenement.toml").write_text(
            CONFIG.format(
                data=self.directory / "data",
                python=tenant_python(),
                tiny=APPS / "tiny.py",
                marker=procs.marker,
            )
        )
        # PYTHONDONTWRITEBYTECODE would make every run compile our modules afresh, which an
        # installed tenement (byte-compiled by pip) never does
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TENEMENT_") and k != "PYTHONDONTWRITEBYTECODE"
        }
        self.client: list[str] = []
        self._procs = procs
        self._stack = stack

    def serve(self) -> None:
        """Start its server (after the local commands: token-gen made the token)."""
        port = free_port()
        server = self._procs.start(
            [*self.argv, "serve", "--port", str(port)], cwd=self.directory, env=self.env
        )
        self._stack.callback(self._procs.end, server)
        _wait_healthy(port, time.monotonic() + 30)
        token = (self.directory / "data" / "api_token").read_text().strip()
        self.client = ["--server", f"http://127.0.0.1:{port}", "--token", token]

    def run(self, *args: str) -> None:
        _run([*self.argv, *args], self.directory, self.env)


def measure(subjects: list[Subject], runs: int) -> list[dict[str, Timing | None]]:
    """Medians per command for each subject, the subjects taking turns run by run, so
    that a change in the machine's load falls on all of them alike.

    A command a subject lacks (the reference has no ``config --check``) is None.
    """
    results: list[dict[str, Timing | None]] = [{} for _ in subjects]

    def each_run(name: str, args: Callable[[Subject, int], list[str]]) -> None:
        takers = []
        for subject, result in zip(subjects, results, strict=True):
            try:
                subject.run(*args(subject, runs))  # once untimed: caches, a new database
            except RuntimeError as exc:
                print(f"skipped: {exc}", file=sys.stderr)
                result[name] = None
                continue
            takers.append((subject, result))
        samples: dict[int, list[Timing]] = {id(r): [] for _, r in takers}
        for index in range(runs):
            for subject, result in takers:
                argv = args(subject, index)
                samples[id(result)].append(_timed(functools.partial(subject.run, *argv)))
        for _, result in takers:
            result[name] = _medians(samples[id(result)])

    for local in LOCAL:
        each_run("ten " + " ".join(local), lambda _s, _i, local=local: list(local))
    for subject in subjects:
        subject.serve()
    each_run("ten ps", lambda s, _i: ["ps", *s.client])
    each_run("ten spawn", lambda s, i: ["spawn", f"app:s{i}", *s.client])
    for subject in subjects:
        for index in range(runs + 1):
            subject.run("stop", f"app:s{index}", *subject.client)
    return results


#: the section's heading in BENCHMARKS.md
HEADING = "## CLI start-up"

#: how the figures are made, and where the time goes (written under the table)
METHOD = """\
Each `ten` command in a fresh process, until it exits: wall clock, and in brackets the
CPU time (user + system) of the command's own process, medians of the runs; ours and
the reference 0.2.2 in one run of `python -m bench.cli_startup --runs 10 [--before CMD]
--write BENCHMARKS.md`, taking turns run by run. The machine has 2 cores and is
shared with other work: the wall clock moves with its load (the floor says how much),
the CPU time much less.
Each command runs in a temp directory holding a small tenement.toml; `ps` and `spawn`
(of `bench/apps/tiny.py`) talk to a `ten serve` of the same implementation over
loopback, with `--token` given: their wall clock includes the server's answer (the
reference checks the token with Argon2 on each call; `spawn` waits for the tenant to
listen), their CPU time does not. `token-gen` includes its Argon2 hash (~20-40 ms on
either side) and runs on a database already at the head revision. Ours runs as `python
-m tenement`, byte-compiled; "before" is the tree before the start-up work of issue #16
(commit 1b54e5c). The floor is a bare `python -c pass`: no command of ours can beat it.

Where ours goes (`python -X importtime`): the interpreter (10-12 ms); click (~25 ms;
every command but `--version`, which is answered without it); for commands that read
tenement.toml, the config classes (attrs, ~15 ms with their creation) and the TOML
reader; the store (~25 ms) and Argon2 for the token commands. Not imported any more:
SQLAlchemy (~140 ms) and Alembic by the token commands on a database at head (one
sqlite3 query says it is), only to create or migrate one; `http.client` and the `email`
package (~20 ms) by the commands that talk to the server over plain http
(`tenement/cli/exchange.py`: http.client still reads what tenement.wire does not take
whole, and https, proxies and `ten logs -f`). The cyclic garbage collector is off while
`ten` starts, and the start-up's objects are frozen: it scanned them over and over, and
once more at exit (~15 ms of CPU)."""


def table(
    runs: int,
    columns: list[tuple[str, dict[str, Timing | None]]],
    floor: Timing,
) -> list[str]:
    """The Markdown table: one row per command, one column per implementation; each
    cell "wall (CPU)"."""

    def cell(value: Timing | None) -> str:
        return "n/a" if value is None else f"{value[0]:.0f} ({value[1]:.0f})"

    names = [name for name, _ in columns]
    lines = [
        f"| command: ms wall (CPU), median of {runs} | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for command in columns[0][1]:
        cells = " | ".join(cell(values.get(command)) for _, values in columns)
        lines.append(f"| `{command}` | {cells} |")
    lines.append(f"| floor: `python -c pass` | {cell(floor)} |" + " |" * (len(names) - 1))
    return lines


def _section_span(text: str) -> tuple[int, int] | None:
    """Where the CLI start-up section is in ``text`` (heading to the next ``## ``)."""
    found = re.search(rf"^{re.escape(HEADING)}\n", text, re.MULTILINE)
    if found is None:
        return None
    after = re.search(r"^## ", text[found.end() :], re.MULTILINE)
    return found.start(), found.end() + after.start() if after else len(text)


def replace_section(text: str, section: str) -> str:
    """``text`` with its CLI start-up section replaced by ``section`` (or, without one,
    with ``section`` put before "## How each figure is measured", else at the end)."""
    section = section.rstrip("\n") + "\n\n"
    span = _section_span(text)
    if span is not None:
        return text[: span[0]] + section + text[span[1] :]
    method = text.find("\n## How each figure is measured")
    if method >= 0:
        return text[: method + 1] + section + text[method + 1 :]
    return text.rstrip("\n") + "\n\n" + section


def keep_section(path: Path, text: str) -> str:
    """``text`` (a new BENCHMARKS.md) with the CLI start-up section of the file at ``path``
    carried over: ``bench.run`` does not measure it, so a rewrite must not lose it."""
    try:
        old = path.read_text()
    except FileNotFoundError:
        return text
    span = _section_span(old)
    return text if span is None else replace_section(text, old[span[0] : span[1]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--ours", default=f"{sys.executable} -m tenement")
    parser.add_argument("--before", default=None, help="another tree's `ten`, for a column")
    parser.add_argument("--ref", default=None, help="the reference `ten` (default: bench's)")
    parser.add_argument("--write", type=Path, default=None, help="put the section in this file")
    options = parser.parse_args()
    ref = options.ref or str(reference_binary())
    load_before = os.getloadavg()[0]
    floor = _medians(
        [
            _timed(lambda: _run([sys.executable, "-c", "pass"], Path.cwd(), dict(os.environ)))
            for _ in range(options.runs)
        ]
    )
    names = ["before", "ours", "reference 0.2.2"]
    argvs = [options.before, options.ours, None]
    procs = Procs()
    try:
        with contextlib.ExitStack() as stack:
            subjects = [
                Subject(shlex.split(argv) if argv else [ref], procs, stack)
                for name, argv in zip(names, argvs, strict=True)
                if argv or name != "before"
            ]
            measured = measure(subjects, options.runs)
    finally:
        procs.close()
    columns = list(zip(names[-len(measured) :], measured, strict=True))
    lines = table(options.runs, columns, floor)
    print("\n".join(lines))
    if options.write:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        load = f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
        run = f"Run at {when}; load average (1 min) of the 2-core machine: {load}."
        section = "\n".join([HEADING, "", *lines, "", run, "", METHOD])
        options.write.write_text(replace_section(options.write.read_text(), section))


if __name__ == "__main__":
    main()
