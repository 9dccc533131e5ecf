"""The draining node's side of ``ten drain``: move this node's tenants away, one at a time.

What to do is read from the database once a second (``store/drain.py``): whether this
node's row says ``draining``, and which instance rows still name it. Nothing of the
plan lives here: a server restarted (or killed and started again) midway reads the
same rows and carries on; ``ten undrain`` stops it before the next move.

Each tenant goes with ``ten move``'s machinery (``moves.py``) to the node placement
chooses among the live ones its service allows; a stateless one moves the same way
(stopped, handed over, started there: a pause, not an error). The move is this node's
own, made with the fleet secret (no caller's token outlives a restart), and the
destination starts the tenant from its row, as after a failover.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping

import trio

from tenement.api.moves import Mover
from tenement.config import Fleet, Service
from tenement.errors import TenementError
from tenement.store import Store

log = logging.getLogger(__name__)

#: how often the draining work looks at the rows
LOOK_SECONDS = 1.0
#: how long a tenant whose move failed waits before it is tried again (the others go
#: first meanwhile)
RETRY_SECONDS = 10.0


class Drainer:
    """Moves this node's tenants away while its row says draining.

    Args:
        store: the shared store (``store.node`` is this node).
        mover: this node's mover.
        fleet: ``[fleet]`` (``node_timeout`` judges which nodes are live).
        services: the services now (``[service.X] nodes`` limits where each goes).
        leads: whether this process's supervisor runs the tenants (a standby waits).
    """

    def __init__(
        self,
        store: Store,
        mover: Mover,
        fleet: Fleet,
        services: Callable[[], Mapping[str, Service]],
        leads: Callable[[], bool],
    ) -> None:
        self._store = store
        self._mover = mover
        self._fleet = fleet
        self._services = services
        self._leads = leads
        #: instance id -> when (trio's clock) its failed move may be tried again
        self._later: dict[str, float] = {}
        self._said_drained = False

    async def run(self) -> None:
        moved = False
        while True:
            if not moved:  # the next tenant goes at once after a move
                await trio.sleep(LOOK_SECONDS)
            moved = False
            if not self._leads():
                continue
            with self._store.outage.tolerated("the drain"):
                moved = await self.step()

    async def step(self) -> bool:
        """Move the next tenant, if this node is draining; whether one moved."""
        store = self._store
        now = trio.current_time()
        skip = {iid for iid, when in self._later.items() if when > now}
        services = self._services()

        def allowed(name: str) -> Collection[str] | None:
            service = services.get(name)
            return service.nodes if service is not None else None

        found = await store.run(store.next_drain_move, self._fleet.node_timeout, allowed, skip)
        if found is None:  # not draining (or undrained): forget the last drain's failures
            self._later.clear()
            self._said_drained = False
            return False
        if isinstance(found, int):
            if found == 0 and not self._said_drained:
                log.info(
                    "fleet node %s is drained: it holds no instance (ten undrain %s puts it "
                    "back to up)",
                    store.node,
                    store.node,
                )
                self._said_drained = True
            return False
        self._said_drained = False
        iid = found.instance_id
        if found.to is None:
            log.error(
                "draining fleet node %s: %s has no live node its service allows to go to; "
                "it stays here for now (tried again in %g s)",
                store.node,
                iid,
                RETRY_SECONDS,
            )
            self._later[iid] = now + RETRY_SECONDS
            return False
        log.info(
            "draining fleet node %s: moving %s to %s (%d instance(s) left here)",
            store.node,
            iid,
            found.to,
            found.left,
        )
        try:
            await self._mover.move(iid, found.to, b"")
        except TenementError as exc:
            log.warning(
                "draining fleet node %s: the move of %s to %s failed (%s); tried again in %g s",
                store.node,
                iid,
                found.to,
                exc,
                RETRY_SECONDS,
            )
            self._later[iid] = now + RETRY_SECONDS
            return False
        return True
