"""The express lane's parser against two others, on generated requests (hypothesis).

The same bytes go to (a) ``tenement.wire.parse_whole_request`` (the express lane), (b)
h11 as the server configures it (``h1.py``: ``max_incomplete_event_size=16384``) and (c)
httptools (llhttp, the parser of most other Python servers). The messages are valid and
near-valid HTTP/1.1: mixes of Content-Length and Transfer-Encoding, duplicate headers,
odd whitespace, obs-fold, bare LF, odd chunk sizes, methods and targets, NULs, long heads.

Rules:

1. whenever the express lane takes a request (a ``WholeRequest``), h11 accepts the same
   message with the same method, target, headers, body and length, and llhttp agrees on
   where the body starts and ends (unless it refuses the head, for a listed reason);
2. the express lane waits for more (``INCOMPLETE``) only when h11 would too: a message
   h11 could already answer (or refuse) must not sit until the keep-alive time runs out;
3. h11 and llhttp frame every message the same (accepted or not, method, target, headers,
   body, length), except where :data:`FOLLOWING_H11` says why the server follows h11.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import h11
import httptools
from hypothesis import HealthCheck, example, given, settings

from tenement.wire import INCOMPLETE, MAX_HEAD, WholeRequest, parse_whole_request
from tests.http_messages import requests

# ---- what each parser makes of the bytes ----------------------------------------------------


@attrs.frozen
class Framing:
    """One parser's reading of the first message in a buffer."""

    #: "ok" (a whole message), "incomplete" (needs more bytes) or "error"
    outcome: str
    method: bytes = b""
    target: bytes = b""
    #: names lowercased, values as the parser gives them
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    #: bytes of the buffer the message took
    length: int = 0
    #: the parser's reason, for an error
    reason: str = ""

    def frame(self) -> tuple[str, bytes, bytes, bytes, int]:
        return (self.outcome, self.method, self.target, self.body, self.length)


def by_h11(data: bytes) -> Framing:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    conn.receive_data(data)
    request = None
    body = b""
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return Framing("incomplete")
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                return Framing("error", reason=repr(event))
    except h11.RemoteProtocolError as exc:
        return Framing("error", reason=str(exc))
    assert request is not None
    trailing, _ = conn.trailing_data
    return Framing(
        "ok",
        request.method,
        request.target,
        tuple((n, v) for n, v in request.headers),
        body,
        len(data) - len(trailing),
    )


class _Collect:
    """httptools callbacks: the first message only."""

    def __init__(self) -> None:
        self.parser: httptools.HttpRequestParser | None = None
        self.method = b""
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.head_done = False
        self.complete = False

    def on_url(self, url: bytes) -> None:
        if not self.complete:
            self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.head_done:  # after the head: a chunked body's trailer fields
            self.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        if not self.complete:
            self.body += body

    def on_headers_complete(self) -> None:
        self.head_done = True
        if not self.complete and self.parser is not None:
            self.method = self.parser.get_method()

    def on_message_complete(self) -> None:
        self.complete = True


def _llhttp_prefix(data: bytes) -> tuple[_Collect, str]:
    collect = _Collect()
    parser = httptools.HttpRequestParser(collect)
    collect.parser = parser
    error = ""
    try:
        parser.feed_data(data)
    except httptools.HttpParserUpgrade:
        pass  # the message is complete; what follows is another protocol
    except httptools.HttpParserError as exc:
        error = str(exc) or type(exc).__name__
    return collect, error


def by_llhttp(data: bytes) -> Framing:
    collect, error = _llhttp_prefix(data)
    if not collect.complete:
        return Framing("error", reason=error) if error else Framing("incomplete")
    # llhttp says where the message ended only by completing it: the shortest prefix
    # that completes it (completion is monotonic in the prefix)
    low, high = 0, len(data)
    while low < high:
        middle = (low + high) // 2
        if _llhttp_prefix(data[:middle])[0].complete:
            high = middle
        else:
            low = middle + 1
    return Framing(
        "ok",
        collect.method,
        collect.url,
        tuple(collect.headers),
        collect.body,
        high,
    )


def by_wire(data: bytes) -> Framing:
    request = parse_whole_request(data)
    if request is INCOMPLETE:
        return Framing("incomplete")
    if not isinstance(request, WholeRequest):
        return Framing("error", reason="left to h11")
    return Framing(
        "ok",
        request.method,
        request.target,
        (*request.headers,),
        request.body,
        request.length,
    )


