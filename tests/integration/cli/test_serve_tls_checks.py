"""`ten serve --tls` and `[settings.tls]` refuse what 0.2.2 refuses, with its messages.

Each case runs the reference binary and ours on the same bad input and compares the
message and the exit code. The reference runs in a network namespace of its own
(`unshare -n`): a case it would not refuse must not let it reach a real CA.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TLS_TABLE = "[settings.tls]\n"
CASES = [
    pytest.param(["--tls"], "", id="no-email"),
    pytest.param(["--tls", "--email", ""], "", id="empty-email"),
    pytest.param(["--tls", "--email", "bad"], "", id="no-at"),
    pytest.param(["--tls", "--email", "a@b"], "", id="no-dot"),
    pytest.param(["--tls", "--email", "a@@b.com"], "", id="two-ats"),
    pytest.param(["--tls", "--email", "a@"], "", id="empty-domain"),
    pytest.param(["--tls", "--email", "a@b.com"], "", id="localhost"),
    pytest.param(["--tls", "--email", "@b.com"], "", id="empty-local-part-then-localhost"),
    pytest.param(
        ["--tls", "--email", "a@b.com", "-d", "x.example.com"],
        TLS_TABLE + "https_port = 8443\nhttp_port = 8443\n",
        id="same-ports",
    ),
    pytest.param(["-d", "x.example.com"], TLS_TABLE + "enabled = true\n", id="config-no-email"),
    pytest.param(
        ["-d", "x.example.com"],
        TLS_TABLE + 'enabled = true\nacme_email = ""\n',
        id="config-empty-email",
    ),
    pytest.param(
        ["-d", "x.example.com"],
        TLS_TABLE + 'enabled = true\nacme_email = "bad"\n',
        id="config-bad-email",
    ),
    pytest.param([], TLS_TABLE + 'enabled = true\nacme_email = "a@b.com"\n', id="config-localhost"),
    pytest.param(
        ["--tls", "--email", "c@d.com"],
        TLS_TABLE + 'acme_email = "a@b.com"\n',
        id="flag-email-wins-then-localhost",
    ),
]


def _message(stderr: str) -> str:
    """The error, without the reference's stack backtrace."""
    return stderr.split("\n\nStack backtrace:")[0].strip()


def _project(tmp_path: Path, name: str, tls: str) -> Path:
    project = tmp_path / name
    project.mkdir()
    (project / "tenement.toml").write_text(f'[settings]\ndata_dir = "data"\n{tls}')
    return project


@pytest.mark.parametrize(("args", "tls"), CASES)
def test_refuses_as_the_reference_does(
    tmp_path: Path, reference_ten: Path, args: list[str], tls: str
) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("the reference runs in a network namespace of its own: needs root, unshare")
    reference = subprocess.run(
        ["unshare", "-n", str(reference_ten), "serve", *args],
        cwd=_project(tmp_path, "reference", tls),
        capture_output=True,
        text=True,
        timeout=20,
        stdin=subprocess.DEVNULL,
    )
    ours = subprocess.run(
        [sys.executable, "-m", "tenement", "serve", *args],
        cwd=_project(tmp_path, "ours", tls),
        capture_output=True,
        text=True,
        timeout=20,
        stdin=subprocess.DEVNULL,
    )
    assert reference.returncode == 1, reference.stderr
    assert (ours.returncode, _message(ours.stderr)) == (1, _message(reference.stderr))


def test_uppercase_localhost_is_refused_too(tmp_path: Path) -> None:
    """0.2.2 compares case-sensitively and starts ordering for LOCALHOST."""
    ours = subprocess.run(
        [
            sys.executable,
            "-m",
            "tenement",
            "serve",
            "--tls",
            "--email",
            "a@b.com",
            "-d",
            "LocalHost",
        ],
        cwd=_project(tmp_path, "ours", ""),
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert ours.returncode == 1
    assert "TLS cannot be used with localhost." in ours.stderr


def test_email_without_tls_is_a_usage_error(tmp_path: Path) -> None:
    ours = subprocess.run(
        [sys.executable, "-m", "tenement", "serve", "--email", "a@b.com"],
        cwd=_project(tmp_path, "ours", ""),
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert ours.returncode == 2
    assert "--email requires --tls" in ours.stderr
