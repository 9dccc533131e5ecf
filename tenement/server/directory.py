"""A fleet node's directory: which other node runs each tenant, and whether it is up.

The proxy asks it on every request for a tenant that does not run here, so it answers
from memory: a map of instance id -> node, reloaded only when the instance rows'
signature (their count, latest and sum of ``updated_at``, one aggregate query) changed
or :data:`RELOAD_SECONDS` passed, and the nodes' rows, read on each look (a handful).
Both are looked at every :data:`REFRESH_SECONDS`, in one read transaction.

A tenant the map does not have (placed elsewhere since the last look) is looked up by
its primary key, once per id between two looks, and at most :data:`MAX_LOOKUPS` ids
between two looks whatever clients send: a request for a tenant nobody has, repeated
or under ever new names, adds at most that many queries per look. Past that, the map
answers alone (and a wake here finds the owner when it claims the row,
``tenement/proxy/app.py``). A weighted route for a service of which the map knows no
running instance reads the rows again, at most every :data:`REFRESH_SECONDS`.

It also remembers which tenants it saw change node in the last
``MOVED_HOP_SECONDS`` (``tenement/proxy/moves.py``'s window for this node's own moves;
:meth:`FleetDirectory.moved_recently`), and looks a tenant
up again for a request another node forwarded here that its map says runs elsewhere
(:meth:`FleetDirectory.recheck`, a read per such request, a few at a time): every
serving process keeps its own map (``workers``,
standbys), read at its own times, so a forward made by a map that knew of a move can
meet one that does not yet, or the other way round. Such a request is forwarded once
more, or served here, not refused as a loop.

A request waits for a lookup (or a read of the nodes) at most :data:`LOOKUP_SECONDS`,
and for none while the database is known to be out of reach: these reads run beside the
store's queue of writes, and one that the database does not answer (a partition waits
for the connection's timeout) is left to end on its own while the request is routed by
what the map knows (a fenced node answers 503 at once rather than after the timeout).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from tenement.config import Fleet
from tenement.proxy.fleet import HERE, Here, Peer, RemoteInstance, peer_address
from tenement.proxy.moves import MOVED_HOP_SECONDS
from tenement.store import Store

log = logging.getLogger(__name__)

#: how often the rows are looked at
REFRESH_SECONDS = 0.5
#: how often the rows are read again whatever their signature says (a change can leave
#: it as it was: ``tenement/store/instances.py``'s ``fleet_signature``)
RELOAD_SECONDS = 5.0
#: ids looked up one by one between two looks, at most
MAX_LOOKUPS = 32
#: how often a request for a node the map has not seen may make it read the nodes again
REREAD_SECONDS = 0.1
#: how long a request waits for a lookup or a read of the nodes: past that (a database
#: out of reach, a partition) it is routed by what the map knows
LOOKUP_SECONDS = 2.0
#: reads of :meth:`FleetDirectory.recheck` under way at once, at most
RECHECKS_AT_ONCE = 4


class FleetDirectory:
    """Implements :class:`tenement.proxy.fleet.Owners` from the shared database.

    Args:
        store: the node's store (its ``node`` set).
        fleet: ``[fleet]``.
        secret: the fleet secret (``tenement/server/fleet_secret.py``).
    """

    def __init__(self, store: Store, fleet: Fleet, secret: bytes) -> None:
        self._store = store
        self._fleet = fleet
        self.node = fleet.node
        #: this node's own row's state as last read ("draining": no spawn comes here)
        self.own_state = "up"
        self.secret = secret
        self.node_timeout = fleet.node_timeout
        self.retry_after_seconds = max(1, math.ceil(fleet.node_timeout))
        self._owners: dict[str, str] = {}
        self._rows: list[tuple[str, str, str, str, str, int]] = []
        self._running: dict[str, list[RemoteInstance]] = {}
        self._peers: dict[str, Peer] = {}
        self._signature: tuple[int, float, float] | None = None
        #: when the rows were last read, and how often they are whatever the signature
        self._loaded_at = -math.inf
        self.reload_seconds = RELOAD_SECONDS
        #: when a weighted route that knew no instance last made them read again
        self._sought_at = -math.inf
        #: the (node, advertise) whose address did not parse, said once each
        self._skipped: set[tuple[str, str]] = set()
        #: the ids looked up since the last look
        self._looked_up: set[str] = set()
        #: the lookups under way: who asks for the same id meanwhile waits for it
        self._pending: dict[str, trio.Event] = {}
        #: a read of the nodes for a node the map has not seen: under way, and when last
        self._rereading: trio.Event | None = None
        self._reread_at = -REREAD_SECONDS
        #: how many queries the lookups made, in all
        self.lookups = 0
        #: instance id -> when the map saw it change node
        self._moved: dict[str, float] = {}
        #: the reads of :meth:`recheck` under way at once, at most
        self._rechecks = trio.CapacityLimiter(RECHECKS_AT_ONCE)

    def known_owner(self, instance_id: str) -> Peer | Here | None:
        node = self._owners.get(instance_id)
        if node is None:
            return None
        return HERE if node == self.node else self._peers.get(node)

    async def owner(self, instance_id: str) -> Peer | Here | None:
        node = self._owners.get(instance_id)
        if node is None:
            pending = self._pending.get(instance_id)
            if pending is not None:
                # requests that arrive while the first one looks it up wait for its answer
                with trio.move_on_after(LOOKUP_SECONDS):
                    await pending.wait()
                node = self._owners.get(instance_id)
                if node is None:
                    return None
            elif instance_id in self._looked_up or len(self._looked_up) >= MAX_LOOKUPS:
                return None
            else:
                node = await self._look_up(instance_id)
                if node is None:
                    return None
        if node == self.node:
            return HERE
        return await self.find_peer(node)

    async def find_peer(self, node: str) -> Peer | None:
        peer = self._peers.get(node)
        if peer is None:
            # a node that joined since the last look (the nodes start together, or one
            # was added): read the nodes again now rather than answer 404 until the next
            await self._read_again()
            peer = self._peers.get(node)
        return peer

    async def find_instances(self, service: str) -> list[RemoteInstance]:
        """:meth:`remote_instances`; when there are none, after reading the rows again
        (placed since the last look), at most every :data:`REFRESH_SECONDS`, and waiting
        for that read at most :data:`LOOKUP_SECONDS`: a route of a service that runs
        nowhere, asked again and again, reads no more often than the looks do."""
        found = self.remote_instances(service)
        if found:
            return found
        if self._rereading is None:  # else: wait for the read under way
            now = trio.current_time()
            if now - self._sought_at < REFRESH_SECONDS:
                return found
            self._sought_at = now
        await self._read_again(rows=True)
        return self.remote_instances(service)

    async def _read_again(self, *, rows: bool = False) -> None:
        """:meth:`refresh` for a request that found a node the map has not seen (or, with
        ``rows``, the rows too): once at a time (who asks meanwhile waits for it), at
        most every :data:`REREAD_SECONDS`."""
        if self._rereading is not None:
            with trio.move_on_after(LOOKUP_SECONDS):
                await self._rereading.wait()
            return
        too_soon = not rows and trio.current_time() - self._reread_at < REREAD_SECONDS
        if too_soon or self._store.outage.since is not None:
            return
        done = self._rereading = trio.Event()
        try:
            with trio.move_on_after(LOOKUP_SECONDS):
                with self._store.outage.tolerated("the fleet directory"):
                    await self.refresh(read=self._store.read_aside, rows=rows)
        finally:
            self._reread_at = trio.current_time()
            self._rereading = None
            done.set()

    async def _look_up(self, instance_id: str) -> str | None:
        """One query for a tenant the map does not have yet (placed a moment ago)."""
        store = self._store
        if store.outage.since is not None:
            return None  # it would wait for the database's connect timeout
        self._looked_up.add(instance_id)
        self.lookups += 1
        done = self._pending[instance_id] = trio.Event()
        node = None
        try:
            with trio.move_on_after(LOOKUP_SECONDS):
                with store.outage.tolerated("the fleet directory"):
                    node = await store.read_aside(store.instance_node, instance_id)
            if node is not None:
                self._note_owner(instance_id, node)
        finally:
            del self._pending[instance_id]
            done.set()
        return node

    def moved_recently(self, instance_id: str) -> bool:
        moved = self._moved.get(instance_id)
        return moved is not None and trio.current_time() - moved < MOVED_HOP_SECONDS

    async def recheck(self, instance_id: str) -> Peer | Here | None:
        """:meth:`owner` as its row says now, read again (a forwarded request found the
        map naming another node; the node that sent it may have just read the row's
        change). A read for each such request, begun after it arrived: at most
        :data:`RECHECKS_AT_ONCE` at a time, the map's answer while the database is out of
        reach. Forwarded requests come from nodes only (the fleet secret), and only
        while two maps disagree. A changed node counts as a move."""
        store = self._store
        if store.outage.since is not None:
            return await self.owner(instance_id)
        node = None
        with trio.move_on_after(LOOKUP_SECONDS):
            async with self._rechecks:
                self.lookups += 1
                with store.outage.tolerated("the fleet directory"):
                    node = await store.read_aside(store.instance_node, instance_id)
        if node is None:
            return await self.owner(instance_id)
        self._note_owner(instance_id, node)
        return HERE if node == self.node else await self.find_peer(node)

    def _note_owner(self, instance_id: str, node: str) -> None:
        before = self._owners.get(instance_id)
        if before is not None and before != node:
            self._moved[instance_id] = trio.current_time()
        self._owners[instance_id] = node

    def peer(self, node: str) -> Peer | None:
        return self._peers.get(node)

    def peers(self) -> list[Peer]:
        """The other nodes, as the last look saw them."""
        return list(self._peers.values())

    def remote_instances(self, service: str) -> list[RemoteInstance]:
        return self._running.get(service, [])

    async def refresh(
        self, read: Callable[..., Awaitable[Any]] | None = None, *, rows: bool = False
    ) -> None:
        """Read the nodes, and the owners if the rows changed since the last look, if
        :attr:`reload_seconds` passed since they were read, or with ``rows``.

        ``read``: how to run the store's reads (:meth:`Store.run` unless given: a
        request's re-read runs them aside, so that it can stop waiting)."""
        store = self._store
        read = read or store.run
        nodes, signature = await read(store.fleet_look)
        timeout = self._fleet.node_timeout
        peers: dict[str, Peer] = {}
        for row in nodes:
            if row.name == self.node:
                self.own_state = row.state
                continue
            try:
                address = peer_address(row.advertise)
            except ValueError:
                self._skip(row.name, row.advertise)
                continue
            # a restarting node's socket queues what is sent meanwhile
            up = row.alive(timeout)
            peers[row.name] = Peer(row.name, row.advertise, address, up, row.state)
        self._peers = peers
        now = trio.current_time()
        if rows or signature != self._signature or now - self._loaded_at >= self.reload_seconds:
            self._rows = await read(store.fleet_owners)
            owners = {row[0]: row[3] for row in self._rows}
            before = self._owners
            for iid, node in owners.items():
                if before.get(iid, node) != node:
                    self._moved[iid] = now
            self._owners = owners
            self._signature = signature
            self._loaded_at = now
            self._moved = {
                iid: at for iid, at in self._moved.items() if now - at < MOVED_HOP_SECONDS
            }
        running: dict[str, list[RemoteInstance]] = {}
        for iid, service, tenant, node, state, weight in self._rows:
            peer = self._peers.get(node)
            if peer is not None and peer.up and state == "running" and weight > 0:
                running.setdefault(service, []).append(
                    RemoteInstance(iid, service, tenant, weight, peer)
                )
        self._running = running
        self._looked_up = set()

    def _skip(self, name: str, advertise: str) -> None:
        """A peer whose row's address does not parse is left out (its tenants are not
        reached), said once per address: each node checks its own at start, so another
        version, a broken or a hostile host wrote it, and the directory must live on."""
        if (name, advertise) in self._skipped:
            return
        self._skipped.add((name, advertise))
        log.warning(
            "fleet: node %r advertises %r, not host:port; it is not reached from here "
            "until its row says where it listens (restart it with a valid [fleet] advertise)",
            name,
            advertise,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the directory current until cancelled; started once it was read once.

        While the database is out of reach it routes by what it read last.
        """
        await self.refresh()
        task_status.started()
        while True:
            await trio.sleep(REFRESH_SECONDS)
            with self._store.outage.tolerated("the fleet directory"):
                await self.refresh()
