"""``./dev`` on a machine it has set up already: every step sees its result and skips.

A second ``./dev test`` must start at once and work offline: no apt-get, no pip download.
Run by ``./dev test`` (in CI on a fresh clone, right after ``./dev`` set it up).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def test_fresh_dev_setup_again_uses_neither_apt_nor_the_network(tmp_path: Path) -> None:
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        pytest.skip(f"only under ./dev test: it checks the venv ./dev made, not {sys.prefix}")
    calls = tmp_path / "apt-get-called"
    tripwire = tmp_path / "bin"
    tripwire.mkdir()
    apt = tripwire / "apt-get"
    apt.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 1\n')
    apt.chmod(0o755)
    env = {name: value for name, value in os.environ.items() if not name.startswith("PIP_")}
    env |= {
        "PATH": f"{tripwire}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        # any pip install or download fails: the venv and the reference must be reused
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
    }

    run = subprocess.run(
        [str(ROOT / "dev"), "setup"], env=env, capture_output=True, text=True, timeout=120
    )

    assert run.returncode == 0, run.stderr
    assert not calls.exists(), calls.read_text()
