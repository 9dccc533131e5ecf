"""Public read-outs: ``/health``, ``/metrics``, ``/api/telemetry``, and ``/api/tls/status``."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import attrs
import trio

from tenement.api import conditional, fleet_list, http
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
    # a fleet node's series carry its name: each node is scraped on its own
    data = snapshot(api.supervisor, api.proxy_metrics, api.store.node)
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
    recorded by the proxy change it too). A fleet node's covers the whole fleet."""
    proxy_metrics = api.proxy_metrics
    local_tag = (
        api.supervisor.changes(),
        proxy_metrics.changes if proxy_metrics is not None else 0,
    )
    relay = api.relay
    if (
        relay is not None
        and api.store.node is not None
        and not fleet_list.is_hop(relay, request.scope)
    ):
        return await fleet_telemetry(api, request, local_tag)
    tag = conditional.etag(*local_tag)
    unchanged = conditional.not_modified(request.scope, tag)
    if unchanged is not None:
        return unchanged
    return conditional.tagged(
        http.json_response(telemetry_json(api.supervisor, proxy_metrics)), tag
    )


async def fleet_telemetry(
    api: ApiContext, request: Request, local_tag: tuple[Hashable, ...]
) -> http.Response:
    """The whole fleet's telemetry: every instance names its node; the summary counts
    them all (its requests: those of the instances listed, once each). A live peer that
    does not answer is counted from its rows (health ``unknown``, no requests) and named
    in the silent-nodes header."""
    relay, store = api.relay, api.store
    assert relay is not None
    node: str = store.node
    peers = [name for name in relay.live_nodes() if name != node]
    parts = await fleet_list.peer_parts(
        relay, api.peer_answers, peers, "/api/telemetry", request.scope, None
    )
    silent = fleet_list.silent(parts)
    records = await store.run(store.listed_rows_of, silent) if silent else []
    tag = conditional.etag(
        *local_tag,
        tuple((part.node, part.tag) for part in parts),
        tuple((r.instance_id, r.state, r.restarts_total, r.weight) for r in records),
    )
    headers = fleet_list.silent_header(parts)
    unchanged = conditional.not_modified(request.scope, tag)
    if unchanged is not None:
        return attrs.evolve(unchanged, headers=(*unchanged.headers, *headers))
    body = telemetry_json(api.supervisor, api.proxy_metrics)
    instances = [{**item, "node": node} for item in body["instances"]]
    for part in parts:
        instances += part.items
    instances += [_row_telemetry(record) for record in records]
    # each instance's requests as its owner counted them: a node's own total also
    # counts the requests its proxy forwarded to another node, which that node counts
    total_requests = sum(
        item["requests_total"] for item in instances if isinstance(item.get("requests_total"), int)
    )
    instances.sort(key=lambda item: (str(item.get("id")), str(item.get("node"))))
    body = {
        "summary": {
            "total_instances": len(instances),
            "healthy_instances": sum(1 for item in instances if item.get("health") == "healthy"),
            "total_requests": total_requests,
        },
        "instances": instances,
    }
    answer = conditional.tagged(http.json_response(body), tag)
    return attrs.evolve(answer, headers=(*answer.headers, *headers))


def _row_telemetry(record: Any) -> dict[str, Any]:
    """A silent peer's instance, from its row: what only that node knows is unknown."""
    return {
        "id": record.instance_id,
        "process": record.service,
        "instance": record.tenant,
        "health": "unknown",
        "uptime_secs": 0,
        "idle_secs": 0,
        "restarts": record.restarts_total,
        "weight": record.weight,
        "requests_total": 0,
        "request_duration_avg_ms": 0.0,
        "request_duration_p99_ms": 0.0,
        "storage_used_bytes": 0,
        "storage_quota_bytes": None,
        "node": record.node,
    }


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
