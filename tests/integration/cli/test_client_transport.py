"""The client's transport against real sockets that misbehave: silence, hang-ups, proxies.

Each peer is a one-shot TCP server on a thread that records the request bytes it got and
then does one thing (answer, stay silent, hang up, or act as a proxy).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from tenement.cli.client import (
    ApiClient,
    ClientError,
    Endpoint,
    HttpProxy,
    ServerError,
    ServerUnreachable,
    Token,
)

TOKEN = Token("secret", "--token")


class Peer:
    """A listening socket whose first connection is handled by ``behave(conn, head)``."""

    def __init__(self, behave: Callable[[socket.socket, bytes], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.heads: list[bytes] = []
        self._behave = behave
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                head += chunk
            self.heads.append(head)
            self._behave(conn, head)

    def close(self) -> None:
        self.listener.close()
        self._thread.join(timeout=5)


@pytest.fixture
def peer() -> Iterator[Callable[[Callable[[socket.socket, bytes], None]], Peer]]:
    made: list[Peer] = []

    def make(behave: Callable[[socket.socket, bytes], None]) -> Peer:
        made.append(Peer(behave))
        return made[-1]

    yield make
    for each in made:
        each.close()


def answer(status: str, body: bytes, *extra: str) -> Callable[[socket.socket, bytes], None]:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *extra]
    return lambda conn, _head: conn.sendall("\r\n".join(head).encode() + b"\r\n\r\n" + body)


def wait_for_close(conn: socket.socket, _head: bytes) -> None:
    conn.settimeout(10)
    with contextlib.suppress(OSError):
        conn.recv(1)


def test_a_silent_server_times_out_with_a_message(peer) -> None:  # type: ignore[no-untyped-def]
    silent = peer(wait_for_close)
    client = ApiClient(f"http://127.0.0.1:{silent.port}", TOKEN, timeout=0.3)
    with pytest.raises(ClientError, match=r"did not answer within 0\.3 s$"):
        client.request("GET", "/api/instances")


def test_a_hang_up_is_a_lost_connection(peer) -> None:  # type: ignore[no-untyped-def]
    rude = peer(lambda conn, _head: None)
    client = ApiClient(f"http://127.0.0.1:{rude.port}", TOKEN)
    with pytest.raises(ServerUnreachable, match=r"^Lost connection to server at http://127\."):
        client.request("GET", "/api/instances")


def test_a_body_cut_short_is_a_lost_connection(peer) -> None:  # type: ignore[no-untyped-def]
    short = peer(lambda conn, _h: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n[1,"))
    client = ApiClient(f"http://127.0.0.1:{short.port}", TOKEN)
    with pytest.raises(ServerUnreachable, match=r"^Lost connection"):
        client.request("GET", "/api/instances")


@pytest.mark.parametrize("size", [b"-5", b"-FFFFFFFFFFFFFFFFFFFF"])
def test_a_chunk_size_http_client_cannot_read_is_a_malformed_answer(peer, size) -> None:  # type: ignore[no-untyped-def]
    odd = peer(
        lambda conn, _h: conn.sendall(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\n"
        )
    )
    client = ApiClient(f"http://127.0.0.1:{odd.port}", TOKEN)
    with pytest.raises(ClientError, match=r"^Server at http://127\.0\.0\.1:\d+ sent a malformed"):
        client.request("GET", "/api/instances")


def test_request_head_body_prefix_and_error_text(peer) -> None:  # type: ignore[no-untyped-def]
    server = peer(answer("409 Conflict", b'{"error": "Instance already running"}'))
    client = ApiClient(f"http://127.0.0.1:{server.port}/base/", TOKEN)
    with pytest.raises(ServerError, match=r"^Instance already running$") as raised:
        client.request("POST", "/api/instances", json_body={"process": "api", "id": "a"})
    assert raised.value.status == 409
    head = server.heads[0].decode()
    assert head.startswith("POST /base/api/instances HTTP/1.1\r\n")
    assert "Authorization: Bearer secret\r\n" in head
    assert "Content-Type: application/json\r\n" in head


def test_params_are_encoded_and_json_decoded(peer) -> None:  # type: ignore[no-untyped-def]
    server = peer(answer("200 OK", b'[{"message": "hi"}]'))
    client = ApiClient(f"http://127.0.0.1:{server.port}", TOKEN)
    assert client.json("GET", "/api/logs", params={"search": "a b&c", "limit": 5}) == [
        {"message": "hi"}
    ]
    assert server.heads[0].startswith(b"GET /api/logs?search=a+b%26c&limit=5 HTTP/1.1\r\n")


def test_a_body_that_is_not_json_is_named(peer) -> None:  # type: ignore[no-untyped-def]
    server = peer(answer("200 OK", b"<html>"))
    client = ApiClient(f"http://127.0.0.1:{server.port}", TOKEN)
    with pytest.raises(ClientError, match="answered GET /api/instances with a body that is not"):
        client.json("GET", "/api/instances")


def test_server_sent_events_over_chunked_encoding(peer) -> None:  # type: ignore[no-untyped-def]
    events = b": keep-alive\n\ndata: one\n\ndata: two\ndata:three\n\ndata: last"

    def stream(conn: socket.socket, _head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        # one chunk per event, the last one without its closing blank line
        for part in events.split(b"\n\n")[:-1]:
            body = part + b"\n\n"
            conn.sendall(b"%x\r\n%s\r\n" % (len(body), body))
        last = events.split(b"\n\n")[-1]
        conn.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(last), last))

    server = peer(stream)
    client = ApiClient(f"http://127.0.0.1:{server.port}", TOKEN)
    assert list(client.sse("/api/logs/stream")) == ["one", "two\nthree", "last"]


def test_an_error_status_before_the_stream_is_reported(peer) -> None:  # type: ignore[no-untyped-def]
    server = peer(answer("401 Unauthorized", b""))
    client = ApiClient(f"http://127.0.0.1:{server.port}", TOKEN)
    with pytest.raises(ClientError, match=r"^Server returned 401 Unauthorized\n"):
        list(client.sse("/api/logs/stream"))


def test_an_http_proxy_gets_the_absolute_url(peer, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    proxy = peer(answer("200 OK", b"[]"))
    monkeypatch.setenv("http_proxy", f"http://user:pw@127.0.0.1:{proxy.port}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    client = ApiClient("http://tenement.invalid:8080", TOKEN)
    assert client.json("GET", "/api/instances") == []
    proxy.close()
    with pytest.raises(ServerUnreachable, match=f"through the proxy 127.0.0.1:{proxy.port}\n"):
        client.request("GET", "/api/instances")
    head = proxy.heads[0].decode()
    assert head.startswith("GET http://tenement.invalid:8080/api/instances HTTP/1.1\r\n")
    assert "Proxy-Authorization: Basic dXNlcjpwdw==\r\n" in head


def test_no_proxy_bypasses_the_proxy() -> None:
    proxies = {"http": "http://127.0.0.1:3128", "no": "localhost,.internal"}
    assert Endpoint.parse("http://api.internal:8080", proxies).proxy is None
    assert Endpoint.parse("http://example.com:8080", proxies).proxy == HttpProxy(
        "127.0.0.1", 3128, None
    )
    assert Endpoint.parse("https://example.com", {}).port == 443


@pytest.mark.parametrize("server", ["localhost:8080", "ftp://host", "http://", "http://h:99999"])
def test_a_server_url_that_is_not_http_is_refused(server: str) -> None:
    with pytest.raises(ClientError, match="is not http://host"):
        ApiClient(server, TOKEN)


def test_connection_refused_names_the_server() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    expected = re.escape(f"Failed to connect to server at http://127.0.0.1:{port}\n")
    with pytest.raises(ServerUnreachable, match=f"^{expected}"):
        ApiClient(f"http://127.0.0.1:{port}", TOKEN).request("GET", "/health")
