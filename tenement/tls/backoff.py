"""The back-off of hosts whose last order failed, kept in ``cache_dir/backoff.json``.

A failed order makes its host wait :data:`BACKOFF_SECONDS`, doubling with each failure
in a row up to :data:`BACKOFF_MAX_SECONDS`; an hour at least when the CA answers
``rateLimited``, or until the time it names. The file is shared by every process of the
server and outlives it: a server that crashes and restarts in a loop does not order at
every start, nor do its serving processes one after the other. Each process writes its
hosts' entries under a lock file, keeping the others'.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import attrs

from tenement.tls.certs import lock_file, write_private
from tenement.tls.issuer import IssueError

log = logging.getLogger(__name__)

#: a host's first failed order waits this long before the next; then it doubles
BACKOFF_SECONDS = 60.0
BACKOFF_MAX_SECONDS = 3600.0
#: what a CA's "rateLimited" answer costs a host at least (longer when it says when to
#: try again)
RATE_LIMITED_SECONDS = 3600.0


@attrs.frozen
class Backoff:
    failures: int = 0
    #: wall-clock time (epoch seconds): other processes and the next server read it
    until: float = 0.0
    last_error: str = ""


def next_backoff(previous: Backoff | None, exc: IssueError) -> Backoff:
    """The back-off after a failed order (``previous``: the host's last one, if any)."""
    failures = (previous.failures if previous is not None else 0) + 1
    wait = min(BACKOFF_MAX_SECONDS, BACKOFF_SECONDS * 2 ** (failures - 1))
    if exc.rate_limited:
        wait = max(wait, RATE_LIMITED_SECONDS)
        if exc.retry_at is not None:  # the CA's word, when it gave one
            wait = max(wait, exc.retry_at - time.time())
    return Backoff(failures, time.time() + wait, exc.message)


class BackoffFile:
    """``backoff.json`` in ``cache_dir`` (blocking: call in a thread)."""

    def __init__(self, cache_dir: Path) -> None:
        self.path = cache_dir / "backoff.json"
        self._lock = cache_dir / ".backoff.lock"
        self._unreadable = False

    def read(self) -> dict[str, Backoff]:
        """Every host's last back-off, expired ones too (their failures count on)."""
        try:
            data = json.loads(self.path.read_text())
            entries = {
                host: Backoff(int(entry["failures"]), float(entry["until"]), str(entry["error"]))
                for host, entry in data.items()
            }
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            if not self._unreadable:  # said once, not at every look
                log.warning("ignoring %s, which cannot be read: %s", self.path, exc)
            self._unreadable = True
            return {}
        self._unreadable = False
        return entries

    def write(self, host: str, backoff: Backoff | None) -> None:
        """Set (or, with None, clear) ``host``'s entry, keeping the other hosts'."""
        with lock_file(self._lock):
            entries = self.read()
            if backoff is None:
                entries.pop(host, None)
            else:
                entries[host] = backoff
            data = {
                name: {"failures": b.failures, "until": b.until, "error": b.last_error}
                for name, b in entries.items()
            }
            try:
                write_private(self.path, json.dumps(data, indent=1).encode())
            except OSError as exc:  # this process still waits; a restart may order again
                log.warning("cannot record the back-off in %s: %s", self.path, exc)
