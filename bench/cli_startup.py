"""How long `ten` client commands take, ours against the reference: median of N runs each.

Usage: ``python -m bench.cli_startup [--runs 10] [--ours CMD] [--before CMD] [--ref PATH]
[--write BENCHMARKS.md]``.

Each command runs in a fresh temp directory holding a small tenement.toml; ``ps`` and
``spawn`` (of bench/apps/tiny.py, whose start is in the figure) talk to a ``ten serve`` of
the same implementation on a loopback port. The floor is a bare ``python -c pass`` with the
same interpreter: no command of ours can beat it. Prints a Markdown table (milliseconds,
wall clock, medians). The machine may be shared: compare medians from one run.

``--before`` adds a column for another tree (e.g. ``env PYTHONPATH=/tmp/old python -m
tenement``), measured in the same run. ``--write`` puts the table, with :data:`METHOD`,
into that file as its "CLI start-up" section (replacing the one there); ``bench.run``
keeps that section when it rewrites BENCHMARKS.md (:func:`keep_section`).
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
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


#: the section's heading in BENCHMARKS.md
HEADING = "## CLI start-up"

#: how the figures are made, and where the time goes (written under the table)
METHOD = """\
Each `ten` command in a fresh process, wall clock until it exits, median of the runs,
ours and the reference 0.2.2 in one run of `python -m bench.cli_startup --runs 10
[--before CMD] --write BENCHMARKS.md` (a 2-core machine shared with other work: figures
within ~5 ms of each other are noise). Each runs in a temp directory holding a small
tenement.toml; `ps` and `spawn` (of `bench/apps/tiny.py`, its start included) talk to a
`ten serve` of the same implementation over loopback, with `--token` given, and their
figures include the server's answer (the reference checks the token with Argon2 on each
call). `token-gen` includes its Argon2 hash (~20-40 ms on either side); it runs on a
database already at the head revision. Ours runs as `python -m tenement`, byte-compiled.
The floor is a bare `python -c pass`: no command of ours can beat it.

Where ours goes (`python -X importtime`, CPU): the interpreter (10-12 ms); click (~25
ms; every command but `--version`, which is answered without it); the config classes
(attrs, ~15 ms with their creation) and the TOML reader for commands that read
tenement.toml; `http.client` (with the `email` package, ~20 ms) for commands that talk to
the server; the store (~25 ms) and Argon2 for the token commands. SQLAlchemy (~140 ms)
and Alembic are imported only to create or migrate a database, never for a database at
head. The cyclic garbage collector is off while `ten` starts and the start-up's objects
are frozen (it scanned them over and over, and once more at exit: ~15 ms of CPU)."""


def table(
    runs: int,
    columns: list[tuple[str, dict[str, float | None]]],
    floor: float,
) -> list[str]:
    """The Markdown table: one row per command, one column per implementation."""

    def cell(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.0f}"

    names = [name for name, _ in columns]
    lines = [
        f"| command (median of {runs}, ms) | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for command in columns[0][1]:
        cells = " | ".join(cell(values.get(command)) for _, values in columns)
        lines.append(f"| `{command}` | {cells} |")
    lines.append(f"| floor: `python -c pass` | {floor:.0f} |" + " |" * (len(names) - 1))
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
    floor = _median_ms(
        options.runs, lambda _: _run([sys.executable, "-c", "pass"], Path.cwd(), dict(os.environ))
    )
    procs = Procs()
    columns: list[tuple[str, dict[str, float | None]]] = []
    try:
        if options.before:
            columns.append(("before", measure(shlex.split(options.before), options.runs, procs)))
        columns.append(("ours", measure(shlex.split(options.ours), options.runs, procs)))
        columns.append(("reference 0.2.2", measure([ref], options.runs, procs)))
    finally:
        procs.close()
    lines = table(options.runs, columns, floor)
    print("\n".join(lines))
    if options.write:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        section = "\n".join([HEADING, "", *lines, "", f"Run at {when}.", "", METHOD])
        options.write.write_text(replace_section(options.write.read_text(), section))


if __name__ == "__main__":
    main()
