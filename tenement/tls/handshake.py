"""The TLS handshake of an accepted connection, on the stdlib socket the front uses.

The connection stays a non-blocking ``ssl.SSLSocket``: OpenSSL reads and writes its
descriptor itself, so the hot path keeps one ``recv``/``send`` per read or write
(``tenement/sockets.py`` waits on ``SSLWantReadError``/``SSLWantWriteError`` as on
``EAGAIN``). Before the handshake the ClientHello is peeked at (``MSG_PEEK``: the bytes
stay for OpenSSL) to choose the certificate (``manager.py``).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager

import trio

from tenement.tls.clienthello import (
    MAX_RECORD,
    ClientHello,
    NotClientHello,
    parse_client_hello,
    record_length,
)

log = logging.getLogger(__name__)

#: the most a client may take from its connection to the end of the handshake
HANDSHAKE_SECONDS = 10.0

ChooseContext = Callable[[ClientHello | None], Awaitable[ssl.SSLContext | None]]


async def peek_client_hello(conn: socket.socket) -> ClientHello | bool | None:
    """The ClientHello's names, None when the bytes are no ClientHello (OpenSSL will
    refuse them), False when the client closed first."""
    wanted = 1
    while True:
        try:
            data = conn.recv(MAX_RECORD, socket.MSG_PEEK)
        except BlockingIOError:
            await trio.lowlevel.wait_readable(conn)
            continue
        if not data:
            return False
        try:
            length = record_length(data)
            if length is not None and len(data) >= length:
                return parse_client_hello(data[:length])
        except NotClientHello:
            return None
        # Part of the record is here: wait until the rest is (peeked bytes stay readable,
        # so readiness alone would spin).
        wanted = length or 5
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, min(wanted, MAX_RECORD))
        try:
            await trio.lowlevel.wait_readable(conn)
        finally:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)


async def tls_handshake(
    conn: socket.socket,
    choose: ChooseContext,
    *,
    greeting: Callable[[trio.CancelScope], AbstractContextManager[object]] | None = None,
) -> ssl.SSLSocket | None:
    """Handshake on ``conn`` (accepted, non-blocking).

    The client gets :data:`HANDSHAKE_SECONDS` to send its ClientHello and as long again
    for the rest of the handshake; choosing the context may take longer (an order on
    demand: ``choose`` bounds its own wait).

    Args:
        greeting: entered around the wait for the ClientHello with its cancel scope, so
            that the caller may shorten it (a drain closes connections that have sent
            nothing yet, as it closes idle ones).

    Returns:
        The connection as a non-blocking ``SSLSocket`` (``conn`` is detached from its
        descriptor then); None when the handshake failed or timed out, or no certificate
        fits: the caller closes ``conn``.
    """
    hello: ClientHello | bool | None = False
    with trio.move_on_after(HANDSHAKE_SECONDS) as waiting:
        with greeting(waiting) if greeting is not None else contextlib.nullcontext():
            try:
                hello = await peek_client_hello(conn)
            except OSError:  # reset before its first bytes: routine
                hello = False
    if hello is False:
        return None
    context = await choose(hello if isinstance(hello, ClientHello) else None)
    if context is None:
        log.debug("no certificate for %s: connection closed", hello)
        return None
    tls = context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
    try:
        with trio.move_on_after(HANDSHAKE_SECONDS):
            while True:
                try:
                    tls.do_handshake()
                    return tls
                except ssl.SSLWantReadError:
                    await trio.lowlevel.wait_readable(tls)
                except ssl.SSLWantWriteError:
                    await trio.lowlevel.wait_writable(tls)
    except OSError as exc:  # the client refused our certificate, or left: routine
        log.debug("TLS handshake failed: %s", exc)
    except BaseException:
        tls.close()
        raise
    tls.close()
    return None
