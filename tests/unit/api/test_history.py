"""The request history behind the dashboard's charts, fed by a real ProxyMetrics."""

from __future__ import annotations

import tracemalloc

from tenement.api.history import SAMPLES, History, p99_of
from tenement.proxy import ProxyMetrics


def record(metrics: ProxyMetrics, instance: str, *durations_ms: float) -> None:
    service, tenant = instance.split(":")
    for duration in durations_ms:
        metrics.record(instance, service, tenant, duration)


def test_each_sample_keeps_the_requests_and_p99_of_its_interval() -> None:
    metrics = ProxyMetrics()
    history = History(clock=lambda: 1000.0)
    record(metrics, "api:alice", *[3.0] * 99, 40.0)
    record(metrics, "api:bob", 0.5)
    history.sample(metrics.statistics().series)
    record(metrics, "api:alice", 0.2, 0.3)
    history.sample(metrics.statistics().series)
    history.sample(metrics.statistics().series)
    alice = history.json(history.instances["api:alice"])
    assert alice == {
        "interval_secs": 10,
        "end": 1_000_000,
        "requests": [100, 2, 0],
        "p99_ms": [5.0, 1.0, 0.0],
    }
    server = history.json(history.server)
    assert server["requests"] == [101, 2, 0]
    # 100 of 101 requests took at most 5 ms: the 101st (40 ms) is past the 99th percentile
    assert server["p99_ms"] == [5.0, 1.0, 0.0]
    assert history.json(None)["requests"] == []


def test_p99_is_the_bound_that_99_percent_stayed_under() -> None:
    assert p99_of([0] * 10, 0) == 0.0
    assert p99_of([0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 1) == 5000.0  # all over 5 s
    assert p99_of([0, 0, 1, 2, 2, 2, 2, 2, 2, 2], 2) == 25.0


def test_an_hour_is_kept_and_a_gone_instance_is_forgotten() -> None:
    metrics = ProxyMetrics()
    history = History()
    for n in range(SAMPLES + 5):
        record(metrics, "api:alice", *[1.0] * (n % 7))
        history.sample(metrics.statistics().series)
    requests = history.json(history.instances["api:alice"])["requests"]
    assert requests == [n % 7 for n in range(5, SAMPLES + 5)]
    history.sample([])
    assert history.instances == {}
    assert len(history.json(history.server)["requests"]) == SAMPLES


def test_a_thousand_instances_take_a_few_megabytes() -> None:
    metrics = ProxyMetrics()
    for n in range(1000):
        record(metrics, f"api:t{n}", 1.0)
    series = metrics.statistics().series
    tracemalloc.start()
    try:
        history = History()
        for _ in range(3):
            history.sample(series)
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(history.instances) == 1000
    assert used < 4 * 1024 * 1024, used
