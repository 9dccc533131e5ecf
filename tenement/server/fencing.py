"""A fleet node's side of failover: fence itself when cut off, follow takeovers.

- **Self-fencing.** A node that could not write its heartbeat for nearly ``node_timeout``
  (by its own monotonic clock since it began its last successful write: that clock can
  only make it fence sooner than its peers may declare it down, never later; and up to
  a second sooner still, ``membership.fence_after_s``, for its tenants to exit) stops
  every tenant and serves none (503 with ``Retry-After``). Its peers may re-place its
  tenants once the database's clock says it has been silent for ``node_timeout``, so
  two copies never serve after the timeout.
- **Rejoin.** When the database answers again, the node reads its rows: an instance whose
  row names another node, or a higher epoch than the one this node holds, was taken
  over; its copy here (none should be left) is stopped and forgotten, before the node
  serves again. What it still owns and had stopped when fencing, it starts again.
- **Takeover.** A node reads its rows once a heartbeat (every second): the epochs it
  holds, and the rows a peer placed on it when their node was lost, which it starts.
  A poll rather than ``LISTEN/NOTIFY``: it needs no connection of its own held outside
  the pool, costs one indexed query a second, and adds at most a second to a failover
  that waits ``node_timeout`` anyway.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import trio

from tenement.config import Fleet
from tenement.errors import TenementError
from tenement.store import Store
from tenement.supervisor import Supervisor
from tenement.supervisor.instance import STOPPED
from tenement.supervisor.runner import Runner

log = logging.getLogger(__name__)


class Fencing:
    """What this node holds, and whether it serves it.

    Args:
        store: the node's store (its ``node`` set).
        fleet: ``[fleet]``.
        supervisor: this server's supervisor while it leads, else None (a standby runs
            no tenant: it has nothing to fence or start).

    Attributes:
        held: the epoch of each instance row this node runs, as it last read it.
        fenced_at: ``trio.current_time()`` when it fenced itself; None while serving.
    """

    def __init__(
        self, store: Store, fleet: Fleet, supervisor: Callable[[], Supervisor | None]
    ) -> None:
        self._store = store
        self._fleet = fleet
        self._supervisor = supervisor
        self.held: dict[str, int] = {}
        self.fenced_at: float | None = None
        #: the instances it stopped when fencing: started again at rejoin if still its own
        self._stopped: set[str] = set()
        self._starting: set[str] = set()

    @property
    def retry_after(self) -> int:
        """What a client is told to wait: a peer may have re-placed the tenant by then."""
        return max(1, math.ceil(self._fleet.node_timeout))

    async def fence(self, silent_s: float) -> None:
        """Stop every tenant and serve none: the database has not taken this node's
        heartbeat for ``silent_s`` seconds, and its peers may declare it down now."""
        if self.fenced_at is not None:
            return
        self.fenced_at = trio.current_time()
        reason = (
            f"fleet node {self._fleet.node} has not reached the database for "
            f"{silent_s:.1f} s (node_timeout {self._fleet.node_timeout:g} s) and fenced itself"
        )
        sup = self._supervisor()
        if sup is None:
            log.error("%s; this server runs no tenant (it stands by)", reason)
            return
        sup.fenced = (reason, self.retry_after)
        # one being started (a takeover, a rejoin's restart) is stopped once its start
        # is done: the stop waits for the instance's lock
        live = [
            runner
            for runner in sup.runners()
            if runner.inst.state != STOPPED or runner.inst.id in self._starting
        ]
        log.error(
            "%s: stopping its %d tenant(s) so that no second copy serves once a peer "
            "re-places them; requests are answered 503 until it is back in the fleet",
            reason,
            len(live),
        )
        self._stopped |= {runner.inst.id for runner in live}
        async with trio.open_nursery() as nursery:
            for runner in live:
                nursery.start_soon(_stop, runner)

    async def rejoin(self) -> None:
        """Back in the fleet (joined again): drop what was taken over, serve the rest,
        start again what fencing stopped and this node still owns."""
        if self.fenced_at is None:
            return
        sup = self._supervisor()
        store = self._store
        away = trio.current_time() - self.fenced_at
        if sup is not None:
            ids = [runner.inst.id for runner in sup.runners()]
            owners = await store.run(store.owners, ids)
            taken = [
                iid
                for iid in ids
                if iid in owners
                and (owners[iid].node != store.node or owners[iid].epoch > self.held.get(iid, 0))
            ]
            for iid in taken:
                runner = sup.runner(iid)
                if runner is not None and runner.inst.state != STOPPED:
                    # fencing stopped it; one started meanwhile is a copy of a tenant
                    # another node runs now: stopped before this node serves again
                    log.warning("stopping %s: fleet node %s runs it now", iid, owners[iid].node)
                    await _stop(runner)
                sup.forget(iid)
                self.held.pop(iid, None)
                self._stopped.discard(iid)
            if taken:
                log.warning(
                    "fleet node %s: %d tenant(s) were re-placed on other nodes while it was "
                    "cut off, and stay there: %s",
                    store.node,
                    len(taken),
                    ", ".join(sorted(taken)),
                )
            sup.fenced = None
            again = sorted(self._stopped)
            self._stopped.clear()
            for iid in again:
                service, _, tenant = iid.partition(":")
                self._start(sup, service, tenant)
        self.fenced_at = None
        log.warning(
            "fleet node %s is back in the fleet after %.1f s fenced: serving again",
            store.node,
            away,
        )

    async def take_over(self) -> None:
        """Note the epochs this node holds now, and start the instances peers placed on
        it (their node was lost)."""
        sup = self._supervisor()
        if sup is None or self.fenced_at is not None:
            return
        store = self._store
        rows = await store.run(store.held_here)
        before, self.held = self.held, {row.instance_id: row.epoch for row in rows}
        for row in rows:
            if not row.placed or row.instance_id in self._starting:
                continue
            runner = sup.runner(row.instance_id)
            # a row this node knows is one it is starting itself (its row says starting
            # before the process exists), unless its epoch rose: placed here anew
            placed_anew = before.get(row.instance_id, row.epoch) < row.epoch
            if runner is not None and (runner.inst.state != STOPPED or not placed_anew):
                continue
            log.info(
                "starting %s, placed on this node (epoch %d) by a peer (its node was lost, "
                "or drained)",
                row.instance_id,
                row.epoch,
            )
            self._start(sup, row.service, row.tenant)

    def _start(self, sup: Supervisor, service: str, tenant: str) -> None:
        iid = f"{service}:{tenant}"
        self._starting.add(iid)

        async def start() -> None:
            try:
                await sup.spawn(service, tenant)
            except TenementError as exc:
                log.error("could not start %s on this fleet node: %s", iid, exc)
            finally:
                self._starting.discard(iid)

        sup.start_soon(start)


async def _stop(runner: Runner) -> None:
    await runner.stop(kind="fence", drain=False)
