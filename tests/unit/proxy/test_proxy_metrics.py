"""Per-instance request counts, histogram buckets and the ring-buffer p99."""

from __future__ import annotations

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
