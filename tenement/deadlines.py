"""Deadlines for many short waits, without a cancel scope for each.

Every proxied request waited twice under a deadline: for the client's next request
(the keep-alive time) and for the tenant's answer (the service's ``request_timeout``).
A trio cancel scope per wait is costly on that path: setting and resetting its deadline
(or a ``move_on_after``) is work on every request, and each leaves an entry in trio's
deadline heap for its run loop to sort out (commit aafecd5 has the measurements).

Here a wait is *armed* with its deadline and what to do when it passes, and *disarmed*
when it ends: a few dict and set operations. Armed waits sit in slots of
:data:`RESOLUTION` seconds; one trio system task, running only while something is
armed, wakes every slot and calls ``expire()`` of every wait whose slot has passed. A
wait expires at most :data:`RESOLUTION` late, never early.

``expire()`` runs in that task, not the waiter's: it must not block or raise. It
interrupts the wait from outside, e.g. cancels the scope the waiter runs in (``h1.py``:
the connection ends) or closes the socket it waits on (``proxy/upstream.py``: the
waiter gets ``trio.ClosedResourceError`` and learns it timed out).
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable

import trio

log = logging.getLogger(__name__)

#: seconds per slot: how late a wait may expire
RESOLUTION = 0.05
#: the slot of a wait without a deadline (``math.inf``): after every real one
_NEVER = sys.maxsize


class Armed:
    """One armed wait (see :meth:`Deadlines.arm`)."""

    __slots__ = ("expire", "slot")

    def __init__(self, slot: int, expire: Callable[[], object]) -> None:
        self.slot = slot
        self.expire = expire


class Deadlines:
    """The deadlines of one trio run's waits (one object serves any number of them).

    Args:
        resolution: seconds per slot; a wait expires at most this late.
    """

    def __init__(self, resolution: float = RESOLUTION) -> None:
        self._resolution = resolution
        self._slots: dict[int, set[Armed]] = {}
        # the last slot whose waits were expired
        self._done = -1
        self._sweeping = False

    def arm(self, deadline: float, expire: Callable[[], object]) -> Armed:
        """Call ``expire()`` once ``deadline`` (``trio.current_time()``'s clock) passes,
        unless :meth:`disarm` comes first. A deadline already past expires at the next
        slot."""
        if deadline == math.inf:
            return Armed(_NEVER, expire)  # in no slot (but advance() can move it)
        if not self._sweeping:
            self._start()
        slot = max(math.ceil(deadline / self._resolution), self._done + 1)
        armed = Armed(slot, expire)
        waits = self._slots.get(slot)
        if waits is None:
            self._slots[slot] = {armed}
        else:
            waits.add(armed)
        return armed

    def disarm(self, armed: Armed) -> None:
        """The wait ended: ``expire()`` will not be called (harmless after it was)."""
        waits = self._slots.get(armed.slot)
        if waits is not None:
            waits.discard(armed)  # an emptied slot stays until its time: no churn

    def advance(self, armed: Armed, deadline: float) -> Armed:
        """``armed`` with ``deadline`` if that comes first (a drain shortening a wait).

        Returns:
            what to disarm from now on (``armed`` itself if its own deadline comes first).
        """
        if math.ceil(deadline / self._resolution) >= armed.slot:
            return armed
        self.disarm(armed)
        return self.arm(deadline, armed.expire)

    def _start(self) -> None:
        # not sweeping: nothing is armed, or an earlier trio run ended (its clock and its
        # waits are gone with it)
        self._slots.clear()
        self._sweeping = True
        self._done = math.floor(trio.current_time() / self._resolution)
        trio.lowlevel.spawn_system_task(self._sweep, name="tenement.deadlines")

    async def _sweep(self) -> None:
        try:
            while self._slots:
                await trio.sleep_until((self._done + 1) * self._resolution)
                # at least the slot slept for: floor() of its own start may round below it
                now = max(math.floor(trio.current_time() / self._resolution), self._done + 1)
                for slot in range(self._done + 1, now + 1):
                    self._done = slot
                    for armed in self._slots.pop(slot, ()):
                        self._expire(armed)
        finally:
            # also when the run ends: the next run's first arm starts a new sweep
            self._sweeping = False

    @staticmethod
    def _expire(armed: Armed) -> None:
        try:
            armed.expire()
        except Exception:  # a system task must not raise: that would crash the run
            log.exception("expiring a wait failed")
