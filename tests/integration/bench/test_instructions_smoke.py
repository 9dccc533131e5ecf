"""``python -m bench.instructions`` runs end to end: a standby under callgrind, counted.

Nothing about speed is asserted: only that a count came out, and that it is the size of
a proxied request (not zero, as when the dump covers nothing; not billions, as when it
covers the server's start).
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def test_a_small_run_counts_the_instructions_of_a_proxied_request() -> None:
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed (apt-get install valgrind); the tool needs it")
    done = subprocess.run(
        [sys.executable, "-m", "bench.instructions", "--requests", "200", "--warmup", "100"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = re.search(r"^([\d,]+) instructions per proxied request \(200 requests", done.stdout)
    assert found, done.stdout
    assert 20_000 < int(found[1].replace(",", "")) < 5_000_000
