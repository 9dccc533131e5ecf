"""Where a request goes: the Host header parsed into a route, and the weighted pick.

Pure functions over values; no I/O. The proxy (``tenement/proxy/app.py``) acts on the
result.

Host rules (reference §5.7, with hostile input handled):

- the port is stripped, the name lowercased (hostnames are case-insensitive) and one
  trailing dot (a fully qualified name) dropped;
- ``<tenant>.<service>.<domain>`` -> :class:`Direct`, split on the FIRST dot, so
  ``a.b.c.<domain>`` names service ``b.c``, which is not a valid name -> 404;
- ``<service>.<domain>`` -> :class:`Weighted`;
- exactly ``<domain>``, a host that does not end in ``.<domain>``, or no Host at all ->
  :data:`FALLBACK` (the API and dashboard);
- a host under ``<domain>`` with characters no hostname has, or an empty label
  (``x..<domain>``) -> :class:`Rejected` 400; a well-formed label that is not a valid
  service or tenant name (:func:`tenement.ids.is_valid_name`) -> :class:`Rejected` 404.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Sequence
from typing import Protocol, TypeVar

import attrs

from tenement.ids import is_valid_name

#: longest DNS name (RFC 1035); a longer Host under our domain is refused with 400
MAX_HOST_LENGTH = 253

_LABELS = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")


@attrs.frozen
class Direct:
    """``tenant.service.domain``: one instance, woken on demand."""

    tenant: str
    service: str


@attrs.frozen
class Weighted:
    """``service.domain``: a weighted pick over the service's instances."""

    service: str


@attrs.frozen
class Fallback:
    """Not a tenant's host: the request goes to the API/dashboard app."""


@attrs.frozen
class Rejected:
    """An answer the proxy gives itself: a host under our domain that cannot name an
    instance, or an instance that cannot take the request.

    Attributes:
        retry_after_seconds: sent as ``Retry-After`` when set (an instance in backoff:
            the seconds until its scheduled restart). Added in 0.3.0.
    """

    status: int
    message: str
    retry_after_seconds: int | None = None


Route = Direct | Weighted | Fallback | Rejected

FALLBACK = Fallback()
BAD_HOST = Rejected(400, "Bad request")
NOT_FOUND = Rejected(404, "Not found")


def strip_port(host: str) -> str:
    """``example.com:8080`` -> ``example.com``; bracketed IPv6 literals keep their brackets."""
    if host.startswith("["):
        end = host.find("]")
        return host if end < 0 else host[: end + 1]
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        return name
    return host


def parse_host(host: str | None, domain: str) -> Route:
    """Turn a Host header value into a route (rules in the module docstring).

    Args:
        host: the raw header value (latin-1 decoded), or None when the request has none.
        domain: the configured base domain, e.g. ``example.com`` (lowercase it once at
            start-up; :class:`tenement.proxy.Proxy` does).

    Returns:
        One of :class:`Direct`, :class:`Weighted`, :data:`FALLBACK`, :class:`Rejected`.
        Never raises, whatever the input.
    """
    if not host:
        return FALLBACK
    name = strip_port(host.strip()).lower()
    if name.endswith("."):
        name = name[:-1]
    if name == domain or not name.endswith("." + domain):
        return FALLBACK
    rest = name[: -len(domain) - 1]
    if len(name) > MAX_HOST_LENGTH or _LABELS.fullmatch(rest) is None:
        return BAD_HOST
    tenant, dot, service = rest.partition(".")
    if not dot:
        return Weighted(tenant) if is_valid_name(tenant) else NOT_FOUND
    if is_valid_name(tenant) and is_valid_name(service):
        return Direct(tenant, service)
    return NOT_FOUND


#: Host values longer than this are parsed each time, not remembered (the cache's memory
#: stays bounded whatever clients send)
_CACHED_HOST_LENGTH = MAX_HOST_LENGTH + 8


@functools.lru_cache(maxsize=1024)
def _cached_route(host: str, domain: str) -> Route:
    return parse_host(host, domain)


def route_for(host: str | None, domain: str) -> Route:
    """:func:`parse_host`, remembered for the 1,024 hosts seen most recently (a pure
    function of its arguments; it ran for every proxied request: ~2% of one, py-spy)."""
    if host is None or len(host) > _CACHED_HOST_LENGTH:
        return parse_host(host, domain)
    return _cached_route(host, domain)


class HasWeight(Protocol):
    @property
    def weight(self) -> int: ...


T = TypeVar("T", bound=HasWeight)


def weighted_pick(targets: Sequence[T], rng: random.Random) -> T | None:
    """Pick one target at random, each with probability weight / total weight.

    Targets with weight <= 0 are never picked. Walks the cumulative weights in the given
    order (reference §5.9), so a seeded ``rng`` gives a reproducible sequence.

    Returns:
        The pick, or None when no target has a positive weight.
    """
    total = 0
    for target in targets:
        if target.weight > 0:
            total += target.weight
    if total <= 0:
        return None
    point = rng.randrange(total)
    for target in targets:
        if target.weight > 0:
            point -= target.weight
            if point < 0:
                return target
    raise AssertionError("unreachable: point < total")


def fallback_order(targets: Sequence[T], picked: T) -> list[T]:
    """The targets to try, in order, when ``picked`` did not answer: the other ones with
    a positive weight, in registry order. A weight-0 instance is drained on purpose and is
    never used, not even as a last resort (the reference's scan includes it: a quirk).
    """
    return [t for t in targets if t is not picked and t.weight > 0]
