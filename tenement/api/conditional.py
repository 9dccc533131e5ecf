"""Conditional GETs: a weak ETag and ``If-None-Match``, so that an unchanged poll is a 304.

The dashboard asks for ``/api/instances`` and ``/api/telemetry`` every 2 s. For 1,000
instances each answer is ~300 KB of JSON, ~6 ms of the server's CPU to build and compress;
a 304 needs only a count of changes to what the answer shows (``Supervisor.changes``,
O(1); a tenant's list: the hash of its own instances, ``Supervisor.signature``).

The tags are weak (``W/"..."``, RFC 9110 8.8.1) because they leave out the clock: an
instance's ``uptime_secs`` and ``idle_secs`` grow without changing the tag (everything
they are computed from is in it, so a restart or a request does change it). A client
that keeps its copy adds the seconds since it fetched it. A weak tag may also stand for
the gzip and the plain body alike (they are the same data).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Hashable

from tenement.api import http
from tenement.types import Scope

#: one entity-tag of a list (RFC 9110 8.8.3): optional ``W/``, then a quoted opaque tag
_ENTITY_TAG = re.compile(r'(?:W/)?"([\x21\x23-\x7e\x80-\xff]*)"')
_SPACE = " \t"
#: the counters in a tag start anew with each server process: so must its tags
_PROCESS = secrets.randbits(64)


def etag(*parts: Hashable) -> str:
    """A weak tag for an answer that shows what ``parts`` hash."""
    return f'W/"{hash((_PROCESS, parts)) & 0xFFFF_FFFF_FFFF_FFFF:016x}"'


def if_none_match(scope: Scope) -> str | None:
    """The request's ``If-None-Match``, its lines joined as one list (RFC 9110 5.3)."""
    values = [value for name, value in scope["headers"] if name.lower() == b"if-none-match"]
    if not values:
        return None
    return b", ".join(values).decode("latin-1")


def matches(condition: str, tag: str) -> bool:
    """Whether ``If-None-Match: condition`` names ``tag`` (weak comparison, RFC 9110
    8.8.3.2) or is ``*``.

    A value that is not a list of entity-tags (garbage, an unquoted tag, a stray quote)
    names nothing: the client gets the whole answer, as if it had sent no condition.
    One pass over the value, however long it is or however many tags it lists.
    """
    if condition.strip(_SPACE) == "*":
        return True
    opaque = tag.removeprefix("W/")[1:-1]
    found = False
    position = 0
    end = len(condition)
    while True:
        # list elements may be empty: ", , a" (RFC 9110 5.6.1)
        while position < end and condition[position] in _SPACE + ",":
            position += 1
        if position == end:
            return found
        item = _ENTITY_TAG.match(condition, position)
        if item is None:
            return False
        found = found or item.group(1) == opaque
        position = item.end()
        while position < end and condition[position] in _SPACE:
            position += 1
        if position < end and condition[position] != ",":
            return False


def not_modified(scope: Scope, tag: str) -> http.Response | None:
    """A 304 with ``tag`` when the request's ``If-None-Match`` names it, else None."""
    condition = if_none_match(scope)
    if condition is None or not matches(condition, tag):
        return None
    return http.empty(304, ((b"etag", tag.encode()),))


def tagged(response: http.Response, tag: str) -> http.Response:
    """``response`` with its ETag."""
    return http.Response(
        response.status,
        response.body,
        response.content_type,
        (*response.headers, (b"etag", tag.encode())),
    )
