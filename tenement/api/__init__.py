"""The REST API: management endpoints, auth, metrics and the OpenAPI document.

Layout: :mod:`~tenement.api.app` is the ASGI app (public paths, auth, router);
:mod:`~tenement.api.auth` bearer tokens and the per-client rate limit;
:mod:`~tenement.api.http` responses and JSON bodies; one module per resource
(:mod:`~tenement.api.instances`, :mod:`~tenement.api.deploy`, :mod:`~tenement.api.logs`,
:mod:`~tenement.api.sse`, :mod:`~tenement.api.telemetry`, :mod:`~tenement.api.dashboard`);
:mod:`~tenement.api.metrics` the Prometheus text; :mod:`~tenement.api.openapi` the
document; :mod:`~tenement.api.errors` the error -> status table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tenement.api import (
    dashboard,
    deploy,
    events,
    history,
    http,
    instances,
    live,
    logs,
    moves,
    nodes,
    session,
    sse,
    telemetry,
)
from tenement.api.app import ApiApp, ApiContext, Request, Route
from tenement.api.auth import Authenticator, Identity, RateLimiter
from tenement.api.moves import Mover
from tenement.api.openapi import openapi_document
from tenement.api.relay import Relay
from tenement.config import Settings
from tenement.types import ASGIApp, Send

__all__ = ["Authenticator", "Identity", "RateLimiter", "build_api", "openapi_document"]


async def _openapi(api: ApiContext, request: Request, send: Send) -> http.Response:
    return http.Response(200, json.dumps(openapi_document()).encode(), http.JSON)


def routes() -> list[Route]:
    """Every endpoint (the OpenAPI document describes the same set; a test checks)."""
    return [
        Route("GET", "/", dashboard.index),
        Route("GET", "/assets/{path}", dashboard.asset),
        Route("GET", "/health", telemetry.health),
        Route("GET", "/metrics", telemetry.metrics),
        Route("GET", "/api/openapi.json", _openapi),
        Route("GET", "/api/telemetry", telemetry.telemetry),
        Route("GET", "/api/instances", instances.list_instances),
        Route("GET", "/api/instances/stream", live.stream_changes),
        Route("POST", "/api/instances/spawn", instances.spawn, relayable=True),
        Route("DELETE", "/api/instances/{id}", instances.stop, relayable=True),
        Route("POST", "/api/instances/{id}/restart", instances.restart, relayable=True),
        Route("PUT", "/api/instances/{id}/weight", instances.set_weight, relayable=True),
        Route("POST", "/api/instances/{id}/move", moves.move, relayable=True),
        Route("DELETE", "/api/instances/{id}/move", moves.abort_move, relayable=True),
        Route("POST", "/api/fleet/storage/{service}/{tenant}/check", moves.check_room),
        Route("POST", "/api/fleet/storage/{service}/{tenant}/start", moves.start_handed),
        Route("PUT", "/api/fleet/storage/{service}/{tenant}", moves.receive_data),
        Route("DELETE", "/api/fleet/storage/{service}/{tenant}", moves.discard_data),
        Route("GET", "/api/instances/{id}/health", instances.health, relayable=True),
        Route("GET", "/api/instances/{id}/storage", instances.storage, relayable=True),
        Route("GET", "/api/instances/{id}/history", history.instance_history, relayable=True),
        Route("GET", "/api/instances/{id}/events", events.instance_events),
        Route("GET", "/api/history", history.server_history),
        Route("POST", "/api/deploy", deploy.deploy),
        Route("POST", "/api/route", deploy.route),
        Route("GET", "/api/logs", logs.list_logs),
        Route("GET", "/api/logs/stream", sse.stream_logs, relayable=True, streamed=True),
        Route("POST", "/api/logs/stream/ticket", session.stream_ticket),
        Route("GET", "/api/whoami", session.whoami),
        Route("GET", "/api/tls/status", telemetry.tls_status),
        Route("GET", "/api/nodes", nodes.list_nodes),
        Route("POST", "/api/nodes/{name}/drain", nodes.drain),
        Route("POST", "/api/nodes/{name}/undrain", nodes.undrain),
    ]


def build_api(
    supervisor: Any,
    store: Any,
    *,
    ready: Callable[[], bool],
    settings: Settings | None = None,
    domain: str = "localhost",
    proxy_metrics: Any = None,
    authenticator: Authenticator | None = None,
    keepalive_seconds: float = sse.KEEPALIVE_SECONDS,
    request_history: Any = None,
    tls_status: Callable[[], dict[str, Any] | None] | None = None,
    fleet_relay: Relay | None = None,
    mover: Mover | None = None,
) -> ASGIApp:
    """The management API as an ASGI app (the proxy's fallback for non-subdomain hosts).

    Args:
        supervisor: the running :class:`~tenement.supervisor.Supervisor`.
        store: the :class:`~tenement.store.Store` (tokens and logs are read from it, in
            worker threads).
        ready: ``GET /health`` answers 200 only while this returns True.
        settings: for ``/api/tls/status``; defaults to ``Settings()``.
        domain: the server's domain (``ten serve --domain``).
        proxy_metrics: the proxy's request metrics (``statistics()``, see
            :mod:`tenement.api.metrics`); None reports no requests.
        authenticator: defaults to Argon2 verification against ``store`` with a
            per-client :class:`RateLimiter`.
        keepalive_seconds: idle time before an SSE comment frame.
        request_history: the :class:`~tenement.api.history.History` the server fills;
            None answers the history endpoints with empty series.
        tls_status: the built-in TLS's certificates and failing hosts, added to
            ``/api/tls/status`` (None, or returning None: not reported).
        fleet_relay: a fleet node's relay of calls for other nodes' instances
            (:mod:`~tenement.api.relay`); None on a single host.
        mover: a fleet node's mover of tenants (:mod:`~tenement.api.moves`); None on a
            single host.

    Returns:
        An ASGI app. It owns no resources and starts no tasks.
    """
    context = ApiContext(
        supervisor=supervisor,
        store=store,
        settings=settings if settings is not None else Settings(),
        domain=domain,
        proxy_metrics=proxy_metrics,
        ready=ready,
        authenticator=authenticator or Authenticator(store),
        keepalive_seconds=keepalive_seconds,
        history=request_history,
        tls_status=tls_status,
        relay=fleet_relay,
        mover=mover,
    )
    return ApiApp(context, routes(), default=dashboard.asset_fallback)
