"""Reloading tenement.toml in place, and saying whether it was applied.

A reload comes as SIGHUP (``kill -HUP``) or as ``POST /_tenement/reload`` on the control
socket (``ten reload``, the unit's ``ExecReload=``), which answers with the outcome so
that ``systemctl reload`` fails when the file was refused. Either way:

- an empty, unreadable or invalid file is refused: the running config stays, and the
  reason is logged as an error (an empty file explicitly: it would stop every service);
- a valid file is applied at once: the changes are logged, services removed from it have
  their instances stopped (each logged), new ``[instances]`` start, and changed services
  apply at each instance's next start;
- the main process records the applied config for `ten config --check`
  (``tenement.config.write_applied``).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from tenement.config import Config, ConfigChanges, config_as_dict, config_changes, write_applied
from tenement.errors import TenementError

if TYPE_CHECKING:
    from tenement.server.roles import Node
    from tenement.server.workers import Workers
    from tenement.systemd import Notifier

log = logging.getLogger(__name__)


@attrs.frozen(kw_only=True)
class ReloadOutcome:
    """What one reload did.

    Attributes:
        applied: whether the new file is the running config now.
        source: the file read.
        error: why it was refused (None when applied).
        changes: what changed (None when refused).
        stopped: instances stopped because their service was removed.
    """

    applied: bool
    source: str | None = None
    error: str | None = None
    changes: ConfigChanges | None = None
    stopped: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "source": self.source,
            "error": self.error,
            "changes": None if self.changes is None else self.changes.as_json(),
            "lines": [] if self.changes is None else self.changes.lines(),
            "stopped": list(self.stopped),
        }


class Reloader:
    """Re-reads tenement.toml for one server, one reload at a time.

    Args:
        node: the server's role; its config is the running one.
        notifier: says ``RELOADING=1`` .. ``READY=1`` to systemd around each reload.
        read_config: reads the file again (it must refuse an empty file); runs in a
            thread, so that a large file does not stall the proxy.
        workers: the main process's workers, told (SIGHUP) to reload too.
        record: whether this process records the applied config (the main one does,
            a worker does not).
    """

    def __init__(
        self,
        node: Node,
        notifier: Notifier,
        read_config: Callable[[], Config],
        workers: Workers,
        *,
        record: bool,
    ) -> None:
        self._node = node
        self._notifier = notifier
        self._read_config = read_config
        self._workers = workers
        self._record = record
        self._lock = trio.Lock()

    def record(self, config: Config) -> None:
        """Record ``config`` as the running one (a failure is logged: serving goes on)."""
        if not self._record:
            return
        try:
            write_applied(config.settings.data_dir, config, pid=os.getpid())
        except OSError as exc:
            log.warning(
                "cannot record the running config in %s: %s; `ten config --check` will "
                "not know what a reload would change",
                config.settings.data_dir / "run",
                exc.strerror,
            )

    async def reload(self) -> ReloadOutcome:
        """Read the file again and apply it, or keep the running config.

        Cancellation: a reload cancelled while reading keeps the running config; one
        cancelled while applying has applied the config (stopping instances goes on
        under the supervisor).
        """
        async with self._lock:
            self._workers.signal(signal.SIGHUP)
            self._notifier.reloading()
            try:
                outcome = await self._reload()
            finally:
                self._notifier.ready()
            if not outcome.applied:
                # `systemctl status` shows it until the next reload or status
                self._notifier.status(
                    f"serving; reload refused, running config kept: {outcome.error}"
                )
            return outcome

    async def _reload(self) -> ReloadOutcome:
        running = self._node.config
        try:
            new = await trio.to_thread.run_sync(self._read_config)
        except TenementError as exc:
            log.error("reload refused, keeping the running config: %s", exc)
            source = getattr(exc, "path", None) or running.source
            return ReloadOutcome(
                applied=False, source=None if source is None else str(source), error=str(exc)
            )
        for warning in new.warnings:
            log.warning("%s", warning)
        changes = config_changes(config_as_dict(running), config_as_dict(new))
        for line in changes.lines():
            log.info("reload: %s", line)
        stopped = await self._node.reload(new)
        for iid in stopped:
            log.info(
                "reload: stopped %s: its service is no longer in %s",
                iid,
                new.source,
                extra={"INSTANCE": iid},
            )
        self.record(new)
        log.info(
            "configuration reloaded from %s%s",
            new.source,
            "" if changes else " (nothing changed)",
        )
        return ReloadOutcome(
            applied=True,
            source=None if new.source is None else str(new.source),
            changes=changes,
            stopped=stopped,
        )