# ---- deliberate differences ---------------------------------------------------------------------


@attrs.frozen
class Difference:
    """Where h11 and llhttp disagree by design, and the server follows h11."""

    name: str
    #: why following h11 is right
    reason: str
    #: whether this difference explains what the two parsers made of these bytes
    applies: Callable[[bytes, Framing, Framing], bool]
    #: it may explain two parsers that both took a message yet framed it apart; else only
    #: one taking what the other refuses (or still waits on)
    framing: bool = False


def _lines(data: bytes) -> list[bytes]:
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    return head.replace(b"\r\n", b"\n").split(b"\n")


def _fields(data: bytes) -> list[tuple[bytes, bytes]]:
    out = []
    for line in _lines(data)[1:]:
        name, _, value = line.partition(b":")
        out.append((name.strip().lower(), value))
    return out


def _version(data: bytes) -> bytes:
    return _lines(data)[0].rsplit(b" ", 1)[-1]


def _no_host(data: bytes, h: Framing, ll: Framing) -> bool:
    hosts = [n for n, _ in _fields(data) if n == b"host"]
    return h.outcome == "error" and "Host" in h.reason and len(hosts) != 1


def _http10(data: bytes, h: Framing, ll: Framing) -> bool:
    return _version(data) == b"HTTP/1.0"


def _obs_fold(data: bytes, h: Framing, ll: Framing) -> bool:
    return any(line[:1] in (b" ", b"\t") for line in _lines(data)[1:])


def _te_and_cl(data: bytes, h: Framing, ll: Framing) -> bool:
    names = [n for n, _ in _fields(data)]
    return b"transfer-encoding" in names and b"content-length" in names


def _te_not_chunked(data: bytes, h: Framing, ll: Framing) -> bool:
    return h.outcome == "error" and "Transfer-Encoding" in h.reason


def _same_lengths(data: bytes, h: Framing, ll: Framing) -> bool:
    values = [v for n, v in _fields(data) if n == b"content-length"]
    return len(values) > 1 or any(b"," in v for v in values)


def _whitespace_in_value(data: bytes, h: Framing, ll: Framing) -> bool:
    """Same framing, headers differ only in the whitespace around or inside values."""
    if h.frame() != ll.frame():
        return False

    def norm(headers: tuple[tuple[bytes, bytes], ...]) -> list[tuple[bytes, bytes]]:
        return [(n, b" ".join(v.split())) for n, v in headers]

    return norm(h.headers) == norm(ll.headers)


def _lenient_llhttp(data: bytes, h: Framing, ll: Framing) -> bool:
    """llhttp accepts what h11 refuses, in the head: the server refuses it too (h11's 400)."""
    return h.outcome == "error" and ll.outcome in ("ok", "incomplete")


def _strict_llhttp(data: bytes, h: Framing, ll: Framing) -> bool:
    """llhttp refuses what h11 accepts: NULs or control bytes in values, odd methods or
    targets, spaces in names... h11's grammar is RFC 9110's; llhttp's stricter."""
    return ll.outcome == "error" and h.outcome in ("ok", "incomplete")


def _long_head(data: bytes, h: Framing, ll: Framing) -> bool:
    return h.outcome == "error" and "exceeded" in h.reason


def _bare_lf(data: bytes, h: Framing, ll: Framing) -> bool:
    head = data.split(b"\r\n\r\n", 1)[0]
    return b"\n" in head.replace(b"\r\n", b"")


def _judged_whole(data: bytes, h: Framing, ll: Framing) -> bool:
    return h.outcome == "incomplete" and ll.outcome == "error"


def _request_line(data: bytes) -> list[bytes]:
    return _lines(data)[0].split(b" ")


