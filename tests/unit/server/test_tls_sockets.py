"""Which listening sockets speak HTTPS, what a server told to serve TLS without a socket
on its HTTPS or HTTP port says (it used to serve no HTTPS, saying nothing), and the
cache_dir checked before anything is served (found unwritable later, it crashed the
server after adopting the tenants, stopping them)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenement.config import Settings, TlsSettings
from tenement.errors import TenementError
from tenement.server.tls_front import missing_ports, prepare_cache_dir, split_sockets


@pytest.fixture
def listening() -> Iterator[list[socket.socket]]:
    """Three sockets listening on loopback ports the kernel chose."""
    sockets = []
    for _ in range(3):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sockets.append(sock)
    yield sockets
    for sock in sockets:
        sock.close()


def _port(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port


def test_sockets_are_told_apart_by_port(listening: list[socket.socket]) -> None:
    plain, https, http = listening
    tls = TlsSettings(enabled=True, https_port=_port(https), http_port=_port(http))
    assert split_sockets(listening, tls) == ([plain], [https], [http])
    assert missing_ports([https], [http], tls) is None


def test_no_socket_on_the_https_port_says_what_to_do(listening: list[socket.socket]) -> None:
    plain, _, http = listening
    tls = TlsSettings(enabled=True, https_port=8443, http_port=_port(http))
    _, https, redirect = split_sockets([plain, http], tls)
    message = missing_ports(https, redirect, tls)
    assert message is not None
    assert message.startswith(
        "TLS is on but no listening socket is on https_port 8443 (HTTPS is not served)."
    )
    assert "tenement.socket.d/20-tls.conf" in message
    assert "systemctl restart tenement.socket tenement" in message


def test_no_socket_on_either_port_names_both(listening: list[socket.socket]) -> None:
    tls = TlsSettings(enabled=True, https_port=8443, http_port=8080, challenge="http-01")
    message = missing_ports([], [], tls)
    assert message is not None
    assert "on https_port 8443 (HTTPS is not served) nor on http_port 8080 (http-01" in message


def test_without_tls_nothing_is_missing(listening: list[socket.socket]) -> None:
    assert missing_ports([], [], TlsSettings()) is None
    assert split_sockets(listening, TlsSettings()) == (listening, [], [])


def test_a_cache_dir_that_cannot_be_made_is_refused_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    settings = Settings(
        data_dir=tmp_path,
        tls=TlsSettings(enabled=True, cache_dir=tmp_path / "a-file" / "acme"),
    )
    with pytest.raises(TenementError) as refused:
        prepare_cache_dir(settings)
    assert str(refused.value).startswith(
        f"cannot use [settings.tls] cache_dir {tmp_path}/a-file/acme: Not a directory."
    )
    assert f"ReadWritePaths={tmp_path}/a-file/acme" in str(refused.value)


def test_the_cache_dir_is_made_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, tls=TlsSettings(enabled=True))
    prepare_cache_dir(settings)
    assert (tmp_path / "acme").stat().st_mode & 0o777 == 0o700
