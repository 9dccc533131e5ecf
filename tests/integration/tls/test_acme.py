"""Built-in TLS against a real ACME server (pebble): issuance, on demand, the cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from tests.fdholder import open_fd_holder
from tests.integration.tls.harness import DOMAIN, TENANT_HOST, https_get, start_server, write_config
from tests.pebble import MISSING, client_context, open_pebble

pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


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
                while True:
                    try:
                        answer = await https_get(https_port, DOMAIN, context, "/health")
                        break
                    except trio.BrokenResourceError:
                        await trio.sleep(0.1)
            assert answer.status == 200
            with trio.fail_after(60):
                tenant = await https_get(https_port, TENANT_HOST, context)
            assert tenant.status == 200
            assert tenant.body.endswith(b" https")
            assert tenant.serial != answer.serial
