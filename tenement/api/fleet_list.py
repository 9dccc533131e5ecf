"""A fleet node's lists of the whole fleet: its own instances plus each live peer's, asked.

What only an instance's owner knows (health, uptime, idle time, usage, requests) lives
in its memory and changes every second; writing it to the shared database for others to
read would cost every node a write per instance per second, for lists that are rarely
read. So a node asked for ``/api/instances`` or ``/api/telemetry`` asks each live peer
for its own part, in parallel, with the fleet's hop header (the peer answers with its
instances only, and never asks further) and the caller's ``Authorization`` (the peer
scopes a tenant token itself). The peers' answers are kept, with their ETags: the next
ask carries ``If-None-Match``, and an unchanged peer answers 304 without building its
list. A peer that does not answer within :data:`ANSWER_SECONDS` is shown from its rows
in the shared database (health ``unknown``) and named in :data:`SILENT_HEADER`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any

import attrs
import trio

from tenement.api import http
from tenement.api.relay import Relay, RelayFailed

#: how long a live peer may take to answer its part; a slower one is shown from its rows
ANSWER_SECONDS = 2.0
#: the answer's header naming the live peers that did not answer (comma-separated)
SILENT_HEADER = b"x-tenement-silent-nodes"
#: a peer's answer this recent is used without asking again (the routing directory's
#: map of the fleet is as old, at most)
FRESH_SECONDS = 0.5
#: peers' answers kept, at most (one per peer, path and tenant scope)
KEPT_ANSWERS = 1024


@attrs.frozen
class PeerPart:
    """One peer's part of a list: its items, and the tag they had (None: it did not
    answer, and its items are to be read from its rows)."""

    node: str
    tag: str | None
    items: tuple[dict[str, Any], ...]
    #: telemetry's ``summary`` of the peer ({} for a list, or a silent peer)
    summary: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class _Kept:
    tag: str
    items: tuple[dict[str, Any], ...]
    summary: dict[str, Any]
    #: when the peer sent the items (they age from then)
    at: float
    #: when the peer last said they were current (200 or 304)
    confirmed: float


_Key = tuple[str, str, str | None]


class _Flight:
    """One ask of a peer under way, which every concurrent caller waits for."""

    def __init__(self) -> None:
        self.done = trio.Event()
        self.part: PeerPart | None = None


class PeerAnswers:
    """The last answer of each peer, to ask it again with ``If-None-Match``, and the
    asks under way."""

    def __init__(self) -> None:
        self._kept: dict[_Key, _Kept] = {}
        self.flights: dict[_Key, _Flight] = {}

    def get(self, key: _Key) -> _Kept | None:
        return self._kept.get(key)

    def put(self, key: _Key, kept: _Kept) -> None:
        if key not in self._kept and len(self._kept) >= KEPT_ANSWERS:
            del self._kept[next(iter(self._kept))]  # the oldest: dicts keep insertion order
        self._kept[key] = kept


def is_hop(relay: Relay | None, scope: Any) -> bool:
    """Whether this request is another node's ask for this node's part."""
    return relay is not None and relay.hop(scope["headers"]) == "valid"


async def peer_parts(
    relay: Relay,
    answers: PeerAnswers,
    nodes: Sequence[str],
    path: str,
    scope: Any,
    tenant: str | None,
) -> list[PeerPart]:
    """Every node of ``nodes``' part of ``path``, asked at once, sorted by node.

    ``/api/telemetry`` needs no token: however many clients ask a node, each peer is
    asked at most once per :data:`FRESH_SECONDS` for a path and tenant scope, and
    callers that come while it is asked wait for that one answer.
    """
    authorization = http.header(scope, b"authorization")
    parts: list[PeerPart] = []

    async def ask(node: str) -> None:
        key = (node, path, tenant)
        kept = answers.get(key)
        now = trio.current_time()
        if kept is not None and now - kept.confirmed < FRESH_SECONDS:
            parts.append(PeerPart(node, kept.tag, _aged(kept.items, now - kept.at), kept.summary))
            return
        flight = answers.flights.get(key)
        if flight is not None:
            await flight.done.wait()
            parts.append(flight.part or PeerPart(node, None, ()))
            return
        flight = answers.flights[key] = _Flight()
        try:
            flight.part = await _ask(relay, answers, key, kept, authorization)
        finally:
            del answers.flights[key]
            flight.done.set()
        parts.append(flight.part)

    async with trio.open_nursery() as nursery:
        for node in nodes:
            nursery.start_soon(ask, node)
    return sorted(parts, key=lambda part: part.node)


async def _ask(
    relay: Relay, answers: PeerAnswers, key: _Key, kept: _Kept | None, authorization: str | None
) -> PeerPart:
    node, path, _tenant = key
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    if kept is not None:
        headers.append((b"if-none-match", kept.tag.encode()))
    answer: http.Response | None = None
    with trio.move_on_after(ANSWER_SECONDS), contextlib.suppress(RelayFailed):
        answer = await relay.send(node, "GET", path, headers, b"")
    now = trio.current_time()
    if answer is not None and answer.status == 304 and kept is not None:
        answers.put(key, attrs.evolve(kept, confirmed=now))
        return PeerPart(node, kept.tag, _aged(kept.items, now - kept.at), kept.summary)
    body = _body(answer) if answer is not None and answer.status == 200 else None
    items = _items(body, node) if body is not None else None
    if answer is None or items is None:
        return PeerPart(node, None, ())
    summary = body.get("summary") if isinstance(body, dict) else None
    summary = summary if isinstance(summary, dict) else {}
    tag = dict(answer.headers).get(b"etag", b"").decode("latin-1")
    if tag:
        answers.put(key, _Kept(tag, items, summary, now, now))
    # a peer that sends no tag (none does) changes the fleet's tag on every ask
    return PeerPart(node, tag or f"untagged {now}", items, summary)


def _body(answer: http.Response) -> Any:
    try:
        return json.loads(answer.body)
    except (ValueError, UnicodeDecodeError):
        return None


def _items(body: Any, node: str) -> tuple[dict[str, Any], ...] | None:
    """The instances of ``node`` in its answer (a list, or telemetry's ``instances``),
    each named with its node; None for an answer that is neither."""
    if isinstance(body, dict):
        body = body.get("instances")
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        return None
    # a node of an older release answers with the orphans it lists too: they are ours
    return tuple({**item, "node": node} for item in body if item.get("node", node) == node)


def _aged(items: tuple[dict[str, Any], ...], seconds: float) -> tuple[dict[str, Any], ...]:
    """Kept items as they are now: a weak tag leaves the clock out, so a running
    instance's uptime and idle time grew by the seconds since the peer sent them."""
    grown = int(seconds)
    if grown <= 0:
        return items
    return tuple(
        {
            **item,
            "uptime_secs": item["uptime_secs"] + grown,
            "idle_secs": item["idle_secs"] + grown,
        }
        if _running(item)
        else item
        for item in items
    )


def _running(item: dict[str, Any]) -> bool:
    uptime, idle = item.get("uptime_secs"), item.get("idle_secs")
    if not isinstance(uptime, int) or not isinstance(idle, int):
        return False  # nothing to age
    return item.get("pid") is not None or uptime > 0


def silent(parts: Sequence[PeerPart]) -> list[str]:
    return [part.node for part in parts if part.tag is None]


def silent_header(parts: Sequence[PeerPart]) -> tuple[tuple[bytes, bytes], ...]:
    names = silent(parts)
    return ((SILENT_HEADER, ", ".join(names).encode()),) if names else ()
