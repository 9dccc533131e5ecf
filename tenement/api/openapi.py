"""The OpenAPI 3.1 document of the REST API, served at ``GET /api/openapi.json``.

The document is the API's compatibility contract: ``tests/contract`` keeps a snapshot
per release and fails when a path, method, status or field of an earlier release is
missing here. Add to it freely; remove nothing within a major version.
"""

from __future__ import annotations

from typing import Any

from tenement._version import __version__
from tenement.api.http import MAX_INT, MAX_KEEP_SOURCE
from tenement.ids import NAME_PATTERN as _NAME
from tenement.store.drain import MAX_PARALLEL

NAME_PATTERN = f"^{_NAME.pattern}$"
INSTANCE_ID_PATTERN = f"^{_NAME.pattern}:{_NAME.pattern}$"


def _obj(properties: dict[str, Any], required: tuple[str, ...] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties if required is None else required),
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


INT = {"type": "integer", "minimum": 0}
#: a count or number field the API reads (``tenement.api.http.MAX_INT``)
COUNT = {"type": "integer", "minimum": 0, "maximum": MAX_INT}
STR = {"type": "string"}
NUM = {"type": "number"}
NULLABLE_INT = {"type": ["integer", "null"], "minimum": 0}
#: every Instance field but those only some servers send
INSTANCE_REQUIRED = (
    "id",
    "socket",
    "uptime_secs",
    "idle_secs",
    "restarts",
    "health",
    "storage_used_bytes",
    "storage_quota_bytes",
    "weight",
    "service",
    "tenant",
    "state",
    "pid",
    "port",
    "active_connections",
    "memory_bytes",
    "cpu_percent",
)
#: every TelemetryInstance field but ``node`` (a fleet node's only)
TELEMETRY_INSTANCE_REQUIRED = (
    "id",
    "process",
    "instance",
    "health",
    "uptime_secs",
    "idle_secs",
    "restarts",
    "weight",
    "requests_total",
    "request_duration_avg_ms",
    "request_duration_p99_ms",
    "storage_used_bytes",
    "storage_quota_bytes",
)
HEALTH = {"type": "string", "enum": ["unknown", "healthy", "degraded", "unhealthy", "failed"]}


