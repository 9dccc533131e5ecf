"""Routing from any fleet node: where a tenant that does not run here lives, and the hop.

A node that gets a request for a tenant another node runs forwards it to that node's
advertised address, once. The forwarded request carries the hop header
(:data:`HOP_HEADER`) with the fleet secret; the owner serves such a request only
locally (waking its tenant if it sleeps), and a hop for a tenant it does not run either
is a loop (508), never forwarded again. A hop header without the right secret is
refused (403) wherever it arrives: nothing a client sends can make a node trust it.

Pure values and checks; the directory of owners is the server's
(``tenement/server/directory.py``), read from memory on each request.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from enum import Enum
from typing import Protocol

import attrs

from tenement.proxy.routing import Rejected
from tenement.proxy.upstream import Address

#: the header a node's forwarded request carries: the fleet secret
HOP_HEADER = b"x-tenement-hop"
#: beside the hop header, on a request a tenant's new node sends back to its old one
#: while a stateless move starts it there (``proxy/moves.py``): the old node routes it
#: as its own (its copy serves it, or it goes on to the new node, once). Heeded only
#: with the hop header's secret, and removed from every request a node forwards.
BACK_HEADER = b"x-tenement-hop-back"

FORGED_HOP = Rejected(
    403,
    "Forbidden: this request carries the fleet's hop header (X-Tenement-Hop) without the "
    "fleet secret; only tenement nodes of this fleet may send it",
)


class Hop(Enum):
    NONE = "none"
    VALID = "valid"
    FORGED = "forged"


@attrs.frozen
class Peer:
    """Another node of the fleet, as this node's directory last saw it."""

    node: str
    advertise: str
    address: Address
    #: up by the database, and heard from within node_timeout
    up: bool
    #: its row's state: "draining" is up, but takes no new tenant (``ten drain``)
    state: str = "up"


@attrs.frozen
class RemoteInstance:
    """A running instance on another node, for a weighted pick across the fleet."""

    instance_id: str
    service: str
    tenant: str
    weight: int
    peer: Peer


class Here(Enum):
    """The instance's row names this node: it is this node's to serve (or wake)."""

    HERE = "here"


HERE = Here.HERE


class Owners(Protocol):
    """What the proxy needs of the fleet: the owners of tenants that do not run here."""

    @property
    def node(self) -> str:
        """This node's name."""

    @property
    def secret(self) -> bytes:
        """The fleet secret (hop headers carry it)."""

    @property
    def retry_after_seconds(self) -> int:
        """What a 503 for a tenant on a node that is down says in ``Retry-After``."""

    async def owner(self, instance_id: str) -> Peer | Here | None:
        """The other node whose row holds ``instance_id``, :data:`HERE` when its row
        names this node, None when no row does (or it is not known yet). From memory,
        but for a bounded number of lookups of ids it has not seen."""

    def known_owner(self, instance_id: str) -> Peer | Here | None:
        """:meth:`owner` from memory alone (the express lane: it never waits)."""

    async def recheck(self, instance_id: str) -> Peer | Here | None:
        """:meth:`owner` from the row as it is now, read for this request (a few such
        reads at a time; the map's answer while the database is out of reach): for a
        forwarded request that the map says another node runs."""

    def moved_recently(self, instance_id: str) -> bool:
        """Whether this process saw ``instance_id`` change node a short while ago: a
        forwarded request for it may then be forwarded once more, to where it went."""

    def peer(self, node: str) -> Peer | None:
        """The node named ``node``, or None when this node does not know it (yet)."""

    async def find_peer(self, node: str) -> Peer | None:
        """:meth:`peer`, reading the nodes again when ``node`` is not known yet (it
        joined since the last look); bounded as :meth:`owner`'s lookups are."""

    def remote_instances(self, service: str) -> Sequence[RemoteInstance]:
        """The running instances of ``service`` on other nodes that are up (memory)."""

    async def find_instances(self, service: str) -> Sequence[RemoteInstance]:
        """:meth:`remote_instances`, or when there are none, after reading the rows
        again (bounded as :meth:`owner`'s lookups are): a route must not answer 503
        for a service whose first instances were placed since this node's last look."""


def check_hop(headers: list[tuple[bytes, bytes]], secret: bytes) -> Hop:
    """Whether ``headers`` claim to be a hop, and with the fleet secret.

    Exactly one hop header holding the secret is a hop; any other use of the header
    (garbage, the wrong secret, two of them) is forged. The comparison takes the same
    time wherever the value differs.
    """
    found: bytes | None = None
    for name, value in headers:
        if name == HOP_HEADER:
            if found is not None:
                return Hop.FORGED
            found = value
    if found is None:
        return Hop.NONE
    return Hop.VALID if hmac.compare_digest(found, secret) else Hop.FORGED


def without_hop(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` less the hop header (the secret never reaches a tenant) and the
    back header (it counts for one forward only, and only a node's)."""
    return [field for field in headers if field[0] not in (HOP_HEADER, BACK_HEADER)]


def sent_back(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether ``headers`` carry :data:`BACK_HEADER` (heed it only on a valid hop)."""
    return any(name == BACK_HEADER for name, _ in headers)


def peer_address(advertise: str) -> Address:
    """``host:port`` or ``[v6]:port`` (``[fleet] advertise``, checked at start) as an
    upstream address; ValueError if it is neither (another host wrote the row)."""
    host, _, port = advertise.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"not host:port: {advertise!r}")
    return Address(int(port), host)


def loop_detected(instance_id: str, owner: str) -> Rejected:
    return Rejected(
        508,
        f"Loop detected: another fleet node forwarded this request for {instance_id} here, "
        f"but fleet node {owner} runs it; a request is forwarded once, never again",
    )


def owner_down(instance_id: str, peer: Peer, retry_after: int, why: str) -> Rejected:
    return Rejected(
        503,
        f"Service temporarily unavailable: {instance_id} runs on fleet node {peer.node} "
        f"({peer.advertise}), which {why}",
        retry_after_seconds=retry_after,
    )
