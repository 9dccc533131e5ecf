"""Request counts and durations per instance, for ``/metrics`` and ``/api/telemetry``.

Recording is a few integer updates and one slot write in a fixed ring: no locks (trio
runs one task at a time), no allocation after an instance's first request, no I/O.
Durations run from the request's arrival to the response head, as the reference's do
(a wake-up counts; a long download does not). ``tenement.api.metrics`` renders them.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import attrs

#: histogram upper bounds in milliseconds (reference §5.12); ``+Inf`` is implied
BUCKETS_MS: tuple[float, ...] = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000)
#: raw durations kept per instance for the p99
RING_SIZE = 1024


@attrs.frozen
class RequestSeries:
    """One instance's requests.

    Attributes:
        bucket_counts: cumulative counts for each bound in :data:`BUCKETS_MS` (Prometheus
            ``le`` semantics); the ``+Inf`` bucket is ``requests_total``.
        p99_ms: the 99th percentile of the last :data:`RING_SIZE` durations (0.0 before
            the first request).
    """

    instance_id: str
    service: str
    tenant: str
    requests_total: int
    duration_sum_ms: float
    bucket_counts: tuple[int, ...]
    avg_ms: float
    p99_ms: float


@attrs.frozen
class ProxyStatistics:
    """What the proxy has done since it started.

    Attributes:
        series: one entry per instance that was sent a request, in first-seen order.
        requests_total: every request the proxy routed to a tenant host (including the
            ones answered with an error below).
        responses_by_status: the proxy's own answers (400, 404, 502, 503, 504) -> count.
    """

    series: tuple[RequestSeries, ...]
    requests_total: int
    responses_by_status: tuple[tuple[int, int], ...]
    connections_opened: int = 0
    connections_reused: int = 0
    idle_connections: int = 0


@attrs.frozen
class _Part:
    """One instance's share of a :meth:`ProxyMetrics.report`, checked."""

    instance_id: str
    service: str
    tenant: str
    count: int
    sum_ms: float
    buckets: list[int]
    durations: list[float]

    @classmethod
    def parse(cls, instance_id: str, part: dict[str, Any]) -> _Part:
        buckets = [int(n) for n in part["buckets"]]
        if len(buckets) != len(BUCKETS_MS) + 1:
            raise ValueError(f"{instance_id}: {len(buckets)} histogram buckets")
        return cls(
            instance_id,
            str(part["service"]),
            str(part["tenant"]),
            int(part["count"]),
            float(part["sum_ms"]),
            buckets,
            [float(d) for d in part["durations"]],
        )


class _Series:
    __slots__ = ("buckets", "count", "pos", "ring", "service", "sum_ms", "tenant")

    def __init__(self, service: str, tenant: str, ring_size: int) -> None:
        self.service = service
        self.tenant = tenant
        self.count = 0
        self.sum_ms = 0.0
        self.buckets = [0] * (len(BUCKETS_MS) + 1)
        self.ring = [0.0] * ring_size
        self.pos = 0


