"""Answers read by :mod:`http.client`, within the bounds of :mod:`tenement.cli.bounds`.

http.client alone trusts the server: it skips ``100 Continue`` heads without limit, and
``read()`` allocates a body's declared size (``Content-Length``, or a chunk size) at once
and keeps whatever a body without end sends. Here the socket under it is a
:class:`~tenement.cli.bounds.BoundedSocket` (which reads in pieces and counts them), the
interim heads are counted, and a declared size over the limit is refused before a byte
of it is read.
"""

from __future__ import annotations

import http.client
import io
from typing import TYPE_CHECKING

from tenement.cli.bounds import MAX_ANSWER, MAX_INTERIM, AnswerTooLarge, Receiver

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


class BoundedResponse(http.client.HTTPResponse):
    """An HTTPResponse that refuses more than :data:`MAX_INTERIM` ``100 Continue`` heads."""

    _interim = 0

    def _read_status(self) -> tuple[str, int, str]:
        version, status, reason = super()._read_status()  # type: ignore[misc]
        if status == http.client.CONTINUE:
            self._interim += 1
            if self._interim > MAX_INTERIM:
                # a ValueError is what http.client raises for other malformed framing
                raise ValueError(f"more than {MAX_INTERIM} '100 Continue' heads")
        return version, status, reason


def begin(received: bytes, receiver: Receiver, method: str) -> BoundedResponse:
    """The answer whose first bytes are ``received`` (the rest from ``receiver``), its
    head read.

    Raises:
        OSError, http.client.HTTPException, ValueError: as http.client's ``begin``.
        AnswerTooLarge: the head did not end within the byte budget.
    """
    answer = BoundedResponse(_Replay(received, receiver), method=method)  # type: ignore[arg-type]
    try:
        answer.begin()
    except BaseException:
        answer.close()
        raise
    return answer


def read_body(answer: http.client.HTTPResponse) -> bytes:
    """The whole body (at most :data:`MAX_ANSWER` bytes).

    Raises:
        AnswerTooLarge: it is, or says it is, longer.
        OSError, http.client.HTTPException, ValueError, OverflowError: as ``read``.
    """
    if answer.length is not None and answer.length > MAX_ANSWER:
        raise AnswerTooLarge
    return answer.read()


class _BoundedReader(io.BufferedReader):
    """http.client's ``_safe_read`` asks for a declared size (a chunk's) in one read,
    which allocates it before a byte has come; a size over the limit is refused."""

    def read(self, size: int | None = -1, /) -> bytes:
        if size is not None and size > MAX_ANSWER:
            raise AnswerTooLarge
        return super().read(size)


class _Replay:
    """What http.client reads an answer from: the bytes already received, then the rest
    from the socket (``makefile`` is all :class:`http.client.HTTPResponse` asks of it)."""

    def __init__(self, received: bytes, receiver: Receiver) -> None:
        self._raw = _ReplayIO(received, receiver)

    def makefile(self, mode: str) -> io.BufferedReader:
        return _BoundedReader(self._raw)


class _ReplayIO(io.RawIOBase):
    def __init__(self, received: bytes, receiver: Receiver) -> None:
        self._received = memoryview(received)
        self._receiver = receiver

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        target = memoryview(buffer).cast("B")
        if self._received:
            size = min(len(target), len(self._received))
            target[:size] = self._received[:size]
            self._received = self._received[size:]
            return size
        return self._receiver.recv_into(target)
