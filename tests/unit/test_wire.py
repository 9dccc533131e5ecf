"""tenement.wire: whole HTTP/1.1 messages as bytes, and what it leaves to h11."""

from __future__ import annotations

import email.utils
import random

import h11
import pytest

from tenement.wire import (
    INCOMPLETE,
    MAX_HEAD,
    MAX_WHOLE_BODY,
    WholeRequest,
    WholeResponse,
    http_date,
    parse_whole_request,
    parse_whole_response,
    parsed_request_bytes,
    parsed_response_bytes,
    request_bytes,
    response_bytes,
)

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"


def test_a_whole_answer_is_parsed() -> None:
    assert parse_whole_response(OK, head_request=False) == WholeResponse(
        200, [(b"content-type", b"text/plain"), (b"content-length", b"3")], b"ok\n", True
    )


def test_values_lose_surrounding_whitespace_and_the_reason_may_be_empty() -> None:
    answer = parse_whole_response(
        b"HTTP/1.1 404\r\nX-A:  a b \t\r\nContent-Length: 0\r\n\r\n", head_request=False
    )
    assert answer == WholeResponse(404, [(b"x-a", b"a b"), (b"content-length", b"0")], b"", True)


@pytest.mark.parametrize("cut", [0, 1, 10, OK.index(b"\r\n\r\n") + 3])
def test_a_head_still_arriving_is_incomplete(cut: int) -> None:
    assert parse_whole_response(OK[:cut], head_request=False) is INCOMPLETE


def test_a_head_over_the_limit_is_left_to_h11() -> None:
    assert (
        parse_whole_response(b"HTTP/1.1 200 OK\r\nX: " + b"a" * MAX_HEAD, head_request=False)
        is None
    )
    long_head = b"HTTP/1.1 200 OK\r\nX: " + b"a" * MAX_HEAD + b"\r\nContent-Length: 0\r\n\r\n"
    assert parse_whole_response(long_head, head_request=False) is None


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(OK[:-1], id="body-still-coming"),
        pytest.param(OK.replace(b"HTTP/1.1", b"HTTP/1.0"), id="http-1.0"),
        pytest.param(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK, id="informational"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nok\n\r\n0\r\n\r\n",
            id="chunked",
        ),
        pytest.param(b"HTTP/1.1 200 OK\r\n\r\nuntil close", id="close-delimited"),
        pytest.param(
            OK.replace(b"Content-Length: 3", b"Content-Length: 3\r\nContent-Length: 3"),
            id="two-lengths",
        ),
        pytest.param(OK.replace(b"Content-Length: 3", b"Content-Length: +3"), id="signed-length"),
        pytest.param(
            OK.replace(b"Content-Type: text/plain", b"Content-Type: text/plain\r\n more"),
            id="obs-fold",
        ),
        pytest.param(OK.replace(b"Content-Type", b"Content Type"), id="bad-name"),
        pytest.param(OK.replace(b"text/plain", b"text/\x00plain"), id="nul-in-value"),
        pytest.param(OK.replace(b"text/plain", b"text\rplain"), id="bare-cr-in-value"),
        pytest.param(b"garbage\r\n\r\n", id="not-http"),
        pytest.param(OK.replace(b" OK", b" O\x0bK"), id="control-in-reason"),
    ],
)
def test_any_answer_not_whole_is_left_to_h11(answer: bytes) -> None:
    assert parse_whole_response(answer, head_request=False) is None


def test_no_body_by_rule_for_head_204_and_304() -> None:
    head = parse_whole_response(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", head_request=True)
    assert isinstance(head, WholeResponse) and head.body == b"" and head.reusable
    for status in (b"204 No Content", b"304 Not Modified"):
        answer = parse_whole_response(b"HTTP/1.1 " + status + b"\r\n\r\n", head_request=False)
        assert isinstance(answer, WholeResponse) and answer.body == b""


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(
            OK.replace(b"\r\n\r\n", b"\r\nConnection: keep-alive, Close\r\n\r\n"), id="close"
        ),
        pytest.param(OK + b"HTTP/1.1 200 OK\r\n", id="bytes-after-the-answer"),
    ],
)
def test_when_the_connection_may_not_be_reused(answer: bytes) -> None:
    parsed = parse_whole_response(answer, head_request=False)
    assert isinstance(parsed, WholeResponse) and parsed.body == b"ok\n"
    assert not parsed.reusable


