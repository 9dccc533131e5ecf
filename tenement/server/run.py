"""`ten serve`: store, supervisor, proxy and API wired into one trio run.

Startup order, each step announced with ``STATUS=``:

1. adopt the listening sockets systemd passed (or bind our own);
2. open the database, back it up and migrate it when it is not at head;
3. register in the ``servers`` table and listen on the control socket (``control.py``);
4. take the supervisor lease and adopt live tenants, clean up dead rows, spawn
   ``[instances]`` — or, when another live server holds the lease, stand by: serve from
   the shared instance rows and take over when the lease comes free (``roles.py``);
5. serve HTTP; ``READY=1`` once hypercorn accepts.

Shutdown (see docs/operations.md): SIGTERM/SIGINT drains HTTP, then stops every tenant,
unless another server on the data dir stands by: then the tenants are handed to it;
SIGUSR2 (systemd's ``RestartKillSignal=``) drains HTTP and leaves the tenants running for
the next server to adopt; SIGHUP re-reads tenement.toml in place (``reload.py``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import resource
import socket
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

from tenement.config import SECONDS, Config, TlsSettings
from tenement.errors import TenementError
from tenement.server.handoff import LISTEN_BACKLOG

if TYPE_CHECKING:  # imported lazily at run time: `ten serve` pays for them, `ten ps` does not
    from tenement.server.directory import FleetDirectory
    from tenement.server.h1 import Express
    from tenement.server.membership import Membership
    from tenement.server.relay import FleetRelay
    from tenement.server.roles import Node
    from tenement.server.workers import Workers
    from tenement.systemd import Notifier
    from tenement.tls.handshake import ChooseContext
    from tenement.types import ASGIApp

log = logging.getLogger(__name__)

#: how long accepted requests get to finish once a stop or restart begins
DRAIN_GRACE = 10 * SECONDS
#: a migration may take long on a large database; systemd is told to wait this long more
MIGRATION_TIMEOUT = 300 * SECONDS
#: descriptors the table of open files is grown to at start (see reserve_descriptors)
RESERVED_DESCRIPTORS = 16384
#: the soft limit on open files raised to at start, the hard limit permitting (see
#: raise_descriptor_limit)
DESCRIPTOR_LIMIT = 65536


@attrs.frozen
class ServeOptions:
    """What ``ten serve`` was told on its command line."""

    port: int = 8080
    domain: str = "localhost"
    #: explicit ``HOST:PORT`` or ``unix:PATH`` addresses; empty means ``0.0.0.0:port``
    #: (with TLS: ``0.0.0.0:https_port`` and ``0.0.0.0:http_port``)
    binds: tuple[str, ...] = ()


def bind_sockets(options: ServeOptions, tls: TlsSettings | None = None) -> list[socket.socket]:
    """Bind our own listening sockets, for a server that systemd did not start.

    With TLS enabled ``--port`` is not used (as 0.2.2): the default binds are the HTTPS
    and HTTP ports on every address.

    Raises:
        TenementError: an address is malformed or cannot be bound (in use, no permission).
    """
    default: tuple[str, ...] = (f"0.0.0.0:{options.port}",)
    if tls is not None and tls.enabled:
        default = (f"0.0.0.0:{tls.https_port}", f"0.0.0.0:{tls.http_port}")
    binds = options.binds or default
    sockets = []
    try:
        for bind in binds:
            sockets.append(_bind_one(bind))
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bind_one(bind: str) -> socket.socket:
    if bind.startswith("unix:"):
        path = bind.removeprefix("unix:")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if os.path.exists(path):
                os.unlink(path)
            sock.bind(path)
        except OSError as exc:
            sock.close()
            raise TenementError(f"Cannot listen on {bind}: {exc.strerror}") from exc
    else:
        host, sep, port_text = bind.rpartition(":")
        if not sep or not port_text.isdigit():
            raise TenementError(f"Invalid bind address '{bind}': use HOST:PORT or unix:PATH")
        host = host.strip("[]") or "0.0.0.0"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, int(port_text)))
        except OSError as exc:
            sock.close()
            raise TenementError(f"Cannot listen on {bind}: {exc.strerror}") from exc
    sock.listen(LISTEN_BACKLOG)
    return sock


@attrs.frozen
class Role:
    """Which process of ``ten serve`` this is."""

    #: a worker (``workers.py``) never leads, has no control socket and is not registered
    worker: bool = False
    #: the main process's workers (their pids); empty in a worker
    workers: tuple[int, ...] = ()
    #: a worker's main process
    parent: int | None = None


async def serve(
    config: Config,
    options: ServeOptions,
    sockets: list[socket.socket],
    *,
    environ: MutableMapping[str, str],
    reload_config: Callable[[], Config],
    role: Role = Role(),
    task_status: trio.TaskStatus[list[socket.socket]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the server until a stop or restart signal, then return.

    Args:
        config: the configuration to start with.
        options: the command line's port, domain and binds.
        sockets: the listening sockets (systemd's or ours), closed on return.
        environ: the environment tenants inherit (after systemd's variables were consumed).
        reload_config: called on SIGHUP (and ``POST /_tenement/reload``) to read
            tenement.toml again, in a thread; a :class:`TenementError` from it keeps the
            running configuration. It should refuse an empty file (``refuse_empty``).
        role: the main process (with its workers), or a worker.

    Resource handling:
        Closes ``sockets`` and its control socket on return. Tenants are stopped on
        return unless the stop was a restart or they were handed over.
    """
    from tenement.control_sockets import control_socket_path
    from tenement.server.control import bind_control_socket
    from tenement.server.http import serve_http
    from tenement.server.reload import Reloader
    from tenement.server.roles import Node
    from tenement.server.tls_front import missing_ports, split_sockets
    from tenement.server.workers import EXIT_GRACE_SECONDS, Workers, exit_with_parent
    from tenement.store import open_store
    from tenement.supervisor import new_holder
    from tenement.systemd import (
        Lifecycle,
        Notifier,
        open_lifecycle_signals,
        serve_watchdog,
        watchdog_interval,
    )

    notifier = Notifier(environ)
    settings = config.settings
    server_id = new_holder()
    control_path = None if role.worker else control_socket_path(settings.data_dir, server_id)
    control_sockets: list[socket.socket] = []
    workers = Workers(list(role.workers))
    ready = False

    def is_ready() -> bool:
        return ready

    try:
        notifier.status("opening the database")
        with open_store(settings.database_url_or_default()) as store:
            # before the signals are caught: a stop while the database is awaited ends
            # the process at once, as it would any program not yet started
            await _wait_for_database(store, settings.database_start_timeout, notifier)
            async with open_lifecycle_signals() as signals:
                await _database_at_head(store, settings, notifier, migrate=not role.worker)
                membership = _membership(config, store)
                directory = await _directory(config, store)
                if membership is not None and not role.worker:
                    notifier.status("joining the fleet")
                    await membership.join()
                if not role.worker:
                    control_sockets = _control_sockets(control_path, bind_control_socket)

                async def reload_on_request() -> dict[str, Any]:
                    return (await reloader.reload()).as_json()

                fleet_relay = _relay(directory)
                node = Node(
                    config,
                    store,
                    server_id=server_id,
                    environ=environ,
                    # with TLS, tenants' hosts are under the certificate's domain
                    domain=settings.tls.domain
                    if settings.tls.enabled and settings.tls.domain
                    else options.domain,
                    ready=is_ready,
                    may_lead=not role.worker,
                    reload=reload_on_request,
                    fleet=directory,
                    fleet_relay=fleet_relay,
                )
                if fleet_relay is not None and directory is not None and not role.worker:
                    from tenement.server.moves import Mover

                    node.mover = Mover(
                        store,
                        lambda: node.supervisor,
                        lambda: node.config,
                        node.proxy.moves,
                        fleet_relay,
                        directory.refresh,
                    )
                drainer = None
                if membership is not None and node.mover is not None:
                    from tenement.server.drain import Drainer

                    drainer = Drainer(
                        store,
                        node.mover,
                        membership.fleet,
                        lambda: node.config.services,
                        lambda: node.supervisor is not None,
                    )
                reloader = Reloader(node, notifier, reload_config, workers, record=not role.worker)
                if membership is not None and not role.worker:
                    from tenement.server.fencing import Fencing

                    membership.fencing = Fencing(store, membership.fleet, lambda: node.supervisor)
                    if node.mover is not None:
                        node.mover.look_at_rows = membership.fencing.take_over
                    membership.services = lambda: node.config.services
                public_stop, control_stop = trio.Event(), trio.Event()
                public_drained, control_drained = trio.Event(), trio.Event()

                async def serve_until_drained(
                    app: ASGIApp,
                    listening: list[socket.socket],
                    stop: trio.Event,
                    drained: trio.Event,
                    express: Express | None,
                    tls: ChooseContext | None = None,
                    *,
                    task_status: trio.TaskStatus[list[str]],
                ) -> None:
                    try:
                        await serve_http(
                            app,
                            listening,
                            shutdown=stop,
                            grace_seconds=DRAIN_GRACE,
                            # tenants name themselves; hypercorn must not add a second one
                            config_overrides={"include_server_header": False},
                            # every HTTP/1.1 request without an upgrade, the API's too,
                            # is served by h1.py; hypercorn (imported then) only what it
                            # hands off
                            fast_path=_every_host,
                            express=express,
                            body_seconds=settings.body_timeout,
                            tls=tls,
                            task_status=task_status,
                        )
                    finally:
                        drained.set()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(workers.watch)
                    if role.parent is not None:
                        nursery.start_soon(exit_with_parent, role.parent)
                    if not role.worker:
                        url = f"unix:{control_path}" if control_sockets else ""
                        await nursery.start(node.register, url)
                        if membership is not None:
                            await nursery.start(membership.run)
                    if directory is not None:
                        await nursery.start(directory.run)
                    notifier.status("adopting tenants")
                    await nursery.start(node.run)
                    if drainer is not None:
                        nursery.start_soon(drainer.run)
                    plain, https, redirect = split_sockets(sockets, settings.tls)
                    missing = missing_ports(https, redirect, settings.tls)
                    if missing is not None and not role.worker:
                        log.error("%s", missing)
                    public_drained_all = [public_drained]
                    await nursery.start(
                        serve_until_drained,
                        node.proxy,
                        plain,
                        public_stop,
                        public_drained,
                        node.proxy.express,
                    )
                    if https or redirect:
                        public_drained_all += await _start_tls(
                            nursery,
                            settings,
                            node,
                            https,
                            redirect,
                            public_stop,
                            serve_until_drained,
                        )
                    if control_sockets:
                        await nursery.start(
                            serve_until_drained,
                            node.control,
                            control_sockets,
                            control_stop,
                            control_drained,
                            None,
                        )
                    else:
                        control_drained.set()
                    ready = True
                    notifier.ready()
                    reloader.record(config)
                    node.serving.set()
                    notifier.status(_serving_status(node, workers))
                    task_status.started(sockets)
                    interval = watchdog_interval(environ)
                    if interval is not None:
                        nursery.start_soon(serve_watchdog, notifier, interval)
                    async for command in signals:
                        if command is Lifecycle.RELOAD:
                            await reloader.reload()
                            continue
                        ready = False
                        notifier.stopping()
                        workers.stop()
                        if command is Lifecycle.RESTART:
                            notifier.status("restarting: draining, tenants keep running")
                            node.hand_over()
                            if membership is not None and not role.worker:
                                await membership.hand_over()
                        elif node.leading and await node.successor_present():
                            notifier.status("handing over: draining, tenants go to the standby")
                            log.info("another server is standing by: handing the tenants over")
                            node.hand_over()
                        else:
                            notifier.status("stopping: draining, then stopping tenants")
                        public_stop.set()
                        break
                    # the control socket serves standbys' and workers' relayed requests
                    # until the lease is released; the watchdog goes with the nursery
                    for drained in public_drained_all:
                        await drained.wait()
                    await workers.wait(DRAIN_GRACE + EXIT_GRACE_SECONDS)
                    await node.leave()
                    control_stop.set()
                    await control_drained.wait()
                    nursery.cancel_scope.cancel()
                await node.proxy.aclose()
    finally:
        for sock in [*sockets, *control_sockets]:
            sock.close()
        if control_sockets and control_path is not None:
            control_path.unlink(missing_ok=True)


