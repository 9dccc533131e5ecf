"""While the database is out of reach: background work waits, serving goes on.

A PostgreSQL server restarts (a package upgrade, a failover) in seconds. Neither the
tenants nor the proxy need the database to go on: routing is in memory. So the
background writers (log lines, audit rows, instance rows, heartbeats) do not end the
server when the database cannot be reached: their store calls run under
:meth:`Outage.tolerated`, which skips the rest of the block, logs the outage once and
its end once, and the writer tries again at its next turn (log lines are read again
from their files: their offsets advance only once written). How long is too long is
the supervisor lease's to decide (``supervisor/lifecycle.py``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

from tenement.store.errors import DatabaseUnavailable

log = logging.getLogger(__name__)


class Outage:
    """Whether the store's database is out of reach now, and since when.

    Attributes:
        since: ``time.monotonic()`` of the first failure of this outage; None while
            the database answers.
    """

    def __init__(self) -> None:
        self.since: float | None = None

    def noted(self, what: str, exc: DatabaseUnavailable) -> None:
        """A call for ``what`` failed with ``exc``: logged for the first of an outage."""
        if self.since is None:
            self.since = time.monotonic()
            log.warning(
                "the database is out of reach (%s, first for %s): tenants keep running and "
                "requests are served; writes wait until it is back",
                exc,
                what,
            )

    def ended(self) -> None:
        """A call succeeded: the outage, if any, is over."""
        if self.since is not None:
            log.warning(
                "the database is reachable again after %.1f s", time.monotonic() - self.since
            )
            self.since = None

    @contextlib.contextmanager
    def tolerated(self, what: str) -> Iterator[None]:
        """Run the block's store calls; if the database cannot be reached, skip the rest
        of the block instead of raising (logged as above). Put only the calls that may
        wait, and what must follow their success, in the block."""
        try:
            yield
        except DatabaseUnavailable as exc:
            self.noted(what, exc)
        else:
            self.ended()
