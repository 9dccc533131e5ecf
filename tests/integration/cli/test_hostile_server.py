"""The CLI against servers that attack it: every case ends in one ``Error:`` line, exit 1,
in bounded time and memory (no traceback, no hang, no terminal escape printed).

Each peer is a one-shot TCP server on a thread that reads the request head and then
misbehaves, writing until the client hangs up. ``via="proxy"`` names the peer as an
http proxy, so that the answer is read by the http.client path instead of
:mod:`tenement.cli.exchange`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tenement.cli.client import ApiClient, ClientError, Token
from tests.integration.cli.live import Outcome, invoke

TOKEN = Token("secret", "--token")
MIB = b"x" * (1 << 20)
Behaviour = Callable[[socket.socket, threading.Event], None]


class Hostile:
    """A listening socket whose first connection gets ``behave(conn, stop)``; ``stop``
    is set when the test ends (a paced behaviour waits on it between writes)."""

    def __init__(self, behave: Behaviour) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self._behave = behave
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(10)  # never outlive a broken test by much
                head = b""
                while b"\r\n\r\n" not in head and (chunk := conn.recv(65536)):
                    head += chunk
                self._behave(conn, self.stop)

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self._thread.join(timeout=15)


@pytest.fixture
def hostile() -> Iterator[Callable[[Behaviour], Hostile]]:
    made: list[Hostile] = []

    def make(behave: Behaviour) -> Hostile:
        made.append(Hostile(behave))
        return made[-1]

    yield make
    for each in made:
        each.close()


def sends(data: bytes, *, then: bytes = b"", keep_open: bool = False) -> Behaviour:
    """Send ``data``, then ``then`` again and again until the client hangs up (or, with
    ``keep_open``, wait for it to hang up)."""

    def behave(conn: socket.socket, stop: threading.Event) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(data)
            while then and not stop.is_set():
                conn.sendall(then)
            if keep_open:
                conn.recv(1)

    return behave


def trickles(now: bytes, slowly: bytes) -> Behaviour:
    """Send ``now``, then ``slowly`` one byte at a time, each well within a read's timeout."""

    def behave(conn: socket.socket, stop: threading.Event) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(now)
            for byte in slowly:
                if stop.wait(0.05):  # the pace is the attack, not a wait for a condition
                    return
                conn.sendall(bytes([byte]))

    return behave


