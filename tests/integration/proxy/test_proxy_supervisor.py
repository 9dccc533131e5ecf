"""The proxy in front of the real supervisor: wake on request, stop, wake again."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from tenement.proxy import Proxy
from tenement.store import migrate_to_head, open_store
from tests.integration.proxy.proxy_support import DOMAIN, fallback_app, serve_proxy
from tests.integration.supervisor.supervisor_support import make_config


async def test_wake_stop_wake_through_the_supervisor(nursery, tmp_path: Path) -> None:
    from tenement.supervisor import open_supervisor

    config = make_config(tmp_path, instances={"app": ("alice",)})
    with open_store(f"sqlite:///{tmp_path}/data/tenement.db") as store:
        migrate_to_head(store, backup_dir=None)
        async with open_supervisor(config, store, environ=dict(os.environ)) as supervisor:
            server = await serve_proxy(
                nursery, Proxy(supervisor, domain=DOMAIN, fallback=fallback_app)
            )
            headers = {"host": f"alice.app.{DOMAIN}"}
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                first = await client.get("/", headers=headers)
                assert first.status_code == 200
                assert first.text.startswith("alice pid=")
                await supervisor.stop("app:alice")
                woken = await client.get("/", headers=headers)
                assert woken.status_code == 200
                assert woken.text.startswith("alice pid=")
                assert woken.text != first.text  # a new process
                weighted = await client.get("/", headers={"host": f"app.{DOMAIN}"})
                assert weighted.text == woken.text
                stranger = await client.get("/", headers={"host": f"bob.app.{DOMAIN}"})
                assert stranger.status_code == 404
            series = {s.instance_id: s for s in server.proxy.statistics().series}
            assert series["app:alice"].requests_total == 3
