"""The last hour of request rate and p99 latency, per instance and for the whole server.

Every :data:`INTERVAL_SECONDS` the server's role calls :meth:`History.sample` with the
proxy's cumulative counters; each sample keeps what happened in the interval: the
number of requests, and the p99 of their durations, read from the difference of the
histogram buckets (so it is a bucket bound, e.g. 25 ms, not an exact value).

Memory is bounded: :data:`SAMPLES` slots in two compact arrays per series (4-byte
counts, 4-byte floats: 2.9 KB), plus the last counters seen: 3.4 MB for 1,000
instances (measured with tracemalloc; a test keeps it under 4 MB). An instance the
proxy no longer reports is forgotten. The history lives in memory only: a restarted
server starts with empty charts (keeping it would mean writing it out on every
restart, or a table written every 10 s, for charts that refill within the hour).

The same sampler reads each tenant's process group from /proc (one scan, in a worker
thread): resident memory and CPU over the interval, shown with ``GET /api/instances``.

Served by ``GET /api/history`` (the server; admin) and
``GET /api/instances/{id}/history`` (one instance; a tenant token its own).
"""

from __future__ import annotations

import math
import os
import time
from array import array
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import trio

from tenement.api import http
from tenement.api.app import ApiContext, Request
from tenement.api.instances import raise_if_elsewhere
from tenement.supervisor.procfs import GroupUsage, group_usage
from tenement.types import Send

INTERVAL_SECONDS = 10.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: one hour of samples
SAMPLES = 360
#: the histogram's upper bounds in ms, the last one standing for "more than 5 s"
_BOUNDS_MS = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0)


def p99_of(bucket_deltas: list[int], count: int) -> float:
    """The smallest bucket bound that 99% of ``count`` requests stayed under (0.0 for none).

    ``bucket_deltas`` are cumulative counts per bound (Prometheus ``le``), for one interval.
    """
    if count <= 0:
        return 0.0
    wanted = math.ceil(count * 0.99)
    for bound, seen in zip(_BOUNDS_MS, bucket_deltas, strict=False):
        if seen >= wanted:
            return bound
    return _BOUNDS_MS[-1]


@attrs.define
class Series:
    """One ring of samples; slot ``n % SAMPLES`` holds sample ``n``."""

    requests: array[int] = attrs.Factory(lambda: array("I", bytes(4 * SAMPLES)))
    p99_ms: array[float] = attrs.Factory(lambda: array("f", bytes(4 * SAMPLES)))
    #: the sample number of the first slot written (older slots are empty)
    first: int = 0

    def put(self, number: int, requests: int, p99_ms: float) -> None:
        slot = number % SAMPLES
        self.requests[slot] = min(requests, 2**32 - 1)
        self.p99_ms[slot] = p99_ms

    def read(self, taken: int) -> tuple[list[int], list[float]]:
        """Oldest first: the samples from ``first`` (or an hour ago) to ``taken - 1``."""
        start = max(self.first, taken - SAMPLES)
        slots = [n % SAMPLES for n in range(start, taken)]
        return [self.requests[s] for s in slots], [round(self.p99_ms[s], 3) for s in slots]


@attrs.frozen
class Usage:
    """An instance's process group at the last sample: resident memory, and its CPU use
    over the interval before (None at its first sample) in percent of one core."""

    memory_bytes: int
    cpu_percent: float | None


@attrs.define
class _Last:
    """An instance's cumulative counters at the previous sample."""

    total: int
    buckets: tuple[int, ...]


