"""The record of the config a server runs: ``{data_dir}/run/applied-config.json``.

The server writes it at start and after each reload it applied; `ten config --check`
compares the file with it to say what a reload would change, with or without a server
to ask. It holds the effective config (env values included), so it is the service
user's alone (0600 in the 0700 run directory), like the config itself should be.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import attrs

from tenement.config._model import Config, config_as_dict

RECORD_NAME = "applied-config.json"


@attrs.frozen(kw_only=True)
class AppliedConfig:
    """What :func:`read_applied` found."""

    #: :func:`~tenement.config.config_as_dict` data
    config: dict[str, Any]
    #: the server that applied it
    pid: int
    #: when (seconds since the epoch)
    applied_at: float
    #: the file it was read from, when known
    source: str | None


def applied_record_path(data_dir: Path) -> Path:
    return Path(data_dir) / "run" / RECORD_NAME


def write_applied(data_dir: Path, config: Config, *, pid: int, now: float | None = None) -> Path:
    """Record ``config`` as the one server ``pid`` runs (atomically: a reader never sees
    half a record).

    Raises:
        OSError: the run directory cannot be written.
    """
    path = applied_record_path(data_dir)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    record = {
        "pid": pid,
        "applied_at": time.time() if now is None else now,
        "source": None if config.source is None else str(config.source),
        "config": config_as_dict(config),
    }
    temporary = path.with_name(f".{RECORD_NAME}.{pid}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(record, out)
    os.replace(temporary, path)
    return path


def read_applied(data_dir: Path) -> AppliedConfig | None:
    """The recorded config, or None when no server recorded one on this data dir.

    Raises:
        OSError: the record exists but cannot be read (e.g. permission denied).
        ValueError: the record is not what :func:`write_applied` writes.
    """
    try:
        text = applied_record_path(data_dir).read_text()
    except FileNotFoundError:
        return None
    try:
        record = json.loads(text)
        return AppliedConfig(
            config=dict(record["config"]),
            pid=int(record["pid"]),
            applied_at=float(record["applied_at"]),
            source=record.get("source"),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a record of an applied config: {exc!r}") from None
