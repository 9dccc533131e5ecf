"""What the proxy needs from the supervisor, written down as protocols.

The supervisor (``tenement.supervisor.Supervisor``) implements :class:`Backends`; tests
use small classes over real servers. Everything here except :meth:`Backends.wake` reads
memory only, never the database: it runs on every request.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from tenement.config import Service


class Target(Protocol):
    """A running instance the proxy may send requests to (``tenement.supervisor.Target``)."""

    @property
    def instance_id(self) -> str: ...

    @property
    def service(self) -> str: ...

    @property
    def tenant(self) -> str: ...

    @property
    def port(self) -> int | None:
        """TCP port on 127.0.0.1, or None: then :attr:`socket` is a Unix socket path."""

    @property
    def socket(self) -> str: ...

    @property
    def weight(self) -> int: ...


class Backends(Protocol):
    def service(self, name: str) -> Service | None:
        """The configured service ``name``, or None (-> 404)."""

    def target(self, service: str, tenant: str) -> Target | None:
        """The running instance ``service:tenant``, touching its last activity."""

    def weighted_targets(self, service: str) -> Sequence[Target]:
        """Every running instance of ``service``, in a stable (registry) order."""

    def may_wake(self, service: str, tenant: str) -> bool:
        """Whether a request for ``service:tenant``, not routable now, goes to
        :meth:`wake` (a known tenant, failed or in backoff included, a listed one, or
        any with wake_any_id); False -> 404."""

    async def wake(self, service: str, tenant: str) -> Target:
        """Start ``service:tenant`` (once, however many requests wait) until it accepts;
        for an instance in backoff, wait for its scheduled restart instead.

        Raises:
            RestartPending: in backoff, restarting too late for this request (-> 503
                with ``Retry-After``).
            InstanceFailed: failed; only an operator starts it again (-> 503).
            TenementError: it could not be started (-> 503).
        """

    def connection(self, instance_id: str) -> AbstractContextManager[object]:
        """Count one proxied connection to ``instance_id`` while the context is open."""
