"""Built-in TLS with more than one serving process against a real ACME server that
validates. Workers (``--workers 2``) share one listening socket, so a handshake, and the
CA's validation connection or request, reach any of them; a standby on the same data
directory may order while the CA validates at the other server. Every handshake gets its
host's certificate, each certificate is ordered once, none fails validation, a failed
order is not repeated by the next process, a renewal reaches every process, and the
server answering the API lists what another process ordered or failed to."""

from __future__ import annotations

import re
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from tests.fdholder import open_fd_holder
from tests.integration.tls.harness import (
    DOMAIN,
    TENANT_HOST,
    Answer,
    https_get,
    refused_handshake,
    start_server,
    wait_for_certificate,
    write_config,
)
from tests.pebble import MISSING, client_context, open_pebble

pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")

WORKERS = ("--workers", "2")


async def handshakes(
    port: int, host: str, context: ssl.SSLContext, count: int
) -> tuple[list[Answer], list[str]]:
    """``count`` verified GETs as ``host`` at once: (answers, failures)."""
    answers: list[Answer] = []
    failures: list[str] = []

    async def one() -> None:
        try:
            answers.append(await https_get(port, host, context))
        except (OSError, trio.BrokenResourceError) as exc:
            failures.append(f"{host}: {exc!r} ({exc.__cause__!r})")

    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(one)
    return answers, failures