def test_request_bytes() -> None:
    data = request_bytes(b"GET", b"/a?b=c", [(b"host", b"x.example"), (b"x-e", b"")], b"")
    assert data == b"GET /a?b=c HTTP/1.1\r\nhost: x.example\r\nx-e: \r\n\r\n"
    post = request_bytes(b"POST", b"/", [(b"content-length", b"2")], b"hi")
    assert post == b"POST / HTTP/1.1\r\ncontent-length: 2\r\n\r\nhi"


@pytest.mark.parametrize(
    ("method", "target", "headers"),
    [
        (b"GET", b"/a b", []),
        (b"GET", "/é".encode(), []),  # h11 wants targets in visible ASCII
        (b"GET", b"", []),
        (b"G?T", b"/", []),
        (b"GET", b"/", [(b"x", b"a\r\nInjected: yes")]),
        (b"GET", b"/", [(b"x y", b"a")]),
        (b"GET", b"/", [(b"x", b" padded")]),
    ],
)
def test_request_parts_h11_would_refuse_are_not_written(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    assert request_bytes(method, target, headers, b"") is None


def test_response_bytes() -> None:
    assert response_bytes(404, [(b"content-length", b"0")], b"") == (
        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
    )
    assert response_bytes(599, [], b"x") == b"HTTP/1.1 599 \r\n\r\nx"
    assert response_bytes(200, [(b"x", b"a\nb")], b"") is None
    assert response_bytes(1000, [], b"") is None


# ---- a client's request (the express lane) ------------------------------------------

GET = b"GET /a?b=1 HTTP/1.1\r\nHost: alice.notes.example.test\r\nAccept:  */* \r\n\r\n"


def test_a_whole_request_is_parsed_with_what_follows_left() -> None:
    assert parse_whole_request(GET + b"GET /next") == WholeRequest(
        method=b"GET",
        target=b"/a?b=1",
        headers=[(b"host", b"alice.notes.example.test"), (b"accept", b"*/*")],
        host=b"alice.notes.example.test",
        body=b"",
        length=len(GET),
    )
    post = b"POST / HTTP/1.1\r\nhost: h\r\ncontent-length: 5\r\n\r\nhello"
    parsed = parse_whole_request(post + b"GET")
    assert isinstance(parsed, WholeRequest)
    assert (parsed.body, parsed.length) == (b"hello", len(post))


def test_h11_reads_the_same_request() -> None:
    parsed = parse_whole_request(GET)
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(GET)
    event = conn.next_event()
    assert isinstance(parsed, WholeRequest) and isinstance(event, h11.Request)
    assert (parsed.method, parsed.target, parsed.headers) == (
        event.method,
        event.target,
        list(event.headers),
    )


@pytest.mark.parametrize("cut", [0, 10, len(GET) - 1])
def test_a_request_still_arriving_is_incomplete(cut: int) -> None:
    assert parse_whole_request(GET[:cut]) is INCOMPLETE
    body = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhel"
    assert parse_whole_request(body) is INCOMPLETE


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(b"GET / HTTP/1.0\r\nHost: h\r\n\r\n", id="http-1.0"),
        pytest.param(b"GET / HTTP/1.1\r\n\r\n", id="no-host"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", id="two-hosts"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: h\r\n x: folded\r\n\r\n", id="obs-fold"),
        pytest.param(b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", id="space-before-colon"),
        pytest.param(b"GET / HTTP/1.1\nHost: h\r\n\r\n", id="bare-lf"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n", id="control-char"),
        pytest.param(b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", id="two-spaces"),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
            id="two-lengths",
        ),
        pytest.param(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\nx", id="signed"),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            id="chunked",
        ),
        pytest.param(b"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n", id="expect"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n", id="upgrade"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", id="close"),
        pytest.param(b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", id="connect"),
        pytest.param(
            b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"x" * MAX_HEAD + b"\r\n\r\n", id="long-head"
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % (MAX_WHOLE_BODY + 1),
            id="long-body",
        ),
    ],
)
def test_a_request_that_is_not_whole_is_left_to_h11(request_: bytes) -> None:
    assert parse_whole_request(request_) is None


def test_a_head_with_no_end_over_the_limit_is_left_to_h11() -> None:
    assert parse_whole_request(b"GET / HTTP/1.1\r\nX: " + b"x" * MAX_HEAD) is None


# ---- writing what the parsers took, unchecked --------------------------------------

PARSED_REQUESTS = [
    GET,
    b"POST /p HTTP/1.1\r\nhost: h\r\ncontent-length: 5\r\nx-e:\r\n\r\nhello",
    b"GET / HTTP/1.1\r\nHost: h\r\nX-Obs: caf\xe9 \t au lait\r\n\r\n",
]
PARSED_ANSWERS = [
    OK,
    b"HTTP/1.1 404\r\nX-A:  a b \t\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 299 Whatever\r\nX-Obs: \xff\r\nContent-Length: 1\r\n\r\nx",
]


@pytest.mark.parametrize("request_", PARSED_REQUESTS)
def test_a_parsed_request_is_written_as_the_checking_writer_writes_it(request_: bytes) -> None:
    parsed = parse_whole_request(request_)
    assert isinstance(parsed, WholeRequest)
    parts = (parsed.method, parsed.target, parsed.headers, parsed.body)
    checked = request_bytes(*parts)
    assert checked is not None
    assert parsed_request_bytes(*parts) == checked


@pytest.mark.parametrize("answer", PARSED_ANSWERS)
def test_a_parsed_answer_is_written_as_the_checking_writer_writes_it(answer: bytes) -> None:
    parsed = parse_whole_response(answer, head_request=False)
    assert isinstance(parsed, WholeResponse)
    parts = (parsed.status, [*parsed.headers, (b"date", b"Fri, 27 Nov 2026 07:00:00 GMT")])
    checked = response_bytes(*parts, parsed.body)
    assert checked is not None
    assert parsed_response_bytes(*parts, parsed.body) == checked


@pytest.mark.parametrize(
    "seconds", [0, 951782400, 1_700_000_000, 1_798_329_600, 4_102_444_799, 1_795_772_345.9]
)
def test_http_date_is_what_email_utils_writes(seconds: float) -> None:
    assert http_date(seconds) == email.utils.formatdate(seconds, usegmt=True).encode()


#: bytes that make header lines interesting: token characters, separators, the spaces
#: h11 strips, the whitespace it refuses, NUL, controls, DEL and obs-text
_FUZZ_BYTES = [b"a", b"Z", b"-", b":", b" ", b"\t", b"\r", b"\n", b"\x00", b"\x01", b"\x0b"]
_FUZZ_BYTES += [b"\x0c", b"\x7f", b"\x80", b"\xff", b"(", b"/", b"\r\n"]
#: ... and the plain bytes most values are made of, so that many heads are taken
_PLAIN_BYTES = [b"a", b"Z", b"-", b":", b" ", b"/", b"1"]


def _fuzzed_lines(rng: random.Random) -> bytes:
    lines = []
    for _ in range(rng.randint(1, 3)):
        name = rng.choice([b"x-a", b"X-B", b"Accept", b"x-c", b"x b", b"", b"x:y", b"\tx"])
        pool = _PLAIN_BYTES if rng.random() < 0.5 else _FUZZ_BYTES
        value = b"".join(rng.choice(pool) for _ in range(rng.randint(0, 6)))
        lines.append(name + b":" + value + b"\r\n")
    return b"".join(lines)


def _h11_headers(role: type[h11._util.Sentinel], data: bytes) -> list[tuple[bytes, bytes]] | None:
    conn = h11.Connection(role)
    if role is h11.CLIENT:
        conn.send(h11.Request(method="GET", target="/", headers=[("host", "a")]))
        conn.send(h11.EndOfMessage())
    conn.receive_data(data)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return None
    return [(name, value) for name, value in event.headers]  # type: ignore[union-attr]


@pytest.mark.parametrize("seed", range(4))
def test_whatever_the_parsers_take_h11_reads_the_same(seed: int) -> None:
    """The header grammar here is h11's (without obs-fold): a head taken here has the
    headers h11 reads from the same bytes, and one it refuses is never taken here."""
    rng = random.Random(seed)
    taken = 0
    for _ in range(3000):
        lines = _fuzzed_lines(rng)
        reason = b"".join(rng.choice(_FUZZ_BYTES) for _ in range(rng.randint(0, 2)))
        answer = b"HTTP/1.1 200" + reason + b"\r\n" + lines + b"Content-Length: 0\r\n\r\n"
        parsed = parse_whole_response(answer, head_request=False)
        if isinstance(parsed, WholeResponse):
            taken += 1
            assert parsed.headers == _h11_headers(h11.CLIENT, answer), answer
        request = b"GET / HTTP/1.1\r\nHost: a\r\n" + lines + b"\r\n"
        parsed_request = parse_whole_request(request)
        if isinstance(parsed_request, WholeRequest):
            taken += 1
            expected = _h11_headers(h11.SERVER, request)
            assert expected is not None, request
            assert parsed_request.headers == expected, request
    assert taken > 500  # the fuzzing reaches heads that are taken, not only refusals