def _relay(directory: FleetDirectory | None) -> FleetRelay | None:
    """With ``[fleet]``: how the API relays a call for another node's instance."""
    if directory is None:
        return None
    from tenement.server.relay import FleetRelay

    return FleetRelay(directory)


async def _directory(config: Config, store: Any) -> FleetDirectory | None:
    """With ``[fleet]``: the directory this process's proxy forwards by, once the fleet
    secret file was checked (every process of a node routes: workers too).

    Raises:
        FleetSecretError: the secret file is missing, not private, or not this fleet's.
    """
    if config.fleet is None:
        return None
    from tenement.server.directory import FleetDirectory
    from tenement.server.fleet_secret import load_fleet_secret

    secret = await store.run(load_fleet_secret, config.fleet, config.settings.data_dir, store)
    return FleetDirectory(store, config.fleet, secret)


def _membership(config: Config, store: Any) -> Membership | None:
    """With ``[fleet]``: this node's membership, its store kept to this node's rows (a
    worker's too: it routes to this node's tenants only). None on a single host."""
    if config.fleet is None:
        return None
    from tenement.server.membership import Membership

    return Membership(store, config.fleet, config.settings.data_dir)


def _every_host(host: str | None) -> bool:
    return True


#: the first pause between two attempts to reach the database at start; it doubles, up to
#: DATABASE_RETRY_MAX
DATABASE_RETRY_FIRST = 0.5 * SECONDS
DATABASE_RETRY_MAX = 5 * SECONDS