def _schemas() -> dict[str, Any]:
    return {
        "Error": _obj({"error": {**STR, "description": "What went wrong, for a person."}}),
        "Status": _obj({"status": {"type": "string", "enum": ["ok", "starting"]}}),
        "Instance": _obj(
            {
                "id": {**STR, "description": "service:tenant"},
                "socket": {**STR, "description": "127.0.0.1:<port>, or the Unix socket path"},
                "uptime_secs": INT,
                "idle_secs": INT,
                "restarts": INT,
                "health": HEALTH,
                "storage_used_bytes": INT,
                "storage_quota_bytes": NULLABLE_INT,
                "weight": {"type": "integer", "minimum": 0, "maximum": 100},
                "service": {**STR, "description": "Added in 0.3.0."},
                "tenant": {**STR, "description": "Added in 0.3.0."},
                "state": {
                    "type": "string",
                    "enum": ["starting", "running", "stopped", "failed", "orphaned", "moving"],
                    "description": "Added in 0.3.0. orphaned: in a fleet, its node is down "
                    "and its service may not fail over ([service.X] failover); nothing runs "
                    "it until the node returns. moving: in a fleet, it is being moved to "
                    "another node (ten move, ten drain), as `move` says.",
                },
                "pid": {**NULLABLE_INT, "description": "Added in 0.3.0."},
                "port": {**NULLABLE_INT, "description": "Added in 0.3.0."},
                "active_connections": {**INT, "description": "Added in 0.3.0."},
                "memory_bytes": {
                    **NULLABLE_INT,
                    "description": "Resident memory of the tenant's process group at the "
                    "server's last 10 s sample; null before it. Added in 0.3.0.",
                },
                "cpu_percent": {
                    "type": ["number", "null"],
                    "minimum": 0,
                    "description": "CPU of the tenant's process group over the last 10 s "
                    "interval, in percent of one core; null before two samples. "
                    "Added in 0.3.0.",
                },
                "node": {
                    **STR,
                    "description": "The fleet node that runs it; only in a fleet "
                    "([fleet] set), whose every node lists the whole fleet's instances. "
                    "Added in 0.3.0.",
                },
                "move": {
                    **_obj(
                        {
                            "to": STR,
                            "step": {
                                "type": "string",
                                "enum": ["stopping", "packing", "sending", "handover", "starting"],
                            },
                            "bytes": {**INT, "description": "Size of its data."},
                            "secs": {**NUM, "description": "Since the move began."},
                        }
                    ),
                    "description": "Only while it is being moved to another fleet node "
                    "(state moving): where to, and what the move is doing. Added in 0.3.0.",
                },
            },
            required=INSTANCE_REQUIRED,
        ),
        "Node": _obj(
            {
                "name": STR,
                "advertise": {**STR, "description": "host:port where peers reach it"},
                "version": {**STR, "description": "Its tenement version."},
                "state": {"type": "string", "enum": ["up", "restarting", "down", "draining"]},
                "started_at": {
                    "type": ["number", "null"],
                    "description": "Epoch seconds (the database's clock); null if the row "
                    "holds no finite number (NaN, Infinity).",
                },
                "heartbeat_at": {
                    "type": ["number", "null"],
                    "description": "Epoch seconds (the database's clock); null as started_at.",
                },
                "silent_secs": {
                    "type": ["number", "null"],
                    "description": "Since its last heartbeat; null as started_at.",
                },
                "cpus": INT,
                "memory_total_bytes": INT,
                "memory_available_bytes": INT,
                "instances": {**INT, "description": "Running or starting, at its heartbeat."},
                "down_at": {"type": ["number", "null"]},
                "down_by": {
                    "type": ["string", "null"],
                    "description": "The peer that declared it down.",
                },
                "instances_held": {
                    **INT,
                    "description": "Instance rows that name it, stopped ones too: what a "
                    "drain has left to move. Added in 0.3.0.",
                },
                "drain_parallel": {
                    "type": ["integer", "null"],
                    "description": "While draining: how many of its tenants move at once; "
                    "null otherwise. Added in 0.3.0.",
                },
            }
        ),
        "DrainRequest": _obj(
            {
                "parallel": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "maximum": MAX_PARALLEL,
                    "description": "How many of its tenants move at once (ten drain "
                    "--parallel); default 1, or, for a node draining already, what its "
                    "drain was given. Kept in the database: a restart of the node's server "
                    "goes on with it. Added in 0.3.0.",
                },
            }
        ),
        "DrainResponse": _obj(
            {
                "node": STR,
                "state": {**STR, "description": "draining"},
                "already": {"type": "boolean", "description": "It was draining before."},
                "instances_left": {**INT, "description": "Instance rows that still name it."},
                "parallel": {**INT, "description": "How many of its tenants move at once."},
            }
        ),
        "UndrainResponse": _obj(
            {
                "node": STR,
                "state": {**STR, "description": "Its state now (up, unless it was not draining)."},
                "was_draining": {
                    "type": "boolean",
                    "description": "False: it was not draining, and nothing changed.",
                },
                "instances_left": {**INT, "description": "Instance rows that name it."},
            }
        ),
        "Nodes": _obj(
            {
                "fleet": {"type": "boolean", "description": "False without [fleet]."},
                "node": {"type": ["string", "null"], "description": "This server's node."},
                "nodes": {"type": "array", "items": _ref("Node")},
            }
        ),
        "SpawnRequest": _obj(
            {
                "process": {**STR, "pattern": NAME_PATTERN},
                "id": {**STR, "pattern": NAME_PATTERN},
                "node": {
                    "type": ["string", "null"],
                    "description": "In a fleet: the node to start it on (the call is relayed "
                    "there; one of its service's [service.X] nodes; a draining node is "
                    "refused with 409); default: placed by free capacity among the live "
                    "nodes the service allows, draining ones left out. Added in 0.3.0.",
                },
            }
        ),
        "SpawnResponse": _obj({"instance": STR, "socket": STR, "port": NULLABLE_INT}),
        "MoveRequest": _obj(
            {
                "to": {**STR, "description": "The fleet node to move it to."},
                "keep_source": {
                    "type": ["integer", "null"],
                    "minimum": 0,
                    "maximum": MAX_KEEP_SOURCE,
                    "description": "Seconds the old node keeps its copy of the data before "
                    "removing it; default: its [fleet] keep_moved (7 days unless set). "
                    "Added in 0.3.0.",
                },
            },
            required=("to",),
        ),
        "MoveResponse": _obj(
            {
                "id": STR,
                "from": STR,
                "to": STR,
                "epoch": INT,
                "bytes": {**INT, "description": "Size of the data sent (a tar file)."},
                "entries": INT,
                "sha256": {
                    "type": ["string", "null"],
                    "description": "SHA-256 of the data sent, checked on arrival; null when "
                    "the service keeps no data (storage_persist = false).",
                },
                "kept": {
                    "type": ["string", "null"],
                    "description": "Where the old node keeps its copy of the data.",
                },
                "kept_until": {
                    "type": ["number", "null"],
                    "description": "When the old node removes its copy (epoch seconds); "
                    "null when it kept none.",
                },
                "stop_secs": NUM,
                "transfer_secs": NUM,
                "start_secs": NUM,
                "total_secs": NUM,
            }
        ),
        "MoveAborted": _obj(
            {
                "id": STR,
                "aborted": {"type": "boolean"},
                "step": {
                    **STR,
                    "description": "What the move was doing when it was aborted: stopping, "
                    "packing or sending.",
                },
                "to": {**STR, "description": "The node it was being moved to."},
                "runs_on": {**STR, "description": "The node it runs on again (its old one)."},
                "back": {
                    "type": "boolean",
                    "description": "Whether it was started here again (if it ran) before "
                    "the answer; false only when that took longer than 90 s (ten ps shows it).",
                },
            }
        ),
        "StorageReceived": _obj({"bytes": INT, "entries": INT}),
        "StorageDiscarded": _obj({"discarded": {"type": "boolean"}}),
        "WeightRequest": _obj(
            {
                "weight": {
                    **COUNT,
                    "description": "Values above 100 are capped to 100.",
                }
            }
        ),
        "WeightResponse": _obj(
            {
                "instance": STR,
                "weight": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 100,
                    "description": "The weight applied (after capping).",
                },
            }
        ),
        "InstanceHealth": _obj({"instance": STR, "health": HEALTH}),
        "Storage": _obj(
            {
                "used_bytes": INT,
                "quota_bytes": NULLABLE_INT,
                "usage_percent": {
                    "type": ["number", "null"],
                    "description": "used / quota * 100; null without a quota.",
                },
                "path": STR,
            }
        ),
        "DeployRequest": _obj(
            {
                "process": {**STR, "pattern": NAME_PATTERN},
                "version": {**STR, "pattern": NAME_PATTERN},
                "weight": {**COUNT, "default": 100},
                "timeout": {
                    **COUNT,
                    "minimum": 1,
                    "default": 30,
                    "description": "Seconds to wait for the new instance to become healthy.",
                },
            },
            required=("process", "version"),
        ),
        "DeployResponse": _obj(
            {
                "instance": STR,
                "socket": STR,
                "weight": INT,
                "status": {"type": "string", "enum": ["healthy"]},
            }
        ),
        "RouteRequest": _obj(
            {
                "process": {**STR, "pattern": NAME_PATTERN},
                "from": {**STR, "pattern": NAME_PATTERN},
                "to": {**STR, "pattern": NAME_PATTERN},
            }
        ),
        "RouteResponse": _obj(
            {"from_instance": STR, "to_instance": STR, "from_weight": INT, "to_weight": INT}
        ),
        "LogEntry": _obj(
            {
                "timestamp": {**INT, "description": "Epoch milliseconds."},
                "level": {"type": "string", "enum": ["stdout", "stderr"]},
                "process": STR,
                "instance_id": {**STR, "description": "The tenant id."},
                "message": STR,
            }
        ),
        "History": _obj(
            {
                "interval_secs": {**INT, "description": "Seconds per sample (10)."},
                "end": {
                    "type": ["integer", "null"],
                    "minimum": 0,
                    "description": "Epoch milliseconds of the last sample; null before the first.",
                },
                "requests": {
                    "type": "array",
                    "items": INT,
                    "description": "Requests per interval, oldest first (up to an hour).",
                },
                "p99_ms": {
                    "type": "array",
                    "items": NUM,
                    "description": "The p99 latency per interval, as a histogram bucket "
                    "bound (1, 5, 10, 25, ... 5000 ms); 0 without requests.",
                },
            }
        ),
        "InstanceEvent": _obj(
            {
                "timestamp": {**INT, "description": "Epoch milliseconds."},
                "action": {
                    **STR,
                    "description": "spawn, stop, restart, crash-restart, failed, adopt, "
                    "weight, deploy, route, wake, ...",
                },
                "details": {"type": ["string", "null"]},
                "success": {"type": "boolean"},
            }
        ),
        "WhoAmI": _obj(
            {
                "admin": {"type": "boolean", "description": "An admin token."},
                "tenant": {
                    "type": ["string", "null"],
                    "description": "The tenant of a tenant token; null for the admin.",
                },
            }
        ),
        "StreamTicket": _obj(
            {
                "ticket": {
                    **STR,
                    "description": "Pass as `?ticket=` to GET /api/logs/stream or "
                    "GET /api/instances/stream, once.",
                },
                "expires_in_secs": {**INT, "description": "Unused, it expires after this."},
            }
        ),
        "Telemetry": _obj(
            {
                "summary": _obj(
                    {"total_instances": INT, "healthy_instances": INT, "total_requests": INT}
                ),
                "instances": {"type": "array", "items": _ref("TelemetryInstance")},
            }
        ),
        "TelemetryInstance": _obj(
            {
                "id": STR,
                "process": STR,
                "instance": STR,
                "health": HEALTH,
                "uptime_secs": INT,
                "idle_secs": INT,
                "restarts": INT,
                "weight": INT,
                "requests_total": INT,
                "request_duration_avg_ms": NUM,
                "request_duration_p99_ms": NUM,
                "storage_used_bytes": INT,
                "storage_quota_bytes": NULLABLE_INT,
                "node": {
                    **STR,
                    "description": "The fleet node that runs it; only in a fleet "
                    "([fleet] set), whose every node's telemetry covers the whole fleet. "
                    "Added in 0.3.0.",
                },
            },
            required=TELEMETRY_INSTANCE_REQUIRED,
        ),
        "TlsStatus": _obj(
            {
                "enabled": {"type": "boolean"},
                "domain": {"type": ["string", "null"]},
                "staging": {"type": "boolean"},
                "https_port": INT,
                "http_port": INT,
                "recommendation": {"type": ["string", "null"]},
                "directory": {
                    "type": "string",
                    "description": "The ACME directory ordered from (with TLS on). Added in 0.3.0.",
                },
                "certificates": {
                    "type": "array",
                    "description": "The certificates served, by host (with TLS on). "
                    "Added in 0.3.0.",
                    "items": _obj({"host": STR, "not_after": STR, "renew_at": STR}),
                },
                "failing": {
                    "type": "array",
                    "description": "Hosts whose last order failed and back off (with TLS on). "
                    "Added in 0.3.0.",
                    "items": _obj({"host": STR, "failures": INT, "error": STR}),
                },
            },
            ("enabled", "domain", "staging", "https_port", "http_port", "recommendation"),
        ),
    }


