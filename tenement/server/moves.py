"""``ten move``: a tenant and its data go from this fleet node to another.

The node that runs the tenant does it, in this order (docs/fleet.md, "Moving a tenant"):

1. checks, before anything stops: the destination is another live node, the tenant is
   not failed nor being moved, and the destination has room for its data;
2. holds the tenant's requests (``tenement/proxy/moves.py``) and stops it gracefully:
   requests in flight finish;
3. packs its data directory (``archive.py``) as it sends it to the destination,
   authenticated as a relayed call (the fleet secret and the caller's own token), its
   SHA-256 last (a trailer); the destination unpacks it as it arrives beside the
   tenant's directory, checks the sum and renames it into place only once it is whole:
   a transfer cut short leaves nothing that could start (it is tried up to
   :data:`SEND_ATTEMPTS` times, packed again each time);
4. hands the instance row over, in one transaction (``epoch + 1``), and asks the
   destination to start it; the held requests go there;
5. keeps its own copy of the data as ``moved-TENANT-TIME`` beside where it was, for
   ``[fleet] keep_moved`` or the move's ``keep_source`` (``moved_copies.py``).

Anything that fails before step 4 puts everything back: the tenant starts again here,
with its data where it was; one that fails after the data arrived has the destination
remove what it took in. ``ten move --abort`` makes a move fail so, until step 4
(``move_abort.py``). A server killed mid-move is made good when it starts again
(``move_journal.py``, :meth:`Mover.recover`).

A stateless tenant (``storage_persist = false``: its directory is emptied when it stops)
moves without data, and one that runs without a pause: its row is handed over first,
the destination starts it while it serves here, and only then is it stopped here
(:meth:`Mover._move_alongside`); no request is held.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import tarfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from tenement.api import http
from tenement.api.errors import ApiError
from tenement.api.moves import SHA256_TRAILER
from tenement.api.relay import RelayFailed
from tenement.config import DEFAULT_KEEP_MOVED, Config
from tenement.errors import TenementError
from tenement.proxy.moves import Moves
from tenement.server.archive import (
    PIECE_BYTES,
    Incoming,
    Streamed,
    UnsafeArchive,
    pack_into,
    unpack_from,
)
from tenement.server.move_abort import DISCARD_SECONDS, Abort, abort
from tenement.server.move_journal import (
    INCOMING_PREFIX,
    LeftProcess,
    read_markers,
    remove_stale,
    write_marker,
)
from tenement.server.moved_copies import aside_name, expires_at, sweep
from tenement.server.relay import FleetRelay, Producer
from tenement.store import Store
from tenement.supervisor import InstanceNotFound, Supervisor
from tenement.supervisor.instance import FAILED, STOPPED
from tenement.supervisor.storage import dir_size

log = logging.getLogger(__name__)

#: how many times the data is sent before the move is given up
SEND_ATTEMPTS = 3
#: what the destination keeps free beyond the data it receives
SPARE_BYTES = 64 * 1024 * 1024
#: how long the destination may take to take in the data (a minute per 512 MB, and one)
SECONDS_PER_BYTE = 60 / (512 * 1024 * 1024)
#: how long a drain's move waits for the destination to start the tenant from its row
#: (it looks at its rows once a second, and at once when told), and how often it looks
START_WAIT_SECONDS = 30.0
START_POLL_SECONDS = 0.1
#: how long a drain's move waits for the destination to answer "look at your rows now"
#: (the destination's own look, once a second, starts the tenant anyway)
LOOK_NOW_SECONDS = 5.0
#: where a node keeps archives being sent or received, under its data dir
SPOOL = ".moves"
#: pieces of the data between the packing (or unpacking) thread and the connection
PIECES_IN_FLIGHT = 4


@attrs.define
class Progress:
    """A move under way, as ``ten ps`` shows it (:meth:`Mover.progress`)."""

    to: str
    bytes: int
    began: float
    step: str = "stopping"
    abort: Abort = attrs.field(factory=Abort)
    #: the archive of the last attempt that went out whole, answered or not: the one
    #: the destination may hold when the move is aborted before the answer came
    sent: Streamed | None = None
    #: a stateless tenant handed over while it serves here (nothing to abort)
    alongside: bool = False


class Mover:
    """Moves this node's tenants to other nodes, and takes in the data of tenants that
    move here.

    Args:
        store: the shared store (the hand-over transaction).
        supervisor: this node's supervisor while it leads.
        config: the configuration now (services, data dir).
        moves: the proxy's holds (``proxy.moves``).
        relay: how this node calls another node (``server/relay.py``).
        refresh: read the fleet directory again (the proxy then knows the new owner).
    """

    def __init__(
        self,
        store: Store,
        supervisor: Callable[[], Supervisor | None],
        config: Callable[[], Config],
        moves: Moves,
        relay: FleetRelay,
        refresh: Callable[[], Awaitable[None]],
    ) -> None:
        self._store = store
        self._supervisor = supervisor
        self._config = config
        self._moves = moves
        self._relay = relay
        self._refresh = refresh
        #: spool files and incoming trees older than this are no live server's
        self._started = time.time()
        #: the moves under way from this node, by instance: what they are doing
        self._progress: dict[str, Progress] = {}
        #: the trees taken in for moves, by instance: (SHA-256 of the archive, inode),
        #: so that the sender of one can have it removed when its move fails after all
        self._received: dict[str, tuple[str, int]] = {}
        #: this node's look at its instance rows, starting what was placed here
        #: (``Fencing.take_over``; set once the fleet's membership runs)
        self.look_at_rows: Callable[[], Awaitable[None]] | None = None

    @property
    def node(self) -> str:
        return self._relay.node

    def moving(self, instance_id: str) -> bool:
        """Whether a move of ``instance_id`` from this node is under way (its spawn,
        stop, restart and weight are refused meanwhile)."""
        return self._moves.moving(instance_id) or instance_id in self._progress

    def progress(self) -> dict[str, dict[str, Any]]:
        """The moves under way from this node, by instance: where to, the step (stopping,
        sending (which packs as it goes), handover, starting), the data's size in bytes
        (as measured, then the archive's), and the seconds since the move began."""
        now = trio.current_time()
        return {
            iid: {"to": p.to, "step": p.step, "bytes": p.bytes, "secs": round(now - p.began, 3)}
            for iid, p in self._progress.items()
        }

    async def abort(self, instance_id: str) -> dict[str, Any]:
        """Abort the move of ``instance_id`` under way from this node, before its
        hand-over; what was done, once the tenant is back here (``move_abort.py``).

        Raises:
            ApiError: 409 when no move of it is under way, or it is too late.
        """
        progress = self._progress.get(instance_id)
        if progress is None:
            raise ApiError(409, f"No move of {instance_id} is under way on fleet node {self.node}")
        if progress.alongside:
            raise ApiError(
                409,
                f"Too late to abort the move of {instance_id}: it keeps no data, so its row "
                f"went to fleet node {progress.to} at once, which runs it from now on (this "
                f"node serves it until then); move it back with ten move {instance_id} "
                f"--to {self.node} once it is there",
            )
        return await abort(progress.abort, progress.step, instance_id, progress.to, self.node)

    def _keep_moved(self) -> float:
        fleet = self._config().fleet
        return DEFAULT_KEEP_MOVED if fleet is None else fleet.keep_moved

    async def sweep_moved(self) -> None:
        """Remove the copies of moved tenants' data whose time is up, now and from time
        to time, while this server leads (``moved_copies.py``)."""
        await sweep(lambda: self._config().settings.data_dir, self._keep_moved)

    def _spool(self) -> Path:
        spool = self._config().settings.data_dir / SPOOL
        spool.mkdir(mode=0o700, exist_ok=True)
        return spool

    async def recover(self) -> None:
        """Finish what a killed server of this node left of its moves; run once this
        server leads (its tenants adopted).

        A move cut short before the hand-over (the row names this node still): the
        tenant starts here again, from its data, untouched, if it ran. One cut short
        after it (the row is the destination's, which wakes it on its next request):
        this node's copy of the data is moved aside, as a finished move does, and the
        process a stateless move left running here (its marker says which) is stopped:
        no server adopts a process whose row names another node. Then the
        archives and half-unpacked trees of transfers cut short are removed.
        """
        try:
            await self._recover()
        except (OSError, TenementError) as exc:  # logged: the node serves on regardless
            log.error("could not finish the moves a stopped server left: %s", exc)

    async def _recover(self) -> None:
        sup = self._supervisor()
        if sup is None:
            return
        spool = self._spool()
        markers = read_markers(spool)
        live = [m for m in markers if m.writer_alive() or self._moves.moving(m.instance_id)]
        owners = await self._store.run(
            self._store.owners, [m.instance_id for m in markers if m not in live]
        )
        for marker in markers:
            if marker in live:
                continue
            iid = marker.instance_id
            service, _, tenant = iid.partition(":")
            owner = owners.get(iid)
            if owner is not None and owner.node == self.node:
                log.warning(
                    "the move of %s to fleet node %s was cut short (its server stopped) "
                    "before the hand-over: it stays here, with its data%s",
                    iid,
                    marker.to,
                    ", and starts again" if marker.running else "",
                )
                if marker.running:
                    await self._start_here(sup, service, tenant)
            else:
                if marker.tenant is not None and await marker.tenant.stop():
                    log.warning(
                        "stopped process %d of %s, left running here by a move to fleet "
                        "node %s cut short (its server stopped) after the hand-over",
                        marker.tenant.pid,
                        iid,
                        marker.to,
                    )
                tree = sup.instance_dir(service, tenant)
                kept = tree.with_name(aside_name(tenant))
                if tree.exists():
                    tree.rename(kept)
                sup.forget(iid)
                log.warning(
                    "the move of %s to fleet node %s was cut short (its server stopped) after "
                    "the hand-over: it is %s's now; this node's copy of its data is kept as %s",
                    iid,
                    marker.to,
                    owner.node if owner else "nobody",
                    kept if kept.exists() else "(none)",
                )
            marker.path.unlink(missing_ok=True)
        data_dir = self._config().settings.data_dir
        for path in remove_stale(data_dir, spool, self._started):
            log.warning("removed %s, left by a transfer of a move that was cut short", path)

    # ---- the source --------------------------------------------------------------------

    async def move(
        self, instance_id: str, to: str, authorization: bytes, keep_source: int | None = None
    ) -> dict[str, Any]:
        """Move ``instance_id`` (this node's) to node ``to``; what was done, for the API.

        ``authorization`` empty: this node's own move (a drain's), made with the fleet
        secret alone; the destination then starts the tenant from its row.
        ``keep_source``: how long this node keeps its copy of the data, in seconds
        (``[fleet] keep_moved`` when None).

        Raises:
            ApiError: 409 (on ``to`` already, failed, being moved, aborted before the
                hand-over: the tenant runs here again), 400 (``to`` unknown
                or down), 507 (no room there), 502/503 (the transfer failed: the tenant
                runs here again).
            InstanceNotFound: no such instance here.
        """
        sup = self._supervisor()
        runner = sup.runner(instance_id) if sup is not None else None
        if sup is None or runner is None:
            raise InstanceNotFound(instance_id)
        service_name, _, tenant = instance_id.partition(":")
        if to == self.node:
            raise ApiError(409, f"Instance {instance_id} is on fleet node {to} already")
        if self._relay.node_state(to) != "up":
            await self._refresh()  # a node that joined since the directory last looked
        if self._relay.node_state(to) == "draining":
            raise ApiError(
                409,
                f"Fleet node {to} is being drained (ten drain): no tenant moves there; "
                f"ten undrain {to} first, or move it to another node",
            )
        if self._relay.node_state(to) != "up":
            live = ", ".join(n for n in self._relay.live_nodes() if n != self.node) or "none"
            what = "is down" if self._relay.node_state(to) == "down" else "is not in the fleet"
            raise ApiError(400, f"Invalid node '{to}': it {what}; the other live nodes are {live}")
        if runner.inst.state == FAILED:
            raise ApiError(
                409,
                f"Instance {instance_id} has failed: restart it (ten restart {instance_id}) "
                "or stop it before moving it",
            )
        if self.moving(instance_id) or instance_id in sup.moving:
            # (an aborted move may still be asking its destination to remove the data)
            raise ApiError(409, f"Instance {instance_id} is being moved already")
        service = sup.service(service_name)
        persist = service is not None and service.storage_persist
        tree = sup.instance_dir(service_name, tenant)
        started = trio.current_time()
        size = await trio.to_thread.run_sync(dir_size, tree) if persist else 0
        await self._check_room(to, service_name, tenant, size, authorization)
        owners = await self._store.run(self._store.owners, [instance_id])
        epoch = owners[instance_id].epoch if instance_id in owners else 0
        was_running = runner.inst.state != STOPPED
        report: dict[str, Any] = {"id": instance_id, "from": self.node, "to": to}
        run = runner.inst.run
        if not persist and was_running and run is not None:
            left = LeftProcess(run.pid, run.process.start_ticks)
            return await self._move_alongside(sup, instance_id, to, epoch, left, report)
        # on disk before the tenant stops: a server killed mid-move restarts it (recover)
        marker = write_marker(self._spool(), instance_id, to, running=was_running)
        self._moves.begin(instance_id)
        progress = self._progress[instance_id] = Progress(to, size, trio.current_time())
        sup.moving.add(instance_id)  # the other serving processes' wakes come to it
        moved = False
        packed: Streamed | None = None
        stopped = started
        try:
            # an abort cancels this, and only this: the hand-over is never cut halfway
            with progress.abort.scope:
                log.info("moving %s to fleet node %s: stopping it here", instance_id, to)
                if was_running:
                    with trio.CancelScope(shield=True):  # a stop is never left half done
                        await sup.stop(instance_id)
                stopped = trio.current_time()
                if persist:
                    # packed as it is sent, no file between: see _send
                    progress.step = "sending"
                    packed = await self._send(
                        to, service_name, tenant, tree, size, authorization, progress
                    )
                    progress.bytes = packed.size
            if progress.abort.at is not None:  # even if it came as the last step ended
                raise progress.abort.aborted_error(instance_id, to, self.node)
            sent = trio.current_time()
            own = not authorization
            progress.step = "handover"
            new_epoch = await self._store.run(
                self._store.hand_instance_over, instance_id, epoch, to, own and was_running
            )
            if new_epoch is None:
                raise ApiError(
                    409,
                    f"Instance {instance_id} was taken over by another node during the move; "
                    "nothing was moved (ten ps shows where it runs)",
                )
            moved = True
            sup.forget(instance_id)
            kept = None
            if persist and tree.exists():
                kept = tree.with_name(aside_name(tenant, keep_source))
                tree.rename(kept)
            await self._refresh()
            progress.step = "starting"
            if was_running and own:
                await self._tell_to_look(to, service_name, tenant)
                await self._started_there(instance_id, to)
            elif was_running:
                await self._start_there(to, service_name, tenant, authorization)
            done = trio.current_time()
            held = self._moves.end(instance_id, moved=True)
            report.update(
                epoch=new_epoch,
                bytes=packed.size if packed else 0,
                entries=packed.entries if packed else 0,
                sha256=packed.sha256 if packed else None,
                kept=str(kept) if kept else None,
                kept_until=expires_at(kept.name, self._keep_moved()) if kept else None,
                stop_secs=round(stopped - started, 3),
                transfer_secs=round(sent - stopped, 3),
                start_secs=round(done - sent, 3),
                total_secs=round(done - started, 3),
            )
            log.info(
                "moved %s to fleet node %s (epoch %d): %d bytes in %.2f s, %.2f s in all, "
                "%d request(s) held meanwhile; this node's copy of its data is kept as %s",
                instance_id,
                to,
                new_epoch,
                report["bytes"],
                report["transfer_secs"],
                report["total_secs"],
                held,
                kept or "(none: it kept no data)",
            )
            return report
        except BaseException:
            if not moved:
                aborted = progress.abort.at is not None
                log.warning(
                    "the move of %s to %s %s: it runs here again",
                    instance_id,
                    to,
                    "was aborted" if aborted else "failed",
                )
                with trio.CancelScope(shield=True):
                    if was_running:
                        await self._start_here(sup, service_name, tenant)
                    # the tenant is back: its held requests are served here meanwhile
                    self._moves.end(instance_id, moved=False)
                    del self._progress[instance_id]
                    progress.abort.back.set()
                    # an abort may cut the transfer after the destination took it all in
                    packed = packed or (progress.sent if aborted else None)
                    if packed is not None:
                        # its copy there must never start: this one is the tenant's
                        await self._discard_there(
                            to,
                            service_name,
                            tenant,
                            packed,
                            authorization,
                            answer_seconds=DISCARD_SECONDS if aborted else 120.0,
                        )
            raise
        finally:
            sup.moving.discard(instance_id)
            self._moves.end(instance_id, moved=moved)
            self._progress.pop(instance_id, None)
            progress.abort.back.set()
            marker.unlink(missing_ok=True)

    async def _move_alongside(
        self,
        sup: Supervisor,
        instance_id: str,
        to: str,
        epoch: int,
        left: LeftProcess,
        report: dict[str, Any],
    ) -> dict[str, Any]:
        """Move a running stateless tenant without a pause: hand its row to ``to``
        (``starting``) while its process here serves on, have ``to`` start it, and only
        once it runs there (or did not within :data:`START_WAIT_SECONDS`: its next
        request wakes it there) stop the process here. No request is held.

        Meanwhile this node's proxy serves it from its own process (a running one here
        comes before the directory), ``to`` sends its own clients' requests for it here
        until its copy is up (``Moves.arriving``), and this node's supervisor can no
        longer write the row (its writes name this node). A server killed meanwhile
        leaves the process to the marker: the next one stops it (``recover``).
        """
        service, _, tenant = instance_id.partition(":")
        started = trio.current_time()
        # on disk before the row is handed over: nothing here is stopped yet, so a server
        # killed before it has nothing to start again; one killed after, a process to stop
        marker = write_marker(self._spool(), instance_id, to, running=False, tenant=left)
        progress = Progress(to, 0, started, step="handover", alongside=True)
        self._progress[instance_id] = progress
        handed = False
        try:
            log.info(
                "moving %s to fleet node %s: starting it there first (it keeps no data: "
                "it serves here until it runs there)",
                instance_id,
                to,
            )
            new_epoch = await self._store.run(
                self._store.hand_instance_over, instance_id, epoch, to, True
            )
            if new_epoch is None:
                raise ApiError(
                    409,
                    f"Instance {instance_id} was taken over by another node during the move; "
                    "nothing was moved (ten ps shows where it runs)",
                )
            handed = True
            progress.step = "starting"
            await self._tell_to_look(to, service, tenant, serving_here=True)
            await self._started_there(instance_id, to)
            up = trio.current_time()
        finally:
            if handed:
                with trio.CancelScope(shield=True):  # never two copies left running
                    progress.step = "stopping"
                    await self._stop_left(sup, instance_id, left)
                    self._moves.end(instance_id, moved=True)  # hops go on to ``to``
            self._progress.pop(instance_id, None)
            marker.unlink(missing_ok=True)
        done = trio.current_time()
        report.update(
            epoch=new_epoch,
            bytes=0,
            entries=0,
            sha256=None,
            kept=None,
            kept_until=None,
            stop_secs=round(done - up, 3),
            transfer_secs=0.0,
            start_secs=round(up - started, 3),
            total_secs=round(done - started, 3),
        )
        log.info(
            "moved %s to fleet node %s (epoch %d): 0 bytes in 0.00 s, %.2f s in all, "
            "0 request(s) held meanwhile (started there before it stopped here); this "
            "node's copy of its data is kept as (none: it kept no data)",
            instance_id,
            to,
            new_epoch,
            report["total_secs"],
        )
        return report

    async def _stop_left(self, sup: Supervisor, instance_id: str, left: LeftProcess) -> None:
        """Stop this node's process of a tenant handed over alongside it: requests in
        flight finish, new ones go to its new node (the directory is read first)."""
        try:
            await self._refresh()
        except TenementError as exc:  # logged: the stop is what matters now
            log.warning(
                "could not read the fleet's directory before stopping %s: %s", instance_id, exc
            )
        finally:
            runner = sup.runner(instance_id)
            # forgotten first: no new request is routed to it (they go to its new node),
            # while those in flight finish (the stop waits for them, up to 5 s)
            sup.forget(instance_id)
            try:
                if runner is not None and runner.inst.state != STOPPED:
                    await runner.stop(kind="stop")
            finally:
                # whatever its runner did meanwhile, the process recorded must not outlive it
                await left.stop()

    async def _check_room(
        self, to: str, service: str, tenant: str, size: int, authorization: bytes
    ) -> None:
        answer = await self._call(
            to,
            "POST",
            f"/api/fleet/storage/{service}/{tenant}/check?bytes={size}",
            authorization,
            b"",
        )
        if answer.status != 204:
            raise ApiError(answer.status, _error_of(answer))

    async def _send(
        self,
        to: str,
        service: str,
        tenant: str,
        tree: Path,
        size: int,
        authorization: bytes,
        progress: Progress,
    ) -> Streamed:
        """Send ``tree`` (``size`` bytes of data) to ``to``, packed as it goes (a thread
        packs, the connection sends: one pass over the data, no file); its SHA-256 goes
        last, as the body's trailer, and the destination checks it before anything is
        renamed into place. Each attempt packs again: the tenant is stopped, the tree
        does not change. ``progress.sent`` is each attempt's archive once it went out
        whole."""
        target = f"/api/fleet/storage/{service}/{tenant}"
        seconds = 60 + size * SECONDS_PER_BYTE
        failure = ""
        for attempt in range(1, SEND_ATTEMPTS + 1):
            packing = _Packing(tree, progress)
            try:
                answer = await self._call(
                    to, "PUT", target, authorization, packing.produce, answer_seconds=seconds
                )
            except ApiError as exc:
                failure = exc.message
            else:
                if answer.status == 200 and packing.done is not None:
                    return packing.done
                failure = _error_of(answer)
                if answer.status < 500:
                    break  # refused: sending again would be refused again
            log.warning(
                "sending the data of %s:%s to %s failed (attempt %d of %d): %s",
                service,
                tenant,
                to,
                attempt,
                SEND_ATTEMPTS,
                failure,
            )
        raise ApiError(
            502,
            f"The move of {service}:{tenant} to fleet node {to} failed while sending its "
            f"data ({failure}); it runs on {self.node} again, with its data",
        )

    async def _call(
        self,
        to: str,
        method: str,
        target: str,
        authorization: bytes,
        body: bytes | Producer,
        *,
        answer_seconds: float = 120.0,
    ) -> http.Response:
        headers = [(b"content-type", b"application/json")]
        if authorization:  # else a node's own call: the fleet secret is its credential
            headers.append((b"authorization", authorization))
        try:
            return await self._relay.send(
                to, method, target, headers, body, answer_seconds=answer_seconds
            )
        except RelayFailed as exc:
            raise ApiError(503, exc.message) from None

    async def _start_there(self, to: str, service: str, tenant: str, authorization: bytes) -> None:
        body = json.dumps({"process": service, "id": tenant}).encode()
        try:
            answer = await self._call(to, "POST", "/api/instances/spawn", authorization, body)
        except ApiError as exc:
            answer = http.error_response(exc.status, exc.message)
        if answer.status != 200:
            # the row is the destination's: its next request wakes it there
            log.warning(
                "moved %s:%s to %s, which did not start it (%s): it starts on its next request",
                service,
                tenant,
                to,
                _error_of(answer),
            )

    async def _discard_there(
        self,
        to: str,
        service: str,
        tenant: str,
        packed: Streamed,
        authorization: bytes,
        *,
        answer_seconds: float,
    ) -> None:
        target = f"/api/fleet/storage/{service}/{tenant}?sha256={packed.sha256}"
        try:
            answer = await self._call(
                to, "DELETE", target, authorization, b"", answer_seconds=answer_seconds
            )
        except ApiError as exc:
            answer = http.error_response(exc.status, exc.message)
        if answer.status != 200:
            log.error(
                "the move of %s:%s failed after its data was sent to %s, which did not "
                "remove what it took in (%s): if %s is there, remove it by hand; it must "
                "not start there",
                service,
                tenant,
                to,
                _error_of(answer),
                f"{service}/{tenant} in its data dir",
            )

    async def _tell_to_look(
        self, to: str, service: str, tenant: str, *, serving_here: bool = False
    ) -> None:
        """Have ``to`` look at its rows now: it starts the tenant handed to it at once,
        not at its next look (within a second), while the tenant's requests are held
        (``serving_here``: while this node serves them)."""
        target = f"/api/fleet/storage/{service}/{tenant}/start"
        if serving_here:  # ``to`` sends its own clients' requests here until its copy is up
            target += f"?from={self.node}"
        try:
            answer = await self._call(to, "POST", target, b"", b"", answer_seconds=LOOK_NOW_SECONDS)
        except ApiError as exc:
            answer = http.error_response(exc.status, exc.message)
        if answer.status != 204:
            log.info(
                "fleet node %s did not take the word to start %s:%s now (%s): it starts it "
                "at its next look at its rows",
                to,
                service,
                tenant,
                _error_of(answer),
            )

    async def _started_there(self, instance_id: str, to: str) -> None:
        """Wait (at most :data:`START_WAIT_SECONDS`) until ``to`` runs the tenant its row
        told it to start: the held requests go there only then, and the destination
        serves them itself (its directory may not know yet that the row is its own)."""
        store = self._store
        with trio.move_on_after(START_WAIT_SECONDS):
            while True:
                # "starting" until the destination's process is up (or it failed)
                if await store.run(store.instance_holder, instance_id) != (to, "starting"):
                    return
                await trio.sleep(START_POLL_SECONDS)
        log.warning(
            "moved %s to %s, which has not started it within %g s: it starts there later",
            instance_id,
            to,
            START_WAIT_SECONDS,
        )

    async def _start_here(self, sup: Supervisor, service: str, tenant: str) -> None:
        try:
            await sup.spawn(service, tenant)
        except TenementError as exc:  # logged; the move's own failure is what is raised
            log.error(
                "could not start %s:%s here again after its move failed: %s", service, tenant, exc
            )

    # ---- the destination -----------------------------------------------------------------

    async def look_now(self, instance_id: str | None = None, source: str | None = None) -> None:
        """Look at this node's rows now, starting what another node handed or placed
        here (a drain's move tells this node so once the row is its own). ``source``:
        the node that handed ``instance_id`` over and serves it until it runs here (a
        stateless move): this node's own clients' requests for it go there meanwhile."""
        if instance_id is not None and source is not None and source != self.node:
            self._moves.arrive(instance_id, source, START_WAIT_SECONDS)
        if self.look_at_rows is not None:
            await self.look_at_rows()

    def check_room(self, service: str, tenant: str, size: int) -> None:
        """Refuse (507) data of ``size`` bytes that would not fit, with the numbers; 409
        for a tenant this node runs."""
        self._refuse_running(service, tenant)
        data_dir = self._config().settings.data_dir
        free = shutil.disk_usage(data_dir).free
        # the tree is unpacked as it arrives (no archive beside it), with room to spare
        # for what it takes beyond its bytes (blocks, entries) and for everything else
        needed = size + SPARE_BYTES
        if needed > free:
            raise ApiError(
                507,
                f"Not enough space on fleet node {self.node} for {service}:{tenant}: its data "
                f"is {_mb(size)}, which needs {_mb(needed)} free in {data_dir} while it "
                f"arrives; {_mb(free)} is free",
            )

    def _refuse_running(self, service: str, tenant: str) -> None:
        sup = self._supervisor()
        iid = f"{service}:{tenant}"
        runner = sup.runner(iid) if sup is not None else None
        if sup is None or sup.service(service) is None:
            raise ApiError(404, f"Unknown process: {service} (not configured on {self.node})")
        if runner is not None and runner.inst.state != STOPPED:
            raise ApiError(409, f"Instance {iid} runs on fleet node {self.node} already")

    async def receive(
        self,
        service: str,
        tenant: str,
        sha256: Callable[[], str],
        chunks: AsyncIterator[bytes],
    ) -> dict[str, Any]:
        """Take in the data of ``service:tenant``: unpacked as it arrives beside the
        tenant's directory, its SHA-256 checked against ``sha256()`` (asked once it all
        arrived: a trailer gives it at the end) and only then renamed into place (a
        directory there already is kept as ``moved-…``)."""
        self._refuse_running(service, tenant)
        sup = self._supervisor()
        assert sup is not None
        final = sup.instance_dir(service, tenant)
        final.parent.mkdir(parents=True, exist_ok=True)
        incoming = final.with_name(f"{INCOMING_PREFIX}{tenant}-{secrets.token_hex(4)}")
        try:
            arrived, entries, refused = await _unpack_arriving(chunks, incoming)
            expected = sha256()
            if arrived.sha256() != expected:
                raise ApiError(
                    422,
                    f"The data of {service}:{tenant} arrived damaged: its SHA-256 is "
                    f"{arrived.sha256()}, not {expected}; nothing was kept",
                )
            if refused is not None:
                raise ApiError(422, f"The data of {service}:{tenant} was refused: {refused}")
            if final.exists():
                final.rename(final.with_name(aside_name(tenant)))
            os.rename(incoming, final)
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(shutil.rmtree, incoming, True)
            raise
        self._received[f"{service}:{tenant}"] = (expected, final.stat().st_ino)
        log.info(
            "took in the data of %s:%s: %d bytes, %d entries",
            service,
            tenant,
            arrived.size,
            entries,
        )
        return {"bytes": arrived.size, "entries": entries}

    async def discard(self, service: str, tenant: str, sha256: str) -> dict[str, Any]:
        """Remove the tree taken in for a move (the archive's ``sha256``) that failed
        after: it must never start here. Anything else (another tree there since, a
        tenant this node owns or runs) is left alone."""
        self._refuse_running(service, tenant)
        iid = f"{service}:{tenant}"
        owners = await self._store.run(self._store.owners, [iid])
        if iid in owners and owners[iid].node == self.node:
            raise ApiError(409, f"Instance {iid} is fleet node {self.node}'s: its data stays")
        sup = self._supervisor()
        assert sup is not None
        tree = sup.instance_dir(service, tenant)
        received = self._received.get(iid)
        try:
            same = received == (sha256, tree.stat().st_ino)
        except FileNotFoundError:
            same = False
        if not same:
            return {"discarded": False}
        del self._received[iid]
        await trio.to_thread.run_sync(shutil.rmtree, tree)
        log.warning("removed the data of %s taken in for a move that failed after", iid)
        return {"discarded": True}


class _Packing:
    """One attempt's packing of a tree as the relay sends it (a :data:`Producer`):
    a thread packs into a bounded channel, the connection takes the pieces from it."""

    def __init__(self, tree: Path, progress: Progress) -> None:
        self._tree = tree
        self._progress = progress
        #: the archive that was sent, once all of it was
        self.done: Streamed | None = None

    async def produce(
        self, send_piece: Callable[[bytes], Awaitable[None]]
    ) -> list[tuple[bytes, bytes]]:
        put, take = trio.open_memory_channel[bytes](PIECES_IN_FLIGHT)
        failures: list[Exception] = []

        def write(piece: bytes) -> None:
            trio.from_thread.run(put.send, piece)

        async def pack() -> None:
            async with put:
                try:
                    self.done = await trio.to_thread.run_sync(pack_into, self._tree, write)
                except trio.BrokenResourceError:
                    pass  # the sending stopped: its own failure is the one to tell
                except (OSError, tarfile.TarError) as exc:
                    failures.append(ApiError(500, f"could not pack {self._tree}: {exc}"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(pack)
            try:
                async with take:
                    async for piece in take:
                        await send_piece(piece)
            except Exception as exc:  # the connection's: after the thread stopped
                failures.append(exc)
        if failures:
            raise failures[-1]
        assert self.done is not None
        self._progress.sent = self.done
        return [(SHA256_TRAILER, self.done.sha256.encode())]


async def _unpack_arriving(
    chunks: AsyncIterator[bytes], into: Path
) -> tuple[Incoming, int, Exception | None]:
    """Unpack what arrives into ``into`` as it arrives (a thread unpacks from a bounded
    channel), hashing all of it; (what arrived, the entries, why it was refused if it
    was: an unsafe or broken archive, told only once the sum shows it arrived whole)."""
    put, take = trio.open_memory_channel[list[bytes]](PIECES_IN_FLIGHT)
    failures: list[Exception] = []
    entries = 0
    refused: Exception | None = None

    def next_pieces() -> list[bytes]:
        try:
            return trio.from_thread.run(take.receive)
        except trio.EndOfChannel:
            return []

    incoming = Incoming(next_pieces)

    async def feed() -> None:
        # handed on a megabyte at a time, as they came (not joined: no copy): a thread's
        # hop for each 64 KiB piece halved the rate at which the data arrives
        pending: list[bytes] = []
        buffered = 0
        async with put:
            try:
                async for chunk in chunks:
                    pending.append(chunk)
                    buffered += len(chunk)
                    if buffered >= PIECE_BYTES:
                        await put.send(pending)
                        pending, buffered = [], 0
                if pending:
                    await put.send(pending)
            except Exception as exc:  # the sender went away: the unpacking sees the end
                failures.append(exc)

    async def unpack() -> None:
        nonlocal entries, refused
        async with take:
            try:
                entries = await trio.to_thread.run_sync(unpack_from, incoming, into)
            except (UnsafeArchive, tarfile.TarError) as exc:
                refused = exc
            except Exception as exc:  # the disk's (full, say): told as it is
                failures.insert(0, exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(feed)
        nursery.start_soon(unpack)
    if failures:
        raise failures[0]
    return incoming, entries, refused


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _error_of(answer: http.Response) -> str:
    """The ``error`` of a JSON error body, else the body as text."""
    try:
        return str(json.loads(answer.body)["error"])
    except (ValueError, KeyError, TypeError):
        return answer.body.decode("utf-8", "replace")[:300] or f"status {answer.status}"