async def _wait_for_database(store: Any, timeout: float, notifier: Notifier) -> None:
    """Reach the database, trying again for ``timeout`` seconds while its server is down or
    starting, so that a database that boots after tenement does not fail the unit.

    Each failure is logged and shown as ``STATUS=`` (host, port, database, never the
    password); systemd's start timeout is extended to cover the wait.

    Raises:
        DatabaseUnavailable: at once for a failure waiting cannot mend (a wrong password,
            no such database, TLS required), else when ``timeout`` has passed.
    """
    from tenement.store import DatabaseUnavailable

    deadline = trio.current_time() + timeout
    pause = DATABASE_RETRY_FIRST
    attempt = 1
    while True:
        try:
            await store.run(store.ping)
        except DatabaseUnavailable as exc:
            left = deadline - trio.current_time()
            if not exc.transient or left <= 0:
                raise
            pause = min(pause, left)
            log.warning("%s (attempt %d; trying again for %.0f s more)", exc, attempt, left)
            notifier.status(
                f"waiting for the database: {exc.where}: {exc.reason} "
                f"(attempt {attempt}, giving up in {left:.0f} s)"
            )
            # room for the pause and the next attempt (libpq gives up after 10 s)
            notifier.extend_timeout(pause + 30 * SECONDS)
            await trio.sleep(pause)
            pause = min(pause * 2, DATABASE_RETRY_MAX)
            attempt += 1
            continue
        if attempt > 1:
            log.info("reached the database after %d attempts", attempt)
        return


