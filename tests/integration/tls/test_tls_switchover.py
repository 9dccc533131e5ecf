"""The two-binary switchover over TLS: a second `ten serve` on the same data directory
(its own HTTPS and HTTP ports) serves the certificates the first one ordered, from the
shared cache_dir, and takes the tenants over when the first is TERMed: no HTTPS request
fails, no tenant restarts."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import trio

from tests.fdholder import open_fd_holder
from tests.integration.tls.harness import (
    DOMAIN,
    TENANT_HOST,
    https_get,
    start_server,
    wait_for_certificate,
    write_config,
)
from tests.loadgen import Load, keep_alive_client, one_shot_client
from tests.pebble import MISSING, client_context, open_pebble

pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


async def test_switchover_over_tls_fails_no_request(tmp_path: Path) -> None:
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    data = tmp_path / "data"
    async with (
        open_fd_holder(first_dir, extra_tcp=2) as first,
        open_fd_holder(second_dir, extra_tcp=2) as second,
    ):
        https_port, http_port = first.extra_ports
        # not a test of validation (and the second server orders nothing)
        async with open_pebble(
            tmp_path / "pebble", http_port=http_port, tls_port=https_port, always_valid=True
        ) as pebble:
            environ = dict(pebble.environ)
            write_config(first_dir, first, pebble.directory, data_dir=str(data))
            write_config(second_dir, second, pebble.directory, data_dir=str(data))
            await start_server(first, first_dir, environ)
            context = client_context(await pebble.root_pem())
            with trio.fail_after(60):
                domain = await wait_for_certificate(https_port, DOMAIN, context)
                tenant = await https_get(https_port, TENANT_HOST, context)
            tenant_pid = tenant.body.split()[1].decode()
            await start_server(second, second_dir, environ)
            new_port = second.extra_ports[0]
            with trio.fail_after(30):
                # the standby serves what the first ordered, from the shared cache
                assert (await https_get(new_port, DOMAIN, context, "/health")).serial == (
                    domain.serial
                )
                assert (await https_get(new_port, TENANT_HOST, context)).serial == tenant.serial
            load = Load()
            stop = trio.Event()
            async with trio.open_nursery() as nursery:
                for _ in range(4):
                    nursery.start_soon(one_shot_client, new_port, load, stop, TENANT_HOST, context)
                for _ in range(2):
                    url = f"https://127.0.0.1:{new_port}"
                    nursery.start_soon(keep_alive_client, url, load, stop, TENANT_HOST, context)
                with trio.fail_after(120):
                    await load.wait_for_more(30)
                    assert await first.stop(signal.SIGTERM) == 0
                    await load.wait_for_more(60)
                stop.set()
            assert pebble.orders() == 2
    assert load.ok > 0
    assert dict(load.failures) == {}
    assert load.pids == {tenant_pid}
