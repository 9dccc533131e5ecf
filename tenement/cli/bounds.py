"""What the CLI accepts from a server: how long an answer may take, how big it may be, and
how server text is shown.

The server is not trusted to be well behaved (``--server`` may name anything): whatever
it sends, a command ends with one ``Error:`` line, within its timeout, in bounded memory.
The client reads every answer through a :class:`BoundedSocket`, which gives each read
only what is left of the request's overall deadline and counts the bytes received.
"""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

#: the largest answer read. The largest legitimate ones are ``ten logs`` (by default the
#: last 100 entries, each a line of up to 64 KiB that JSON may escape to ~6 times that
#: size: ~38 MiB at worst) and ``ten ps --json`` (a few hundred bytes per instance)
MAX_ANSWER = 64 * 1024 * 1024

#: ``100 Continue`` heads skipped before the answer; http.client skips them without limit
MAX_INTERIM = 16

#: the longest line of an event stream (a log line of 64 KiB as escaped JSON, and more)
MAX_EVENT_LINE = 1024 * 1024


class AnswerTooLarge(Exception):
    """The server sent (or announced) more than :data:`MAX_ANSWER` bytes.

    Deliberately not a ValueError: http.client turns some of those into other errors.
    """


class Receiver(Protocol):
    """What the answer readers need of a socket."""

    def recv(self, size: int, /) -> bytes: ...

    def recv_into(self, buffer: WriteableBuffer, /) -> int: ...


class BoundedSocket:
    """A connected socket whose reads share one deadline and one byte budget.

    ``deadline`` is a :func:`time.monotonic` time; None waits for ever. ``limit`` is the
    most bytes it will return; None is no limit (an event stream's body).
    """

    def __init__(self, sock: socket.socket, *, deadline: float | None, limit: int | None) -> None:
        self.sock = sock
        self.deadline = deadline
        self.left = limit

    def unbounded(self) -> None:
        """From now on, wait for ever and take any amount (an event stream's body)."""
        self.deadline = None
        self.left = None
        self.sock.settimeout(None)

    def wait(self) -> None:
        """Give the socket's next operation what is left of the deadline.

        Raises:
            TimeoutError: nothing is left.
        """
        if self.deadline is None:
            return
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out")
        self.sock.settimeout(remaining)

    def _size(self, size: int) -> int:
        # one byte over the budget is enough to know it is exceeded
        return size if self.left is None else min(size, self.left + 1)

    def _count(self, received: int) -> None:
        if self.left is None:
            return
        self.left -= received
        if self.left < 0:
            raise AnswerTooLarge

    def recv(self, size: int, /) -> bytes:
        self.wait()
        data = self.sock.recv(self._size(size))
        self._count(len(data))
        return data

    def recv_into(self, buffer: WriteableBuffer, /) -> int:
        self.wait()
        view = memoryview(buffer).cast("B")
        received = self.sock.recv_into(view[: self._size(len(view))])
        self._count(received)
        return received


def shown(text: str) -> str:
    """``text`` safe to print in a terminal: every character that is not printable
    (controls such as ESC, CR, NUL; line and paragraph separators; format characters
    such as bidi overrides) is written as its Python escape (``\\x1b``, ``\\u202e``)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
