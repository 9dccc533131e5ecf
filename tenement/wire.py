"""HTTP/1.1 messages as bytes, for the proxy's common case, without h11.

A proxied request costs h11 four times: parsing the client's request, writing it to the
tenant, parsing the tenant's answer and writing it to the client (measured here: 44, 72
and 45 us of a request's ~700 us of CPU). The request from the client is still parsed by
h11 (it is untrusted and decides the framing of everything after it). The rest is plain
in the common case, and done here:

- :func:`request_bytes`: a request to a tenant (its parts came out of h11's parser, plus
  the proxy's own ``X-Forwarded-*`` values, and are checked again here cheaply);
- :func:`parse_whole_response`: a tenant's answer that is ``HTTP/1.1``, framed by one
  ``Content-Length`` (or has no body by rule), and already whole in the buffer. Anything
  else (chunked, close-delimited, ``1xx``, obs-fold, a header h11 would refuse, a body
  still on its way) is left to h11, which gets the same bytes;
- :func:`response_bytes`: a whole response for a client speaking HTTP/1.1.

The writers check names, values and the target with the rules h11 applies, and return
None for anything they would not write, so the caller can let h11 refuse it with its
own error.

Pure functions; nothing here reads or writes a socket.
"""

from __future__ import annotations

import http
import re
from collections.abc import Iterable

import attrs

Headers = list[tuple[bytes, bytes]]

#: RFC 9110 token characters: a header name
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
#: a field value, as h11 defines it: visible characters (and obs-text) with single
#: spaces or tabs between them
_VALUE = re.compile(rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?")
#: a request target, as h11 defines it: visible ASCII
_TARGET = re.compile(rb"[\x21-\x7e]+")
_STATUS_LINE = re.compile(rb"HTTP/1\.1 ([1-9][0-9]{2})(?: (?:[ \t]|[^\x00\s])*)?")
#: the largest response head parsed here (h11's default limit on an incomplete event)
MAX_HEAD = 16 * 1024

#: the head is not complete yet: read more
INCOMPLETE = object()

_REASONS = {status.value: status.phrase.encode("ascii") for status in http.HTTPStatus}


def reason_phrase(status: int) -> bytes:
    """``b"Not Found"`` for 404; ``b""`` for a status without a standard phrase."""
    return _REASONS.get(status, b"")


@attrs.frozen(slots=True)
class WholeResponse:
    """A tenant's complete answer, parsed."""

    status: int
    #: names lowercased, values without surrounding whitespace, in order
    headers: Headers
    body: bytes
    #: the tenant keeps the connection open, and sent nothing after this answer
    reusable: bool


def request_bytes(
    method: bytes, target: bytes, headers: Iterable[tuple[bytes, bytes]], body: bytes
) -> bytes | None:
    """A request head and ``body`` as bytes; None if a part is not valid HTTP/1.1."""
    if _TOKEN.fullmatch(method) is None or _TARGET.fullmatch(target) is None:
        return None
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    if not _add_fields(parts, headers):
        return None
    parts += (b"\r\n", body)
    return b"".join(parts)


def _add_fields(parts: list[bytes], headers: Iterable[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if _TOKEN.fullmatch(name) is None or _VALUE.fullmatch(value) is None:
            return False
        parts += (name, b": ", value, b"\r\n")
    return True


def parse_whole_response(buffer: bytes, *, head_request: bool) -> WholeResponse | object | None:
    """The answer at the start of ``buffer``, if it is whole and plain.

    Returns:
        a :class:`WholeResponse`; :data:`INCOMPLETE` when the head has not all arrived
        (and is still under :data:`MAX_HEAD`); None when h11 should handle these bytes.
    """
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return INCOMPLETE if len(buffer) <= MAX_HEAD else None
    if end > MAX_HEAD:
        return None
    lines = buffer[:end].split(b"\r\n")
    status_line = _STATUS_LINE.fullmatch(lines[0])
    if status_line is None:
        return None  # HTTP/1.0 keep-alive rules, or garbage: h11's call
    status = int(status_line[1])
    if status < 200:
        return None  # 1xx: more heads follow
    headers: Headers = []
    length: int | None = None
    reusable = True
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or _TOKEN.fullmatch(name) is None:
            return None  # obs-fold, or a bad name
        value = value.strip(b" \t")
        if _VALUE.fullmatch(value) is None:
            return None
        name = name.lower()
        if name == b"content-length":
            if length is not None or not value.isdigit():
                return None  # two lengths (maybe equal, maybe not): h11 decides
            length = int(value)
        elif name == b"transfer-encoding":
            return None
        elif name == b"connection" and b"close" in value.lower():
            reusable = False
        headers.append((name, value))
    if head_request or status in (204, 304):
        length = 0
    elif length is None:
        return None  # delimited by the tenant closing
    start = end + 4
    if len(buffer) < start + length:
        return None  # the body is still coming: h11 streams it
    if len(buffer) > start + length:
        reusable = False  # bytes nobody asked for: never reuse this connection
    return WholeResponse(status, headers, bytes(buffer[start : start + length]), reusable)


def response_bytes(
    status: int, headers: Iterable[tuple[bytes, bytes]], body: bytes
) -> bytes | None:
    """A whole response with the standard reason phrase; None if a header is not valid."""
    parts = [b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status))]
    if not 100 <= status <= 999 or not _add_fields(parts, headers):
        return None
    parts += (b"\r\n", body)
    return b"".join(parts)
