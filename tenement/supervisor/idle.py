"""Scale to zero: which instances have been idle too long (reference §5.5).

An instance is idle when its service has ``idle_timeout > 0``, nothing was routed to it
for longer than that, and it has no active proxied connection. Health checks do not
count as activity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tenement.config import Service
from tenement.supervisor.instance import RUNNING, Instance


def is_idle(inst: Instance, service: Service | None, *, now: float) -> bool:
    """Whether the reaper should stop ``inst`` at ``now`` (``trio.current_time()``)."""
    if service is None or not service.idle_timeout or service.idle_timeout <= 0:
        return False
    if inst.state != RUNNING or inst.run is None or inst.active_connections > 0:
        return False
    return now - inst.last_activity > service.idle_timeout


def idle_instances(
    instances: Iterable[Instance], services: Mapping[str, Service], *, now: float
) -> list[Instance]:
    """The instances to stop now, in the order given."""
    return [inst for inst in instances if is_idle(inst, services.get(inst.service), now=now)]
