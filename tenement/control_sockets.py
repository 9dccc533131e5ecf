"""The names of the servers' control sockets: ``{data_dir}/run/server-PID-TOKEN.sock``.

The server binds one (``server/control.py``) and removes those of servers that are
gone; ``ten reload`` (``cli/reload.py``) looks for the live ones. Both read the names
here, so that a change of the format cannot leave the client looking for sockets under
names no server uses.
"""

from __future__ import annotations

from pathlib import Path

#: the directory under ``data_dir`` that holds the control sockets
RUN_DIR = "run"


def run_dir(data_dir: Path) -> Path:
    """The directory the control sockets of servers on ``data_dir`` are in."""
    return data_dir / RUN_DIR


def control_socket_path(data_dir: Path, server_id: str) -> Path:
    """Where the server ``server_id`` (``host:pid:token``) listens."""
    _, pid, token = server_id.split(":", 2)
    return run_dir(data_dir) / f"server-{pid}-{token}.sock"


def control_sockets(directory: Path, pid: int | None = None) -> list[tuple[int, Path]]:
    """(pid, path) of every control socket in ``directory`` (a :func:`run_dir`), by name;
    ``pid``'s alone if given. Whether each server still runs is the caller's question.

    Raises:
        OSError: ``directory`` cannot be read (a missing one holds no sockets).
    """
    pattern = f"server-{pid}-*.sock" if pid is not None else "server-*-*.sock"
    found = []
    for entry in sorted(directory.glob(pattern)):
        text = entry.name.split("-")[1]
        if text.isdigit():
            found.append((int(text), entry))
    return found
