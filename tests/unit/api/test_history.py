"""The request history behind the dashboard's charts, fed by a real ProxyMetrics."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc

import trio

from tenement.api.history import SAMPLES, History, p99_of
from tenement.proxy import ProxyMetrics
from tenement.supervisor import procfs
from tenement.supervisor.health import Health
from tenement.supervisor.instance import InstanceView


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


def busy_group() -> subprocess.Popen[bytes]:
    """A process leading its own group (as a tenant does) that burns CPU and holds memory."""
    code = "import time\nx = bytearray(32 << 20)\nwhile True: time.process_time()"
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True)


def view_of(pid: int) -> InstanceView:
    return InstanceView(
        id="api:busy", service="api", tenant="busy", pid=pid, port=None, socket="",
        weight=100, health=Health.HEALTHY, state="running", uptime_secs=0, idle_secs=0,
        restarts=0, storage_used_bytes=0, storage_quota_bytes=None, active_connections=0,
    )  # fmt: skip


async def test_a_tenants_process_group_memory_and_cpu_are_sampled() -> None:
    process = busy_group()
    try:
        history = History()
        view = view_of(process.pid)
        with trio.fail_after(20):
            while (
                procfs.group_usage().get(process.pid, procfs.GroupUsage(0, 0)).rss_bytes < 32 << 20
            ):
                await trio.sleep(0.05)
        history.sample_usage([view], procfs.group_usage(), trio.current_time())
        first = history.usage["api:busy"]
        assert first.memory_bytes >= 32 << 20
        assert first.cpu_percent is None  # one sample: no interval yet
        began = procfs.group_usage()[process.pid].cpu_ticks
        with trio.fail_after(20):
            while procfs.group_usage()[process.pid].cpu_ticks < began + 10:
                await trio.sleep(0.05)
        history.sample_usage([view], procfs.group_usage(), trio.current_time())
        assert history.usage["api:busy"].cpu_percent > 0
        # an instance with no process (stopped, or in backoff) has no usage
        history.sample_usage([view_of(None)], procfs.group_usage(), trio.current_time())  # type: ignore[arg-type]
        assert history.usage == {}
    finally:
        process.kill()
        process.wait()


def test_usage_changes_counts_only_samples_that_changed_something() -> None:
    """The ETag of ``GET /api/instances`` has it: an unchanged sample keeps the tag."""
    history = History()
    view = view_of(4242)
    same = {4242: procfs.GroupUsage(rss_bytes=1 << 20, cpu_ticks=7)}
    history.sample_usage([view], same, 1.0)
    assert history.usage_changes == 1
    history.sample_usage([view], same, 2.0)  # cpu now 0.0%: a change
    assert history.usage_changes == 2
    history.sample_usage([view], same, 3.0)  # the same again
    assert history.usage_changes == 2
    history.sample_usage([view], {4242: procfs.GroupUsage(2 << 20, 7)}, 4.0)
    assert history.usage_changes == 3


def test_proxy_changes_grow_with_each_recorded_request_and_merged_report() -> None:
    """The ETag of ``GET /api/telemetry`` has it: no request, no new tag."""
    metrics = ProxyMetrics()
    assert metrics.changes == 0
    metrics.request()  # arrived, not yet answered: the series are as they were
    assert metrics.changes == 0
    record(metrics, "api:a", 3.0)
    assert metrics.changes == 1
    other = ProxyMetrics()
    record(other, "api:b", 4.0)
    metrics.merge(other.report())
    assert metrics.changes == 2
