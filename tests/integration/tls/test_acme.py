"""Built-in TLS against a real ACME server (pebble on loopback): issuance for the domain
and, on demand, for a tenant host; the cache across a restart without the CA; unknown
names causing no order; back-off; the redirect. Renewal, swapped in without a restart,
is tested with workers (test_tls_workers.py): the main process renews there too."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
import trio

from tests.fdholder import open_fd_holder
from tests.integration.tls.harness import (
    DOMAIN,
    TENANT_HOST,
    https_get,
    refused_handshake,
    start_server,
    wait_for_certificate,
    write_config,
)
from tests.pebble import MISSING, client_context, open_pebble

pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


def admin_token(directory: Path) -> str:
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "-m", "tenement", "token-gen"],
        cwd=directory,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return (directory / "data" / "api_token").read_text().strip()


@pytest.mark.parametrize("challenge", ["tls-alpn-01", "http-01"])
async def test_issues_for_the_domain_and_a_tenant_host_on_demand(
    tmp_path: Path, challenge: str
) -> None:
    async with open_fd_holder(tmp_path, extra_tcp=2) as holder:
        https_port, http_port = holder.extra_ports
        async with open_pebble(
            tmp_path / "pebble", http_port=http_port, tls_port=https_port
        ) as pebble:
            write_config(tmp_path, holder, pebble.directory, challenge=challenge)
            await start_server(holder, tmp_path, dict(pebble.environ))
            context = client_context(await pebble.root_pem())
            with trio.fail_after(60):
                answer = await wait_for_certificate(https_port, DOMAIN, context)
                tenant = await https_get(https_port, TENANT_HOST, context)
            assert answer.status == 200
            assert tenant.status == 200
            assert tenant.body.endswith(b" https")  # X-Forwarded-Proto
            assert tenant.serial != answer.serial
            assert (tmp_path / "data" / "acme" / "certs" / f"{TENANT_HOST}.pem").exists()
            assert (tmp_path / "data" / "acme").stat().st_mode & 0o777 == 0o700


async def test_unknown_names_cause_no_order_and_http_redirects(tmp_path: Path) -> None:
    async with open_fd_holder(tmp_path, extra_tcp=2) as holder:
        https_port, http_port = holder.extra_ports
        async with open_pebble(
            tmp_path / "pebble", http_port=http_port, tls_port=https_port
        ) as pebble:
            write_config(tmp_path, holder, pebble.directory)
            await start_server(holder, tmp_path, dict(pebble.environ))
            context = client_context(await pebble.root_pem())
            with trio.fail_after(60):
                await wait_for_certificate(https_port, DOMAIN, context)
            orders = pebble.orders()
            assert orders == 1
            for host in (
                f"bob.notes.{DOMAIN}",  # no such tenant
                f"alice.nosuch.{DOMAIN}",  # no such service
                "example.org",  # not ours at all
            ):
                with trio.fail_after(30):
                    error = await refused_handshake(https_port, host, context)
                assert "CERTIFICATE_VERIFY_FAILED" in error, error
            assert pebble.orders() == orders
            with trio.fail_after(60):
                assert (await https_get(https_port, TENANT_HOST, context)).status == 200
            assert pebble.orders() == orders + 1

            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as client:
                moved = await client.get("/a/b?c=d", headers={"host": f"{TENANT_HOST}:{http_port}"})
                challenge = await client.get(
                    "/.well-known/acme-challenge/nothing", headers={"host": DOMAIN}
                )
                nameless = await client.get("/", headers={"host": "a b"})
            assert moved.status_code == 308
            assert moved.headers["location"] == f"https://{TENANT_HOST}:{https_port}/a/b?c=d"
            assert challenge.status_code == 308
            assert nameless.status_code == 400

            token = admin_token(tmp_path)
            async with httpx.AsyncClient(base_url=holder.url) as client:
                status = await client.get(
                    "/api/tls/status", headers={"authorization": f"Bearer {token}"}
                )
            assert status.status_code == 200
            body = status.json()
            assert {k: body[k] for k in ("enabled", "domain", "https_port", "http_port")} == {
                "enabled": True,
                "domain": DOMAIN,
                "https_port": https_port,
                "http_port": http_port,
            }
            assert body["recommendation"] is None
            assert body["directory"] == pebble.directory
            assert sorted(c["host"] for c in body["certificates"]) == [TENANT_HOST, DOMAIN]
            assert body["failing"] == []


async def test_a_restart_serves_the_cached_certificate_while_the_ca_is_down(
    tmp_path: Path,
) -> None:
    async with open_fd_holder(tmp_path, extra_tcp=2) as holder:
        https_port, http_port = holder.extra_ports
        async with open_pebble(
            tmp_path / "pebble", http_port=http_port, tls_port=https_port
        ) as pebble:
            write_config(tmp_path, holder, pebble.directory)
            environ = dict(pebble.environ)
            await start_server(holder, tmp_path, environ)
            context = client_context(await pebble.root_pem())
            with trio.fail_after(60):
                first = await wait_for_certificate(https_port, DOMAIN, context)
                tenant = await https_get(https_port, TENANT_HOST, context)
            assert await holder.stop(signal.SIGTERM) == 0
        # pebble is gone: its directory refuses connections
        await start_server(holder, tmp_path, environ)
        with trio.fail_after(30):
            again = await https_get(https_port, DOMAIN, context, "/health")
            tenant_again = await https_get(https_port, TENANT_HOST, context)
        assert (again.status, again.serial) == (200, first.serial)
        assert (tenant_again.status, tenant_again.serial) == (200, tenant.serial)


async def test_a_failed_order_backs_the_host_off(tmp_path: Path) -> None:
    """pebble validates http-01 on a port where nothing listens: every order fails."""
    from tests.pebble import free_port

    async with open_fd_holder(tmp_path, extra_tcp=2) as holder:
        https_port, _ = holder.extra_ports
        async with open_pebble(
            tmp_path / "pebble", http_port=free_port(), tls_port=https_port
        ) as pebble:
            write_config(tmp_path, holder, pebble.directory, challenge="http-01")
            await start_server(holder, tmp_path, dict(pebble.environ))
            context = client_context(await pebble.root_pem())
            log = tmp_path / "serve.log"
            with trio.fail_after(60):
                while "ACME error (attempt 1) for example.test" not in log.read_text():
                    await trio.sleep(0.1)
                # the first handshake for the tenant waits for its (failing) order
                await refused_handshake(https_port, TENANT_HOST, context)
            assert f"ACME error (attempt 1) for {TENANT_HOST}" in log.read_text()
            assert "Check that DNS for" in log.read_text()
            orders = pebble.orders()
            for _ in range(3):
                with trio.fail_after(30):
                    await refused_handshake(https_port, TENANT_HOST, context)
            assert pebble.orders() == orders
            # a restart (a crash loop) keeps the back-off: it orders nothing either
            assert await holder.stop(signal.SIGTERM) == 0
            await start_server(holder, tmp_path, dict(pebble.environ))
            with trio.fail_after(30):
                await refused_handshake(https_port, TENANT_HOST, context)
            assert pebble.orders() == orders


async def test_challenge_lookups_from_the_network_reach_only_our_answers(tmp_path: Path) -> None:
    # names a client chooses: a file planted in the answers' directory is not served, and
    # a flood of acme-tls/1 hellos and http-01 lookups for names with no order harms no one
    async with open_fd_holder(tmp_path, extra_tcp=2) as holder:
        https_port, http_port = holder.extra_ports
        async with open_pebble(
            tmp_path / "pebble", http_port=http_port, tls_port=https_port
        ) as pebble:
            write_config(tmp_path, holder, pebble.directory)
            await start_server(holder, tmp_path, dict(pebble.environ))
            context = client_context(await pebble.root_pem())
            with trio.fail_after(60):
                await wait_for_certificate(https_port, DOMAIN, context)
            secret = tmp_path / "secret"
            secret.write_text("not for clients")
            answers = tmp_path / "data" / "acme" / "challenges" / "http"
            answers.mkdir(parents=True, exist_ok=True)
            (answers / "planted").symlink_to(secret)
            (answers / "adir").mkdir()
            acme_context = client_context(await pebble.root_pem())
            acme_context.set_alpn_protocols(["acme-tls/1"])

            async def hello(number: int) -> None:
                await refused_handshake(https_port, f"n{number}.nosuch.{DOMAIN}", acme_context)

            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as client:

                async def lookup(token: str) -> None:
                    answer = await client.get(
                        f"/.well-known/acme-challenge/{token}", headers={"host": DOMAIN}
                    )
                    assert answer.status_code == 308, (token, answer.status_code, answer.text)
                    assert "not for clients" not in answer.text

                with trio.fail_after(120):
                    async with trio.open_nursery() as nursery:
                        for token in ("planted", "adir", "..%2Fsecret", "%00", "x" * 300):
                            nursery.start_soon(lookup, token)
                        for number in range(100):
                            nursery.start_soon(lookup, f"t{number}")
                            nursery.start_soon(hello, number)
            with trio.fail_after(60):
                assert (await https_get(https_port, DOMAIN, context)).status == 200
