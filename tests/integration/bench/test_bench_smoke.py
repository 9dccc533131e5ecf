"""The benchmark harness runs end to end (``--quick``, proxy only) and measures both servers.

No timing is asserted: only that each server produced numbers and the report names them.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def short_work() -> Iterator[Path]:
    """A run directory with a short path, wherever the checkout is: ours' control socket
    goes under it and must fit in 107 bytes (pytest's tmp_path is too deep already)."""
    work = Path(tempfile.mkdtemp(prefix="bench-", dir="/tmp"))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_quick_proxy_run_measures_both_servers(tmp_path: Path, short_work: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk); the harness needs it")
    raw, report = tmp_path / "results.json", tmp_path / "BENCHMARKS.md"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--quick",
            "--sections",
            "proxy",
            "--json",
            str(raw),
            "--out",
            str(report),
        ],
        cwd=ROOT,
        env={**os.environ, "BENCH_WORK": str(short_work)},
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(raw.read_text())
    for name in ("direct", "ours", "reference", "ours_other"):
        proxy = results[name] if name == "direct" else results[name]["proxy"]
        assert "error" not in proxy, proxy
        assert proxy["rps_c1"] > 0 and proxy["rps_c32"] > 0, (name, proxy)
        assert proxy["p50_ms_c1"] > 0, (name, proxy)
    rounds = results["head_to_head"]
    assert "error" not in rounds, rounds
    assert len(rounds["ratios"]) == 2 and all(ratio > 0 for ratio in rounds["ratios"]), rounds
    text = report.read_text()
    assert "Proxy throughput, 32 connections" in text
    assert "each server's default (ours: one serving process)" in text
    assert "`--workers 0`: proxy req/s, 32 connections" in text
    assert "head to head: median of 2 alternating rounds" in text
    assert "tenement 0.2.2" in text
