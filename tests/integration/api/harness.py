"""A real API over a real supervisor, store and tenant processes, served on 127.0.0.1.

:func:`open_api` writes a tenement.toml with one service (``notes``, the tiny
``tenant_app.py``), opens and migrates a SQLite store in ``tmp_path``, creates an admin
token and a tenant token for ``alice``, opens the supervisor, and serves the proxy (with
the API as its fallback, as ``ten serve`` does) with hypercorn on an ephemeral port.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from tenement.api import build_api
from tenement.config import parse_config
from tenement.proxy import Proxy, ProxyMetrics
from tenement.store import generate_token, hash_token, migrate_to_head, open_store, token_prefix
from tenement.supervisor import open_supervisor

APP = Path(__file__).with_name("tenant_app.py")


@attrs.frozen
class Harness:
    url: str
    admin_token: str
    tenant_token: str
    supervisor: object
    store: object
    metrics: ProxyMetrics
    app: object

    def asgi_client(self, address: str, token: str | None = None) -> httpx.AsyncClient:
        """A client calling the app in-process, as if from ``address`` (no socket)."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))  # type: ignore[arg-type]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(transport=transport, base_url="http://localhost", headers=headers)

    def client(
        self, token: str | None = None, *, headers: dict[str, str] | None = None, **kwargs: object
    ) -> httpx.AsyncClient:
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def admin(self, **kwargs: object) -> httpx.AsyncClient:
        return self.client(self.admin_token, **kwargs)

    def tenant(self, **kwargs: object) -> httpx.AsyncClient:
        return self.client(self.tenant_token, **kwargs)


def config_text(data_dir: Path, *, tls: bool = False) -> str:
    return f"""
[settings]
data_dir = "{data_dir}"
health_check_interval = 1
# the tenants are this test's scripts, wherever the checkout is: the server's user
tenant_users = false

[service.notes]
command = "{sys.executable}"
args = ["-u", "{APP}", "{{port}}"]
isolation = "process"
health = "/health"
storage_quota_mb = 1
"""


@asynccontextmanager
async def open_api(
    tmp_path: Path,
    *,
    keepalive_seconds: float = 15.0,
    ready: Callable[[], bool] = lambda: True,
    request_history: Any = None,
) -> AsyncIterator[Harness]:
    config = parse_config(config_text(tmp_path / "data"), cwd=tmp_path)
    admin, tenant = generate_token(), generate_token()
    with open_store(f"sqlite:///{tmp_path}/tenement.db") as store:
        migrate_to_head(store, backup_dir=None)
        store.set_admin_token_hash(hash_token(admin))
        store.add_tenant_token("alice", hash_token(tenant), token_prefix(tenant), "test")
        async with open_supervisor(config, store, environ={}) as supervisor:
            metrics = ProxyMetrics()
            api = build_api(
                supervisor,
                store,
                ready=ready,
                settings=config.settings,
                proxy_metrics=metrics,
                keepalive_seconds=keepalive_seconds,
                request_history=request_history,
            )
            proxy = Proxy(supervisor, domain="localhost", fallback=api)
            proxy.metrics = metrics
            hyper = HypercornConfig()
            hyper.bind = ["127.0.0.1:0"]
            hyper.accesslog = None
            hyper.graceful_timeout = 0.1
            async with trio.open_nursery() as nursery:
                binds = await nursery.start(serve, proxy, hyper)
                yield Harness(binds[0], admin, tenant, supervisor, store, metrics, proxy)
                nursery.cancel_scope.cancel()
