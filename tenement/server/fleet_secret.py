"""The fleet secret a node's requests to its peers carry, read and checked at start.

``ten token-gen --fleet`` makes it and keeps only its hash in the shared database; the
operator puts the secret itself in ``[fleet] secret_file`` on every node. A node starts
only with a file that exists, is private to the server's user (no group or other bits)
and holds the secret whose hash the database has: a mistake is an exit 2 at start, not
a fleet whose nodes refuse each other's requests later.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tenement.config import Fleet
from tenement.errors import TenementError
from tenement.store import Store, verify_token

#: the longest secret read (``ten token-gen`` makes 43 characters)
MAX_SECRET_BYTES = 1024


class FleetSecretError(TenementError):
    """The fleet secret file is missing, not private, empty, or not this fleet's."""

    exit_code = 2


def secret_path(fleet: Fleet, data_dir: Path) -> Path:
    return fleet.secret_file if fleet.secret_file is not None else data_dir / "fleet_secret"


def read_secret_file(path: Path) -> bytes:
    """The secret in ``path``, stripped of surrounding white space.

    Raises:
        FleetSecretError: the file is missing, unreadable, readable by others, empty
            or too long.
    """
    how = (
        "run `ten token-gen --fleet` once on any node and put the secret it prints in "
        f"{path} on every node (install -m 600), or set [fleet] secret_file"
    )
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise FleetSecretError(f"the fleet secret file {path} does not exist: {how}") from None
    except OSError as exc:
        raise FleetSecretError(f"cannot read the fleet secret file {path}: {exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise FleetSecretError(f"the fleet secret file {path} is not a regular file: {how}")
    with os.fdopen(fd, "rb") as file:
        if mode & 0o077:
            raise FleetSecretError(
                f"the fleet secret file {path} has mode {stat.S_IMODE(mode):04o}: others than "
                f"the server's user can read it; run `chmod 600 {path}`"
            )
        secret = file.read(MAX_SECRET_BYTES + 1).strip()
    if not secret:
        raise FleetSecretError(f"the fleet secret file {path} is empty: {how}")
    if len(secret) > MAX_SECRET_BYTES or any(byte < 0x21 or byte > 0x7E for byte in secret):
        raise FleetSecretError(
            f"the fleet secret file {path} does not hold a secret made by "
            f"`ten token-gen --fleet` (one line of printable characters): {how}"
        )
    return secret


def load_fleet_secret(fleet: Fleet, data_dir: Path, store: Store) -> bytes:
    """This node's fleet secret, checked against the hash in the database.

    Raises:
        FleetSecretError: as :func:`read_secret_file`, or no secret was ever made for
            this database, or the file's is not the one made last.
    """
    path = secret_path(fleet, data_dir)
    secret = read_secret_file(path)
    expected = store.fleet_secret_hash()
    if expected is None:
        raise FleetSecretError(
            f"this fleet has no secret yet ({path} holds one, but the database has no "
            "hash): run `ten token-gen --fleet` once on any node and put the secret it "
            "prints in the secret file of every node"
        )
    if not verify_token(secret.decode("ascii"), expected):
        raise FleetSecretError(
            f"the fleet secret in {path} is not the one `ten token-gen --fleet` made last "
            "for this database: copy the current secret to every node (or make a new one "
            "and copy that)"
        )
    return secret
