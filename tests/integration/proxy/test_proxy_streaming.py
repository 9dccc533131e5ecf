"""Bodies stream through the proxy: 100 MB each way without the proxy holding them.

The proxy runs under hypercorn in this test process; the tenant is another process. A
sampler reads this process's resident memory (VmRSS) while the body flows: a proxy that
buffered the body would grow by ~100 MB. Client side, httpx sends from a generator and
reads in pieces, so it holds no whole body either.
"""

from __future__ import annotations

from pathlib import Path

import h11
import httpx
import trio

from tenement.proxy import Proxy
from tests.integration.proxy.proxy_support import (
    DOMAIN,
    Backends,
    fallback_app,
    serve_proxy,
    target_for,
)

MB = 1024 * 1024
BODY_BYTES = 100 * MB
#: growth allowed while 100 MB pass (interpreter noise, socket buffers, httpx)
ALLOWED_GROWTH = 40 * MB
HOST = {"host": f"alice.notes.{DOMAIN}"}


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


class PeakRss:
    """Samples VmRSS every 20 ms while open; ``growth`` is the peak over the start."""

    def __init__(self) -> None:
        self.start = rss_bytes()
        self.peak = self.start

    async def sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss_bytes())
            await trio.sleep(0.02)

    @property
    def growth(self) -> int:
        return self.peak - self.start


async def pieces(total: int, size: int = 256 * 1024):
    chunk = b"u" * size
    sent = 0
    while sent < total:
        piece = chunk[: min(size, total - sent)]
        sent += len(piece)
        yield piece


async def proxied(nursery, backends_pool) -> httpx.AsyncClient:
    backends = Backends()
    backends.add(target_for("notes", "alice", backends_pool["a"]))
    server = await serve_proxy(nursery, Proxy(backends, domain=DOMAIN, fallback=fallback_app))
    return httpx.AsyncClient(base_url=server.url, timeout=120)


async def test_100mb_upload_streams(nursery, backends_pool) -> None:
    client = await proxied(nursery, backends_pool)
    async with client:
        await client.get("/", headers=HOST)  # warm up: pools, imports
        rss = PeakRss()
        async with trio.open_nursery() as sampling:
            sampling.start_soon(rss.sample)
            response = await client.post("/count", content=pieces(BODY_BYTES), headers=HOST)
            sampling.cancel_scope.cancel()
    assert response.json() == {"received": BODY_BYTES}
    assert rss.growth < ALLOWED_GROWTH, f"grew {rss.growth / MB:.0f} MB"


async def test_100mb_upload_with_content_length_streams(nursery, backends_pool) -> None:
    client = await proxied(nursery, backends_pool)
    async with client:
        await client.get("/", headers=HOST)
        rss = PeakRss()
        async with trio.open_nursery() as sampling:
            sampling.start_soon(rss.sample)
            response = await client.put(
                "/count",
                content=pieces(BODY_BYTES),
                headers={**HOST, "content-length": str(BODY_BYTES)},
            )
            sampling.cancel_scope.cancel()
    assert response.json() == {"received": BODY_BYTES}
    assert rss.growth < ALLOWED_GROWTH, f"grew {rss.growth / MB:.0f} MB"


async def test_100mb_download_streams(nursery, backends_pool) -> None:
    client = await proxied(nursery, backends_pool)
    async with client:
        await client.get("/", headers=HOST)
        rss = PeakRss()
        received = 0
        async with trio.open_nursery() as sampling:
            sampling.start_soon(rss.sample)
            async with client.stream("GET", f"/bytes?n={BODY_BYTES}", headers=HOST) as response:
                assert response.headers["content-length"] == str(BODY_BYTES)
                async for piece in response.aiter_raw():
                    received += len(piece)
            sampling.cancel_scope.cancel()
    assert received == BODY_BYTES
    assert rss.growth < ALLOWED_GROWTH, f"grew {rss.growth / MB:.0f} MB"


