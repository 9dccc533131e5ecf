"""A fleet node's membership: join under its name, heartbeat, declare silent peers down.

Every ``ten serve`` of a node but its workers (the leader and any standby on the same
data dir) runs this; they share the node's row, which is harmless: their heartbeats
say the same thing. Whether a node is alive is judged by the database's clock alone
(``tenement/store/nodes.py``), so a node with a wrong clock is judged like any other.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from tenement._version import __version__
from tenement.config import Fleet, Service
from tenement.errors import TenementError
from tenement.shown import shown
from tenement.store import Store
from tenement.store.nodes import DRAINING, RESTARTING, UP, NodeIdentity, NodeRow

if TYPE_CHECKING:
    from tenement.server.fencing import Fencing

log = logging.getLogger(__name__)

#: how often a node stamps its row, and looks for silent peers
HEARTBEAT_SECONDS = 1.0
#: how often a node looks at how long its heartbeat has not been written
FENCE_CHECK_SECONDS = 0.1
#: how long before node_timeout a silent node fences itself, at most: its tenants get
#: that long to exit before a peer may declare it down and start them elsewhere
FENCE_LEAD_SECONDS = 1.0


def fence_after_s(node_timeout: float) -> float:
    """The silence after which a node fences itself: a quarter of ``node_timeout``, at
    most :data:`FENCE_LEAD_SECONDS`, before it (2.25 s of a 3 s timeout, 9 s of 10 s)."""
    return node_timeout - min(FENCE_LEAD_SECONDS, node_timeout / 4)


class NodeNameTaken(TenementError):
    """A live node of another host or data dir already has this node's name."""

    exit_code = 2

    def __init__(self, name: str, holder: NodeRow) -> None:
        super().__init__(
            f"fleet node name '{name}' is taken by a live node at {shown(holder.advertise)} "
            f"(host {shown(holder.host)}, data dir {shown(holder.data_dir)}, last heartbeat "
            f'{holder.silent_s:.1f} s ago); give this node its own [fleet] node = "...", '
            "or stop the other one and wait node_timeout"
        )


