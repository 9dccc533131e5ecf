"""Prometheus text: the reference's names, buckets and labels, escaped values."""

from __future__ import annotations

import attrs
from prometheus_client.parser import text_string_to_metric_families

from tenement.api.metrics import (
    BUCKETS_MS,
    render_metrics,
    request_series,
    snapshot,
)
from tenement.proxy import ProxyMetrics


@attrs.frozen
class View:
    id: str
    service: str
    tenant: str
    state: str = "running"
    restarts: int = 0
    storage_used_bytes: int = 0
    storage_quota_bytes: int | None = None


@attrs.frozen
class Statistics:
    instances_up: int
    instance_restarts: tuple[tuple[str, str, int], ...]


@attrs.frozen
class Instances:
    """The two supervisor reads the collector makes."""

    views: tuple[View, ...]

    def instances(self) -> list[View]:
        return [view for view in self.views if view.state != "stopped"]

    def statistics(self) -> Statistics:
        return Statistics(
            instances_up=sum(1 for view in self.views if view.state == "running"),
            instance_restarts=tuple(
                (view.service, view.tenant, view.restarts) for view in self.views if view.restarts
            ),
        )


def proxy_metrics(durations: dict[str, list[float]]) -> ProxyMetrics:
    """The proxy's real metrics object, fed the given request durations."""
    metrics = ProxyMetrics()
    for instance_id, values in durations.items():
        for duration_ms in values:
            service, _, tenant = instance_id.partition(":")
            metrics.record(instance_id, service, tenant, duration_ms)
    return metrics


def scrape(views: tuple[View, ...], durations: dict[str, list[float]]) -> dict[str, list]:
    text = render_metrics(snapshot(Instances(views), proxy_metrics(durations)))
    return {family.name: family.samples for family in text_string_to_metric_families(text.decode())}


def test_every_reference_family_with_its_labels() -> None:
    views = (
        View(
            "notes:alice",
            "notes",
            "alice",
            restarts=2,
            storage_used_bytes=512,
            storage_quota_bytes=1024,
        ),
        View("notes:bob", "notes", "bob", state="starting"),
        View("notes:gone", "notes", "gone", state="stopped"),
        View("notes:old", "notes", "old", state="stopped", restarts=4),
    )
    families = scrape(views, {"notes:alice": [3.0, 7.0, 6000.0]})
    assert set(families) == {
        "tenement_requests",
        "tenement_request_duration_ms",
        "tenement_instances_up",
        "tenement_instance_restarts",
        "tenement_instance_storage_bytes",
        "tenement_instance_storage_quota_bytes",
        "tenement_instance_storage_usage_ratio",
    }
    (requests,) = families["tenement_requests"]
    assert requests.name == "tenement_requests_total"
    assert requests.labels == {"instance": "alice", "process": "notes"}
    assert requests.value == 3
    buckets = {
        s.labels["le"]: s.value
        for s in families["tenement_request_duration_ms"]
        if s.name.endswith("_bucket")
    }
    assert list(buckets) == [*(str(b) for b in BUCKETS_MS), "+Inf"]
    assert list(buckets.values()) == [0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3]
    assert [s.value for s in families["tenement_instances_up"]] == [1]
    restarts = {s.labels["id"]: s.value for s in families["tenement_instance_restarts"]}
    assert restarts == {"alice": 2, "old": 4}
    (ratio,) = families["tenement_instance_storage_usage_ratio"]
    assert ratio.value == 0.5


def test_bucket_bounds_render_as_the_reference_does() -> None:
    text = render_metrics(snapshot(Instances(()), proxy_metrics({"a:b": [1.0]}))).decode()
    assert 'tenement_request_duration_ms_bucket{instance="b",process="a",le="1"} 1\n' in text
    assert 'tenement_request_duration_ms_bucket{instance="b",process="a",le="5000"} 1\n' in text
    assert 'tenement_request_duration_ms_bucket{instance="b",process="a",le="+Inf"} 1\n' in text
    assert "# TYPE tenement_instances_up gauge" in text


