"""Zero downtime over TLS: SIGUSR2 restarts (systemd's RestartKillSignal) under an HTTPS
load fail no request and keep the tenant. TLS sessions do not survive the process; new
handshakes wait in the held socket's queue for the next one."""

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

RESTARTS = 5


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigusr2_restarts_under_https_load_fail_no_request(
    tmp_path: Path, workers: int
) -> None:
    """With ``--workers 2`` both processes serve HTTPS and share ``cache_dir``: one
    orders each certificate (a lock file per host), the other loads it."""
    options = ("--workers", str(workers))
    async with open_fd_holder(tmp_path, extra_tcp=2) as holder:
        https_port, http_port = holder.extra_ports
        # not a test of validation: pebble takes every challenge as passed
        async with open_pebble(
            tmp_path / "pebble", http_port=http_port, tls_port=https_port, always_valid=True
        ) as pebble:
            write_config(tmp_path, holder, pebble.directory)
            await start_server(holder, tmp_path, dict(pebble.environ), *options)
            context = client_context(await pebble.root_pem())
            with trio.fail_after(60):
                await wait_for_certificate(https_port, DOMAIN, context)
                first = await https_get(https_port, TENANT_HOST, context)
            tenant_pid = first.body.split()[1].decode()
            load = Load()
            stop = trio.Event()
            url = f"https://127.0.0.1:{https_port}"
            async with trio.open_nursery() as nursery:
                for _ in range(4):
                    nursery.start_soon(
                        one_shot_client, https_port, load, stop, TENANT_HOST, context
                    )
                for _ in range(2):
                    nursery.start_soon(keep_alive_client, url, load, stop, TENANT_HOST, context)
                with trio.fail_after(180):
                    await load.wait_for_more(30)
                    for _ in range(RESTARTS):
                        assert await holder.stop(signal.SIGUSR2) == 0
                        await start_server(holder, tmp_path, dict(pebble.environ), *options)
                        await load.wait_for_more(30)
                stop.set()
    assert load.ok > 0
    assert dict(load.failures) == {}
    assert load.pids == {tenant_pid}
    assert pebble.orders() == 2  # the domain and the tenant host, once each