class History:
    """The ring buffers, filled by :meth:`run` (or :meth:`sample` directly in tests)."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.taken = 0
        self.end_ms: int | None = None
        self.server = Series()
        self.instances: dict[str, Series] = {}
        self._last: dict[str, _Last] = {}
        #: per instance id, from :meth:`sample_usage`
        self.usage: dict[str, Usage] = {}
        #: grows when :attr:`usage` changes (the ETag of ``GET /api/instances`` has it)
        self.usage_changes = 0
        self._cpu: dict[str, tuple[int, int, float]] = {}  # id -> (pid, ticks, when)

    def sample(self, series: Iterable[Any]) -> None:
        """Record one interval from the proxy's ``RequestSeries`` (cumulative) values."""
        number = self.taken
        total = 0
        merged = [0] * len(_BOUNDS_MS)
        seen = set()
        for item in series:
            seen.add(item.instance_id)
            last = self._last.get(item.instance_id)
            buckets = tuple(item.bucket_counts[: len(_BOUNDS_MS)])
            if last is None or item.requests_total < last.total:
                # new, or counted anew: the first interval counts from zero
                last = _Last(0, (0,) * len(_BOUNDS_MS))
            count = item.requests_total - last.total
            deltas = [now - before for now, before in zip(buckets, last.buckets, strict=True)]
            self._last[item.instance_id] = _Last(item.requests_total, buckets)
            ring = self.instances.get(item.instance_id)
            if ring is None:
                ring = self.instances[item.instance_id] = Series(first=number)
            ring.put(number, count, p99_of(deltas, count))
            total += count
            merged = [a + b for a, b in zip(merged, deltas, strict=True)]
        for gone in [key for key in self.instances if key not in seen]:
            del self.instances[gone]
            self._last.pop(gone, None)
        self.server.put(number, total, p99_of(merged, total))
        self.taken = number + 1
        self.end_ms = int(self._clock() * 1000)

    def sample_usage(self, views: Iterable[Any], groups: dict[int, GroupUsage], now: float) -> None:
        """Record each running instance's process group (``groups`` by pgid: a tenant
        leads its group), and its CPU since the previous sample of the same process."""
        usage = {}
        cpu = {}
        for view in views:
            group = groups.get(view.pid) if view.pid is not None else None
            if group is None:
                continue
            percent = None
            before = self._cpu.get(view.id)
            if before is not None and before[0] == view.pid and now > before[2]:
                seconds = (group.cpu_ticks - before[1]) / CLOCK_TICKS
                percent = round(max(seconds, 0.0) * 100 / (now - before[2]), 1)
            usage[view.id] = Usage(group.rss_bytes, percent)
            cpu[view.id] = (view.pid, group.cpu_ticks, now)
        if usage != self.usage:
            self.usage_changes += 1
        self.usage = usage
        self._cpu = cpu

    async def run(
        self,
        proxy_metrics: Any,
        supervisor: Callable[[], Any],
        interval: float = INTERVAL_SECONDS,
    ) -> None:
        """Sample every ``interval`` until cancelled; ``supervisor()`` is the leading
        supervisor, or None (a standby has no tenants of its own)."""
        while True:
            await trio.sleep(interval)
            self.sample(proxy_metrics.statistics().series)
            leader = supervisor()
            if leader is not None:
                views = list(leader.instances())
                groups = await trio.to_thread.run_sync(group_usage)
                self.sample_usage(views, groups, trio.current_time())

    def json(self, series: Series | None) -> dict[str, Any]:
        requests, p99 = series.read(self.taken) if series is not None else ([], [])
        return {
            "interval_secs": int(INTERVAL_SECONDS),
            "end": self.end_ms,
            "requests": requests,
            "p99_ms": p99,
        }


async def server_history(api: ApiContext, request: Request, send: Send) -> http.Response:
    request.require_admin("Server history requires admin token")
    history = api.history
    if history is None:
        return http.json_response(History().json(None))
    return http.json_response(history.json(history.server))


async def instance_history(api: ApiContext, request: Request, send: Send) -> http.Response:
    ref = request.instance()
    await raise_if_elsewhere(api, str(ref))  # the proxy of its node counts its requests
    history = api.history
    if history is None:
        return http.json_response(History().json(None))
    return http.json_response(history.json(history.instances.get(str(ref))))