#: lines of a real reference scrape (`ten` 0.2.2 serve, one instance, two requests, a
#: 10 MiB quota with nothing used)
REFERENCE_LINES = """\
# HELP tenement_requests_total Total number of HTTP requests
# TYPE tenement_requests_total counter
tenement_requests_total{instance="a",process="web"} 2

tenement_request_duration_ms_bucket{instance="a",process="web",le="1"} 0
tenement_request_duration_ms_bucket{instance="a",process="web",le="5"} 2
tenement_request_duration_ms_bucket{instance="a",process="web",le="10"} 2
tenement_request_duration_ms_bucket{instance="a",process="web",le="5000"} 2
tenement_request_duration_ms_bucket{instance="a",process="web",le="+Inf"} 2
tenement_request_duration_ms_sum{instance="a",process="web"} 3.912
tenement_request_duration_ms_count{instance="a",process="web"} 2

# HELP tenement_instances_up Number of running instances
# TYPE tenement_instances_up gauge
tenement_instances_up 5

tenement_instance_storage_bytes{id="a",process="web"} 0
tenement_instance_storage_quota_bytes{id="a",process="web"} 10485760
tenement_instance_storage_usage_ratio{id="a",process="web"} 0.0000
"""


def test_values_print_as_the_reference_prints_them() -> None:
    """Counts without ``.0`` (``tenement_instances_up 5``, not ``5.0``), the ratio with
    four decimals, ``le`` last: every line of a reference scrape is in ours."""
    quota = 10 * 1024 * 1024
    views = (
        View("web:a", "web", "a", storage_quota_bytes=quota),
        *(View(f"web:b{n}", "web", f"b{n}") for n in range(4)),
    )
    text = render_metrics(snapshot(Instances(views), proxy_metrics({"web:a": [1.5, 2.412]})))
    ours = text.decode().splitlines()
    missing = [line for line in REFERENCE_LINES.splitlines() if line and line not in ours]
    assert missing == []
    sums = [i for i, line in enumerate(ours) if line.startswith("tenement_request_duration")]
    assert ours[sums[-2]].startswith("tenement_request_duration_ms_sum")  # then the count
    assert not [line for line in ours if line.endswith(".0")]
    families = {f.name for f in text_string_to_metric_families(text.decode())}
    assert "tenement_instance_storage_usage_ratio" in families  # still valid Prometheus text


def test_label_values_are_escaped() -> None:
    tricky = 'we"ird\\name'
    text = render_metrics(snapshot(Instances((View(f"s:{tricky}", "s", tricky),)), None)).decode()
    assert 'id="we\\"ird\\\\name"' in text


def test_without_proxy_metrics_there_are_no_request_series() -> None:
    assert request_series(None) == []


def test_a_fleet_nodes_series_each_carry_its_node_and_a_single_hosts_none() -> None:
    """The fleet node's text is the single host's with ``node="…"`` after each series'
    own labels (before ``le``): nothing else differs, so every series is named."""
    views = (View("notes:alice", "notes", "alice", restarts=1, storage_quota_bytes=10),)
    requests = proxy_metrics({"notes:alice": [3.0]})
    single = render_metrics(snapshot(Instances(views), requests)).decode()
    fleet = render_metrics(snapshot(Instances(views), requests, "web-1")).decode()
    assert "node=" not in single
    expected = []
    for line in single.splitlines():
        if line.startswith("tenement_instances_up "):
            line = line.replace(" ", '{node="web-1"} ', 1)
        elif line.startswith("tenement_") and ',le="' in line:
            line = line.replace(',le="', ',node="web-1",le="')
        elif line.startswith("tenement_"):
            line = line.replace("} ", ',node="web-1"} ', 1)
        expected.append(line)
    assert fleet.splitlines() == expected
    series = [line for line in fleet.splitlines() if line.startswith("tenement_")]
    assert len(series) > 10 and all('node="web-1"' in line for line in series)