async def test_echo_streams_both_ways_at_once(nursery, backends_pool) -> None:
    """The tenant answers while the upload is still going (full duplex): 20 MB echoed.
    A proxy that sent the whole body before reading would deadlock here. (httpx is
    half-duplex itself, so this client is h11 on a raw socket.)"""
    backends = Backends()
    backends.add(target_for("notes", "alice", backends_pool["a"]))
    server = await serve_proxy(nursery, Proxy(backends, domain=DOMAIN, fallback=fallback_app))
    total = 20 * MB
    conn = h11.Connection(h11.CLIENT)
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    received = 0

    async def upload() -> None:
        request = h11.Request(
            method="POST",
            target="/echo",
            headers=[("host", HOST["host"]), ("transfer-encoding", "chunked")],
        )
        await stream.send_all(conn.send(request))
        async for piece in pieces(total, 64 * 1024):
            await stream.send_all(conn.send(h11.Data(data=piece)))
        await stream.send_all(conn.send(h11.EndOfMessage()))

    with trio.fail_after(60):
        async with stream, trio.open_nursery() as both:
            both.start_soon(upload)
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(65536))
                elif isinstance(event, h11.Data):
                    received += len(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    break
    assert received == total


async def test_client_leaving_mid_download_frees_the_tenant_connection(
    nursery, backends_pool
) -> None:
    backends = Backends()
    backends.add(target_for("notes", "alice", backends_pool["a"]))
    server = await serve_proxy(nursery, Proxy(backends, domain=DOMAIN, fallback=fallback_app))
    client = httpx.AsyncClient(base_url=server.url, timeout=30)
    async with client, client.stream("GET", f"/bytes?n={BODY_BYTES}", headers=HOST) as response:
        async for _ in response.aiter_raw():
            break  # leave after the first piece; httpx closes the connection
    with trio.fail_after(10):
        while backends.active["notes:alice"]:
            await trio.sleep(0.01)
    assert server.proxy.statistics().idle_connections == 0  # a half-read one is not kept


async def raw_upload(port: int, path: str, total: int, *, stop_after: int | None = None):
    """POST ``total`` bytes chunked over a raw socket while reading the response;
    returns (status, body) or None when it stopped uploading after ``stop_after`` bytes
    and hung up."""
    conn = h11.Connection(h11.CLIENT)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    result: list = []

    async def upload() -> None:
        request = h11.Request(
            method="POST",
            target=path,
            headers=[("host", HOST["host"]), ("transfer-encoding", "chunked")],
        )
        await stream.send_all(conn.send(request))
        sent = 0
        async for piece in pieces(total, 64 * 1024):
            if stop_after is not None and sent >= stop_after:
                await stream.aclose()
                return
            try:
                await stream.send_all(conn.send(h11.Data(data=piece)))
            except trio.BrokenResourceError:
                return  # the server stopped reading after its answer
            sent += len(piece)
        await stream.send_all(conn.send(h11.EndOfMessage()))

    async def download(cancel: trio.CancelScope) -> None:
        status, body = None, b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                result.append((status, body))
                cancel.cancel()
                return

    async with trio.open_nursery() as both:
        both.start_soon(upload)
        if stop_after is None:
            both.start_soon(download, both.cancel_scope)
    await stream.aclose()
    return result[0] if result else None


async def test_early_answer_during_an_upload_reaches_the_client(nursery, backends_pool) -> None:
    backends = Backends()
    backends.add(target_for("notes", "alice", backends_pool["a"]))
    server = await serve_proxy(nursery, Proxy(backends, domain=DOMAIN, fallback=fallback_app))
    with trio.fail_after(30):
        assert await raw_upload(server.port, "/early", 50 * MB) == (200, b"too large")


async def test_client_leaving_mid_upload_frees_the_tenant_connection(
    nursery, backends_pool
) -> None:
    backends = Backends()
    backends.add(target_for("notes", "alice", backends_pool["a"]))
    server = await serve_proxy(nursery, Proxy(backends, domain=DOMAIN, fallback=fallback_app))
    with trio.fail_after(30):
        assert await raw_upload(server.port, "/count", 50 * MB, stop_after=MB) is None
        while backends.active.get("notes:alice", 1):
            await trio.sleep(0.01)
    assert server.proxy.statistics().idle_connections == 0


async def test_a_head_sent_before_the_body_reaches_the_client_at_once(
    nursery, backends_pool
) -> None:
    """An event stream (or a long poll) sends its head and then waits for news: the
    client must have the head (its EventSource opens) long before the first byte of
    body. The proxy held it back until the first body part."""
    client = await proxied(nursery, backends_pool)
    async with client:
        with trio.fail_after(10):  # the body comes after 60 s: this waits for the head alone
            async with client.stream("GET", "/head-first?seconds=60", headers=HOST) as answer:
                assert answer.status_code == 200