async def _start_tls(
    nursery: trio.Nursery,
    settings: Any,
    node: Node,
    https: list[socket.socket],
    redirect: list[socket.socket],
    stop: trio.Event,
    serve_until_drained: Callable[..., Any],
) -> list[trio.Event]:
    """Serve HTTPS on ``https`` and the redirect on ``redirect`` (``tls_front.py``): the
    certificates in ``cache_dir`` are loaded first, so a restart serves at once, without
    the CA. Returns the events set once each has drained."""
    from tenement.server.tls_front import tls_manager
    from tenement.tls.redirect import RedirectApp

    manager = tls_manager(settings, node.proxy)
    await trio.to_thread.run_sync(manager.load)
    await nursery.start(manager.run)
    node.tls_status = manager.status
    drained = []
    if https:
        https_drained = trio.Event()
        await nursery.start(
            serve_until_drained,
            node.proxy,
            https,
            stop,
            https_drained,
            node.proxy.express,
            manager.context_for,
        )
        drained.append(https_drained)
    if redirect:
        redirect_drained = trio.Event()
        app = RedirectApp(settings.tls.https_port, manager.challenges)
        await nursery.start(serve_until_drained, app, redirect, stop, redirect_drained, None)
        drained.append(redirect_drained)
    return drained


async def _database_at_head(
    store: Any, settings: Any, notifier: Notifier, *, migrate: bool
) -> None:
    """Migrate the database to head (backing it up first), or, in a worker, wait until the
    main process has. A database a newer release migrated, inside this release's
    compatibility window (a rollback), is used as it is."""
    from tenement.store import SchemaKind, is_at_head, migrate_to_head, runs_on, schema_status

    if is_at_head(store):
        return
    if not migrate:
        while not await store.run(runs_on, store):
            await trio.sleep(0.1)
        return
    status = await store.run(schema_status, store)
    if status.kind is SchemaKind.AHEAD:
        log.warning("database is at %s", status.describe())
        return
    notifier.status("migrating the database")
    notifier.extend_timeout(MIGRATION_TIMEOUT)
    report = await store.run(
        lambda: migrate_to_head(store, backup_dir=settings.data_dir / "backups", log=log.info)
    )
    log.info("database at %s (backup: %s)", report.to_revision, report.backup)


