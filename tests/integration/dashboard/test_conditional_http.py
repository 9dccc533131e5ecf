"""The dashboard's conditional polls through `ten serve`'s own HTTP/1.1 server (the API
tests use hypercorn): a 304 goes out without a body or a length, and an If-None-Match
larger than a request head may be is refused without harm."""

from __future__ import annotations

import socket

import pytest

from tenement.wire import MAX_HEAD
from tests.integration.dashboard.conftest import DashboardServer


@pytest.fixture(scope="module")
def browser_name() -> str:
    """No browser here: one server for the module, not one per browser."""
    return "none"


def exchange(server: DashboardServer, head: bytes) -> bytes:
    """One raw request on a new connection, and all the server sends before closing."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def request(server: DashboardServer, path: str, condition: str, method: str = "GET") -> bytes:
    return exchange(
        server,
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {server.admin_token}\r\n"
        f"If-None-Match: {condition}\r\nConnection: close\r\n\r\n".encode("latin-1"),
    )


def etag_of(answer: bytes) -> str:
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    (tag,) = [line.split(":", 1)[1].strip() for line in head.split("\r\n") if
              line.lower().startswith("etag:")]  # fmt: skip
    return tag


def test_a_304_has_no_body_and_no_length(server: DashboardServer) -> None:
    for path in ("/api/instances", "/api/telemetry"):
        full = request(server, path, '"none"')
        assert full.startswith(b"HTTP/1.1 200 "), full[:200]
        tag = etag_of(full)
        for method in ("GET", "HEAD"):
            answer = request(server, path, tag, method)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 304 "), answer[:200]
            assert body == b""
            assert b"\r\ncontent-length:" not in head.lower()
            assert etag_of(answer) == tag


def test_an_if_none_match_too_large_for_a_head_is_refused_and_serving_goes_on(
    server: DashboardServer,
) -> None:
    tag = etag_of(request(server, "/api/instances", "*"))
    many = ", ".join(f'W/"{n:016x}"' for n in range(1024 * 1024 // 22))
    answer = request(server, "/api/instances", f"{many}, {tag}")
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    # what fits in a head is read to its end
    fits = ", ".join(f'W/"{n:016x}"' for n in range((MAX_HEAD - 1024) // 22))
    assert request(server, "/api/instances", f"{fits}, {tag}").startswith(b"HTTP/1.1 304 ")
    assert request(server, "/api/instances", fits).startswith(b"HTTP/1.1 200 ")
