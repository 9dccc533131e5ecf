"""What `ten serve` does at start so that no tenant can reach its secrets.

- The API token is not kept in the server's environment: ``TENEMENT_TOKEN`` is for the
  CLI, and a server started from a shell that exported it would otherwise keep it in
  ``/proc/<pid>/environ`` for as long as it runs (``unsetenv`` alone does not erase it:
  the kernel shows the environment block the process was started with, so the block is
  blanked too).
- The data dir's own files are private (:mod:`tenement.store.private`): the data dir
  and each service's directory 0711, the database, ``api_token`` 0600, ``backups``,
  ``logs`` and ``run`` 0700.
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping
from pathlib import Path

from tenement.store import passage_dir, private_dir, private_file

log = logging.getLogger(__name__)

#: variables that hold a secret the server has no use for
SECRET_NAMES = ("TENEMENT_TOKEN",)
#: fields of /proc/self/stat (1-based) that bound the initial environment block
ENV_START_FIELD, ENV_END_FIELD = 50, 51
#: the data dir's entries that are the server's alone
PRIVATE_DIRS = ("backups", "logs", "run")
PRIVATE_FILES = ("api_token",)


def drop_secrets(environ: MutableMapping[str, str]) -> list[str]:
    """Remove :data:`SECRET_NAMES` from ``environ`` (and, for ``os.environ``, from the
    environment block the kernel shows in ``/proc/self/environ``).

    Returns:
        The names removed.
    """
    dropped = [name for name in SECRET_NAMES if name in environ]
    for name in dropped:
        del environ[name]
    if dropped and environ is os.environ:
        try:
            _blank_initial_environ(dropped)
        except OSError as exc:
            log.warning("cannot erase %s from /proc/self/environ: %s", ", ".join(dropped), exc)
    return dropped


def _blank_initial_environ(names: list[str]) -> None:
    """Overwrite the ``NAME=value`` entries of the initial environment block with NULs.

    Nothing points at them any more (``unsetenv`` removed them from ``environ``), and
    an entry of NULs reads as empty strings.
    """
    with open("/proc/self/stat", "rb") as file:
        fields = file.read().rsplit(b")", 1)[1].split()
    # fields[0] is field 3 (state): the command name, which may hold spaces, is cut off
    start, end = int(fields[ENV_START_FIELD - 3]), int(fields[ENV_END_FIELD - 3])
    prefixes = tuple(name.encode() + b"=" for name in names)
    with open("/proc/self/mem", "r+b", buffering=0) as memory:
        memory.seek(start)
        block = memory.read(end - start)
        offset = 0
        for entry in block.split(b"\0"):
            if entry.startswith(prefixes):
                memory.seek(start + offset)
                memory.write(b"\0" * len(entry))
            offset += len(entry) + 1


def secure_data_dir(data_dir: Path) -> None:
    """Make ``data_dir`` passable only, and its server-only entries private (module
    docstring), whatever the umask and whatever an earlier version left."""
    passage_dir(data_dir)
    for name in PRIVATE_FILES:
        private_file(data_dir / name)
    for name in PRIVATE_DIRS:
        if (data_dir / name).exists():
            private_dir(data_dir / name)
