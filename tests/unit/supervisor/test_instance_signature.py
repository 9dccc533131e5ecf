"""Instance.signature() and the count of changes (instance.Changes): whatever the API
shows of an instance, but the clock.

The ETags of ``GET /api/instances`` are made of them (a tenant's of the signature, the
admin's of the count): a change either misses leaves every dashboard showing the old
value (a 304), so each field of the view is checked here.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import trio

from tenement.supervisor.health import Health, HealthState
from tenement.supervisor.instance import (
    FAILED,
    RUNNING,
    SHOWN,
    Changes,
    Instance,
    InstanceView,
    PendingRestart,
    Run,
)
from tenement.supervisor.process import TenantProcess

#: the view's fields that grow with the clock (the client counts them on)
CLOCK = {"uptime_secs", "idle_secs"}
#: the view's fields that come from elsewhere (the service's quota) or never change
OTHERS = {"id", "service", "tenant", "storage_quota_bytes"}


def process(pid: int) -> TenantProcess:
    return TenantProcess(pid=pid, pgid=pid, start_ticks=1, pidfd=-1)


def running() -> Instance:
    inst = Instance("notes", "alice", "/run/t/a.sock", port=30001, state=RUNNING)
    inst.run = Run(process(4242), 30001)
    inst.started_at = 1000.0
    inst.last_activity = 5.0
    return inst


def shown(inst: Instance) -> dict[str, object]:
    view = attrs.asdict(inst.view(quota_bytes=None), recurse=False)
    return {name: value for name, value in view.items() if name not in CLOCK}


#: per field of the view, a change that makes it show something else
CHANGES: dict[str, Callable[[Instance], None]] = {
    "pid": lambda i: setattr(i, "run", Run(process(4343), 30001)),
    "port": lambda i: setattr(i, "port", 30002),
    "socket": lambda i: setattr(i, "socket", "/run/t/b.sock"),
    "weight": lambda i: setattr(i, "weight", 7),
    "health": lambda i: setattr(i, "health_state", HealthState(Health.DEGRADED, 1)),
    "state": lambda i: setattr(i, "state", FAILED),
    "restarts": lambda i: setattr(i, "restarts_total", 3),
    "storage_used_bytes": lambda i: setattr(i, "storage_used_bytes", 4096),
    "active_connections": lambda i: setattr(i, "active_connections", 2),
    "restart_at": lambda i: backoff(i),
}


def backoff(inst: Instance) -> None:
    """Its process gone and a restart scheduled (only then is restart_at shown)."""
    inst.run = None
    inst.pending_restart = PendingRestart(at=1.0, at_epoch=2.0, delay_seconds=1.0)


def test_every_field_of_the_view_is_covered() -> None:
    """A new field of the view must be put in the signature, and its change here."""
    fields = {field.name for field in attrs.fields(InstanceView)}
    assert fields == set(CHANGES) | CLOCK | OTHERS


async def test_each_change_the_view_shows_changes_the_signature() -> None:
    for name, change in CHANGES.items():
        inst = running()
        before = (shown(inst), inst.signature())
        change(inst)
        assert shown(inst)[name] != before[0][name], name
        assert inst.signature() != before[1], name


async def test_each_change_the_view_shows_moves_the_count_of_changes() -> None:
    for name, change in CHANGES.items():
        inst = running()
        count = Changes.count
        change(inst)
        assert Changes.count > count, name


async def test_a_field_the_count_ignores_does_not_change_the_view() -> None:
    """Each field of Instance not in SHOWN, set to another value, shows nothing new: a
    field the view comes to read must be put in SHOWN (else the count misses it)."""
    others = {
        "restart_times": (1.0, 2.0),
        "lock": trio.Lock(),
        "watcher": trio.CancelScope(),
        "_target": None,
    }
    names = {field.name for field in attrs.fields(Instance)}
    assert names - SHOWN - {"service", "tenant"} == set(others)
    for name, value in others.items():
        inst = running()
        before = shown(inst)
        setattr(inst, name, value)
        assert shown(inst) == before, name


async def test_setting_a_field_to_its_value_again_does_not_move_the_count() -> None:
    inst = running()
    count = Changes.count
    inst.state = RUNNING
    inst.weight = inst.weight
    assert Changes.count == count


async def test_the_clock_alone_does_not_change_it_but_a_request_or_a_start_does() -> None:
    inst = running()
    signature = inst.signature()
    await trio.sleep(0.01)
    assert inst.signature() == signature
    inst.touch()  # a request: idle starts again from 0
    assert inst.signature() != signature
    signature = inst.signature()
    inst.started_at = 2000.0  # started anew: uptime from 0
    assert inst.signature() != signature
