"""Per-instance request counts, histogram buckets and the ring-buffer p99."""

from __future__ import annotations

import json

import pytest

from tenement.proxy.metrics import BUCKETS_MS, ProxyMetrics, percentile


def test_buckets_are_cumulative_with_le_semantics() -> None:
    metrics = ProxyMetrics()
    for ms in (0.5, 1.0, 3.0, 5.0, 7000.0):
        metrics.record("notes:alice", "notes", "alice", ms)
    (series,) = metrics.statistics().series
    assert series.requests_total == 5
    assert dict(zip(BUCKETS_MS, series.bucket_counts, strict=True)) == {
        1: 2,
        5: 4,
        10: 4,
        25: 4,
        50: 4,
        100: 4,
        250: 4,
        500: 4,
        1000: 4,
        5000: 4,
    }
    assert series.duration_sum_ms == 7009.5
    assert series.avg_ms == 7009.5 / 5


def test_series_per_instance() -> None:
    metrics = ProxyMetrics()
    metrics.record("notes:alice", "notes", "alice", 1)
    metrics.record("notes:bob", "notes", "bob", 2)
    metrics.record("notes:alice", "notes", "alice", 3)
    stats = {s.instance_id: s for s in metrics.statistics().series}
    assert stats["notes:alice"].requests_total == 2
    assert stats["notes:bob"].requests_total == 1


def test_p99_comes_from_the_last_ring_of_durations() -> None:
    metrics = ProxyMetrics(ring_size=100)
    for _ in range(1000):
        metrics.record("a:b", "a", "b", 1000.0)  # old, slow: pushed out of the ring
    for i in range(100):
        metrics.record("a:b", "a", "b", float(i + 1))
    (series,) = metrics.statistics().series
    assert series.p99_ms == 99.0
    assert series.requests_total == 1100


def test_own_responses_are_counted_by_status() -> None:
    metrics = ProxyMetrics()
    metrics.own_response(404)
    metrics.own_response(404)
    metrics.own_response(503)
    assert metrics.statistics().responses_by_status == ((404, 2), (503, 1))


def test_percentile() -> None:
    assert percentile([], 0.99) == 0.0
    assert percentile([5.0], 0.99) == 5.0
    assert percentile([float(i) for i in range(1, 101)], 0.5) == 50.0


def test_reports_carry_what_is_new_and_merge_into_the_leaders_counts() -> None:
    worker, leader = ProxyMetrics(ring_size=4), ProxyMetrics(ring_size=4)
    leader.record("notes:alice", "notes", "alice", 2.0)
    for ms in (3.0, 30.0, 300.0):
        worker.request()
        worker.record("notes:alice", "notes", "alice", ms)
    worker.own_response(503)
    first = worker.report()
    # not acknowledged (the leader was away): the next report carries it again, plus more
    worker.request()
    worker.record("notes:bob", "notes", "bob", 7.0)
    second = worker.report()
    assert second["requests"] == 4 and second["own"] == {"503": 1}
    assert second["series"]["notes:alice"]["count"] == 3
    leader.merge(json.loads(json.dumps(second)))  # it travels as JSON
    worker.acknowledge(second)
    assert worker.report() == {"requests": 0, "own": {}, "series": {}}
    assert first["series"]["notes:alice"]["durations"] == [3.0, 30.0, 300.0]

    stats = leader.statistics()
    assert stats.requests_total == 4
    assert stats.responses_by_status == ((503, 1),)
    alice = next(s for s in stats.series if s.instance_id == "notes:alice")
    assert alice.requests_total == 4
    assert alice.duration_sum_ms == 335.0
    # cumulative le buckets: 1, 5, 10, 25, 50, 100, 250, 500, ...
    assert alice.bucket_counts[:8] == (0, 2, 2, 2, 3, 3, 3, 4)
    assert alice.p99_ms == 300.0
    # only what came after the acknowledged report is new
    worker.record("notes:bob", "notes", "bob", 9.0)
    assert worker.report()["series"] == {
        "notes:bob": {
            "service": "notes",
            "tenant": "bob",
            "count": 1,
            "sum_ms": 9.0,
            "buckets": [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            "durations": [9.0],
        }
    }


def test_a_malformed_report_counts_nothing() -> None:
    metrics = ProxyMetrics()
    bad = {
        "requests": 5,
        "own": {},
        "series": {
            "a:b": {
                "service": "a",
                "tenant": "b",
                "count": 1,
                "sum_ms": 1.0,
                "buckets": [1],
                "durations": [],
            }
        },
    }
    with pytest.raises(ValueError):
        metrics.merge(bad)
    assert metrics.statistics().requests_total == 0
