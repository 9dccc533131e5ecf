"""tenement.deadlines: armed waits expire once their deadline passed, within one slot,
never before; disarmed ones never. Under trio's autojump clock: no real waiting."""

from __future__ import annotations

import logging
import math

import pytest
import trio

from tenement.deadlines import RESOLUTION, Deadlines

#: slots are multiples of RESOLUTION in floating point: a slot's start may be a rounding
#: error before the deadline it was rounded up from
EPSILON = 1e-9


class Expiry:
    """Records when (trio's clock) it was expired."""

    def __init__(self) -> None:
        self.at: list[float] = []

    def __call__(self) -> None:
        self.at.append(trio.current_time())


async def test_a_wait_expires_after_its_deadline_within_one_slot(autojump_clock) -> None:
    deadlines = Deadlines()
    expiry = Expiry()
    deadline = trio.current_time() + 1.234
    deadlines.arm(deadline, expiry)
    await trio.sleep(1.2)
    assert expiry.at == []
    await trio.sleep(1)
    (at,) = expiry.at
    assert deadline - EPSILON <= at <= deadline + RESOLUTION


async def test_a_disarmed_wait_never_expires(autojump_clock) -> None:
    deadlines = Deadlines()
    kept, dropped = Expiry(), Expiry()
    deadlines.arm(trio.current_time() + 1, kept)
    armed = deadlines.arm(trio.current_time() + 1, dropped)
    deadlines.disarm(armed)
    await trio.sleep(5)
    assert len(kept.at) == 1
    assert dropped.at == []
    deadlines.disarm(armed)  # again, and after the slot was swept: harmless


async def test_a_deadline_already_past_expires_at_the_next_slot(autojump_clock) -> None:
    deadlines = Deadlines()
    expiry = Expiry()
    now = trio.current_time()
    deadlines.arm(now - 10, expiry)
    await trio.sleep(2 * RESOLUTION)
    (at,) = expiry.at
    assert now < at <= now + 2 * RESOLUTION


async def test_advance_moves_a_wait_only_to_an_earlier_deadline(autojump_clock) -> None:
    deadlines = Deadlines()
    early, late = Expiry(), Expiry()
    now = trio.current_time()
    early_armed = deadlines.arm(now + 10, early)
    late_armed = deadlines.arm(now + 1, late)
    moved = deadlines.advance(early_armed, now + 2)
    assert deadlines.advance(late_armed, now + 3) is late_armed
    await trio.sleep(20)
    assert len(early.at) == len(late.at) == 1
    assert now + 2 - EPSILON <= early.at[0] <= now + 2 + RESOLUTION  # not again at +10
    assert now + 1 - EPSILON <= late.at[0] <= now + 1 + RESOLUTION
    deadlines.disarm(moved)


async def test_a_wait_without_deadline_never_expires_but_can_be_advanced(
    autojump_clock,
) -> None:
    deadlines = Deadlines()
    forever, advanced = Expiry(), Expiry()
    deadlines.arm(math.inf, forever)
    armed = deadlines.arm(math.inf, advanced)
    now = trio.current_time()
    deadlines.advance(armed, now + 1)
    await trio.sleep(100)
    assert forever.at == []
    assert len(advanced.at) == 1


async def test_the_sweep_stops_when_nothing_is_armed_and_starts_again(autojump_clock) -> None:
    def tasks() -> int:
        return trio.lowlevel.current_statistics().tasks_living

    deadlines = Deadlines()
    first, second = Expiry(), Expiry()
    before = tasks()
    deadlines.arm(trio.current_time() + 1, first)
    assert tasks() == before + 1  # the sweep
    await trio.sleep(2)
    assert tasks() == before
    deadlines.arm(trio.current_time() + 1, second)
    assert tasks() == before + 1
    await trio.sleep(2)
    assert len(first.at) == len(second.at) == 1
    assert tasks() == before


async def test_a_failing_expiry_is_logged_and_the_others_still_run(
    autojump_clock, caplog: pytest.LogCaptureFixture
) -> None:
    deadlines = Deadlines()
    after = Expiry()

    def broken() -> None:
        raise RuntimeError("boom")

    deadlines.arm(trio.current_time() + 1, broken)
    deadlines.arm(trio.current_time() + 1, after)
    with caplog.at_level(logging.ERROR, logger="tenement.deadlines"):
        await trio.sleep(2)
    assert len(after.at) == 1
    assert "expiring a wait failed" in caplog.text


def test_one_object_serves_one_trio_run_after_another() -> None:
    deadlines = Deadlines()
    expiries = [Expiry(), Expiry()]

    async def arm_and_leave(expiry: Expiry) -> None:
        deadlines.arm(trio.current_time() + 0.1, expiry)
        deadlines.arm(trio.current_time() + 60, Expiry())  # outlives the run
        await trio.sleep(0.3)

    for expiry in expiries:
        trio.run(arm_and_leave, expiry)
    assert [len(expiry.at) for expiry in expiries] == [1, 1]
