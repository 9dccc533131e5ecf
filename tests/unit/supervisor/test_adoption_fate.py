"""What a starting supervisor does with each recorded instance (pure)."""

from __future__ import annotations

import pytest

from tenement.config import Service
from tenement.store import InstanceRecord
from tenement.supervisor.adoption import Fate, fate, instance_from_record
from tenement.supervisor.health import Health

SERVICES = {"app": Service(name="app", command="x")}


def _record(
    *, pid: int | None = 100, ticks: int | None = 5, state: str = "running", service: str = "app"
) -> InstanceRecord:
    return InstanceRecord(
        instance_id=f"{service}:t",
        service=service,
        tenant="t",
        pid=pid,
        start_ticks=ticks,
        pgid=pid,
        port=30001,
        socket="/tmp/s.sock",
        state=state,
        updated_at=0.0,
        weight=42,
        restart_times=(1.0, 2.0),
        restarts_total=7,
    )


@pytest.mark.parametrize(
    ("record", "current_ticks", "expected"),
    [
        (_record(), 5, Fate.ADOPT),
        (_record(), 6, Fate.GONE),  # the pid now names another process
        (_record(), None, Fate.GONE),  # no such process
        (_record(ticks=None), 5, Fate.GONE),  # no start time recorded: never trusted
        (_record(service="removed"), 5, Fate.STOP),
        (_record(pid=None, ticks=None, state="stopped"), None, Fate.KEEP),
        (_record(pid=None, ticks=None, state="failed"), None, Fate.KEEP),
    ],
    ids=["alive", "pid-reused", "dead", "no-ticks", "service-removed", "stopped", "failed"],
)
def test_fate(record: InstanceRecord, current_ticks: int | None, expected: Fate) -> None:
    assert fate(record, SERVICES, current_ticks) is expected


def test_instance_from_record_keeps_weight_and_history() -> None:
    inst = instance_from_record(_record(), now=10.0)
    assert (inst.weight, inst.restart_times, inst.restarts_total) == (42, (1.0, 2.0), 7)
    assert inst.state == "stopped" and inst.run is None
    failed = instance_from_record(_record(pid=None, ticks=None, state="failed"), now=0.0)
    assert (failed.state, failed.health) == ("failed", Health.FAILED)
