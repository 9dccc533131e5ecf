"""Worker processes: more serving processes on the same listening sockets.

One Python process proxies on one core. ``ten serve --workers N`` (or ``[settings]
workers``) forks N - 1 workers after the sockets are open and before trio starts (no
thread exists yet, and the imported code is shared copy-on-write). The kernel hands each
new connection to one of the processes waiting on the shared socket.

A worker is a standby that never leads (``roles.py``): it routes from the shared instance
rows, relays wakes and API requests to the server holding the lease, and reports its
activity and request counts to it. It is not registered as a server, so a stopping main
process never hands its tenants to its own workers. The main process forwards SIGHUP to
them, and on a stop or restart sends them SIGTERM (each drains its connections) and waits
for them before its tenants are stopped or handed over. A worker whose main process dies
gets SIGTERM from the kernel (``PR_SET_PDEATHSIG``). A worker that dies is logged, not
replaced: the others keep serving, and the next restart starts a full set.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
from collections.abc import Callable, Mapping

import trio

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
#: how long workers get to drain beyond the main process's own drain
EXIT_GRACE_SECONDS = 5.0


def worker_count(requested: int) -> int:
    """``requested`` serving processes in all; 0 means one per CPU this process may use."""
    if requested > 0:
        return requested
    return max(1, len(os.sched_getaffinity(0)))


def describe_count(requested: int, count: int) -> str:
    """What the server logs at start: how many serving processes, and why that many."""
    processes = "1 serving process" if count == 1 else f"{count} serving processes"
    if requested == 0:
        return f"{processes}, one per CPU (workers = 0)"
    return f"{processes} (workers = {requested})"


def worker_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """A worker's environment: nothing that would make it talk to systemd as the service."""
    return {
        name: value
        for name, value in environ.items()
        if name not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
        and not name.startswith("LISTEN_")
    }


def fork_workers(count: int, body: Callable[[int], None]) -> list[int]:
    """Fork ``count`` workers; worker ``i`` runs ``body(i)`` and exits. Call before trio runs.

    Returns:
        The workers' pids.
    """
    parent = os.getpid()
    pids = []
    for index in range(count):
        pid = os.fork()
        if pid == 0:  # the worker: never returns
            code = 1
            try:
                _die_with(parent)
                body(index)
                code = 0
            except BaseException:
                log.exception("worker %d failed", index + 1)
            finally:
                logging.shutdown()
                os._exit(code)
        pids.append(pid)
    return pids


async def exit_with_parent(parent: int, poll_seconds: float = 1.0) -> None:
    """In a worker: once the main process is gone, stop as on SIGTERM.

    ``PR_SET_PDEATHSIG`` does this already; this is the belt to those braces (the signal
    is not sent if the parent thread that forked is gone first, or the prctl failed).
    """
    while os.getppid() == parent:
        await trio.sleep(poll_seconds)
    log.warning("the main process %d is gone: this worker stops", parent)
    os.kill(os.getpid(), signal.SIGTERM)


def _die_with(parent: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("worker: PR_SET_PDEATHSIG failed (errno %d)", ctypes.get_errno())
    if os.getppid() != parent:  # the parent died before the prctl
        os.kill(os.getpid(), signal.SIGTERM)


class Workers:
    """The main process's handle on its workers (in trio). Reaps them as they exit."""

    def __init__(self, pids: list[int]) -> None:
        self._running = set(pids)
        self._stopping = False
        self._exited = trio.Event()
        if not pids:
            self._exited.set()

    def __len__(self) -> int:
        return len(self._running)

    async def watch(self) -> None:
        """Reap workers as they exit, logging the ones that exit unasked; until all have."""
        async with trio.open_nursery() as nursery:
            for pid in list(self._running):
                nursery.start_soon(self._watch_one, pid)

    async def _watch_one(self, pid: int) -> None:
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            pidfd = None
        try:
            if pidfd is not None:
                await trio.lowlevel.wait_readable(pidfd)
            _, status = os.waitpid(pid, 0)
        finally:
            if pidfd is not None:
                os.close(pidfd)
        self._running.discard(pid)
        if not self._stopping:
            log.error(
                "worker %d exited (%s); %d worker(s) left, a restart starts them all again",
                pid,
                _describe(status),
                len(self._running),
            )
        if not self._running:
            self._exited.set()

    def signal(self, signum: int) -> None:
        for pid in self._running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def stop(self) -> None:
        """Tell every worker to drain and exit."""
        self._stopping = True
        self.signal(signal.SIGTERM)

    async def wait(self, timeout: float) -> None:
        """Until every worker has exited; those still running after ``timeout`` are killed."""
        with trio.move_on_after(timeout):
            await self._exited.wait()
            return
        log.warning("%d worker(s) still running after %g s: killing them", len(self), timeout)
        self.signal(signal.SIGKILL)
        await self._exited.wait()


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
