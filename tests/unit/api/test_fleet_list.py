"""A fleet node's asks of its peers for the fleet-wide lists (tenement/api/fleet_list.py).

The peers here are a small implementation of the API's ``Relay`` protocol that answers
as a node does (a list with an ETag, 304 for it); the fleet tests ask real nodes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import trio
import trio.testing

from tenement.api import http
from tenement.api.fleet_list import FRESH_SECONDS, PeerAnswers, peer_parts
from tenement.api.instances import with_rows
from tenement.api.relay import RelayFailed
from tenement.store.instances import InstanceRecord

SCOPE = {"headers": [(b"authorization", b"Bearer t")]}


class Peers:
    """Nodes that answer ``GET /api/instances`` with one instance each, slowly."""

    node = "c"

    def __init__(self, silent: Sequence[str] = ()) -> None:
        self.asked: list[tuple[str, str | None]] = []
        self.silent = set(silent)

    def hop(self, headers: list[tuple[bytes, bytes]]) -> str:
        return "none"

    async def owner_of(self, instance_id: str) -> str | None:
        return None

    def node_state(self, node: str) -> str | None:
        return "up"

    def live_nodes(self) -> Sequence[str]:
        return ["a", "b", "c"]

    async def send(
        self, node: str, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> http.Response:
        condition = dict(headers).get(b"if-none-match")
        self.asked.append((node, condition.decode() if condition else None))
        await trio.sleep(0.1)
        if node in self.silent:
            raise RelayFailed(f"fleet node {node} cannot be reached", 3)
        tag = (b"etag", f'W/"{node}"'.encode())
        if condition == tag[1]:
            return http.empty(304, (tag,))
        item = {"id": f"echo:{node}", "pid": 7, "uptime_secs": 10, "idle_secs": 1}
        return http.Response(200, json.dumps([item]).encode(), "application/json", (tag,))


async def test_many_callers_at_once_ask_each_peer_once_and_a_fresh_answer_is_reused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    peers, answers = Peers(), PeerAnswers()
    results = []

    async def call() -> None:
        results.append(await peer_parts(peers, answers, ["a", "b"], "/api/instances", SCOPE, None))

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(call)
    assert sorted(peers.asked) == [("a", None), ("b", None)]
    assert len(results) == 20
    for parts in results:
        assert [(part.node, part.tag) for part in parts] == [("a", 'W/"a"'), ("b", 'W/"b"')]
        assert [item["node"] for part in parts for item in part.items] == ["a", "b"]
    await call()  # fresh: not asked again
    assert len(peers.asked) == 2
    await trio.sleep(FRESH_SECONDS + 2)
    [a, _b] = await peer_parts(peers, answers, ["a", "b"], "/api/instances", SCOPE, None)
    # asked with the tag it gave; its 304 reuses the items, aged by the seconds since
    assert sorted(peers.asked[2:]) == [("a", 'W/"a"'), ("b", 'W/"b"')]
    [item] = a.items
    assert (item["uptime_secs"], item["idle_secs"]) == (12, 3)


async def test_a_peer_that_does_not_answer_is_silent_and_the_others_are_shown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    peers = Peers(silent=["b"])
    parts = await peer_parts(peers, PeerAnswers(), ["a", "b"], "/api/instances", SCOPE, None)
    assert [(part.node, part.tag is None, len(part.items)) for part in parts] == [
        ("a", False, 1),
        ("b", True, 0),
    ]


def _row(iid: str, node: str, state: str) -> InstanceRecord:
    service, tenant = iid.split(":")
    return InstanceRecord(iid, service, tenant, None, None, None, None, "", state, 0.0, node=node)


def test_a_row_is_shown_once_and_never_beside_a_node_s_answer_for_it() -> None:
    # a: declared down a moment ago, still asked and silent: its orphaned row comes
    # from both queries; b: back in the fleet, answering for a row still orphaned
    answered = [{"id": "db:carol", "node": "b", "state": "running"}]
    rows = [
        _row("db:bob", "a", "orphaned"),
        _row("db:carol", "b", "orphaned"),
        _row("db:bob", "a", "orphaned"),
        _row("web:dan", "a", "running"),
    ]
    merged = with_rows(answered, rows)
    assert [(item["id"], item["node"], item["state"]) for item in merged] == [
        ("db:carol", "b", "running"),
        ("db:bob", "a", "orphaned"),
        ("web:dan", "a", "running"),
    ]
    assert answered == [{"id": "db:carol", "node": "b", "state": "running"}]
