"""HTTP/1.1 messages as bytes, for the proxy's common case, without h11.

A proxied request costs h11 four times: parsing the client's request, writing it to the
tenant, parsing the tenant's answer and writing it to the client, together a large share
of a request's CPU (commit d81dcba has the figures). In the common case the message is
*whole*, and all four are done here. A message is whole when all of it is in the buffer
and it is simple enough to be read here exactly as h11 would read it; a whole request
or answer is written as bytes, in one piece:

- :func:`request_bytes`: a request to a tenant (its parts came out of a parser, h11's or
  :func:`parse_whole_request`, plus the proxy's own ``X-Forwarded-*`` values, and are
  checked again here cheaply);
- :func:`parse_whole_response`: a tenant's answer that is ``HTTP/1.1``, framed by one
  ``Content-Length`` (or has no body by rule), and already whole in the buffer. Anything
  else (chunked, close-delimited, ``1xx``, obs-fold, a header h11 would refuse, a body
  still on its way) is left to h11, which gets the same bytes;
- :func:`response_bytes`: a whole response for a client speaking HTTP/1.1;
- :func:`parsed_request_bytes` and :func:`parsed_response_bytes`: the same for parts
  that one of the parsers here already checked (the express lane's), not checked twice;
- :func:`parse_whole_request`: a client's request that is ``HTTP/1.1``, keeps the
  connection open, has exactly one ``Host``, no body or one framed by one
  ``Content-Length`` and already whole, nothing asking for more than one exchange
  (``Expect``, ``Upgrade``, ``CONNECT``), and only what h11 would accept. Anything else,
  and any doubt, is left to h11 with the same bytes: the client is untrusted, and h11
  decides the framing of every request that is not whole.

The writers check names, values and the target with the rules h11 applies, and return
None for anything they would not write, so the caller can let h11 refuse it with its
own error.

Pure functions; nothing here reads or writes a socket.
"""

from __future__ import annotations

import enum
import http
import re
import time
from collections.abc import Iterable
from typing import Final, NamedTuple

Headers = list[tuple[bytes, bytes]]