def _method_unknown_to_llhttp(data: bytes, h: Framing, ll: Framing) -> bool:
    known = {b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT"}
    return ll.outcome == "error" and _request_line(data)[0] not in known


def _other_version(data: bytes, h: Framing, ll: Framing) -> bool:
    return _version(data) not in (b"HTTP/1.0", b"HTTP/1.1")


def _not_origin_form(data: bytes, h: Framing, ll: Framing) -> bool:
    parts = _request_line(data)
    return len(parts) > 1 and not parts[1].startswith(b"/")


def _upgrade(data: bytes, h: Framing, ll: Framing) -> bool:
    fields = _fields(data)
    return any(n == b"upgrade" for n, _ in fields) and any(
        n == b"connection" and b"upgrade" in v.lower() for n, v in fields
    )


def _connect(data: bytes, h: Framing, ll: Framing) -> bool:
    return _request_line(data)[0] == b"CONNECT"


def _control_bytes(data: bytes, h: Framing, ll: Framing) -> bool:
    head = data.split(b"\r\n\r\n", 1)[0]
    return any((b < 0x20 and b not in (9, 10, 13)) or b == 0x7F for b in head)


def _bare_cr(data: bytes, h: Framing, ll: Framing) -> bool:
    return b"\r" in data.replace(b"\r\n", b"")


def _empty_target(data: bytes, h: Framing, ll: Framing) -> bool:
    return h.outcome == "error" and b"  " in _lines(data)[0]


#: h11 and llhttp may differ only here (and the server follows h11 for the reason given)
FOLLOWING_H11 = [
    Difference(
        "HTTP/1.1 without exactly one Host",
        "RFC 9112 3.2: a server MUST answer 400; llhttp leaves it to the application",
        _no_host,
    ),
    Difference(
        "HTTP/1.0",
        "keep-alive and framing rules differ in detail; it is never on the express lane",
        _http10,
    ),
    Difference(
        "obs-fold",
        "RFC 9112 5.2: a server may replace each fold by a space (h11 does); llhttp joins or "
        "refuses; never on the express lane",
        _obs_fold,
        framing=True,
    ),
    Difference(
        "Transfer-Encoding with Content-Length",
        "RFC 9112 6.3: Transfer-Encoding wins (h11) or the request is refused; llhttp "
        "refuses it; the proxy must never forward the Content-Length (finding 2)",
        _te_and_cl,
        framing=True,
    ),
    Difference(
        "a coding other than chunked",
        "h11 refuses every Transfer-Encoding but chunked (501); llhttp may read until close",
        _te_not_chunked,
    ),
    Difference(
        "repeated equal Content-Length values",
        "RFC 9110 8.6: a recipient MAY take identical values as one (h11 does); never on "
        "the express lane, which takes only one plain value",
        _same_lengths,
        framing=True,
    ),
    Difference(
        "whitespace inside and around values",
        "h11 strips the surrounding OWS and keeps the inside; llhttp may keep a tab or fold",
        _whitespace_in_value,
        framing=True,
    ),
    Difference(
        "bare LF line ends",
        "RFC 9112 2.2: a recipient MAY take a bare LF as a line end (h11 does in the head)",
        _bare_lf,
    ),
    Difference(
        "bare CR",
        "h11 waits for CRLF (and the head limit or keep-alive time ends it) or refuses the "
        "line; llhttp refuses at once",
        _bare_cr,
    ),
    Difference(
        "a head judged only once whole",
        "h11 checks a head when its blank line is in (or at the 16 KiB limit); llhttp as it "
        "reads: the same request is refused, later",
        _judged_whole,
    ),
    Difference(
        "a method llhttp does not know",
        "RFC 9110 9.1: a method is any token, case-sensitive (h11); llhttp knows a list; "
        "an unknown method is forwarded and the tenant answers 405 or 501",
        _method_unknown_to_llhttp,
    ),
    Difference(
        "a version other than HTTP/1.0 and HTTP/1.1",
        "RFC 9112 2.3: HTTP/1.x is read as the highest 1.x the server knows (h11 takes any "
        "HTTP/d.d); llhttp refuses",
        _other_version,
    ),
    Difference(
        "a target not in origin-form",
        "absolute-form, authority-form and * are RFC 9112 3.2 grammar h11 takes for any "
        "method; llhttp refuses some per method. Which target reaches a tenant is the "
        "proxy's concern (tests/integration/adversary), not the parser's",
        _not_origin_form,
    ),
    Difference(
        "CONNECT",
        "llhttp stops at a CONNECT head (a tunnel follows); h11 frames it as any request; "
        "the server never serves CONNECT itself: it goes to hypercorn",
        _connect,
        framing=True,
    ),
    Difference(
        "an upgrade",
        "llhttp stops at a head that asks to upgrade; h11 frames it as any request; the "
        "server hands every Upgrade to hypercorn",
        _upgrade,
        framing=True,
    ),
    Difference(
        "control bytes in the head",
        "RFC 9110 5.5: a recipient may keep CTLs in a value (h11 takes all but NUL, CR, LF); "
        "llhttp refuses; the express lane takes none (tenement/wire.py)",
        _control_bytes,
    ),
    Difference(
        "an empty target",
        "h11 refuses a request line with two spaces; llhttp takes an empty target",
        _empty_target,
    ),
    Difference(
        "a head over 16 KiB",
        "h1.py's limit (h11's max_incomplete_event_size); llhttp has none of its own",
        _long_head,
    ),
]


def explained(data: bytes, h: Framing, ll: Framing) -> list[str]:
    both = h.outcome == ll.outcome == "ok"
    return [d.name for d in FOLLOWING_H11 if (d.framing or not both) and d.applies(data, h, ll)]


# ---- the rules ---------------------------------------------------------------------------------


def check_express_lane(data: bytes) -> None:
    """Rule 1."""
    wire = by_wire(data)
    if wire.outcome != "ok":
        return
    h, ll = by_h11(data), by_llhttp(data)
    assert h.outcome == "ok", ("the express lane took what h11 refuses", data, h)
    assert wire.frame() == h.frame(), ("express lane and h11 frame it apart", data, wire, h)
    assert wire.headers == h.headers, ("express lane and h11 read headers apart", data, wire, h)
    if ll.outcome != "ok":  # refused for its head (a listed reason): no bounds to compare
        assert explained(data, h, ll), ("the express lane took what llhttp refuses", data, ll)
        return
    assert (ll.body, ll.length) == (wire.body, wire.length), ("body bounds differ", data, ll)


def check_waiting(data: bytes) -> None:
    """Rule 2."""
    if by_wire(data).outcome == "incomplete":
        h = by_h11(data)
        assert h.outcome == "incomplete", ("the express lane waits on what h11 has", data, h)


def check_h11_and_llhttp(data: bytes) -> None:
    """Rule 3."""
    h, ll = by_h11(data), by_llhttp(data)
    if h.outcome == ll.outcome == "error" or h == ll:
        return
    assert explained(data, h, ll), ("h11 and llhttp disagree, for no listed reason", data, h, ll)


SMUGGLING = b"POST / HTTP/1.1\r\nHost: a.test\r\n"


BUDGET = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
#: the findings of the attack on the front, and other classics, tried first every time
KNOWN = [
    b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n",
    SMUGGLING + b"Content-Length: 5\r\n\r\nabcdeGET / HTTP/1.1\r\n\r\n",
    SMUGGLING + b"Content-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    SMUGGLING + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
    SMUGGLING + b"Content-Length: +5\r\n\r\nabcde",
    SMUGGLING + b"Content-Length:  5,5\r\n\r\nabcde",
    SMUGGLING + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    SMUGGLING + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
    SMUGGLING + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    SMUGGLING + b"Transfer-Encoding: chunked\r\n\r\n0x5\r\nabcde\r\n0\r\n\r\n",
    SMUGGLING + b"Content-Length : 5\r\n\r\nabcde",
    b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A: a\x00b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: host\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
]


def with_known(test: Callable[[bytes], None]) -> Callable[[bytes], None]:
    for data in KNOWN:
        test = example(data)(test)
    return test


@BUDGET
@given(requests())
@with_known
def test_the_express_lane_takes_only_what_h11_and_llhttp_frame_alike(data: bytes) -> None:
    check_express_lane(data)


@BUDGET
@given(requests())
@with_known
def test_the_express_lane_waits_only_when_h11_would(data: bytes) -> None:
    check_waiting(data)


@BUDGET
@given(requests())
@with_known
def test_h11_and_llhttp_differ_only_where_listed(data: bytes) -> None:
    check_h11_and_llhttp(data)


def test_bare_lf_is_not_left_waiting_by_the_express_lane() -> None:
    """Finding 6 as rule 2 sees it: h11 has the whole request; the express lane waits."""
    check_waiting(b"GET / HTTP/1.1\nHost: a.test\n\n")


def test_every_listed_difference_says_why() -> None:
    assert all(d.reason and d.name for d in FOLLOWING_H11)
    assert len({d.name for d in FOLLOWING_H11}) == len(FOLLOWING_H11)
