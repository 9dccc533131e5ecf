"""Public read-outs: ``/health``, ``/metrics``, ``/api/telemetry``, and ``/api/tls/status``."""

from __future__ import annotations

from typing import Any

import trio

from tenement.api import conditional, http
from tenement.api.app import ApiContext, Request
from tenement.api.instances import live_views
from tenement.api.metrics import CONTENT_TYPE, render_metrics, request_series, snapshot
from tenement.types import Send

TLS_RECOMMENDATION = "Use --caddy flag with `ten install` for production HTTPS"


async def health(api: ApiContext, request: Request, send: Send) -> http.Response:
    """200 ``{"status":"ok"}`` once the server is ready, else 503 ``{"status":"starting"}``."""
    if api.ready():
        return http.json_response({"status": "ok"})
    return http.json_response({"status": "starting"}, 503)


async def metrics(api: ApiContext, request: Request, send: Send) -> http.Response:
    data = snapshot(api.supervisor, api.proxy_metrics)
    # The first scrape imports prometheus-client (~80 ms): render off the event loop.
    body = await trio.to_thread.run_sync(render_metrics, data)
    return http.Response(200, body, CONTENT_TYPE)


def telemetry_json(supervisor: Any, proxy_metrics: Any) -> dict[str, Any]:
    series = {item.instance_id: item for item in request_series(proxy_metrics)}
    instances = []
    for view in live_views(supervisor):
        item = series.get(view.id)
        instances.append(
            {
                "id": view.id,
                "process": view.service,
                "instance": view.tenant,
                "health": str(view.health),
                "uptime_secs": view.uptime_secs,
                "idle_secs": view.idle_secs,
                "restarts": view.restarts,
                "weight": view.weight,
                "requests_total": item.requests_total if item else 0,
                "request_duration_avg_ms": item.avg_ms if item else 0.0,
                "request_duration_p99_ms": item.p99_ms if item else 0.0,
                "storage_used_bytes": view.storage_used_bytes,
                "storage_quota_bytes": view.storage_quota_bytes,
            }
        )
    return {
        "summary": {
            "total_instances": len(instances),
            "healthy_instances": sum(1 for item in instances if item["health"] == "healthy"),
            "total_requests": sum(item.requests_total for item in series.values()),
        },
        "instances": instances,
    }


async def telemetry(api: ApiContext, request: Request, send: Send) -> http.Response:
    """The telemetry, with a weak ETag as ``GET /api/instances`` has (requests
    recorded by the proxy change it too)."""
    proxy_metrics = api.proxy_metrics
    tag = conditional.etag(
        api.supervisor.changes(), proxy_metrics.changes if proxy_metrics is not None else 0
    )
    unchanged = conditional.not_modified(request.scope, tag)
    if unchanged is not None:
        return unchanged
    return conditional.tagged(
        http.json_response(telemetry_json(api.supervisor, proxy_metrics)), tag
    )


async def tls_status(api: ApiContext, request: Request, send: Send) -> http.Response:
    tls = api.settings.tls
    if not tls.enabled:
        # What the reference answers when TLS is off: no domain, ports 0.
        body = {
            "enabled": False,
            "domain": None,
            "staging": False,
            "https_port": 0,
            "http_port": 0,
            "recommendation": TLS_RECOMMENDATION,
        }
    else:
        body = {
            "enabled": True,
            "domain": tls.domain or api.domain,
            "staging": tls.staging,
            "https_port": tls.https_port,
            "http_port": tls.http_port,
            "recommendation": None,
        }
        live = api.tls_status() if api.tls_status is not None else None
        if live is not None:  # added in 0.3.0: directory, certificates, failing
            body.update(live)
    return http.json_response(body)
