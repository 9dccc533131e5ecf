"""Health: the status values, their transitions, and the checks themselves.

The transitions are a pure function (:func:`after_check`); the checks are small async
functions that take no timeout (the caller wraps them in ``trio.move_on_after``).

Differences from the reference (§5.3): an HTTP check reads the status line and calls any
2xx healthy (not "the reply contains 200"); without a ``health`` path the check is a TCP
connect to the instance's port, not "the socket file exists".
"""

from __future__ import annotations

import enum

import attrs
import trio

#: consecutive failed checks that make an instance unhealthy (1 and 2 are "degraded")
UNHEALTHY_AFTER = 3
#: the most of a reply a check reads: the status line fits, a body is not needed
MAX_REPLY_BYTES = 1024


class Health(enum.StrEnum):
    """An instance's health, serialised lowercase as the reference does."""

    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    FAILED = "failed"


@attrs.frozen
class HealthState:
    """What one instance's checks have shown so far."""

    health: Health = Health.UNKNOWN
    consecutive_failures: int = 0


def after_check(state: HealthState, ok: bool) -> HealthState:
    """The state after one check: success -> healthy; 1-2 failures degraded; 3+ unhealthy.

    An unhealthy instance is restarted by its watcher (or marked failed when its restart
    budget is spent: that is the restart policy's call, not this function's).
    """
    if ok:
        return HealthState(Health.HEALTHY, 0)
    failures = state.consecutive_failures + 1
    health = Health.UNHEALTHY if failures >= UNHEALTHY_AFTER else Health.DEGRADED
    return HealthState(health, failures)


def parse_status_line(reply: bytes) -> int | None:
    """The status code of an HTTP/1.x reply's first line, or None if it is not one."""
    line = reply.split(b"\r\n", 1)[0].split(b"\n", 1)[0]
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        return None
    code = parts[1]
    if len(code) != 3 or not code.isdigit():
        return None
    return int(code)


async def _connect(port: int | None, socket_path: str) -> trio.abc.Stream:
    if port is not None:
        return await trio.open_tcp_stream("127.0.0.1", port)
    return await trio.open_unix_socket(socket_path)


async def check_http(port: int | None, socket_path: str, path: str) -> bool:
    """GET ``path`` from the instance; True when the status line says 2xx.

    Connects to ``127.0.0.1:port``, or to the Unix socket when there is no port.
    Connection errors count as unhealthy. No timeout: wrap the call.
    """
    if not path.startswith("/"):
        path = "/" + path
    request = (
        f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: tenement-health\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    try:
        stream = await _connect(port, socket_path)
    except OSError:
        return False
    async with stream:
        try:
            await stream.send_all(request)
            reply = b""
            while b"\n" not in reply and len(reply) < MAX_REPLY_BYTES:
                chunk = await stream.receive_some(MAX_REPLY_BYTES - len(reply))
                if not chunk:
                    break
                reply += chunk
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            return False
    code = parse_status_line(reply)
    return code is not None and 200 <= code < 300


async def check_connect(port: int | None, socket_path: str) -> bool:
    """True when the instance accepts a connection (its port, else its Unix socket)."""
    try:
        stream = await _connect(port, socket_path)
    except OSError:
        return False
    await stream.aclose()
    return True


async def check(port: int | None, socket_path: str, path: str | None) -> bool:
    """The check for a service: HTTP when it has a ``health`` path, else a connect."""
    if path:
        return await check_http(port, socket_path, path)
    return await check_connect(port, socket_path)