def _control_sockets(
    path: Path | None, bind: Callable[[Path], socket.socket]
) -> list[socket.socket]:
    """The control socket (none for a worker), or none when it cannot be bound (logged):
    then no standby can reach this server."""
    if path is None:
        return []
    try:
        return [bind(path)]
    except OSError as exc:
        log.warning("cannot listen on the control socket %s: %s", path, exc.strerror)
        return []


def _serving_status(node: Node, workers: Workers) -> str:
    with_workers = f" with {len(workers)} worker(s)" if len(workers) else ""
    if node.supervisor is None:
        return "standing by: serving while another server supervises the tenants"
    return f"serving {len(node.supervisor.instances())} instance(s){with_workers}"


def run(
    read_config: Callable[..., Config],
    options: ServeOptions,
    *,
    environ: MutableMapping[str, str],
    log_level: str = "INFO",
    workers: int | None = None,
) -> None:
    """The body of ``ten serve``: logging, the configuration, the sockets, the workers, then
    :func:`serve` under trio in every process.

    Args:
        read_config: reads tenement.toml; takes ``refuse_empty`` (True at a reload).
        workers: serving processes in all (``--workers``); None takes ``[settings] workers``.
    """
    from tenement.server.secrets import drop_secrets, secure_data_dir
    from tenement.server.tls_front import prepare_cache_dir
    from tenement.server.workers import (
        describe_count,
        fork_workers,
        worker_count,
        worker_environ,
    )
    from tenement.store import check_url
    from tenement.supervisor.identity import shared_user_warning
    from tenement.systemd import configure_logging, listen_sockets

    dropped = drop_secrets(environ)
    configure_logging(environ, log_level)
    config = read_config()
    # a missing driver or an unreadable URL is a configuration error: say so before any
    # socket is bound or worker forked, not from a half-started server
    check_url(config.settings.database_url_or_default())
    for warning in config.warnings:
        log.warning("%s", warning)
    if dropped:
        log.info("%s removed from the server's environment: it needs none", ", ".join(dropped))
    shared = shared_user_warning(config.settings.tenant_users)
    if shared is not None:
        log.warning("%s", shared)
    secure_data_dir(config.settings.data_dir)
    if config.settings.tls.enabled:
        # like the database URL: before a tenant is adopted (a crash later stopped them)
        prepare_cache_dir(config.settings)
    requested = config.settings.workers if workers is None else workers
    count = worker_count(requested)
    log.info("%s", describe_count(requested, count))
    inherited = [listening.sock for listening in listen_sockets(environ)]
    sockets = inherited or bind_sockets(options, config.settings.tls)
    _preload()
    raise_descriptor_limit(DESCRIPTOR_LIMIT)
    reserve_descriptors(RESERVED_DESCRIPTORS)

    main = os.getpid()

    def reload_config() -> Config:
        # an empty file at a reload is a file being written or truncated, not "no services"
        return read_config(refuse_empty=True)

    def worker(index: int) -> None:
        child_environ = worker_environ(environ)
        trio.run(
            lambda: serve(
                config,
                options,
                sockets,
                environ=child_environ,
                reload_config=reload_config,
                role=Role(worker=True, parent=main),
            )
        )

    pids = fork_workers(count - 1, worker)
    try:
        trio.run(
            lambda: serve(
                config,
                options,
                sockets,
                environ=environ,
                reload_config=reload_config,
                role=Role(workers=tuple(pids)),
            )
        )
    except BaseExceptionGroup as group:
        taken = _name_taken(group)
        if taken is not None:
            raise taken from None
        lost = database_lost(group)
        if lost is None:
            raise
        raise TenementError(
            f"lost the database while serving: {lost}. It was out of reach for longer than "
            "the supervisor lease can wait, so the server stopped and left its tenants "
            "running; started again (systemd does), it waits database_start_timeout for the "
            "database and adopts them"
        ) from None


