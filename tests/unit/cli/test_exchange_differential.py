"""tenement.cli.exchange against http.client, which it stands in for (hypothesis).

Rules:

1. a request :func:`request_bytes` writes is byte for byte what http.client sends for
   the same call (and http.client does not refuse it);
2. any answer, read by :func:`read_answer` from a real socket, gives what
   ``http.client.HTTPResponse`` gives for the same bytes: the same status, reason and
   body, or the same exception with the same message;
3. a whole answer is taken without waiting for the server to close (keep-alive).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
from collections.abc import Iterator, Mapping

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tenement.cli.bounds import AnswerTooLarge
from tenement.cli.exchange import READ_SIZE, read_answer, request_bytes
from tests.http_messages import ENDS, bodies, header_lines, mostly

STATUS_LINES = [b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Not Found", b"HTTP/1.1 409 Conflict"]
ODD_STATUS_LINES = [
    b"HTTP/1.0 200 OK", b"HTTP/1.1 100 Continue", b"HTTP/1.1 200", b"HTTP/1.1 200 ",
    b"HTTP/1.1 200 \tOK \x85", b"HTTP/1.1 99 X", b"HTTP/1.1 2000 X", b"http/1.1 200 OK",
    b"HTTP/1.1 200 O\x00K", b"", b"HTTP/1.1 204 No Content", b"HTTP/1.1 304 Not Modified",
    b"HTTP/1.1 200 \xe9t\xe9", b"HTTP/1.1  200 OK", b"HTTP/1.1 200 OK ", b"ICY 200 OK",
]  # fmt: skip


@st.composite
def answers(draw: st.DrawFn) -> bytes:
    lines = [draw(mostly(STATUS_LINES, ODD_STATUS_LINES, 4))]
    framing, body = draw(bodies())
    lines += draw(st.permutations([*framing, *draw(header_lines())]))
    if draw(st.integers(0, 10)) == 0:
        lines += [b"X-Many-%d: v" % i for i in range(draw(st.integers(98, 102)))]
    ends = [draw(st.sampled_from(ENDS)) for _ in lines]
    return b"".join(line + end for line, end in zip(lines, ends, strict=True)) + b"\r\n" + body


def _outcome(read: object) -> tuple[object, ...]:
    """What reading gave: ("answer", status, reason, body) or ("error", type, message)."""
    try:
        status, reason, content = read()  # type: ignore[operator]
    except (OSError, http.client.HTTPException, ValueError, OverflowError, MemoryError) as exc:
        # ValueError, OverflowError: http.client on a chunk size of -5 or 2**80;
        # MemoryError: http.client allocating a declared size of 2**40
        return ("error", type(exc).__name__, str(exc))
    except AnswerTooLarge:
        return ("too large",)
    return ("answer", status, reason, content)


@contextlib.contextmanager
def _sent(data: bytes, *, close: bool = True) -> Iterator[socket.socket]:
    """A connected socket that receives ``data`` (then end of file, if ``close``)."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(10)
        writer = threading.Thread(target=theirs.sendall, args=(data,))
        writer.start()
        try:
            if close:
                writer.join()
                theirs.shutdown(socket.SHUT_WR)
            yield ours
        finally:
            writer.join()


def _by_http_client(data: bytes, method: str) -> tuple[object, ...]:
    def read() -> tuple[int, str, bytes]:
        with _sent(data) as sock:
            answer = http.client.HTTPResponse(sock, method=method)
            try:
                answer.begin()
                return answer.status, answer.reason, answer.read()
            finally:
                answer.close()

    return _outcome(read)


def _by_exchange(data: bytes, method: str) -> tuple[object, ...]:
    def read() -> tuple[int, str, bytes]:
        with _sent(data) as sock:
            return tuple(read_answer(sock, method))  # type: ignore[return-value]

    return _outcome(read)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers(), st.sampled_from(["GET", "POST", "DELETE", "HEAD"]))
