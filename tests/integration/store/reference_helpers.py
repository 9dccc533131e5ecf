"""Helpers: a reference 0.2.2 data dir, made by the real binary or built from its SQL."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bench import refbin


def reference_binary() -> Path:
    """The reference `ten` (found as everywhere: bench.refbin), or a skip that says why."""
    try:
        return refbin.reference_binary(download=False)
    except refbin.ReferenceUnavailable as exc:
        pytest.skip(str(exc))


def run_reference(args: list[str], cwd: Path) -> str:
    result = subprocess.run(
        [str(reference_binary()), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd)},
        check=True,
    )
    return result.stdout


def token_from_output(output: str) -> str:
    """The token line of `ten token-gen` output (indented by two spaces)."""
    lines = [line.strip() for line in output.splitlines() if line.startswith("  ")]
    assert len(lines) == 1, output
    return lines[0]


#: tokens and hashes made by the reference binary (`ten token-gen`, `--tenant alice`)
REFERENCE_ADMIN_TOKEN = "t45jfeGTF2VDGhnlVnzH_Zc0O4u6QbxvI8s0BdMEcIQ"
REFERENCE_ADMIN_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$wsl64AazyF5RX+vFKnyiFQ$"
    "rSga0ut4d8SUIzUSHMEZP1CMG/ldcGdQF0zadVOZ12M"
)
REFERENCE_ALICE_TOKEN = "JUiPLsX5UfGQhXDymsJA-Sv6PqmQocVw85ccwEayOJ4"
REFERENCE_ALICE_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$WLgOFzNejU7/G91+QJM/sA$"
    "zlK/F6o3RQ2/kb5lWt/33Ve+lokhc/kyeMVMv+j1IJs"
)


def build_reference_db(path: Path) -> None:
    """A database as tenement 0.2.2 leaves it, built from its SQL, with its tokens' hashes."""
    import sqlite3

    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript((Path(__file__).parent / "reference_schema.sql").read_text())
        conn.execute(
            "INSERT INTO config (key, value) VALUES ('api_token_hash', ?)",
            (REFERENCE_ADMIN_HASH,),
        )
        conn.execute(
            "INSERT INTO tenant_tokens (token_hash, token_prefix, tenant_id, description, "
            "created_at) VALUES (?, ?, 'alice', 'hello', '2026-11-26T17:41:21.569313209+00:00')",
            (REFERENCE_ALICE_HASH, REFERENCE_ALICE_TOKEN[:8]),
        )
        conn.execute(
            "INSERT INTO logs (timestamp, level, process, instance_id, message) "
            "VALUES ('2026-11-26T17:41:21.569313209+00:00', 'stdout', 'api', 't1', 'old line')"
        )
        conn.commit()
    finally:
        conn.close()
