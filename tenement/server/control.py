"""The control socket: how servers sharing a data dir talk to the one that holds the lease.

Every ``ten serve`` listens on a Unix socket of its own under ``<data_dir>/run/`` and
registers its path in the ``servers`` table; the supervisor lease names the holder by
the same server id. Access is the file system's: the directory is the service user's.

On the leader's control socket (:class:`ControlApp`):

- ``POST /_tenement/wake/{service}/{tenant}`` — wake an instance for a standby's
  request: 200 with the target as JSON, 404 when it may not be woken, 409 with
  ``"node"`` when another fleet node's row holds it (moved or placed there: the standby
  forwards the request there), 503 when waking failed (JSON ``{"error": ...}``, plus
  ``"retry_after"``, whole seconds, when the instance is in backoff, or ``"failed":
  true`` when it failed) or this server does not hold the lease (yet). While the
  instance is being moved away from this node the call waits, as the leader's own
  requests for it are held, at most the service's ``request_timeout``;
- ``POST /_tenement/report`` — from a standby, every second: ``activity``, the seconds
  since its last request to each instance (so that the idle reaper does not stop an
  instance only it serves), and ``metrics``, its proxy's new request counts (so that
  the leader's ``/metrics`` counts every server's requests);
- ``POST /_tenement/reload`` — re-read tenement.toml (``reload.py``; any server, not
  only the leader): 200 with the outcome as JSON when applied, 422 when the file was
  refused and the running config kept (``error`` says why);
- everything else is a request a standby relays from its own clients (the API): it is
  served as if it came in directly, from the client named in ``x-tenement-client``.

:class:`LeaderClient` is the standby's side: it finds the leader and calls it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h11
import trio

from tenement import sockets
from tenement.api import http
from tenement.control_sockets import control_sockets
from tenement.errors import TenementError
from tenement.processes import process_exists
from tenement.proxy import ProxyMetrics
from tenement.supervisor import (
    InstanceFailed,
    OwnedElsewhere,
    RestartPending,
    Supervisor,
    Target,
    WakeError,
)
from tenement.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from tenement.store import Store

log = logging.getLogger(__name__)

PREFIX = "/_tenement/"
#: the header a standby names its client in (any such header from a client is dropped)
CLIENT_HEADER = b"x-tenement-client"
#: sun_path holds 108 bytes, the terminating NUL included
MAX_SOCKET_PATH = 107
#: how long one call to the leader may take (a wake waits for the tenant to start)
CALL_SECONDS = 120.0
#: how often a wake for an instance being moved away looks whether the move ended
MOVE_POLL_SECONDS = 0.05


class NoLeader(TenementError):
    """No server holds the lease, or the holder cannot be reached."""


# ---- the socket ---------------------------------------------------------------------------


@contextlib.contextmanager
def _addressable(path: str | Path) -> Iterator[str]:
    """``path`` as an address ``bind`` and ``connect`` take: itself, or, when it is
    longer than ``sun_path`` holds (a deep ``data_dir``), the same name reached through
    ``/proc/self/fd/N`` of its directory, open for as long as the address is in use."""
    text = os.fspath(path)
    if len(os.fsencode(text)) <= MAX_SOCKET_PATH:
        yield text
        return
    directory = os.open(os.path.dirname(text), os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{directory}/{os.path.basename(text)}"
    finally:
        os.close(directory)


def bind_control_socket(path: Path) -> socket.socket:
    """Listen on ``path`` (its directory made private to this user), removing stale sockets
    of servers that are gone.

    Raises:
        OSError: the socket cannot be bound.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _remove_stale(path.parent)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with _addressable(path) as address:
            sock.bind(address)
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


def _remove_stale(directory: Path) -> None:
    for pid, entry in control_sockets(directory):
        if not process_exists(pid):
            entry.unlink(missing_ok=True)


# ---- the leader's side --------------------------------------------------------------------