def _responses(*codes: int, ok: dict[str, Any] | None = None) -> dict[str, Any]:
    descriptions = {
        400: "Bad request: a malformed instance id, invalid JSON, or a bad query parameter.",
        403: "A tenant token used on another tenant's instance, or on an admin-only endpoint.",
        404: "No such instance, or no such service.",
        413: "Request body too large.",
        415: "The body is not declared as application/json.",
        409: "The instance runs on another fleet node (added in 0.3.0).",
        503: "In a fleet: the node that runs the instance is down or does not answer "
        "(Retry-After; added in 0.3.0).",
        508: "In a fleet: a call relayed by another node for an instance this node does not "
        "run either (added in 0.3.0).",
        422: "A field is missing or has the wrong type.",
        500: "The supervisor could not do it (the program failed to start, or a deployed "
        "instance did not become healthy).",
    }
    out: dict[str, Any] = dict(ok or {})
    for code in codes:
        if code in (401, 429):
            continue
        out[str(code)] = _json(_ref("Error"), descriptions[code])
    return out


AUTH_RESPONSES = {
    "401": {"description": "Missing or invalid bearer token (empty body)."},
    "429": {
        "description": "Too many invalid tokens from this client recently (empty body).",
        "headers": {
            "Retry-After": {
                "description": "Seconds until this client may try again. Added in 0.3.0.",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    },
}
JSON_BODY_ERRORS = (400, 413, 415, 422)


def _op(
    summary: str,
    responses: dict[str, Any],
    *,
    public: bool = False,
    body: str | None = None,
    params: list[dict[str, Any]] | None = None,
    operation_id: str | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": dict(responses)}
    if operation_id is not None:
        op["operationId"] = operation_id
    if public:
        op["security"] = []
    else:
        op["responses"].update(AUTH_RESPONSES)
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    if params:
        op["parameters"] = params
    return op


def _optional_body(op: dict[str, Any]) -> dict[str, Any]:
    """``op`` with its JSON body optional (an older client sends none)."""
    op["requestBody"]["required"] = False
    return op


ETAG = {
    "description": "A weak tag of the answer (RFC 9110 8.8.3), for `If-None-Match`. It changes "
    "when anything in the answer changes except `uptime_secs` and `idle_secs` growing with the "
    "clock: a client keeping its copy adds the seconds since it fetched it. Added in 0.3.0.",
    "schema": {"type": "string"},
}


SILENT_NODES = {
    "description": "On a fleet node: the live nodes that did not answer within 2 s; their "
    "instances are shown from the shared database, with health `unknown`. Absent when every "
    "node answered. Added in 0.3.0.",
    "schema": {"type": "string"},
}


def _conditional(op: dict[str, Any]) -> dict[str, Any]:
    """``op`` (a GET) with ``If-None-Match``, the ETag of its 200, and its 304."""
    op["responses"]["200"]["headers"] = {"ETag": ETAG, "X-Tenement-Silent-Nodes": SILENT_NODES}
    op["responses"]["304"] = {
        "description": "Not modified: `If-None-Match` names the current ETag (or is `*`); no "
        "body. Added in 0.3.0.",
        "headers": {"ETag": ETAG, "X-Tenement-Silent-Nodes": SILENT_NODES},
    }
    op.setdefault("parameters", []).append(
        {
            "name": "If-None-Match",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "ETags of copies the client has (weak comparison); a value that is "
            "not a list of entity-tags is ignored. Added in 0.3.0.",
        }
    )
    return op


#: the operations on one instance, by operationId (the targets of :func:`_instance_links`)
INSTANCE_OPERATIONS = (
    "stopInstance",
    "restartInstance",
    "setInstanceWeight",
    "checkInstanceHealth",
    "getInstanceStorage",
)


def _instance_links(response: dict[str, Any], field: str) -> dict[str, Any]:
    """``response`` with OpenAPI links from its body's ``field`` (an instance id) to every
    operation on that instance, so clients and tools can follow them."""
    response["links"] = {
        name[0].upper() + name[1:]: {
            "operationId": name,
            "parameters": {"id": f"$response.body#/{field}"},
        }
        for name in INSTANCE_OPERATIONS
    }
    return response


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": NAME_PATTERN},
        "description": description,
    }


INSTANCE_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": INSTANCE_ID_PATTERN},
    "description": "Instance id, service:tenant (e.g. notes:alice).",
}
LOG_FILTERS = [
    _query("process", STR, "Only this service."),
    _query("id", STR, "Only this tenant (a tenant token always sees only its own)."),
    _query("level", STR, "stdout or stderr; other values are ignored."),
]


def _paths() -> dict[str, Any]:
    scoped = {"parameters": [INSTANCE_ID]}
    return {
        "/": {
            "get": _op(
                "The dashboard page",
                {"200": {"description": "HTML", "content": {"text/html": {}}}},
                public=True,
            )
        },
        "/assets/{path}": {
            "get": _op(
                "Dashboard assets; an unknown asset answers with the dashboard page (SPA)",
                {"200": {"description": "The asset, or the page", "content": {"text/html": {}}}},
                public=True,
                params=[
                    {"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
            )
        },
        "/health": {
            "get": _op(
                "Readiness",
                {
                    "200": _json(_ref("Status"), 'Ready: {"status":"ok"}.'),
                    "503": _json(_ref("Status"), "Starting or stopping."),
                },
                public=True,
            )
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics",
                {"200": {"description": "Prometheus text", "content": {"text/plain": {}}}},
                public=True,
            )
        },
        "/api/openapi.json": {
            "get": _op(
                "This document",
                {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
                public=True,
            )
        },
        "/api/telemetry": {
            "get": _conditional(
                _op(
                    "Overview of every instance and its proxied requests (on a fleet node, "
                    "of every node's)",
                    {"200": _json(_ref("Telemetry"), "Telemetry.")},
                    public=True,
                )
            )
        },
        "/api/instances": {
            "get": _conditional(
                _op(
                    "Running instances (a tenant token sees its own); on a fleet node, every "
                    "node's",
                    _responses(
                        400,
                        ok={
                            "200": _json({"type": "array", "items": _ref("Instance")}, "Instances.")
                        },
                    ),
                    params=[
                        _query(
                            "node",
                            STR,
                            "In a fleet: only this node's instances. Unknown node, or a "
                            "server that is not a fleet node: 400. Added in 0.3.0.",
                        )
                    ],
                )
            )
        },
        "/api/instances/stream": {
            "get": _op(
                "What changes in the instance list, as server-sent events: `event: changed` "
                "(data `{}`) when the list or the telemetry may show something new but the "
                "sampled memory and CPU (ask them again, conditionally; at most one per 2 s); "
                "`event: usage` with the instances whose memory or CPU changed at the last "
                "sample, as `{id: {memory_bytes, cpu_percent}}` (null: no sample any more). "
                "A tenant token sees its own instances only; a fleet node tells of the "
                "instances it runs. The stream ends when the server stops or restarts. "
                "Added in 0.3.0.",
                {"200": {"description": "SSE stream", "content": {"text/event-stream": {}}}},
                params=[
                    _query(
                        "ticket",
                        STR,
                        "Instead of the Authorization header (which a browser's EventSource "
                        "cannot send): a ticket from POST /api/logs/stream/ticket, good once. "
                        "An unknown, used or expired ticket is 401. Added in 0.3.0.",
                    ),
                ],
            )
        },
        "/api/instances/spawn": {
            "post": _op(
                "Start an instance (idempotent)",
                _responses(
                    *JSON_BODY_ERRORS,
                    403,
                    404,
                    409,
                    500,
                    503,
                    508,
                    ok={
                        "200": _instance_links(_json(_ref("SpawnResponse"), "Started."), "instance")
                    },
                ),
                body="SpawnRequest",
                operation_id="spawnInstance",
            )
        },
        "/api/instances/{id}": {
            **scoped,
            "delete": _op(
                "Stop an instance",
                _responses(400, 403, 404, 503, 508, ok={"204": {"description": "Stopped."}}),
                operation_id="stopInstance",
            ),
        },
        "/api/instances/{id}/restart": {
            **scoped,
            "post": _op(
                "Restart an instance (starts it if it is not running)",
                _responses(
                    400,
                    403,
                    404,
                    409,
                    500,
                    503,
                    508,
                    ok={
                        "200": _instance_links(_json(_ref("SpawnResponse"), "Started."), "instance")
                    },
                ),
                operation_id="restartInstance",
            ),
        },
        "/api/instances/{id}/weight": {
            **scoped,
            "put": _op(
                "Set an instance's routing weight",
                _responses(
                    *JSON_BODY_ERRORS,
                    403,
                    404,
                    503,
                    508,
                    ok={"200": _json(_ref("WeightResponse"), "Set.")},
                ),
                body="WeightRequest",
                operation_id="setInstanceWeight",
            ),
        },
        "/api/instances/{id}/move": {
            **scoped,
            "post": _op(
                "Move an instance and its data to another fleet node (admin). Its requests "
                "wait meanwhile (up to its request_timeout, then 503 with Retry-After); "
                "anything that fails before the new node has it runs it here again. Added "
                "in 0.3.0.",
                {
                    **_responses(
                        *JSON_BODY_ERRORS,
                        403,
                        404,
                        503,
                        508,
                        ok={"200": _json(_ref("MoveResponse"), "Moved.")},
                    ),
                    "400": _json(
                        _ref("Error"),
                        "Not a fleet node, or the node named is unknown or down.",
                    ),
                    "409": _json(
                        _ref("Error"),
                        "On that node already, failed, being moved, or taken over meanwhile; "
                        "or that node is draining.",
                    ),
                    "502": _json(
                        _ref("Error"),
                        "Sending its data failed (tried 3 times): it runs here again.",
                    ),
                    "507": _json(_ref("Error"), "Its data would not fit on that node."),
                },
                body="MoveRequest",
                operation_id="moveInstance",
            ),
            "delete": _op(
                "Abort the move of an instance under way (admin; ten move --abort), before "
                "its hand-over: it runs on its old node again, with its data; the node it "
                "was going to keeps nothing of it, and the move's own call is answered 409. "
                "Answered once it is back. Added in 0.3.0.",
                {
                    **_responses(
                        403, 404, 503, 508, ok={"200": _json(_ref("MoveAborted"), "Aborted.")}
                    ),
                    "400": _json(_ref("Error"), "Not a fleet node, or an invalid id."),
                    "409": _json(
                        _ref("Error"),
                        "No move of it is under way, or it is too late: the hand-over to the "
                        "new node has begun.",
                    ),
                },
                operation_id="abortInstanceMove",
            ),
        },
        "/api/fleet/storage/{service}/{tenant}/check": {
            "post": _op(
                "Node to node, during a move: 204 if data of `bytes` bytes fits here (needs "
                "the fleet secret in X-Tenement-Hop, and the admin token). Added in 0.3.0.",
                {
                    **_responses(400, 403, 404, 409),
                    "204": {"description": "It fits."},
                    "507": _json(_ref("Error"), "It would not fit: the numbers."),
                },
                params=[
                    _path("service", "The service."),
                    _path("tenant", "The tenant."),
                    _query("bytes", COUNT, "The size of the data."),
                ],
            )
        },
        "/api/fleet/storage/{service}/{tenant}/start": {
            "post": _op(
                "Node to node, after a move handed the tenant's row to this node: look at "
                "this node's rows now, starting what was handed or placed here (needs the "
                "fleet secret in X-Tenement-Hop). Added in 0.3.0.",
                {
                    **_responses(400, 403, 404),
                    "204": {"description": "Looked: what its rows say to start is starting."},
                },
                params=[
                    _path("service", "The service."),
                    _path("tenant", "The tenant."),
                    _query(
                        "from",
                        STR,
                        "The node that handed over a tenant that keeps no data and serves it "
                        "until it runs here: this node sends its requests there meanwhile.",
                    ),
                ],
            )
        },
        "/api/fleet/storage/{service}/{tenant}": {
            "put": _op(
                "Node to node, during a move: the tenant's data, one tar file (needs the "
                "fleet secret in X-Tenement-Hop, and the admin token); unpacked beside the "
                "tenant's directory as it arrives, checked against `sha256` (or, without "
                "it, the chunked body's trailer X-Tenement-Sha256: a node sends the data "
                "as it packs it) and renamed into place only once whole. Added in 0.3.0.",
                {
                    **_responses(400, 403, 404, 409),
                    "200": _json(_ref("StorageReceived"), "Taken in."),
                    "422": _json(
                        _ref("Error"), "Damaged (another SHA-256) or unsafe: nothing kept."
                    ),
                },
                params=[
                    _path("service", "The service."),
                    _path("tenant", "The tenant."),
                    _query(
                        "sha256",
                        STR,
                        "SHA-256 of the body, in hex (else the trailer X-Tenement-Sha256).",
                    ),
                ],
            ),
            "delete": _op(
                "Node to node, after a move failed past the transfer: the tree the PUT of "
                "`sha256` took in is removed (it must never start here); anything else is "
                "left alone (`discarded`: false). Added in 0.3.0.",
                {
                    **_responses(400, 403, 404, 409),
                    "200": _json(_ref("StorageDiscarded"), "Removed, or nothing to remove."),
                },
                params=[
                    _path("service", "The service."),
                    _path("tenant", "The tenant."),
                    _query("sha256", STR, "SHA-256 of the archive the PUT took in, in hex."),
                ],
            ),
        },
        "/api/instances/{id}/health": {
            **scoped,
            "get": _op(
                "Run a health check now",
                _responses(
                    400, 403, 503, 508, ok={"200": _json(_ref("InstanceHealth"), "Health.")}
                ),
                operation_id="checkInstanceHealth",
            ),
        },
        "/api/instances/{id}/storage": {
            **scoped,
            "get": _op(
                "Disk usage of the instance's data dir",
                _responses(400, 403, 404, 503, 508, ok={"200": _json(_ref("Storage"), "Usage.")}),
                operation_id="getInstanceStorage",
            ),
        },
        "/api/instances/{id}/history": {
            **scoped,
            "get": _op(
                "The instance's requests and p99 per 10 s over the last hour (in memory: "
                "empty after a server restart). Added in 0.3.0.",
                _responses(400, 403, 503, 508, ok={"200": _json(_ref("History"), "History.")}),
            ),
        },
        "/api/instances/{id}/events": {
            **scoped,
            "get": _op(
                "The instance's audit rows, newest first. Added in 0.3.0.",
                _responses(
                    400,
                    403,
                    ok={
                        "200": _json(
                            {"type": "array", "items": _ref("InstanceEvent")}, "Audit rows."
                        )
                    },
                ),
                params=[_query("limit", COUNT, "At most this many (default 50, at most 1000).")],
            ),
        },
        "/api/nodes": {
            "get": _op(
                "The fleet's nodes (admin); fleet false and no nodes without [fleet]. "
                "Added in 0.3.0.",
                _responses(403, ok={"200": _json(_ref("Nodes"), "Nodes.")}),
            )
        },
        "/api/nodes/{name}/drain": {
            "post": _optional_body(
                _op(
                    "Drain a fleet node (admin): no tenant is placed on it any more, and it "
                    "moves its tenants to other nodes, `parallel` at a time (default 1), "
                    "until it holds none (ten drain). Answered at once; GET /api/nodes shows "
                    "the progress. Asked again of a draining node, a `parallel` given "
                    "changes it. Added in 0.3.0.",
                    {
                        **_responses(
                            *JSON_BODY_ERRORS,
                            403,
                            ok={"200": _json(_ref("DrainResponse"), "Draining.")},
                        ),
                        "400": _json(
                            _ref("Error"),
                            "Not a fleet node, no such node, or a body that is not JSON.",
                        ),
                        "409": _json(
                            _ref("Error"),
                            "Not live (down, restarting), or its tenants would have nowhere "
                            "to go (the only live node, or no live node their service "
                            "allows): nothing moved.",
                        ),
                    },
                    body="DrainRequest",
                    params=[_path("name", "The node.")],
                    operation_id="drainNode",
                )
            )
        },
        "/api/nodes/{name}/undrain": {
            "post": _op(
                "Put a draining fleet node back to up (admin): it takes tenants again, and "
                "no further tenant moves off it (ten undrain); harmless for a node that is "
                "not draining. Added in 0.3.0.",
                {
                    **_responses(
                        403, ok={"200": _json(_ref("UndrainResponse"), "Up, or unchanged.")}
                    ),
                    "400": _json(_ref("Error"), "Not a fleet node, or no such node."),
                },
                params=[_path("name", "The node.")],
                operation_id="undrainNode",
            )
        },
        "/api/history": {
            "get": _op(
                "The whole server's requests and p99 per 10 s over the last hour (admin). "
                "Added in 0.3.0.",
                _responses(403, ok={"200": _json(_ref("History"), "History.")}),
            )
        },
        "/api/deploy": {
            "post": _op(
                "Start service:version with a weight and wait until it is healthy (admin)",
                _responses(
                    *JSON_BODY_ERRORS,
                    403,
                    404,
                    409,
                    500,
                    ok={
                        "200": _instance_links(
                            _json(_ref("DeployResponse"), "Healthy."), "instance"
                        )
                    },
                ),
                body="DeployRequest",
                operation_id="deploy",
            )
        },
        "/api/route": {
            "post": _op(
                "Move all traffic from one version to another (admin)",
                _responses(
                    *JSON_BODY_ERRORS,
                    403,
                    404,
                    500,
                    ok={"200": _json(_ref("RouteResponse"), "Swapped.")},
                ),
                body="RouteRequest",
            )
        },
        "/api/logs": {
            "get": _op(
                "Captured output, oldest first: the last `limit` matches",
                _responses(
                    400, ok={"200": _json({"type": "array", "items": _ref("LogEntry")}, "Entries.")}
                ),
                params=[
                    *LOG_FILTERS,
                    _query("search", STR, "Words to find in the message."),
                    _query("limit", COUNT, "At most this many (the newest); all when absent."),
                ],
            )
        },
        "/api/logs/stream": {
            "get": _op(
                "New log entries as server-sent events (data: <LogEntry JSON>)",
                _responses(
                    400,
                    503,
                    508,
                    ok={"200": {"description": "SSE stream", "content": {"text/event-stream": {}}}},
                ),
                params=[
                    *LOG_FILTERS,
                    _query(
                        "backlog", COUNT, "First send the last N matching entries. Added in 0.3.0."
                    ),
                    _query(
                        "ticket",
                        STR,
                        "Instead of the Authorization header (which a browser's EventSource "
                        "cannot send): a ticket from POST /api/logs/stream/ticket, good once. "
                        "An unknown, used or expired ticket is 401. Added in 0.3.0.",
                    ),
                ],
            )
        },
        "/api/logs/stream/ticket": {
            "post": _op(
                "A single-use ticket that opens one event stream (of logs or of instance "
                "changes) as the caller, within "
                "`expires_in_secs`. Added in 0.3.0.",
                {"200": _json(_ref("StreamTicket"), "Issued.")},
            )
        },
        "/api/whoami": {
            "get": _op(
                "Whom the token belongs to: the admin or one tenant. Added in 0.3.0.",
                {"200": _json(_ref("WhoAmI"), "The token's owner.")},
            )
        },
        "/api/tls/status": {
            "get": _op("Built-in TLS settings", {"200": _json(_ref("TlsStatus"), "TLS status.")})
        },
    }


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the document (callers may serialise or change it)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tenement",
            "version": __version__,
            "description": (
                "Management API of the tenement process hypervisor. Every path except "
                "/, /assets/*, /health, /metrics, /api/telemetry and /api/openapi.json needs "
                "`Authorization: Bearer <token>` (an admin token, or a tenant token that reaches "
                "only that tenant's instances)."
            ),
        },
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": _paths(),
    }
