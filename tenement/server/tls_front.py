"""Built-in TLS in ``ten serve``: which listening sockets speak HTTPS, which redirect,
and the :class:`~tenement.tls.TlsManager` wired to the proxy's routing.

A socket on ``https_port`` serves HTTPS (the whole front: proxy, API, dashboard), one on
``http_port`` answers ``308`` to HTTPS and ``http-01`` challenges; any other (a
``--bind``, systemd's 8080 or Unix socket for the local ``ten``) stays plain HTTP.
Sockets are told apart by port, so systemd's (``units/examples/tls.conf``) and our own
bound ones are treated alike.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from tenement.config import Settings, TlsSettings
from tenement.errors import TenementError

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


def missing_ports(
    https: list[socket.socket], redirect: list[socket.socket], tls: TlsSettings
) -> str | None:
    """What to tell the user when TLS is on but no socket is on ``https_port`` or on
    ``http_port``, else None.

    Under systemd the sockets are tenement.socket's: a server restarted after TLS was
    turned on, without the socket drop-in or without restarting the socket, got none and
    served no HTTPS, saying nothing.
    """
    if not tls.enabled or (https and redirect):
        return None
    missing = []
    if not https:
        missing.append(f"https_port {tls.https_port} (HTTPS is not served)")
    if not redirect:
        effect = (
            "http-01 orders will fail" if tls.challenge == "http-01" else "no redirect to HTTPS"
        )
        missing.append(f"http_port {tls.http_port} ({effect})")
    return (
        f"TLS is on but no listening socket is on {' nor on '.join(missing)}. Under"
        " systemd, tenement.socket must hold both ports: install units/examples/tls.conf"
        " (packaged: /usr/share/doc/tenement-py/examples/tls.conf) as"
        " /etc/systemd/system/tenement.socket.d/20-tls.conf with these ports (`ten install"
        " --tls` does), then run `systemctl daemon-reload && systemctl restart"
        " tenement.socket tenement` (a running socket opens new ports only when it"
        " restarts). Without systemd: --bind both ports, or none."
    )


def _port(sock: socket.socket) -> int | None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    port: int = sock.getsockname()[1]
    return port


def cache_dir(settings: Settings) -> Path:
    """``[settings.tls] cache_dir``, by default ``{data_dir}/acme``."""
    return settings.tls.cache_dir or settings.data_dir / "acme"


def prepare_cache_dir(settings: Settings) -> None:
    """Create ``cache_dir`` (0700) before anything is served or adopted, or say why not.

    The server writes it (account key, certificates, back-off): found unwritable only
    once serving, it crashed with a traceback after adopting the tenants, stopping them
    all, and systemd restarted it into the same crash.

    Raises:
        TenementError: it cannot be created or written (what to do in the message).
    """
    from tenement.tls.certs import make_cache_dir

    path = cache_dir(settings)
    try:
        make_cache_dir(path)
        problem = None if os.access(path, os.W_OK | os.X_OK) else "not writable"
    except OSError as exc:
        problem = exc.strerror or str(exc)
    if problem is not None:
        raise TenementError(
            f"cannot use [settings.tls] cache_dir {path}: {problem}. The server writes the"
            " ACME account key and the certificates there. Under systemd only the data"
            f" directory is writable (ProtectSystem=strict): leave cache_dir at its default"
            f" ({settings.data_dir / 'acme'}), or allow it with `ReadWritePaths={path}` in a"
            " drop-in (`systemctl edit tenement`); otherwise check its owner and mode"
        )


def tls_manager(settings: Settings, proxy: Proxy) -> TlsManager:
    """The manager of the HTTPS front: certificates may be ordered on demand for host
    names that route to a known instance (with ``wake_any_id``, only a running one:
    any name would do otherwise)."""
    from tenement.tls.manager import TlsManager

    def routes(host: str) -> bool:
        return proxy.routes_to_instance(host, running_only=settings.wake_any_id)

    return TlsManager(settings.tls, cache_dir(settings), routes)