def admin_token(directory: Path, data: Path) -> str:
    subprocess.run(
        [sys.executable, "-m", "tenement", "token-gen"],
        cwd=directory,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return (data / "api_token").read_text().strip()


async def tls_status(client: httpx.AsyncClient, token: str) -> dict[str, list[str]]:
    """The hosts ``/api/tls/status`` lists, by kind: ``certificates`` and ``failing``."""
    answer = await client.get("/api/tls/status", headers={"authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return {kind: [entry["host"] for entry in body[kind]] for kind in ("certificates", "failing")}


def acme_errors(log: Path) -> list[str]:
    return re.findall(r"ACME error.*", log.read_text(errors="replace"))


@pytest.mark.parametrize("challenge", ["tls-alpn-01", "http-01"])
async def test_on_demand_certificates_with_two_serving_processes(
    tmp_path: Path, challenge: str
) -> None:
    async with open_fd_holder(tmp_path, extra_tcp=2) as holder:
        https_port, http_port = holder.extra_ports
        async with open_pebble(
            tmp_path / "pebble", http_port=http_port, tls_port=https_port
        ) as pebble:
            write_config(tmp_path, holder, pebble.directory, challenge=challenge)
            await start_server(holder, tmp_path, dict(pebble.environ), *WORKERS)
            context = client_context(await pebble.root_pem())
            with trio.fail_after(60):
                domain = await wait_for_certificate(https_port, DOMAIN, context)
            # the first handshakes for the tenant host reach both processes at once,
            # while neither has its certificate: all wait for the one order
            with trio.fail_after(90):
                first, first_failures = await handshakes(https_port, TENANT_HOST, context, 16)
                more, more_failures = await handshakes(https_port, TENANT_HOST, context, 32)
                bare, bare_failures = await handshakes(https_port, DOMAIN, context, 32)
            assert first_failures + more_failures + bare_failures == []
            assert all(answer.status == 200 for answer in first + more + bare)
            assert len({answer.serial for answer in first + more}) == 1
            assert {answer.serial for answer in bare} == {domain.serial}
            assert domain.serial not in {answer.serial for answer in first}
            assert acme_errors(tmp_path / "serve.log") == []
            assert pebble.orders() == 2  # the domain and the tenant host, once each


async def test_renewal_reaches_every_serving_process(tmp_path: Path) -> None:
    """Certificates that live 21 s are renewed after 14 s, twice, swapped in without a
    restart: a process still presenting the old one after its expiry fails the client's
    verification. (The single-process case is this one's main process.)"""
    async with open_fd_holder(tmp_path, extra_tcp=2) as holder:
        https_port, http_port = holder.extra_ports
        async with open_pebble(
            tmp_path / "pebble", http_port=http_port, tls_port=https_port, validity_seconds=21
        ) as pebble:
            write_config(tmp_path, holder, pebble.directory)
            await start_server(holder, tmp_path, dict(pebble.environ), *WORKERS)
            server = holder.process.pid
            context = client_context(await pebble.root_pem())
            with trio.fail_after(60):
                await wait_for_certificate(https_port, DOMAIN, context)
            serials: set[int] = set()
            tenant_serials: set[int] = set()
            failures: list[str] = []
            with trio.fail_after(120):
                while len(serials) < 3 or len(tenant_serials) < 3:
                    answers, failed = await handshakes(https_port, DOMAIN, context, 6)
                    serials |= {answer.serial for answer in answers}
                    tenant, tenant_failed = await handshakes(https_port, TENANT_HOST, context, 6)
                    tenant_serials |= {answer.serial for answer in tenant}
                    failures += failed + tenant_failed
                    await trio.sleep(0.3)
            assert failures == []
            assert holder.process.pid == server
            assert holder.process.returncode is None
            log = (tmp_path / "serve.log").read_text(errors="replace")
            assert acme_errors(tmp_path / "serve.log") == []
            # every order was validated and installed: none ran twice for one renewal
            assert pebble.orders() == log.count("installed, valid until")


async def test_a_standby_orders_on_demand_while_the_ca_validates_at_the_other_server(
    tmp_path: Path,
) -> None:
    """A second server on the same data directory (the two-binary switchover) orders a
    tenant host's certificate when the host's first handshake reaches it; the CA
    validates at the first server (pebble knows one port), which answers from the
    shared cache_dir."""
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    data = tmp_path / "data"
    async with (
        open_fd_holder(first_dir, extra_tcp=2) as first,
        open_fd_holder(second_dir, extra_tcp=2) as second,
    ):
        https_port, http_port = first.extra_ports
        async with open_pebble(
            tmp_path / "pebble", http_port=http_port, tls_port=https_port
        ) as pebble:
            environ = dict(pebble.environ)
            write_config(first_dir, first, pebble.directory, data_dir=str(data))
            write_config(second_dir, second, pebble.directory, data_dir=str(data))
            await start_server(first, first_dir, environ)
            context = client_context(await pebble.root_pem())
            with trio.fail_after(60):
                await wait_for_certificate(https_port, DOMAIN, context)
            await start_server(second, second_dir, environ)
            standby_port = second.extra_ports[0]
            with trio.fail_after(90):
                on_standby, standby_failures = await handshakes(
                    standby_port, TENANT_HOST, context, 8
                )
            # the first server has not served the tenant host: it finds the certificate
            # in cache_dir by itself (its status lists it)
            token = admin_token(first_dir, data)
            async with httpx.AsyncClient(base_url=first.url) as client:
                with trio.fail_after(60):
                    while TENANT_HOST not in (await tls_status(client, token))["certificates"]:
                        await trio.sleep(0.2)
            with trio.fail_after(30):
                on_first, first_failures = await handshakes(https_port, TENANT_HOST, context, 8)
            assert standby_failures + first_failures == []
            assert len({answer.serial for answer in on_standby + on_first}) == 1
            assert acme_errors(first_dir / "serve.log") == []
            assert acme_errors(second_dir / "serve.log") == []
            assert "ordering a certificate for alice" in (second_dir / "serve.log").read_text()
            assert pebble.orders() == 2


async def test_a_failed_order_backs_off_every_serving_process(tmp_path: Path) -> None:
    """pebble validates http-01 at a listener of the test, which holds the validation
    until both processes serve (both have loaded backoff.json and set out to order the
    domain), then closes it: the order fails. The second process to take the host's
    lock finds the first one's back-off and waits it out instead of ordering again."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    validation_port = listeners[0].socket.getsockname()[1]
    release = trio.Event()

    async def hold(stream: trio.SocketStream) -> None:
        async with stream:
            await release.wait()

    async with open_fd_holder(tmp_path, extra_tcp=2) as holder, trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, hold, listeners)
        https_port, _ = holder.extra_ports
        async with open_pebble(
            tmp_path / "pebble", http_port=validation_port, tls_port=https_port
        ) as pebble:
            write_config(tmp_path, holder, pebble.directory, challenge="http-01")
            await start_server(holder, tmp_path, dict(pebble.environ), *WORKERS)
            log = tmp_path / "serve.log"

            def lines(*words: str) -> list[str]:
                text = log.read_text(errors="replace").splitlines()
                return [line for line in text if all(word in line for word in words)]

            with trio.fail_after(60):
                while len(lines("serving on https://")) < 2:
                    await trio.sleep(0.1)
                release.set()
                # what each process decided about the domain: one line each
                while len(lines(f" {DOMAIN}", "next try in")) < 2:
                    await trio.sleep(0.1)
            assert len(acme_errors(log)) == 1, lines(f" {DOMAIN}", "next try in")
            assert pebble.orders() == 1
        nursery.cancel_scope.cancel()


async def test_an_order_failed_at_a_standby_is_listed_by_the_other_server(
    tmp_path: Path,
) -> None:
    """pebble validates http-01 at a port where nothing listens: every order fails. The
    tenant host's first handshake reaches the second server, whose order fails; the
    first server, which answers the API, lists that failure and orders nothing for it."""
    from tests.pebble import free_port

    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    data = tmp_path / "data"
    async with (
        open_fd_holder(first_dir, extra_tcp=2) as first,
        open_fd_holder(second_dir, extra_tcp=2) as second,
    ):
        https_port = first.extra_ports[0]
        async with open_pebble(
            tmp_path / "pebble", http_port=free_port(), tls_port=https_port
        ) as pebble:
            environ = dict(pebble.environ)
            for directory, holder in ((first_dir, first), (second_dir, second)):
                write_config(
                    directory, holder, pebble.directory, challenge="http-01", data_dir=str(data)
                )
            await start_server(first, first_dir, environ)
            context = client_context(await pebble.root_pem())
            with trio.fail_after(60):
                while not acme_errors(first_dir / "serve.log"):
                    await trio.sleep(0.1)
            await start_server(second, second_dir, environ)
            with trio.fail_after(60):
                await refused_handshake(second.extra_ports[0], TENANT_HOST, context)
            assert len(acme_errors(second_dir / "serve.log")) == 1
            token = admin_token(first_dir, data)
            async with httpx.AsyncClient(base_url=first.url) as client:
                with trio.fail_after(60):
                    while TENANT_HOST not in (await tls_status(client, token))["failing"]:
                        await trio.sleep(0.2)
            orders = pebble.orders()
            with trio.fail_after(30):
                await refused_handshake(https_port, TENANT_HOST, context)
            assert pebble.orders() == orders
            assert len(acme_errors(first_dir / "serve.log")) == 1  # the domain's, at start