#: RFC 9110 token characters: a header name
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
#: a field value, as h11 defines it: visible characters (and obs-text) with single
#: spaces or tabs between them
_VALUE = re.compile(rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?")
#: a request target, as h11 defines it: visible ASCII
_TARGET = re.compile(rb"[\x21-\x7e]+")
#: what may follow ``:`` on a header line read: a value as h11 defines it between optional
#: spaces or tabs. Written as one class (every byte but NUL and the line-breaking
#: whitespace), which matches the same lines as ``[ \t]*`` + :data:`_VALUE` + ``[ \t]*``
#: at less cost in ``re``; the reason phrase of a status line is the same.
_FIELD_REST = rb"[^\x00\n\r\x0b\x0c]*"
#: the same for a client's request, exactly as h11 accepts one: visible ASCII, obs-text,
#: spaces and tabs
_STRICT_FIELD_REST = rb"[\t\x20-\x7e\x80-\xff]*"
_STATUS_LINE = re.compile(rb"HTTP/1\.1 ([1-9][0-9]{2})(?: %s)?" % _FIELD_REST)
#: header lines, each ``name: value`` and CRLF: validated with one match per head
#: rather than two per line (fewer calls into ``re``)
_FIELD_LINES = re.compile(rb"(?:%s:%s\r\n)*" % (_TOKEN.pattern, _FIELD_REST))
#: header lines as written here: exactly ``name: value`` (no padding, as h11 writes)
_WRITTEN_LINES = re.compile(rb"(?:%s: %s\r\n)*" % (_TOKEN.pattern, _VALUE.pattern))
_STRICT_FIELD_LINES = re.compile(rb"(?:%s:%s\r\n)*" % (_TOKEN.pattern, _STRICT_FIELD_REST))
_REQUEST_LINE = re.compile(rb"(%s) (%s) HTTP/1\.1" % (_TOKEN.pattern, _TARGET.pattern))
#: a line feed without its carriage return
_BARE_LF = re.compile(rb"(?<!\r)\n")
#: the largest head read, here and by every h11 and hypercorn connection (h11's default
#: ``max_incomplete_event_size``): a head one parser takes, the others take too
MAX_HEAD = 16 * 1024
#: the largest request body taken whole here; a longer one is streamed (by h11)
MAX_WHOLE_BODY = 64 * 1024


class Incomplete(enum.Enum):
    """The type of :data:`INCOMPLETE` (one member, so that ``is INCOMPLETE`` narrows a
    parser's answer to the rest of its type)."""

    INCOMPLETE = enum.auto()

    def __repr__(self) -> str:
        return "INCOMPLETE"


#: the head is not complete yet: read more
INCOMPLETE: Final = Incomplete.INCOMPLETE

_REASONS = {status.value: status.phrase.encode("ascii") for status in http.HTTPStatus}


def reason_phrase(status: int) -> bytes:
    """``b"Not Found"`` for 404; ``b""`` for a status without a standard phrase."""
    return _REASONS.get(status, b"")


class WholeResponse(NamedTuple):
    """A tenant's complete answer, parsed (a named tuple: one is made per proxied
    request, and a tuple is built faster than a frozen attrs class)."""

    status: int
    #: names lowercased, values without surrounding whitespace, in order
    headers: Headers
    body: bytes
    #: the tenant keeps the connection open, and sent nothing after this answer
    reusable: bool


class WholeRequest(NamedTuple):
    """A client's whole request (see :func:`parse_whole_request`)."""

    method: bytes
    target: bytes
    #: names lowercased, values without surrounding whitespace, in order
    headers: Headers
    host: bytes
    body: bytes
    #: how many bytes of the buffer it took
    length: int


def _head(
    buffer: bytes | bytearray, first_line: re.Pattern[bytes], field_lines: re.Pattern[bytes]
) -> tuple[re.Match[bytes], list[bytes], int] | Incomplete | None:
    """The head at the start of ``buffer`` if its first line matches ``first_line`` and
    its header lines ``field_lines``: that match, the header lines (``name: value``,
    checked; the caller splits each as it reads it), and the head's length in bytes,
    blank line included. :data:`INCOMPLETE` while it is arriving (under
    :data:`MAX_HEAD`); None otherwise."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if _BARE_LF.search(buffer) is not None:
            return None  # a line ended by LF alone: h11 reads those (and ends such heads)
        return INCOMPLETE if len(buffer) <= MAX_HEAD else None
    if end > MAX_HEAD:
        return None
    head = bytes(buffer[: end + 2])
    line_end = head.find(b"\r\n")
    first = first_line.fullmatch(head, 0, line_end)
    if first is None or field_lines.fullmatch(head, line_end + 2) is None:
        return None
    lines = head[line_end + 2 : -2].split(b"\r\n") if end > line_end else []
    return first, lines, end + 4


def parse_whole_request(
    buffer: bytes | bytearray,
) -> WholeRequest | Incomplete | None:
    """The request at the start of ``buffer``, if it is whole.

    Returns:
        a :class:`WholeRequest`; :data:`INCOMPLETE` when it has not all arrived (and
        would still be taken here); None when h11 should read these bytes.
    """
    head = _head(buffer, _REQUEST_LINE, _STRICT_FIELD_LINES)
    if not isinstance(head, tuple):
        return head  # HTTP/1.0, a bare LF, obs-fold, garbage: h11's call; or INCOMPLETE
    first, lines, start = head
    method, target = first[1], first[2]
    if method == b"CONNECT" or not target.startswith(b"/"):
        return None  # a tunnel, an absolute-form or asterisk target: h11's way
    headers: Headers = []
    host: bytes | None = None
    length = 0
    seen_length = False
    for line in lines:  # names lowercased, values without surrounding spaces, as h11's
        name, _, value = line.partition(b":")
        name = name.lower()
        value = value.strip(b" \t")
        if name == b"host":
            if host is not None:
                return None
            host = value
        elif name == b"content-length":
            if seen_length or not value.isdigit():
                return None
            seen_length, length = True, int(value)
        elif name in _LEFT_TO_H11:
            return None
        elif name == b"connection" and b"close" in value.lower():
            return None  # the last request: h11 ends the connection after it
        headers.append((name, value))
    if host is None or length > MAX_WHOLE_BODY:
        return None
    if len(buffer) < start + length:
        return INCOMPLETE
    return WholeRequest(
        method, target, headers, host, bytes(buffer[start : start + length]), start + length
    )


#: request headers that ask for more than one exchange of whole messages
_LEFT_TO_H11 = frozenset({b"transfer-encoding", b"expect", b"upgrade"})


def request_bytes(
    method: bytes, target: bytes, headers: Iterable[tuple[bytes, bytes]], body: bytes
) -> bytes | None:
    """A request head and ``body`` as bytes; None if a part is not valid HTTP/1.1."""
    if _TOKEN.fullmatch(method) is None or _TARGET.fullmatch(target) is None:
        return None
    fields = _fields(headers)
    if fields is None:
        return None
    return b"".join((method, b" ", target, b" HTTP/1.1\r\n", fields, b"\r\n", body))


def parsed_request_bytes(
    method: bytes, target: bytes, headers: Iterable[tuple[bytes, bytes]], body: bytes
) -> bytes:
    """:func:`request_bytes` for parts known valid, not checked again: what
    :func:`parse_whole_request` took (its check is stricter than the writer's), and values
    made of those (``X-Forwarded-*``)."""
    return b"".join((method, b" ", target, b" HTTP/1.1\r\n", _lines(headers), b"\r\n", body))


def _fields(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The header lines, or None if a name is not a token or a value not a field value.

    Checked whole: every name at once (tokens joined are a token), and the lines by
    :data:`_WRITTEN_LINES`, with as many line ends as headers (a CR or LF inside a value
    would add one, or break a line).
    """
    names: list[bytes] = []
    parts: list[bytes] = []
    for name, value in headers:
        names.append(name)
        parts += (name, b": ", value, b"\r\n")
    fields = b"".join(parts)
    if names and _TOKEN.fullmatch(b"".join(names)) is None:
        return None
    if _WRITTEN_LINES.fullmatch(fields) is None or fields.count(b"\n") != len(names):
        return None
    return fields


def parse_whole_response(buffer: bytes, *, head_request: bool) -> WholeResponse | Incomplete | None:
    """The answer at the start of ``buffer``, if it is whole.

    Returns:
        a :class:`WholeResponse`; :data:`INCOMPLETE` when the head has not all arrived
        (and is still under :data:`MAX_HEAD`); None when h11 should handle these bytes.
    """
    head = _head(buffer, _STATUS_LINE, _FIELD_LINES)
    if not isinstance(head, tuple):
        return head  # HTTP/1.0 keep-alive rules, obs-fold, garbage: h11's call; or INCOMPLETE
    first, lines, start = head
    status = int(first[1])
    if status < 200:
        return None  # 1xx: more heads follow
    headers: Headers = []
    length: int | None = None
    reusable = True
    for line in lines:  # names lowercased, values without surrounding spaces, as h11's
        name, _, value = line.partition(b":")
        name = name.lower()
        value = value.strip(b" \t")
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
    if len(buffer) < start + length:
        return None  # the body is still coming: h11 streams it
    if len(buffer) > start + length:
        reusable = False  # bytes nobody asked for: never reuse this connection
    return WholeResponse(status, headers, bytes(buffer[start : start + length]), reusable)


def response_bytes(
    status: int, headers: Iterable[tuple[bytes, bytes]], body: bytes
) -> bytes | None:
    """A whole response with the standard reason phrase; None if a header is not valid."""
    fields = _fields(headers)
    if not 100 <= status <= 999 or fields is None:
        return None
    return b"".join((_status_line(status), fields, b"\r\n", body))


def parsed_response_bytes(
    status: int, headers: Iterable[tuple[bytes, bytes]], body: bytes
) -> bytes:
    """:func:`response_bytes` for a status and headers known valid, not checked again:
    what :func:`parse_whole_response` took, and the server's own (``Date``,
    ``Content-Length``)."""
    return b"".join((_status_line(status), _lines(headers), b"\r\n", body))


def _lines(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The header lines, unchecked."""
    return b"".join([b"%s: %s\r\n" % field for field in headers])


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(seconds: float) -> bytes:
    """``seconds`` since the epoch as a ``Date`` header value (RFC 9110 IMF-fixdate), e.g.
    ``b"Fri, 27 Nov 2026 09:00:00 GMT"``: ``email.utils.formatdate(usegmt=True)``'s
    answer without importing the email package on the way to ``READY=1`` (commit 783a98a
    has its cost)."""
    t = time.gmtime(seconds)
    return b"%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _DAYS[t.tm_wday].encode(),
        t.tm_mday,
        _MONTHS[t.tm_mon - 1].encode(),
        t.tm_year,
        t.tm_hour,
        t.tm_min,
        t.tm_sec,
    )


def _status_line(status: int) -> bytes:
    return _STATUS_LINES.get(status) or _format_status_line(status)


def _format_status_line(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status))


#: the status lines of the standard statuses, made once
_STATUS_LINES = {status: _format_status_line(status) for status in _REASONS}
