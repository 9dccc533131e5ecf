"""The fleet secret in tests: read from `ten token-gen --fleet`'s output, written where
a node reads it (0600, as the node insists)."""

from __future__ import annotations

from pathlib import Path

HEADLINE = "Generated the fleet secret (shown once, not saved):"


def secret_in(output: str) -> str:
    """The secret `ten token-gen --fleet` printed (two lines under its headline)."""
    lines = output.splitlines()
    return lines[lines.index(HEADLINE) + 2].strip()


def write_secret(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(secret + "\n")
    path.chmod(0o600)
