"""The restart policy: delays, the window, giving up; a pending restart's waits."""

from __future__ import annotations

import time

import pytest
import trio

from tenement.config import Settings
from tenement.supervisor.backoff import (
    RestartPolicy,
    count_failed_start,
    decide,
    delay_seconds,
    recent,
    retry_after_seconds,
)
from tenement.supervisor.instance import PendingRestart

POLICY = RestartPolicy(max_restarts=3, window_seconds=300, base_ms=1000, max_ms=60000)


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, 0.0), (1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (50, 60.0), (10_000, 60.0)],
    ids=lambda v: str(v),
)
def test_delay_doubles_and_caps(count: int, expected: float) -> None:
    assert delay_seconds(POLICY, count) == expected


def test_policy_from_settings() -> None:
    settings = Settings(max_restarts=5, restart_window=60, backoff_base_ms=10, backoff_max_ms=80)
    assert RestartPolicy.from_settings(settings) == RestartPolicy(5, 60, 10, 80)


def test_old_restarts_stop_counting() -> None:
    assert recent([10.0, 500.0, 400.0], now=690.0, window_seconds=300) == (400.0, 500.0)


def test_backoff_decays_once_the_window_passes() -> None:
    history: tuple[float, ...] = ()
    now = 1000.0
    delays = []
    for _ in range(3):
        decision = decide(POLICY, history, now=now)
        assert not decision.give_up
        delays.append(decision.delay_seconds)
        history = decision.history
        now += 1
    assert delays == [0.0, 1.0, 2.0]
    # long after, the old restarts are forgotten: back to an immediate restart
    later = decide(POLICY, history, now=now + 301)
    assert later.delay_seconds == 0.0
    assert later.history == (now + 301,)


def test_crash_loop_gives_up_after_max_restarts() -> None:
    decision = decide(POLICY, (1.0, 2.0, 3.0), now=4.0)
    assert decision.give_up
    assert decision.history == (1.0, 2.0, 3.0)


def test_restart_by_hand_never_gives_up() -> None:
    decision = decide(POLICY, (1.0, 2.0, 3.0), now=4.0, automatic=False)
    assert not decision.give_up
    assert decision.delay_seconds == 4.0
    assert decision.history == (1.0, 2.0, 3.0, 4.0)


def test_a_failed_start_counts_as_a_restart_in_the_window() -> None:
    history = count_failed_start(POLICY, (1.0, 500.0), now=600.0)
    assert history == (500.0, 600.0)  # the one outside the window is forgotten
    # two failed wakes and a restart: the budget is spent, whoever started them
    history = count_failed_start(POLICY, history, now=601.0)
    assert decide(POLICY, history, now=602.0).give_up


@pytest.mark.parametrize(
    ("restart_in", "expected"), [(0.0, 1), (0.001, 1), (1.0, 1), (1.2, 2), (59.01, 60)]
)
def test_retry_after_rounds_up_to_whole_seconds(restart_in: float, expected: int) -> None:
    assert retry_after_seconds(restart_in) == expected


# ---- a pending restart, under trio's autojump clock (no real waiting) ----------------------


def _pending(delay: float) -> PendingRestart:
    return PendingRestart(
        at=trio.current_time() + delay, at_epoch=time.time() + delay, delay_seconds=delay
    )


async def test_a_request_waits_for_a_restart_due_before_its_deadline(autojump_clock) -> None:
    pending = _pending(5.0)
    start = trio.current_time()

    async def restart() -> None:
        await trio.sleep_until(pending.at)
        pending.attempted.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(restart)
        assert await pending.wait_attempted(deadline=start + 30) is None
    assert trio.current_time() == start + 5.0


async def test_a_restart_due_after_the_deadline_is_refused_at_once(autojump_clock) -> None:
    pending = _pending(5.0)
    start = trio.current_time()
    assert await pending.wait_attempted(deadline=start + 1) == 5
    assert trio.current_time() == start  # nothing waited
    await trio.sleep(2.5)
    assert pending.retry_after(trio.current_time()) == 3