class ControlApp:
    """The ASGI app on a server's control socket.

    Args:
        public: the app the server's own sockets serve (proxy + API); relayed requests go
            there.
        supervisor: returns the supervisor while this server holds the lease, else None.
        metrics: the proxy metrics ``/metrics`` reports; standbys' reports go there.
        reload: re-reads tenement.toml and returns the outcome as JSON data (with
            ``applied``); None when this server cannot reload that way.
    """

    def __init__(
        self,
        public: ASGIApp,
        supervisor: Callable[[], Supervisor | None],
        metrics: ProxyMetrics,
        reload: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    ) -> None:
        self._public = public
        self._supervisor = supervisor
        self._metrics = metrics
        self._reload = reload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX):
            response = await self._internal(scope, receive)
            await response(send)
            return
        if scope["type"] in ("http", "websocket"):
            scope = _as_relayed(scope)
        await self._public(scope, receive, send)

    async def _internal(self, scope: Scope, receive: Receive) -> http.Response:
        if scope["path"] == f"{PREFIX}reload" and self._reload is not None:
            # any server reloads its own config, a standby's too: before the lease check
            if scope["method"] != "POST":
                return http.json_response({"error": "method not allowed"}, 405)
            outcome = await self._reload()
            return http.json_response(outcome, 200 if outcome["applied"] else 422)
        sup = self._supervisor()
        if sup is None:
            return http.json_response({"error": "this server does not hold the lease"}, 503)
        parts = scope["path"].removeprefix(PREFIX).split("/")
        if scope["method"] != "POST":
            return http.json_response({"error": "method not allowed"}, 405)
        if parts[0] == "wake" and len(parts) == 3:
            return await _wake(sup, parts[1], parts[2])
        if parts == ["report"]:
            try:
                body = json.loads(await http.read_body(receive))
                activity = {str(iid): float(ago) for iid, ago in body["activity"].items()}
                self._metrics.merge(body["metrics"])
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                return http.json_response({"error": f"bad report: {exc!r}"}, 400)
            for iid, seconds_ago in activity.items():
                sup.note_activity(iid, seconds_ago)
            return http.empty(204)
        return http.json_response({"error": "not found"}, 404)


def _elsewhere(iid: str, node: str) -> http.Response:
    return http.json_response({"error": f"{iid} runs on fleet node {node}", "node": node}, 409)


async def _wake(sup: Supervisor, service: str, tenant: str) -> http.Response:
    iid = f"{service}:{tenant}"
    svc = sup.service(service)
    if svc is not None and iid in sup.moving:
        # held as the leader's own requests for it are (proxy/moves.py): then it runs
        # on another node, or here again if the move failed
        with trio.move_on_after(svc.request_timeout):
            while iid in sup.moving:
                await trio.sleep(MOVE_POLL_SECONDS)
    elsewhere = await sup.owner_elsewhere(iid)
    if elsewhere is not None:
        return _elsewhere(iid, elsewhere)
    if not sup.may_wake(service, tenant):
        return http.json_response({"error": f"{service}:{tenant} may not be woken"}, 404)
    try:
        target = await sup.wake(service, tenant)
    except OwnedElsewhere as exc:
        return _elsewhere(iid, exc.node)
    except RestartPending as exc:
        return http.json_response({"error": str(exc), "retry_after": exc.retry_after_seconds}, 503)
    except InstanceFailed as exc:
        return http.json_response({"error": str(exc), "failed": True}, 503)
    except TenementError as exc:
        return http.json_response({"error": str(exc)}, 503)
    return http.json_response(
        {
            "instance_id": target.instance_id,
            "service": target.service,
            "tenant": target.tenant,
            "port": target.port,
            "socket": target.socket,
            "weight": target.weight,
        }
    )


def _as_relayed(scope: Scope) -> Scope:
    """The scope with the client a standby named (a peer on this socket has no address)."""
    client = None
    headers = []
    for name, value in scope["headers"]:
        if name == CLIENT_HEADER:
            client = value.decode("latin-1")
        else:
            headers.append((name, value))
    return {**scope, "headers": headers, "client": (client, 0) if client else None}


def name_client(scope: Scope) -> Scope:
    """A standby's copy of ``scope`` to relay: its client named in ``x-tenement-client``."""
    headers = [(name, value) for name, value in scope["headers"] if name != CLIENT_HEADER]
    client = scope.get("client")
    if client:
        headers.append((CLIENT_HEADER, str(client[0]).encode("latin-1")))
    return {**scope, "headers": headers}


# ---- the standby's side -------------------------------------------------------------------


