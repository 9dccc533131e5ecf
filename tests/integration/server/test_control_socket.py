"""The control socket (server/control.py) under a data_dir of any depth.

sun_path holds 107 bytes: a deep data_dir once left the leader without a control socket
("too long a path"), and every standby and worker of it without a leader.
"""

from __future__ import annotations

import os
from pathlib import Path

import h11
import trio

from tenement.control_sockets import control_socket_path
from tenement.server.control import MAX_SOCKET_PATH, bind_control_socket, call


async def answer_once(sock: trio.socket.SocketType) -> bytes:
    """Accept one call and answer 200 with the body it carried, reversed."""
    conn, _ = await sock.accept()
    with conn:
        server = h11.Connection(h11.SERVER)
        body = b""
        while True:
            event = server.next_event()
            if event is h11.NEED_DATA:
                server.receive_data(await conn.recv(65536))
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        answer = body[::-1]
        out = server.send(
            h11.Response(status_code=200, headers=[("content-length", str(len(answer)))])
        )
        out += server.send(h11.Data(data=answer)) + server.send(h11.EndOfMessage())
        await conn.send(out)
    return body


async def test_a_deep_data_dir_still_has_a_control_socket(tmp_path: Path) -> None:
    data_dir = tmp_path / ("d" * 60) / ("e" * 60)
    path = control_socket_path(data_dir, "host:4242:abcdef")
    assert len(os.fsencode(path)) > MAX_SOCKET_PATH
    listener = trio.socket.from_stdlib_socket(bind_control_socket(path))
    assert path.exists()  # at its real name, where standbys look for it
    with listener:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer_once, listener)
            status, body = await call(os.fspath(path), "/_tenement/ping", b"hello")
    assert (status, body) == (200, b"olleh")