def memory() -> tuple[int, int]:
    """This host's memory, total and available, in bytes (0, 0 where unknown)."""
    found: dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                key, _, rest = line.partition(":")
                if key in ("MemTotal", "MemAvailable"):
                    found[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return 0, 0
    return found.get("MemTotal", 0), found.get("MemAvailable", 0)


def identity(fleet: Fleet, data_dir: Path) -> NodeIdentity:
    """This node as its row describes it, with its capacity now."""
    total, available = memory()
    return NodeIdentity(
        name=fleet.node,
        advertise=fleet.advertise,
        host=socket.gethostname(),
        data_dir=str(data_dir),
        version=__version__,
        cpus=os.cpu_count() or 0,
        memory_total=total,
        memory_available=available,
    )


class Membership:
    """This node's place in the fleet while the server runs.

    Args:
        store: the open, migrated store (its ``node`` is set to ``fleet.node`` here).
        fleet: ``[fleet]``.
        data_dir: with the host name, what tells this node's processes from a namesake.
    """

    def __init__(self, store: Store, fleet: Fleet, data_dir: Path) -> None:
        self._store = store
        self.fleet = fleet
        self._data_dir = data_dir
        store.node = fleet.node
        #: set by the server once it has a role (None: fencing and takeovers not followed)
        self.fencing: Fencing | None = None
        #: the services now (a reload may change them): which of them may fail over
        self.services: Callable[[], Mapping[str, Service]] = dict
        self._last_beat = 0.0
        #: what the heartbeats say: up, or restarting once the server hands over
        self._state = UP

    async def join(self) -> None:
        """Take this node's row (before the supervisor adopts anything).

        Raises:
            NodeNameTaken: a live node elsewhere has the name (exit 2).
        """
        store = self._store
        joined = await store.run(
            store.join_node, identity(self.fleet, self._data_dir), self.fleet.node_timeout
        )
        if joined.taken_by is not None:
            raise NodeNameTaken(self.fleet.node, joined.taken_by)
        was = joined.was
        if was is not None and was.state not in (UP, RESTARTING, DRAINING):
            log.info(
                "fleet node %s is up again (declared down by %s)",
                self.fleet.node,
                shown(str(was.down_by)),
            )
        elif was is not None and was.host != socket.gethostname():
            log.warning(
                "fleet node %s was on host %s (silent %.0f s): this host takes the name over",
                self.fleet.node,
                shown(was.host),
                was.silent_s,
            )
        log.info(
            "joined the fleet as node %s (advertised at %s, node_timeout %g s)",
            self.fleet.node,
            self.fleet.advertise,
            self.fleet.node_timeout,
        )

    async def hand_over(self) -> None:
        """Say at once, and in every heartbeat until this server exits, that the node is
        restarting: its tenants stay running for the next server, which its peers wait
        for longer than ``node_timeout`` (``RESTART_GRACE_S``), forwarding to it
        meanwhile (the socket queues), instead of declaring it down in the gap."""
        self._state = RESTARTING
        store = self._store
        with store.outage.tolerated("the fleet heartbeat"):
            await store.run(store.node_heartbeat, identity(self.fleet, self._data_dir), RESTARTING)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Heartbeat every second and declare silent peers down, until cancelled.

        While the database is out of reach the beats are skipped (the store's outage
        notes it once); peers then see this node silent, as they should, and once
        :func:`fence_after_s` has passed since its last heartbeat that succeeded began,
        by this node's monotonic clock, it fences itself (``fencing.py``). A beat stuck on a
        partitioned connection counts as silence too: the watch runs beside it.
        """
        self._last_beat = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_silence)
            task_status.started()
            while True:
                await trio.sleep(HEARTBEAT_SECONDS)
                # counted from before the write: the database stamps it with a later
                # now(), so this node fences no later than its peers may declare it down
                attempted = trio.current_time()
                with self._store.outage.tolerated("the fleet heartbeat"):
                    await self.beat()
                    self._last_beat = max(self._last_beat, attempted)

    async def _watch_silence(self) -> None:
        fence_after = fence_after_s(self.fleet.node_timeout)
        while True:
            await trio.sleep(FENCE_CHECK_SECONDS)
            silent = trio.current_time() - self._last_beat
            fencing = self.fencing
            if fencing is not None and silent >= fence_after and fencing.fenced_at is None:
                await fencing.fence(silent)

    async def beat(self) -> None:
        """One heartbeat (after a rejoin, when this node had fenced itself), then one
        look for silent peers (re-placing their tenants), then one look at this node's
        rows (starting what peers placed here)."""
        store = self._store
        fencing = self.fencing
        if fencing is not None and fencing.fenced_at is not None:
            await self.join()
            # the join was a write: the silence is over (else the watch, counting from
            # the last heartbeat before the outage, would fence again at once)
            self._last_beat = trio.current_time()
            await fencing.rejoin()
        me = identity(self.fleet, self._data_dir)
        was = await store.run(store.node_heartbeat, me, self._state)
        if was is None:
            log.error(
                "fleet node %s: its row is gone or another host took the name while this "
                "node was silent; joining again",
                me.name,
            )
            await self.join()
        elif was.state not in (UP, RESTARTING, DRAINING):
            log.warning(
                "fleet node %s had been declared down by %s after %.1f s of silence; up again",
                me.name,
                shown(str(was.down_by)),
                was.silent_s,
            )
        services = {name: svc.nodes for name, svc in self.services().items() if svc.fails_over}
        for lost in await store.run(
            store.declare_nodes_lost, me.name, self.fleet.node_timeout, services
        ):
            node = lost.node
            if lost.stranded:
                log.error(
                    "fleet node %s is down and %d instance(s) that may fail over found no "
                    "live node their [service.X] nodes allow: orphaned until %s returns (%s)",
                    shown(node.name),
                    len(lost.stranded),
                    shown(node.name),
                    ", ".join(
                        f"{iid} (nodes {', '.join(services[iid.partition(':')[0]] or ())})"
                        for iid in lost.stranded
                    ),
                )
            log.warning(
                "declared fleet node %s (%s) down: silent for %.1f s, past node_timeout %g s; "
                "%d instance(s) re-placed (%s), %d orphaned until it returns (%s)",
                shown(node.name),
                shown(node.advertise),
                node.silent_s,
                self.fleet.node_timeout,
                len(lost.moved),
                ", ".join(f"{m.instance_id} -> {shown(m.node)}" for m in lost.moved) or "none",
                len(lost.orphaned),
                ", ".join(lost.orphaned) or "none",
            )
        if fencing is not None:
            await fencing.take_over()
