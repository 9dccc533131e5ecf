"""A TLS server under test: `ten serve` held by tests/fdholder.py on three loopback
sockets (plain HTTP for the API, HTTPS, and the HTTP port), ordering from pebble."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import attrs
import h11
import trio

from tests.apps import PID_APP
from tests.fdholder import FdHolder

DOMAIN = "example.test"
TENANT_HOST = f"alice.notes.{DOMAIN}"


def write_config(
    directory: Path,
    holder: FdHolder,
    directory_url: str,
    *,
    challenge: str = "tls-alpn-01",
    extra: str = "",
    data_dir: str = "data",
) -> None:
    https_port, http_port = holder.extra_ports
    (directory / "tenement.toml").write_text(
        f"""
[settings]
data_dir = "{data_dir}"
health_check_interval = 1
tenant_users = false

[settings.tls]
enabled = true
acme_email = "ops@{DOMAIN}"
domain = "{DOMAIN}"
https_port = {https_port}
http_port = {http_port}
directory = "{directory_url}"
challenge = "{challenge}"
{extra}

[service.notes]
command = "{sys.executable} {PID_APP} --proto"
isolation = "process"
health = "/"

[instances]
notes = ["alice"]
"""
    )


async def start_server(
    holder: FdHolder, directory: Path, env: dict[str, str], *options: str
) -> None:
    await holder.start(
        [sys.executable, "-m", "tenement", "serve", *options],
        cwd=directory,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(directory / "serve.log", "ab"),  # noqa: SIM115 - the child owns it
    )
    with trio.fail_after(30):
        await holder.wait_notify("READY=1")


@attrs.frozen
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    #: the server certificate's serial number and notAfter
    serial: int
    not_after: str


async def https_get(port: int, host: str, context: ssl.SSLContext, path: str = "/") -> Answer:
    """GET ``path`` from 127.0.0.1:``port`` over TLS with SNI ``host`` (verified)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    tls = trio.SSLStream(stream, context, server_hostname=host)
    async with tls:
        await tls.do_handshake()
        peer = tls.getpeercert()
        assert peer is not None
        conn = h11.Connection(h11.CLIENT)
        request = h11.Request(
            method="GET", target=path, headers=[("host", host), ("connection", "close")]
        )
        await tls.send_all(conn.send(request) + conn.send(h11.EndOfMessage()))
        status, headers, body = 0, {}, b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await tls.receive_some(65536))
                continue
            if isinstance(event, h11.Response):
                status, headers = event.status_code, dict(event.headers)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
    return Answer(status, headers, body, int(peer["serialNumber"], 16), str(peer["notAfter"]))


async def refused_handshake(port: int, host: str, context: ssl.SSLContext) -> str:
    """The error a TLS handshake with SNI ``host`` fails with (AssertionError if it
    succeeds)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    tls = trio.SSLStream(stream, context, server_hostname=host)
    try:
        await tls.do_handshake()
    except trio.BrokenResourceError as exc:
        return repr(exc.__cause__)
    finally:
        await trio.aclose_forcefully(tls)
    raise AssertionError(f"the handshake for {host} succeeded")


async def wait_for_certificate(port: int, host: str, context: ssl.SSLContext) -> Answer:
    """GET /health over TLS as ``host`` once the server presents a certificate for it."""
    while True:
        try:
            return await https_get(port, host, context, "/health")
        except trio.BrokenResourceError:
            await trio.sleep(0.1)
