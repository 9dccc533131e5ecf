"""``GET /metrics``: Prometheus text with the reference's metric names (§5.12).

Nothing is counted here: at scrape time :func:`snapshot` reads the supervisor's instances
and the proxy's request metrics on the event loop (neither is thread-safe), and a custom
collector turns that frozen snapshot into families, which :func:`render_metrics` writes
in a worker thread. prometheus-client is imported on the first scrape (it costs ~80 ms to
import, which ``ten serve`` should not pay at startup).
Label values are escaped (the reference does not escape them).

The proxy's metrics object (``tenement.proxy.ProxyMetrics``; duck-typed, the API may
not import the proxy) is read through :func:`request_series`: its ``statistics()`` has
``series``, each with ``instance_id``, ``service``, ``tenant``, ``requests_total``,
``duration_sum_ms``, ``bucket_counts`` (cumulative, one per bound in :data:`BUCKETS_MS`),
``avg_ms`` and ``p99_ms``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import attrs

#: histogram bucket upper bounds in milliseconds (reference)
BUCKETS_MS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000)

#: what the text is: the 0.0.4 exposition format generate_latest writes
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def request_series(proxy_metrics: Any) -> list[Any]:
    """Every instance's request figures, sorted by id ([] without proxy metrics).

    The items are the proxy's own frozen ``RequestSeries`` values, taken as they are.
    """
    if proxy_metrics is None:
        return []
    return sorted(proxy_metrics.statistics().series, key=lambda item: item.instance_id)


@attrs.frozen
class MetricsSnapshot:
    """Everything one scrape reports, read at one moment."""

    instances_up: int
    instance_restarts: tuple[tuple[str, str, int], ...]
    views: tuple[Any, ...]
    series: tuple[Any, ...]
    #: a fleet node's name, a ``node`` label on every series (None: a single host's
    #: series, which have none, as the reference's)
    node: str | None = None


def snapshot(supervisor: Any, proxy_metrics: Any, node: str | None = None) -> MetricsSnapshot:
    """Read the supervisor and the proxy now. Call it from the event loop."""
    stats = supervisor.statistics()
    return MetricsSnapshot(
        instances_up=stats.instances_up,
        instance_restarts=tuple(stats.instance_restarts),
        views=tuple(supervisor.instances()),
        series=tuple(request_series(proxy_metrics)),
        node=node,
    )


class MetricsCollector:
    """A prometheus-client collector over one :class:`MetricsSnapshot`."""

    def __init__(self, data: MetricsSnapshot) -> None:
        self._data = data

    def describe(self) -> Iterable[Any]:
        return []

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        data = self._data
        # a fleet node's name on each series; a single host's are the reference's
        node: tuple[str, ...] = () if data.node is None else ("node",)
        here: tuple[str, ...] = () if data.node is None else (data.node,)
        requests = CounterMetricFamily(
            "tenement_requests",
            "Total number of HTTP requests",
            labels=("instance", "process", *node),
        )
        duration = HistogramMetricFamily(
            "tenement_request_duration_ms",
            "Request duration in milliseconds",
            labels=("instance", "process", *node),
        )
        for item in data.series:
            labels = (item.tenant, item.service, *here)
            requests.add_metric(labels, item.requests_total)
            buckets = [
                (_bound(bound), count)
                for bound, count in zip(BUCKETS_MS, item.bucket_counts, strict=True)
            ]
            buckets.append(("+Inf", item.requests_total))
            duration.add_metric(labels, buckets, item.duration_sum_ms)
        yield requests
        yield duration

        up = GaugeMetricFamily("tenement_instances_up", "Number of running instances", labels=node)
        up.add_metric(here, data.instances_up)
        yield up
        restarts = CounterMetricFamily(
            "tenement_instance_restarts",
            "Total instance restarts",
            labels=("id", "process", *node),
        )
        used = GaugeMetricFamily(
            "tenement_instance_storage_bytes",
            "Current storage usage in bytes",
            labels=("id", "process", *node),
        )
        quota = GaugeMetricFamily(
            "tenement_instance_storage_quota_bytes",
            "Configured storage quota in bytes (0 = unlimited)",
            labels=("id", "process", *node),
        )
        ratio = GaugeMetricFamily(
            "tenement_instance_storage_usage_ratio",
            "Storage usage ratio (0.0 to 1.0+)",
            labels=("id", "process", *node),
        )
        # Every instance ever restarted keeps its series, as the reference's counters do.
        for service, tenant, count in data.instance_restarts:
            restarts.add_metric((tenant, service, *here), count)
        for view in data.views:
            labels = (view.tenant, view.service, *here)
            used.add_metric(labels, view.storage_used_bytes)
            if view.storage_quota_bytes is not None:
                quota.add_metric(labels, view.storage_quota_bytes)
                ratio.add_metric(labels, _ratio(view.storage_used_bytes, view.storage_quota_bytes))
        yield restarts
        yield used
        yield quota
        yield ratio


def _bound(bound: float) -> str:
    """``1`` rather than ``1.0``, as the reference writes ``le``."""
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def _ratio(used: int, quota: int) -> float:
    if quota == 0:
        return 1.0 if used > 0 else 0.0
    return round(used / quota, 4)


def render_metrics(data: MetricsSnapshot) -> bytes:
    """The exposition text of ``data`` (thread-safe; slow only on the first import).

    Written as the reference writes it, which prometheus-client's ``generate_latest``
    does not: counts without ``.0`` (``tenement_instances_up 5``), the usage ratio with
    four decimals, ``le`` after the other labels and a blank line after each family.
    """
    lines: list[str] = []
    for family in MetricsCollector(data).collect():
        name = f"{family.name}_total" if family.type == "counter" else family.name
        lines.append(f"# HELP {name} {_escape_help(family.documentation)}")
        lines.append(f"# TYPE {name} {family.type}")
        for sample in _reference_order(family.samples):
            labels = ",".join(
                f'{key}="{_escape_label(value)}"' for key, value in sample.labels.items()
            )
            series = f"{sample.name}{{{labels}}}" if labels else sample.name
            lines.append(f"{series} {_value(family.name, sample.value)}")
        lines.append("")
    return ("\n".join(lines) + "\n").encode()


def _reference_order(samples: list[Any]) -> list[Any]:
    """Each series' samples as the reference lists them: buckets, ``_sum``, ``_count``."""
    suffixes = {"_bucket": 0, "_sum": 1, "_count": 2}
    series: dict[tuple[tuple[str, str], ...], int] = {}
    for sample in samples:
        key = tuple((k, v) for k, v in sample.labels.items() if k != "le")
        series.setdefault(key, len(series))

    def position(sample: Any) -> tuple[int, int]:
        key = tuple((k, v) for k, v in sample.labels.items() if k != "le")
        suffix = next((n for end, n in suffixes.items() if sample.name.endswith(end)), 0)
        return series[key], suffix

    # sorted() is stable: the buckets keep their order
    return sorted(samples, key=position)


#: the family the reference prints with ``{:.4}``
RATIO_FAMILY = "tenement_instance_storage_usage_ratio"


def _value(family: str, value: float) -> str:
    """A sample value as the reference prints it (Prometheus accepts both forms)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if family == RATIO_FAMILY:
        return f"{value:.4f}"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")