def server_url(peer: Hostile, via: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in ("no_proxy", "NO_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    if via == "direct":
        return f"http://127.0.0.1:{peer.port}"
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{peer.port}")
    return "http://tenement.invalid:8080"


def ps(url: str, tmp_path: Path) -> str:
    """``ten ps`` against ``url``: its one error line (a traceback fails the test)."""
    outcome: Outcome = invoke(["ps", "--server", url, "--token", "t"], cwd=tmp_path)
    assert (outcome.exit_code, outcome.stdout) == (1, ""), outcome
    lines = outcome.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), outcome.stderr
    assert "\x1b" not in outcome.stderr and "\r" not in outcome.stderr
    return lines[0]


VIAS = pytest.mark.parametrize("via", ["direct", "proxy"])
TOO_LARGE = "sent an answer larger than 64 MiB"


@VIAS
@pytest.mark.parametrize(
    "attack",
    [
        pytest.param(sends(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n[]"), id="cl"),
        pytest.param(
            sends(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n[]", keep_open=True),
            id="cl-open",
        ),
        pytest.param(sends(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n[]" % 2**40), id="2**40"),
        pytest.param(
            sends(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffff\r\n[]"),
            id="chunk",
        ),
    ],
)
def test_a_declared_size_over_the_limit_is_refused_before_reading(
    hostile: Callable[[Behaviour], Hostile],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    via: str,
    attack: Behaviour,
) -> None:
    url = server_url(hostile(attack), via, monkeypatch)
    assert ps(url, tmp_path) == f"Error: Server at {url} {TOO_LARGE}"


@VIAS
@pytest.mark.parametrize(
    "attack",
    [
        pytest.param(
            sends(b"HTTP/1.1 200 OK\r\nContent-Length: 8000000000\r\n\r\n", then=MIB), id="cl"
        ),
        pytest.param(
            sends(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                then=b"100000\r\n" + MIB + b"\r\n",
            ),
            id="chunks",
        ),
        pytest.param(sends(b"HTTP/1.1 200 OK\r\n\r\n", then=MIB), id="no-length"),
        pytest.param(sends(b"HTTP/1.0 200 OK\r\n\r\n", then=MIB), id="http-1.0"),
    ],
)
def test_a_body_without_end_stops_at_the_limit(
    hostile: Callable[[Behaviour], Hostile],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    via: str,
    attack: Behaviour,
) -> None:
    url = server_url(hostile(attack), via, monkeypatch)
    assert ps(url, tmp_path) == f"Error: Server at {url} {TOO_LARGE}"


@VIAS
def test_interim_answers_are_limited(
    hostile: Callable[[Behaviour], Hostile],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    via: str,
) -> None:
    # http.client alone skips all of them (an endless stream of them keeps it busy for
    # ever); a finite one keeps this test from hanging before the limit existed
    attack = (
        b"HTTP/1.1 100 Continue\r\n\r\n" * 1000 + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]"
    )
    url = server_url(hostile(sends(attack)), via, monkeypatch)
    assert ps(url, tmp_path) == (
        f"Error: Server at {url} sent a malformed answer: more than 16 '100 Continue' heads"
    )


@VIAS
@pytest.mark.parametrize(
    "attack",
    [
        pytest.param(trickles(b"", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"), id="head"),
        pytest.param(
            trickles(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", b" " * 100),
            id="body",
        ),
    ],
)
def test_the_timeout_bounds_the_whole_request(
    hostile: Callable[[Behaviour], Hostile],
    monkeypatch: pytest.MonkeyPatch,
    via: str,
    attack: Behaviour,
) -> None:
    url = server_url(hostile(attack), via, monkeypatch)
    client = ApiClient(url, TOKEN, timeout=0.5)
    with pytest.raises(ClientError, match=r"did not answer within 0\.5 s$"):
        client.request("GET", "/api/instances")


def test_an_event_stream_must_start_within_the_timeout(
    hostile: Callable[[Behaviour], Hostile], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server_url(hostile(sends(b"", keep_open=True)), "direct", monkeypatch)
    client = ApiClient(url, TOKEN, timeout=0.3)
    with pytest.raises(ClientError, match=r"did not answer within 0\.3 s$"):
        list(client.sse("/api/logs/stream"))


def test_an_event_stream_may_last_longer_than_the_timeout(
    hostile: Callable[[Behaviour], Hostile], monkeypatch: pytest.MonkeyPatch
) -> None:
    events = b"".join(b"data: %d\n\n" % n for n in range(6))
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
    # about 1.5 s of events, one byte every 50 ms, against a timeout of 0.3 s
    url = server_url(hostile(trickles(head, events[:30])), "direct", monkeypatch)
    client = ApiClient(url, TOKEN, timeout=0.3)
    assert list(client.sse("/api/logs/stream")) == ["0", "1", "2"]


def test_an_endless_event_is_refused(
    hostile: Callable[[Behaviour], Hostile], monkeypatch: pytest.MonkeyPatch
) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: "
    url = server_url(hostile(sends(head, then=MIB)), "direct", monkeypatch)
    client = ApiClient(url, TOKEN)
    with pytest.raises(ClientError, match=r"sent an event larger than 1 MiB$"):
        list(client.sse("/api/logs/stream"))


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(
            "200 OK", "answered GET /api/instances with JSON nested too deeply to read", id="200"
        ),
        pytest.param("500 Internal Server Error", None, id="500"),
    ],
)
def test_deeply_nested_json_is_an_error(
    hostile: Callable[[Behaviour], Hostile],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    status: str,
    expected: str | None,
) -> None:
    answer = b"HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n%s" % (status.encode(), len(DEEP), DEEP)
    url = server_url(hostile(sends(answer)), "direct", monkeypatch)
    if expected is None:
        assert ps(url, tmp_path) == "Error: Server returned 500 Internal Server Error"
    else:
        assert ps(url, tmp_path) == f"Error: Server at {url} {expected}"


@VIAS
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(
            b"HTTP/1.1 500 Oops\r\nContent-Length: 38\r\n\r\n"
            b'{"error": "\\u001b]0;pwned\\u0007 boom"}',
            r"Error: \x1b]0;pwned\x07 boom",
            id="osc-in-error-text",
        ),
        pytest.param(
            b"HTTP/1.1 500 Bad\x00\xff\rthing\r\nContent-Length: 0\r\n\r\n",
            r"Error: Server returned 500 Bad\x00" + "\xff" + r"\rthing",
            id="nul-cr-in-reason",
        ),
        pytest.param(
            b"HTTP/1.1 500 \x1b[2J\r\nContent-Length: 0\r\n\r\n",
            r"Error: Server returned 500 \x1b[2J",
            id="csi-in-reason",
        ),
    ],
)
def test_server_text_in_an_error_is_escaped(
    hostile: Callable[[Behaviour], Hostile],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    via: str,
    answer: bytes,
    expected: str,
) -> None:
    url = server_url(hostile(sends(answer)), via, monkeypatch)
    assert ps(url, tmp_path) == expected


def test_a_status_line_quoted_in_an_error_is_escaped(
    hostile: Callable[[Behaviour], Hostile], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = server_url(hostile(sends(b"HTTP/1.1 abc\x1b]0;pwned\x07\r\n\r\n")), "direct", monkeypatch)
    assert r"abc\x1b]0;pwned\x07" in ps(url, tmp_path)
