"""Built-in TLS in ``ten serve``: which listening sockets speak HTTPS, which redirect,
and the :class:`~tenement.tls.TlsManager` wired to the proxy's routing.

A socket on ``https_port`` serves HTTPS (the whole front: proxy, API, dashboard), one on
``http_port`` answers ``308`` to HTTPS and ``http-01`` challenges; any other (a
``--bind``, systemd's 8080 or Unix socket for the local ``ten``) stays plain HTTP.
Sockets are told apart by port, so systemd's (``units/tenement-tls.conf``) and our own
bound ones are treated alike.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING

from tenement.config import Settings, TlsSettings

if TYPE_CHECKING:  # with cryptography and acme: loaded only when TLS is on
    from tenement.proxy import Proxy
    from tenement.tls.manager import TlsManager


def split_sockets(
    sockets: list[socket.socket], tls: TlsSettings
) -> tuple[list[socket.socket], list[socket.socket], list[socket.socket]]:
    """(plain HTTP, HTTPS, HTTP-to-HTTPS) sockets; all plain when TLS is off."""
    if not tls.enabled:
        return list(sockets), [], []
    plain, https, redirect = [], [], []
    for sock in sockets:
        port = _port(sock)
        if port == tls.https_port:
            https.append(sock)
        elif port == tls.http_port:
            redirect.append(sock)
        else:
            plain.append(sock)
    return plain, https, redirect


def _port(sock: socket.socket) -> int | None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    port: int = sock.getsockname()[1]
    return port


def cache_dir(settings: Settings) -> Path:
    """``[settings.tls] cache_dir``, by default ``{data_dir}/acme``."""
    return settings.tls.cache_dir or settings.data_dir / "acme"


def tls_manager(settings: Settings, proxy: Proxy) -> TlsManager:
    """The manager of the HTTPS front: certificates may be ordered on demand for host
    names that route to a known instance (with ``wake_any_id``, only a running one:
    any name would do otherwise)."""
    from tenement.tls.manager import TlsManager

    def routes(host: str) -> bool:
        return proxy.routes_to_instance(host, running_only=settings.wake_any_id)

    return TlsManager(settings.tls, cache_dir(settings), routes)
