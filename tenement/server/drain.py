"""The draining node's side of ``ten drain``: move this node's tenants away, N at a time.

What to do is read from the database once a second, and again as soon as a move ends
(``store/drain.py``): whether this node's row says ``draining``, how many tenants move
at once (``drain_parallel``), and which instance rows still name it. Nothing of the
plan lives here: a server restarted (or killed and started again) midway reads the
same rows and carries on; ``ten undrain`` stops it before the next move (those under
way finish).

Each tenant goes with ``ten move``'s machinery (``moves.py``) to the node placement
chooses among the live ones its service allows, the moves under way counted on their
destinations; a stateless one that runs is started there before it stops here (no
pause: ``Mover._move_alongside``). The move is this node's own, made with the fleet
secret (no caller's token outlives a restart), and the destination starts the tenant
from its row, as after a failover.
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
        #: the moves under way: instance id -> destination
        self._going: dict[str, str] = {}
        #: set when a move ends: the next look comes at once
        self._ended = trio.Event()
        self._said_drained = False

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                with trio.move_on_after(LOOK_SECONDS):
                    await self._ended.wait()
                self._ended = trio.Event()
                if not self._leads():
                    continue
                with self._store.outage.tolerated("the drain"):
                    for iid, to in await self.step():
                        self._going[iid] = to
                        nursery.start_soon(self._move, iid, to)

    async def step(self) -> list[tuple[str, str]]:
        """The next moves to start (instance, destination), if this node is draining:
        as many as its ``drain_parallel`` leaves beside those under way."""
        store = self._store
        now = trio.current_time()
        skip = {iid for iid, when in self._later.items() if when > now}
        services = self._services()

        def allowed(name: str) -> Collection[str] | None:
            service = services.get(name)
            return service.nodes if service is not None else None

        look = await store.run(
            store.next_drain_moves, self._fleet.node_timeout, allowed, skip, dict(self._going)
        )
        if look is None:  # not draining (or undrained): forget the last drain's failures
            self._later.clear()
            self._said_drained = False
            return []
        if look.left == 0:
            if not self._said_drained:
                log.info(
                    "fleet node %s is drained: it holds no instance (ten undrain %s puts it "
                    "back to up)",
                    store.node,
                    store.node,
                )
                self._said_drained = True
            return []
        self._said_drained = False
        started = []
        for found in look.moves:
            iid = found.instance_id
            if found.to is None:
                log.error(
                    "draining fleet node %s: %s has no live node its service allows to go "
                    "to; it stays here for now (tried again in %g s)",
                    store.node,
                    iid,
                    RETRY_SECONDS,
                )
                self._later[iid] = now + RETRY_SECONDS
                continue
            log.info(
                "draining fleet node %s: moving %s to %s (%d instance(s) left here, %d "
                "moved at once)",
                store.node,
                iid,
                found.to,
                look.left,
                look.parallel,
            )
            started.append((iid, found.to))
        return started

    async def _move(self, iid: str, to: str) -> None:
        failure = "the database is out of reach"
        try:
            with self._store.outage.tolerated("the drain"):
                await self._mover.move(iid, to, b"")
                failure = ""
        except TenementError as exc:
            failure = str(exc)
        finally:
            del self._going[iid]
            self._ended.set()
        if not failure:
            return
        log.warning(
            "draining fleet node %s: the move of %s to %s failed (%s); tried again in %g s",
            self._store.node,
            iid,
            to,
            failure,
            RETRY_SECONDS,
        )
        self._later[iid] = trio.current_time() + RETRY_SECONDS
