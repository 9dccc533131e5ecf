"""The restart policy: delays, the window, giving up."""

from __future__ import annotations

import pytest

from tenement.config import Settings
from tenement.supervisor.backoff import RestartPolicy, decide, delay_seconds, recent

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