@example(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n[1,", "GET")  # cut short
@example(b"", "GET")  # the server hung up
@example(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n[]", "GET")
@example(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]extra", "GET")
@example(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", "POST")
@example(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n0\r\n\r\n", "GET")
@example(b"HTTP/1.1 200 OK\r\n\r\nclose-delimited", "GET")
@example(b"HTTP/1.1 200 OK\r\n" + b"X: v\r\n" * 100 + b"Content-Length: 0\r\n\r\n", "GET")
def test_answers_read_as_http_client_reads_them(data: bytes, method: str) -> None:
    ours = _by_exchange(data, method)
    if ours == ("too large",):
        # a declared size over the limit, refused before reading; these bodies are
        # short, so http.client fails too (short read, or the size is too big for it)
        assert _by_http_client(data, method)[0] == "error"
    else:
        assert ours == _by_http_client(data, method)


def test_a_long_body_and_one_longer_than_a_read(tmp_path: object) -> None:
    for size in (READ_SIZE - 100, READ_SIZE * 3 + 7):
        body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        data = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        assert _by_exchange(data, "GET") == ("answer", 200, "OK", body)


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]",
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (READ_SIZE * 2, b"y" * READ_SIZE * 2),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n0\r\n\r\n",
    ],
)
def test_a_whole_answer_is_taken_while_the_server_keeps_the_connection(data: bytes) -> None:
    with _sent(data, close=False) as sock:
        status, _reason, content = read_answer(sock, "GET")  # a wait would time out (10 s)
    assert status == 200
    assert content in (b"[]", b"y" * READ_SIZE * 2)


def _sent_by_http_client(
    method: str, target: str, host: str, port: int, headers: Mapping[str, str], body: bytes | None
) -> bytes | str:
    """The bytes http.client writes for the request, or the error it refuses it with."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        try:
            connection = http.client.HTTPConnection(host, port)
            connection.sock = ours
            connection.request(method, target, body=body, headers=dict(headers))
        except (ValueError, UnicodeError, http.client.HTTPException) as exc:
            return f"{type(exc).__name__}: {exc}"
        ours.shutdown(socket.SHUT_WR)
        sent = b""
        while chunk := theirs.recv(65536):
            sent += chunk
        return sent


HEADER_VALUES = st.sampled_from(
    ["Bearer secret", "", "a b", "*/*", "ten/0.3.0", "a\r\nX-Injected: 1", "a\nb", "a\rb",
     "a\r\n b", "caf\xe9", "\u20ac", "a\x00b", " padded ", "a\tb", "\x7f"]
)  # fmt: skip
HEADER_NAMES = st.sampled_from(
    ["Authorization", "Accept", "User-Agent", "Content-Type", "X A", "X:A", "Host", "", "\xe9"]
)


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH", "G T", "\xe9"]),
    target=st.sampled_from(["/api/instances", "/a?b=c%20d", "/a b", "/\xe9", "/\x00", "/x\r\n"]),
    host=st.sampled_from(["127.0.0.1", "localhost", "::1", "h\xe9", "a b"]),
    port=st.sampled_from([80, 8080]),
    headers=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=4),
    body=st.none() | st.binary(max_size=20),
)
def test_requests_are_what_http_client_sends(
    method: str,
    target: str,
    host: str,
    port: int,
    headers: dict[str, str],
    body: bytes | None,
) -> None:
    written = request_bytes(method, target, host, port, headers, body)
    if written is not None:
        assert _sent_by_http_client(method, target, host, port, headers, body) == written


def test_the_usual_request_is_written_here() -> None:
    headers = {"Authorization": "Bearer t", "Accept": "*/*", "User-Agent": "ten/1"}
    assert request_bytes("POST", "/api/x", "127.0.0.1", 8080, headers, b"{}") == (
        b"POST /api/x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept-Encoding: identity\r\n"
        b"Content-Length: 2\r\nAuthorization: Bearer t\r\nAccept: */*\r\nUser-Agent: ten/1"
        b"\r\n\r\n{}"
    )