class ProxyMetrics:
    """Counters the proxy updates per request; read them with :meth:`statistics`."""

    def __init__(self, *, ring_size: int = RING_SIZE) -> None:
        self._series: dict[str, _Series] = {}
        self._ring_size = ring_size
        self._requests = 0
        self._own_responses: dict[int, int] = {}
        #: grows whenever a series changes (a response recorded, a report merged): the
        #: API's telemetry ETag is made of it, so an unchanged poll reads no series
        self.changes = 0
        # what earlier reports carried (see :meth:`report`)
        self._sent_series: dict[str, tuple[int, float, list[int]]] = {}
        self._sent_requests = 0
        self._sent_own: dict[int, int] = {}

    def request(self) -> None:
        """A request arrived for a tenant host."""
        self._requests += 1

    def own_response(self, status: int) -> None:
        """The proxy answered by itself with ``status`` (an error)."""
        self._own_responses[status] = self._own_responses.get(status, 0) + 1

    def record(self, instance_id: str, service: str, tenant: str, duration_ms: float) -> None:
        """A request for ``instance_id`` got its response head (or the proxy's error)
        ``duration_ms`` after it arrived, wake-up included."""
        series = self._series.get(instance_id)
        if series is None:
            series = self._series[instance_id] = _Series(service, tenant, self._ring_size)
        self.changes += 1
        series.count += 1
        series.sum_ms += duration_ms
        series.buckets[bisect.bisect_left(BUCKETS_MS, duration_ms)] += 1
        series.ring[series.pos] = duration_ms
        series.pos = (series.pos + 1) % self._ring_size

    # ---- several serving processes, one /metrics -------------------------------------------

    def report(self) -> dict[str, Any]:
        r"""What was recorded since the last :meth:`acknowledge`, as JSON-able data.

        A server that is not the leader sends this to the leader (its ``/metrics`` is the
        leader's), which :meth:`merge`\ s it; after the leader took it, :meth:`acknowledge`.
        A report that never arrived is carried by the next one.
        """
        series: dict[str, Any] = {}
        for iid, s in self._series.items():
            count, sum_ms, buckets = self._sent_series.get(iid, (0, 0.0, [0] * len(s.buckets)))
            new = s.count - count
            if new <= 0:
                continue
            recent = min(new, len(s.ring))
            durations = [s.ring[(s.pos - recent + i) % len(s.ring)] for i in range(recent)]
            series[iid] = {
                "service": s.service,
                "tenant": s.tenant,
                "count": new,
                "sum_ms": s.sum_ms - sum_ms,
                "buckets": [now - then for now, then in zip(s.buckets, buckets, strict=True)],
                "durations": durations,
            }
        own = {
            str(status): n - self._sent_own.get(status, 0)
            for status, n in self._own_responses.items()
            if n > self._sent_own.get(status, 0)
        }
        return {"requests": self._requests - self._sent_requests, "own": own, "series": series}

    def acknowledge(self, report: dict[str, Any]) -> None:
        """The leader has ``report`` (from :meth:`report`): the next one starts after it."""
        self._sent_requests += report["requests"]
        for status, n in report["own"].items():
            self._sent_own[int(status)] = self._sent_own.get(int(status), 0) + n
        for iid, part in report["series"].items():
            count, sum_ms, buckets = self._sent_series.get(
                iid, (0, 0.0, [0] * len(part["buckets"]))
            )
            self._sent_series[iid] = (
                count + part["count"],
                sum_ms + part["sum_ms"],
                [a + b for a, b in zip(buckets, part["buckets"], strict=True)],
            )

    def merge(self, report: dict[str, Any]) -> None:
        """Count another process's requests (a :meth:`report` of its) as this one's.

        Raises:
            ValueError, KeyError, TypeError: ``report`` is malformed (nothing is counted).
        """
        parts = [_Part.parse(str(iid), part) for iid, part in report["series"].items()]
        own = {int(status): int(n) for status, n in report["own"].items()}
        self._requests += int(report["requests"])
        for status, n in own.items():
            self._own_responses[status] = self._own_responses.get(status, 0) + n
        self.changes += 1
        for part in parts:
            series = self._series.get(part.instance_id)
            if series is None:
                series = _Series(part.service, part.tenant, self._ring_size)
                self._series[part.instance_id] = series
            series.count += part.count
            series.sum_ms += part.sum_ms
            series.buckets = [a + b for a, b in zip(series.buckets, part.buckets, strict=True)]
            for duration in part.durations[-self._ring_size :]:
                series.ring[series.pos] = duration
                series.pos = (series.pos + 1) % self._ring_size

    def statistics(self) -> ProxyStatistics:
        return ProxyStatistics(
            series=tuple(_freeze(iid, s) for iid, s in self._series.items()),
            requests_total=self._requests,
            responses_by_status=tuple(sorted(self._own_responses.items())),
        )


def _freeze(instance_id: str, s: _Series) -> RequestSeries:
    cumulative = []
    total = 0
    for n in s.buckets[:-1]:
        total += n
        cumulative.append(total)
    return RequestSeries(
        instance_id=instance_id,
        service=s.service,
        tenant=s.tenant,
        requests_total=s.count,
        duration_sum_ms=s.sum_ms,
        bucket_counts=tuple(cumulative),
        avg_ms=s.sum_ms / s.count if s.count else 0.0,
        p99_ms=percentile(s.ring[: min(s.count, len(s.ring))], 0.99),
    )


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of ``values`` (0.0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]