class LeaderClient:
    """Finds the server that holds the lease and calls its control socket.

    Args:
        store: the shared :class:`~tenement.store.Store`.
        server_id: this server's id (it never calls itself).
    """

    def __init__(self, store: Store, server_id: str) -> None:
        self._store = store
        self._server_id = server_id

    async def leader(self) -> tuple[str, str | None] | None:
        """``(server id, control socket path)`` of the lease holder; None if unheld.

        The path is None when the holder registered no control socket.
        """
        holder = await self._store.run(self._store.lease_holder, time.time())
        if holder is None:
            return None
        row = await self._store.run(self._store.server, holder)
        url = row.url if row is not None else ""
        return holder, (url.removeprefix("unix:") if url.startswith("unix:") else None)

    async def socket_path(self) -> str:
        """The leader's control socket.

        Raises:
            NoLeader: no other server holds the lease, or it has no control socket.
        """
        found = await self.leader()
        if found is None or found[0] == self._server_id:
            raise NoLeader("no server holds the supervisor lease")
        holder, path = found
        if path is None:
            raise NoLeader(f"the lease holder {holder} has no control socket")
        return path

    async def wake(self, service: str, tenant: str) -> Target:
        """Have the leader wake ``service:tenant``.

        Raises:
            NoLeader: the leader could not be reached.
            RestartPending: it is in backoff, restarting after the request's deadline.
            InstanceFailed: it failed; only an operator starts it again.
            OwnedElsewhere: another fleet node's row holds it (moved or placed there).
            WakeError: the leader could not wake it (or it may not be woken).
        """
        path = await self.socket_path()
        status, body = await call(path, f"{PREFIX}wake/{service}/{tenant}", b"")
        data = json.loads(body or b"{}")
        if status == 503 and isinstance(data.get("retry_after"), int):
            raise RestartPending(f"{service}:{tenant}", data["retry_after"], data.get("error"))
        if status == 503 and data.get("failed") is True:
            raise InstanceFailed(f"{service}:{tenant}")
        if status == 409 and isinstance(data.get("node"), str):
            raise OwnedElsewhere(f"{service}:{tenant}", data["node"])
        if status != 200:
            raise WakeError(f"{service}:{tenant}", data.get("error", f"status {status}"))
        return Target(
            data["instance_id"],
            data["service"],
            data["tenant"],
            data["port"],
            data["socket"],
            data["weight"],
        )

    async def report(self, activity: dict[str, float], metrics: dict[str, Any]) -> None:
        """Tell the leader when this standby last routed a request to each instance, and
        what its proxy counted (a :meth:`ProxyMetrics.report <tenement.proxy.ProxyMetrics.report>`).

        Raises:
            NoLeader: the leader could not be reached or refused the report.
        """
        path = await self.socket_path()
        body = json.dumps({"activity": activity, "metrics": metrics}).encode()
        status, answer = await call(path, f"{PREFIX}report", body)
        if status != 204:
            raise NoLeader(f"the lease holder refused the report: {status} {answer[:200]!r}")


async def call(path: str, target: str, body: bytes) -> tuple[int, bytes]:
    """One ``POST`` over the Unix socket ``path``; returns the status and the body.

    Raises:
        NoLeader: the connection or the exchange failed.
    """
    conn = h11.Connection(h11.CLIENT)
    request = h11.Request(
        method="POST",
        target=target,
        headers=[
            ("host", "control"),
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
            ("connection", "close"),
        ],
    )
    try:
        with trio.fail_after(CALL_SECONDS):
            with _addressable(path) as address:
                stream = await trio.open_unix_socket(address)
            async with stream:
                events = (request, h11.Data(data=body), h11.EndOfMessage())
                await stream.send_all(b"".join(conn.send(event) or b"" for event in events))
                status = 0
                chunks = []
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        conn.receive_data(await stream.receive_some(sockets.READ_SIZE))
                    elif isinstance(event, h11.Response):
                        status = event.status_code
                    elif isinstance(event, h11.Data):
                        chunks.append(bytes(event.data))
                    elif isinstance(event, h11.EndOfMessage):
                        return status, b"".join(chunks)
    except (OSError, trio.BrokenResourceError, trio.TooSlowError, h11.ProtocolError) as exc:
        raise NoLeader(f"the lease holder at {path} did not answer: {exc}") from exc
