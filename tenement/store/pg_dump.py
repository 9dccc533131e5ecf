"""Backups of a PostgreSQL database with ``pg_dump``, when it is installed.

tenement writes PostgreSQL backups in ``pg_dump``'s custom format (restore with
``pg_restore --clean``). Where ``pg_dump`` is not on ``PATH`` (no postgresql-client), it
backs nothing up and says so: the database's own tools (base backups, snapshots) are then
the operator's.

The password never reaches ``pg_dump``'s command line (which ``ps`` shows to every user):
the connection goes as libpq keywords in ``--dbname`` and the password in ``PGPASSWORD``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from tenement.store import _connect
from tenement.store.errors import BackupError

#: what ``pg_dump`` writes: custom format, for ``pg_restore``
SUFFIX = ".dump"


def pg_dump_path(environ: Mapping[str, str] | None = None) -> str | None:
    """Where ``pg_dump`` is, or None."""
    path = (environ if environ is not None else os.environ).get("PATH")
    return shutil.which("pg_dump", path=path)


def no_pg_dump(display_url: str) -> str:
    """Why a PostgreSQL database is not backed up: no ``pg_dump``."""
    return (
        f"not backing up {display_url}: tenement backs PostgreSQL up with pg_dump, which is "
        "not installed (apt install postgresql-client, dnf install postgresql); back it up "
        "with the database's own tools"
    )


def _conninfo(url: str) -> tuple[str, dict[str, str]]:
    """libpq's ``key=value`` connection string for ``url`` without its password, and the
    environment that carries the password."""
    parsed = _connect.parse_url(url)
    keywords: dict[str, str] = {}
    for key, part in (
        ("host", parsed.host),
        ("port", parsed.port),
        ("user", parsed.username),
        ("dbname", parsed.database),
    ):
        if part is not None:
            keywords[key] = str(part)
    secret: dict[str, str] = {}
    for key, value in parsed.query.items():
        # SQLAlchemy hands the query to libpq as keywords (host=/run/…, sslmode=…)
        text = ",".join(value) if isinstance(value, tuple) else value
        if key == "password":
            secret["PGPASSWORD"] = text
        else:
            keywords[key] = text
    if parsed.password is not None:
        secret["PGPASSWORD"] = str(parsed.password)
    quoted = (
        "{}='{}'".format(key, value.replace("\\", "\\\\").replace("'", "\\'"))
        for key, value in keywords.items()
    )
    return " ".join(quoted), secret


def dump(url: str, display_url: str, target: Path, pg_dump: str) -> None:
    """Write the database at ``url`` to ``target`` (custom format), atomically and 0600.

    Raises:
        BackupError: ``pg_dump`` failed (its message, password hidden, is in ours).
    """
    conninfo, secret = _conninfo(url)
    partial = target.with_name(f".{target.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    env = {**os.environ, **secret}
    try:
        done = subprocess.run(
            [pg_dump, "--format=custom", f"--file={partial}", f"--dbname={conninfo}"],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            said = _connect.redact(" ".join(done.stderr.split()), secret.get("PGPASSWORD"))
            hint = (
                "; install a postgresql-client of the server's version or newer"
                if "version mismatch" in said
                else ""
            )
            raise BackupError(
                f"pg_dump could not back up {display_url} (exit {done.returncode}): {said}{hint}"
            )
        partial.chmod(0o600)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
