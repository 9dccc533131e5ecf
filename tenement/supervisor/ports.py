"""TCP ports for tenants: next-fit over a fixed range, checked against the OS.

The reference (§5.2) hands out 30000-40000 inclusive, next-fit with wrap-around,
in memory only. We keep that, and also check that a port is really free by
binding ``127.0.0.1:<port>`` (without SO_REUSEADDR, so a port with connections
still in TIME_WAIT or used as the local end of an outgoing connection counts as
busy); a busy port is skipped, not handed out. Adopted tenants keep their ports:
:meth:`PortAllocator.reserve` marks them taken.

Another program can still bind a port between the check and the tenant's bind. When
that program is another allocator walking the same range the same way (a second
tenement on the host), a retry on the next port would collide again, in step:
:meth:`PortAllocator.scatter` moves the walk to a random place first.
"""

from __future__ import annotations

import errno
import logging
import random
import socket

from tenement.errors import TenementError

log = logging.getLogger(__name__)

LOW_PORT = 30000
HIGH_PORT = 40000


class PortsExhausted(TenementError):
    """No port of the range is free."""


def port_is_free(port: int) -> bool:
    """Whether ``127.0.0.1:port`` can be bound right now (nobody listens or connects from it)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind(("127.0.0.1", port))
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            return False
        raise
    finally:
        probe.close()
    return True


class PortAllocator:
    """Hands out ports of ``low..high`` (inclusive), next-fit with wrap-around.

    Not thread-safe; the supervisor calls it from its trio thread only.

    Args:
        low: first port of the range.
        high: last port of the range (inclusive).
    """

    def __init__(
        self, low: int = LOW_PORT, high: int = HIGH_PORT, rng: random.Random | None = None
    ) -> None:
        if not 0 < low <= high < 65536:
            raise ValueError(f"bad port range {low}-{high}")
        self.low = low
        self.high = high
        self._allocated: set[int] = set()
        self._next = low
        self._rng = rng or random.Random()

    @property
    def allocated(self) -> frozenset[int]:
        """The ports handed out or reserved and not yet released."""
        return frozenset(self._allocated)

    def allocate(self) -> int:
        """The next port that is neither allocated nor bound by anyone.

        Raises:
            PortsExhausted: every port of the range is allocated or in use
                ("No free ports available in range 30000-40000. N ports allocated.").
        """
        size = self.high - self.low + 1
        for step in range(size):
            port = self.low + (self._next - self.low + step) % size
            if port in self._allocated:
                continue
            if not port_is_free(port):
                log.debug("port %s is in use by another process; skipping it", port)
                continue
            self._allocated.add(port)
            self._next = self.low + (port - self.low + 1) % size
            return port
        raise PortsExhausted(
            f"No free ports available in range {self.low}-{self.high}. "
            f"{len(self._allocated)} ports allocated."
        )

    def scatter(self) -> None:
        """Go on from a random port of the range: the port just handed out was taken by
        someone else meanwhile, who may be walking the range as we do."""
        self._next = self._rng.randint(self.low, self.high)

    def reserve(self, port: int) -> None:
        """Mark ``port`` as taken (an adopted tenant already listens on it)."""
        self._allocated.add(port)

    def release(self, port: int | None) -> None:
        """Give ``port`` back; releasing a port not allocated (or None) does nothing."""
        if port is not None:
            self._allocated.discard(port)
