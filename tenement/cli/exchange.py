"""One request to the server over plain http, without importing http.client first.

http.client, with the ``email`` package it reads headers with, is ~20 ms of the start of
every command that talks to the server, more than the exchange itself on this machine.
Most answers are the simple case :mod:`tenement.wire` (the proxy's HTTP/1.1 code,
checked against h11 in ``tests/unit/test_wire_differential.py``) takes whole: HTTP/1.1,
one ``Content-Length``, all of it arrived. This is not a second HTTP client:

- the request is the bytes http.client would send for it (same header lines, in the
  same order); anything wire would not write as it is (a header value with a line
  break, a non-ASCII host) is left to http.client (:func:`request_bytes` says None);
- an answer wire does not take whole (chunked, HTTP/1.0, ``1xx``, more than 100
  headers, a body still on its way, anything odd) is read by http.client from the same
  connection, starting from the bytes already received, exactly as if it had read it
  all along (:func:`read_answer`).

``tests/unit/cli/test_exchange_differential.py`` holds both sides to http.client's
results on generated answers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from tenement import wire
from tenement.cli.bounds import MAX_ANSWER, Receiver

#: what http.client's reader allows at most (``http.client._MAXHEADERS``): an answer
#: with more is its to refuse
MAX_HEADERS = 100

#: bytes asked of the kernel per read while the head arrives
READ_SIZE = 64 * 1024

#: the longest body read here; a longer one is http.client's to refuse
MAX_BODY = MAX_ANSWER

#: headers http.client writes itself (a caller's own makes it write other lines)
_OWN_HEADERS = frozenset({b"host", b"accept-encoding", b"content-length", b"transfer-encoding"})

#: what http.client refuses in a host (``_contains_disallowed_url_pchar_re``)
_CONTROL = re.compile(rb"[\x00-\x20\x7f]")

#: the methods http.client sends ``Content-Length: 0`` for when they have no body
_METHODS_EXPECTING_BODY = ("PATCH", "POST", "PUT")


class Answer(NamedTuple):
    """The server's answer: status, reason phrase and the whole body."""

    status: int
    reason: str
    content: bytes


def request_bytes(
    method: str,
    target: str,
    host: str,
    port: int,
    headers: Mapping[str, str],
    body: bytes | None,
) -> bytes | None:
    """What ``http.client.HTTPConnection(host, port).request(...)`` sends; None if a part
    is not one wire writes as it is (http.client then sends it, or refuses it)."""
    try:
        method_bytes = method.encode("ascii")
        target_bytes = target.encode("ascii")
        host_bytes = host.encode("ascii")
        fields = [
            (name.encode("ascii"), value.encode("latin-1")) for name, value in headers.items()
        ]
    except UnicodeError:
        return None
    if _CONTROL.search(host_bytes) is not None:
        return None  # http.client refuses it (InvalidURL)
    if {name.lower() for name, _ in fields} & _OWN_HEADERS:
        return None  # http.client leaves out or changes its own lines for these
    if ":" in host:
        host_bytes = b"[" + host_bytes + b"]"
    if port != 80:
        host_bytes += b":%d" % port
    first = [(b"Host", host_bytes), (b"Accept-Encoding", b"identity")]
    if body is not None:
        first.append((b"Content-Length", b"%d" % len(body)))
    elif method.upper() in _METHODS_EXPECTING_BODY:
        first.append((b"Content-Length", b"0"))
    return wire.request_bytes(method_bytes, target_bytes, [*first, *fields], body or b"")


def read_answer(sock: Receiver, method: str) -> Answer:
    """Read the answer to ``method`` from ``sock`` (a
    :class:`~tenement.cli.bounds.BoundedSocket` bounds the wait and the size).

    Raises:
        OSError: the connection failed or a wait timed out (``TimeoutError``).
        http.client.HTTPException, ValueError, OverflowError: http.client refused the
            answer, or it ended early.
        AnswerTooLarge: the answer is, or says it is, longer than the limit.
    """
    head_request = method.upper() == "HEAD"
    received = bytearray()
    while True:
        chunk = sock.recv(READ_SIZE)
        received += chunk
        found = wire.parse_whole_response(bytes(received), head_request=head_request)
        if found is not wire.INCOMPLETE or not chunk:
            break
    if found is None and chunk and not head_request:
        # the head may be one wire takes, and only the rest of the body missing
        size = _whole_size(received)
        if size is not None:
            while len(received) < size and (
                chunk := sock.recv(min(size - len(received), 16 * READ_SIZE))
            ):
                received += chunk
            found = wire.parse_whole_response(bytes(received), head_request=False)
    if isinstance(found, wire.WholeResponse) and len(found.headers) <= MAX_HEADERS:
        return Answer(found.status, _reason(received), found.body)
    return _read_by_http_client(bytes(received), sock, method)


def _whole_size(received: bytearray) -> int | None:
    """The size of the whole answer whose head ``received`` starts with, if wire takes
    that head and it gives the body's length (not over :data:`MAX_BODY`)."""
    head = wire.parse_whole_response(bytes(received), head_request=True)
    if not isinstance(head, wire.WholeResponse) or head.status in (204, 304):
        return None
    lengths = [int(value) for name, value in head.headers if name == b"content-length"]
    if len(lengths) != 1 or lengths[0] > MAX_BODY:
        return None
    return received.index(b"\r\n\r\n") + 4 + lengths[0]


def _reason(received: bytearray) -> str:
    """The reason phrase of a status line wire took, as http.client reads it."""
    line = bytes(received[: received.index(b"\r\n")]).decode("iso-8859-1")
    return line[len("HTTP/1.1 200") :].strip()


def _read_by_http_client(received: bytes, sock: Receiver, method: str) -> Answer:
    from tenement.cli import fallback

    answer = fallback.begin(received, sock, method)
    try:
        return Answer(answer.status, answer.reason, fallback.read_body(answer))
    finally:
        answer.close()
