"""The supervisor: tenant processes started, watched, restarted, adopted and stopped.

Public face of the supervisor layer; other layers import from here only. Layout:
``lifecycle.py`` (:func:`open_supervisor`: lease, adoption, background passes),
``supervisor.py`` (:class:`Supervisor`: owns the instances, ports, store and events;
spawn, stop, restart, weights, deploy, wake), ``runner.py`` (one instance's life: launch,
watch, recover from a crash with backoff, stop; one runner per instance), ``shared.py``
(what the supervisor lends its runners), ``instance.py`` (one instance's state and its
frozen views), ``adoption.py``, ``health.py``, ``backoff.py``, ``idle.py``,
``storage.py``, ``logtail.py`` (log files -> the ``logs`` table), ``events.py``
(lifecycle events -> log, counters, audit rows); starting processes: ``spec.py``,
``process.py``, ``ports.py``, ``readiness.py``, ``cgroups.py``, ``procfs.py``.
"""

from tenement.supervisor.errors import (
    DeployError,
    Fenced,
    InstanceFailed,
    InstanceNotFound,
    NotAllowedHere,
    OwnedElsewhere,
    RestartPending,
    SupervisorBusy,
    UnknownService,
    WakeError,
)
from tenement.supervisor.health import Health
from tenement.supervisor.instance import InstanceView, Target
from tenement.supervisor.lifecycle import holder_alive, new_holder, open_supervisor
from tenement.supervisor.logtail import TailerStatistics
from tenement.supervisor.ports import PortsExhausted
from tenement.supervisor.process import SpawnError
from tenement.supervisor.storage import StorageInfo
from tenement.supervisor.supervisor import Supervisor, SupervisorStatistics

__all__ = [
    "DeployError",
    "Fenced",
    "Health",
    "InstanceFailed",
    "InstanceNotFound",
    "InstanceView",
    "NotAllowedHere",
    "OwnedElsewhere",
    "PortsExhausted",
    "RestartPending",
    "SpawnError",
    "StorageInfo",
    "Supervisor",
    "SupervisorBusy",
    "SupervisorStatistics",
    "TailerStatistics",
    "Target",
    "UnknownService",
    "WakeError",
    "holder_alive",
    "new_holder",
    "open_supervisor",
]
