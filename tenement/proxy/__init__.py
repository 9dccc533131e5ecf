"""The reverse proxy: routes tenant hosts to their instances (raw ASGI, no framework).

``alice.notes.<domain>`` goes to instance ``notes:alice`` (woken when it is stopped),
``notes.<domain>`` to a weighted pick among ``notes``' instances, and every other host to
the fallback app (the API and dashboard). Modules:

- ``routing``: Host parsing and the weighted pick (pure);
- ``headers``: hop-by-hop filtering and X-Forwarded-* (pure);
- ``upstream``: pooled HTTP/1.1 connections to tenants (h11 on trio sockets);
- ``forward``: one HTTP exchange, streamed both ways;
- ``websocket``: WebSocket relay (wsproto);
- ``metrics``: request counts and durations per instance;
- ``backends``: the protocol the supervisor implements for the proxy;
- ``app``: :class:`Proxy`, which ties them together.
"""

from tenement.proxy.app import Proxy
from tenement.proxy.backends import Backends, Target
from tenement.proxy.metrics import (
    BUCKETS_MS,
    ProxyMetrics,
    ProxyStatistics,
    RequestSeries,
)

__all__ = [
    "BUCKETS_MS",
    "Backends",
    "Proxy",
    "ProxyMetrics",
    "ProxyStatistics",
    "RequestSeries",
    "Target",
]
