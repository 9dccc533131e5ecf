"""A small HTTP load for restart tests: counts every answer and every kind of failure.

Clients run until ``stop`` is set: one-shot clients open a connection per request and read
to EOF; keep-alive clients reuse one connection (httpx's pool). A good answer is a 200
whose body starts with ``ok <pid>``; the pids seen are collected, so a test can tell which
process answered (the server for the serving tests, the tenant for ``ten serve``).
Bounded by the caller: wrap the run in ``trio.fail_after``; loopback only.
"""

from __future__ import annotations

import ssl
from collections import Counter

import attrs
import httpx
import trio


@attrs.define
class Load:
    """Counts what the clients saw."""

    sent: int = 0
    ok: int = 0
    failures: Counter[str] = attrs.field(factory=Counter)
    pids: set[str] = attrs.field(factory=set)
    progressed: trio.Event = attrs.field(factory=trio.Event)

    def record(self, status: int, body: bytes) -> None:
        if status == 200 and body.startswith(b"ok "):
            self.ok += 1
            self.pids.add(body.split()[1].decode())
            self.progressed.set()
            self.progressed = trio.Event()
        else:
            self.failures[f"status {status}: {body[:60]!r}"] += 1

    async def wait_for_more(self, count: int) -> None:
        target = self.ok + count
        while self.ok < target:
            await self.progressed.wait()


async def one_shot_client(
    port: int,
    load: Load,
    stop: trio.Event,
    host: str = "test",
    tls: ssl.SSLContext | None = None,
) -> None:
    """One request per connection, read to EOF, over and over; over TLS (with SNI
    ``host``, verified with ``tls``) when ``tls`` is given."""
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    while not stop.is_set():
        load.sent += 1
        try:
            stream: trio.abc.Stream = await trio.open_tcp_stream("127.0.0.1", port)
            if tls is not None:
                stream = trio.SSLStream(stream, tls, server_hostname=host)
            async with stream:
                await stream.send_all(request)
                data = b""
                while chunk := await stream.receive_some(65536):
                    data += chunk
        except (OSError, trio.BrokenResourceError) as error:
            load.failures[f"{type(error).__name__}: {error}"] += 1
            continue
        head, _, body = data.partition(b"\r\n\r\n")
        if not head:
            load.failures["connection closed without a response"] += 1
            continue
        load.record(int(head.split()[1]), body)


async def keep_alive_client(
    url: str,
    load: Load,
    stop: trio.Event,
    host: str = "test",
    tls: ssl.SSLContext | None = None,
) -> None:
    """Requests on kept-alive connections (httpx's pool), over and over; for an
    ``https://`` url, with SNI ``host``, verified with ``tls``."""
    limits = httpx.Limits(max_connections=1)
    # a request queued while a loaded machine starts the next server may wait longer
    # than httpx's 5 s: that is a slow answer, not the failed one these tests count
    timeout = httpx.Timeout(30.0)
    extensions = {"sni_hostname": host} if tls is not None else {}
    async with httpx.AsyncClient(
        base_url=url, limits=limits, headers={"host": host}, verify=tls or True, timeout=timeout
    ) as client:
        while not stop.is_set():
            load.sent += 1
            try:
                response = await client.get("/", extensions=extensions)
            except httpx.HTTPError as error:
                load.failures[f"{type(error).__name__}: {error}"] += 1
                continue
            load.record(response.status_code, response.content)
