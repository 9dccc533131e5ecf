"""What the HTTP/1.1 front refuses before a request is served or handed on.

Request smuggling lives in the gap between two parsers that frame one message
differently: ours (h11, or ``wire.parse_whole_request``) and a tenant's. So a message
whose framing another parser could read differently is refused here with a 400 and the
connection closed, before any byte reaches a tenant (RFC 9112 §6.3 allows a server to
reject, and §11.2 names the attack):

- ``Content-Length`` together with ``Transfer-Encoding`` (h11 follows the chunked
  framing and ignores the length; a tenant may read the length);
- a header line folded onto the previous one (obs-fold, RFC 9112 §5.2: h11 joins the
  lines, other parsers split or reject them);
- a version other than HTTP/1.0 or HTTP/1.1 (505), except HTTP/2's connection preface,
  which the caller hands to the HTTP/2 server;
- ``CONNECT`` (405): a reverse proxy offers no tunnels, and a tenant's 200 would read
  as an open one;
- a chunk size over :data:`MAX_CHUNK_SIZE` (checked by ``h1_reader`` as the body is
  read): h11 takes any size, and would wait for that much body; llhttp and others
  refuse one that does not fit 64 bits.

A target in absolute form (``GET http://host/path``) is routed by its own authority,
which replaces ``Host`` (RFC 9112 §3.2.2: the server MUST ignore the Host header then):
:func:`origin_form` gives the request a tenant should see.

``Upgrade: h2c`` is not refused but ignored (the request is answered in HTTP/1.1, as
RFC 9110 §7.8 lets a server do): RFC 9113 §3.1 deprecated that upgrade, the reference
ignores it too, and h2's settings in it were an unauthenticated way into a second
protocol stack.

Pure functions over a parsed head: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

#: a line of the head that begins with a space or tab: a folded continuation
_FOLDED = re.compile(rb"\n[ \t]")
#: the largest chunk a request body may announce (a signed 64-bit size, as nginx's)
MAX_CHUNK_SIZE = 2**63 - 1
#: an absolute-form target: scheme, authority, and the rest (path and query)
_ABSOLUTE = re.compile(rb"(?i:https?)://([^/?#]+)([/?][\x21-\x7e]*)?")


class Refusal(NamedTuple):
    """The answer to a request refused at the edge; the connection closes after it."""

    status: int
    reason: str


def refusal(
    method: bytes,
    target: bytes,
    version: bytes,
    headers: Iterable[tuple[bytes, bytes]],
    raw: bytes | bytearray,
) -> Refusal | None:
    """Why the request must be refused, or None to serve it.

    Args:
        method, target, version: the request line as h11 parsed it.
        headers: the headers as h11 parsed them (names lowercase).
        raw: the bytes the head was parsed from (at least the whole head; more may
            follow it), to see what h11 normalised away (folded lines).
    """
    if version not in (b"1.1", b"1.0") and not is_http2_preface(method, target, version):
        return Refusal(505, f"HTTP/{version.decode('ascii', 'replace')} is not supported")
    if method == b"CONNECT":
        return Refusal(405, "CONNECT: this server is not a forward proxy")
    length = chunked = False
    for name, _ in headers:
        if name == b"content-length":
            length = True
        elif name == b"transfer-encoding":
            chunked = True
    if length and chunked:
        return Refusal(400, "Content-Length and Transfer-Encoding together")
    if _FOLDED.search(raw, 0, _head_end(raw)) is not None:
        return Refusal(400, "a folded header line (obs-fold)")
    return None


def origin_form(
    target: bytes, headers: Iterable[tuple[bytes, bytes]]
) -> tuple[bytes, list[tuple[bytes, bytes]]] | Refusal | None:
    """For a target in absolute form, the origin-form target and the headers with
    ``Host`` set to the target's authority; a :class:`Refusal` for an absolute target
    that is not ``http``/``https`` with an authority; None for any other target."""
    if target.startswith(b"/") or target == b"*":
        return None
    match = _ABSOLUTE.fullmatch(target)
    if match is None:
        return Refusal(400, "a request target that is neither a path nor an http(s) URL")
    authority, rest = match[1], match[2] or b"/"
    if rest.startswith(b"?"):
        rest = b"/" + rest
    host = [(b"host", authority)]
    return rest, host + [(name, value) for name, value in headers if name != b"host"]


def is_http2_preface(method: bytes, target: bytes, version: bytes) -> bool:
    """``PRI * HTTP/2.0``: a client speaking HTTP/2 with prior knowledge."""
    return method == b"PRI" and target == b"*" and version == b"2.0"


def ignores_upgrade(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """True when every ``Upgrade`` asks only for ``h2c``, which is ignored (module
    docstring): the request is served as HTTP/1.1 without an upgrade."""
    seen = False
    for name, value in headers:
        if name == b"upgrade":
            seen = True
            tokens = [t.strip().lower() for t in value.split(b",")]
            if any(t != b"h2c" for t in tokens):
                return False
    return seen


def _head_end(raw: bytes | bytearray) -> int:
    """Where the head in ``raw`` ends (its blank line, CRLF or bare LF), or its length."""
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return min(ends) if ends else len(raw)
