"""The restart policy: how long to wait before a restart, and when to give up.

Pure functions over a restart history (epoch seconds of past restarts); the restart task
sleeps the computed delay, this module never sleeps. While a restart is scheduled the
instance is *in backoff* (``instance.PendingRestart``): requests wait for the restart or
are told when to retry (:func:`retry_after_seconds`), and start nothing themselves.

Differences from the reference (§5.4): restarts older than ``restart_window`` stop counting,
both for the delay and for giving up, so a tenant that crashed a few times last week starts
again from a short delay.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import attrs

from tenement.config import Settings

MILLISECONDS = 0.001


@attrs.frozen
class RestartPolicy:
    """The named knobs of the restart policy, from ``[settings]``.

    Attributes:
        max_restarts: this many restarts within ``window_seconds`` marks the instance failed.
        window_seconds: restarts older than this stop counting.
        base_ms: the delay before the second restart in the window; it doubles each time.
        max_ms: the cap on the delay.
    """

    max_restarts: int = 3
    window_seconds: float = 300.0
    base_ms: int = 1000
    max_ms: int = 60000

    @classmethod
    def from_settings(cls, settings: Settings) -> RestartPolicy:
        return cls(
            max_restarts=settings.max_restarts,
            window_seconds=settings.restart_window,
            base_ms=settings.backoff_base_ms,
            max_ms=settings.backoff_max_ms,
        )


@attrs.frozen
class RestartDecision:
    """What to do about an instance that crashed or turned unhealthy.

    Attributes:
        give_up: the restart budget for the window is spent: mark it failed, do not restart.
        delay_seconds: wait this long before the restart (0 when giving up).
        history: the restart times still inside the window, plus this restart's time
            (unchanged when giving up).
    """

    give_up: bool
    delay_seconds: float
    history: tuple[float, ...]


def recent(history: Iterable[float], *, now: float, window_seconds: float) -> tuple[float, ...]:
    """The restart times that still count: newer than ``now - window_seconds``, oldest first."""
    cutoff = now - window_seconds
    return tuple(sorted(t for t in history if t > cutoff))


def delay_seconds(policy: RestartPolicy, count: int) -> float:
    """The wait before a restart when ``count`` restarts already happened in the window.

    0 for the first one, then ``base * 2^(count-1)`` capped at ``max``: 1 s, 2 s, 4 s, ...
    60 s with the defaults.
    """
    if count <= 0:
        return 0.0
    # cap the exponent first: 2**count overflows nothing in Python, but stays cheap this way
    exponent = min(count - 1, 62)
    # a shift, not 2**exponent: an int power is typed Any (a negative one is a float)
    return min(policy.base_ms * (1 << exponent), policy.max_ms) * MILLISECONDS


def decide(
    policy: RestartPolicy, history: Iterable[float], *, now: float, automatic: bool = True
) -> RestartDecision:
    """Decide the next restart of an instance with the given restart history.

    Args:
        policy: the knobs.
        history: epoch seconds of earlier restarts (any order, old ones included).
        now: the current epoch time; it becomes this restart's time.
        automatic: a crash or health restart; False for a restart asked by hand, which
            never gives up (it is how a failed instance comes back).

    Returns:
        The decision; its ``history`` is what to persist.
    """
    kept = recent(history, now=now, window_seconds=policy.window_seconds)
    if automatic and len(kept) >= policy.max_restarts:
        return RestartDecision(give_up=True, delay_seconds=0.0, history=kept)
    return RestartDecision(
        give_up=False, delay_seconds=delay_seconds(policy, len(kept)), history=(*kept, now)
    )


def count_failed_start(
    policy: RestartPolicy, history: Iterable[float], *, now: float
) -> tuple[float, ...]:
    """The history with a failed start at ``now`` counted as a restart.

    A wake (a request starting a stopped instance) that fails counts against
    ``max_restarts`` like the supervisor's own restarts: otherwise every request would
    start the app again, never reaching the limit.
    """
    return (*recent(history, now=now, window_seconds=policy.window_seconds), now)


def retry_after_seconds(restart_in: float) -> int:
    """The ``Retry-After`` for a restart due in ``restart_in`` seconds: rounded up, >= 1."""
    return max(1, math.ceil(restart_in))