def _name_taken(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The :class:`~tenement.server.membership.NodeNameTaken` in ``group``, if any: a
    node whose name another host took while it was silent stops (and stops its tenants,
    which that host now owns), with that one message."""
    from tenement.server.membership import NodeNameTaken

    matched, _ = group.split(NodeNameTaken)
    first: BaseException | None = matched
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first


def database_lost(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The first :class:`~tenement.store.DatabaseUnavailable` of ``group`` when that is
    all it holds (every task that touched the database failed the same way), else None:
    then the group is a bug and its traceback is wanted."""
    from tenement.store import DatabaseUnavailable

    matched, rest = group.split(DatabaseUnavailable)
    if matched is None or rest is not None:
        return None
    first: BaseException = matched
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first


def raise_descriptor_limit(wanted: int) -> None:
    """Raise the soft limit on open files to ``wanted`` (at most the hard limit).

    Each supervised tenant holds two descriptors in the server (its pidfd, and the
    duplicate its watcher waits on), besides pooled connections. Under systemd's default
    soft limit of 1,024 a server with ~500 tenants failed with EMFILE: a start adopting
    1,000 could not accept connections and exited. systemd leaves the soft limit low for
    programs that use ``select()``, which tenement does not, and expects the others to
    raise it themselves. Tenants inherit the raised limit (as supervisord's ``minfds``
    passes its own on).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError) as exc:
            log.warning("cannot raise the open files limit from %d to %d: %s", soft, target, exc)
            return
        log.info("open files limit raised from %d to %d", soft, target)


def reserve_descriptors(count: int) -> None:
    """Grow this process's table of open files to ``count`` entries (or its limit) now,
    while it has a single thread.

    Linux doubles the table as descriptors are opened, and in a process with more than
    one thread each doubling waits for an RCU grace period: 7-20 ms each here. A server
    adopting 1,000 tenants opens a pidfd for each after trio's worker threads have
    started (the store runs in them), then a duplicate for each watcher: four doublings,
    ~50 ms of its start. Grown now it costs nothing, and the kernel keeps the table's
    size (8 bytes per entry; forked workers inherit it).
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = min(count, soft) - 1
    try:
        probe = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        # the lowest free descriptor from `highest` on: never one in use
        os.close(fcntl.fcntl(probe, fcntl.F_DUPFD_CLOEXEC, highest))
    except OSError:  # none free up there: nothing to gain
        pass
    finally:
        os.close(probe)


def _preload() -> None:
    """Import what serving needs before workers are forked (they share it copy-on-write)."""
    import tenement.server.control
    import tenement.server.http
    import tenement.server.roles
    import tenement.server.workers
    import tenement.store
    import tenement.systemd  # noqa: F401
