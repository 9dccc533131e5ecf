"""Adoption writes the rows that changed and every audit row in one transaction, and
leaves the watching of adopted tenants for when the server serves."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from types import SimpleNamespace

import attrs
import pytest
import trio

from tenement.config import Config
from tenement.store import InstanceRecord, Store
from tenement.store._db import SqliteDatabase
from tenement.supervisor import open_supervisor
from tenement.supervisor.adoption import first_check_delay, watch_adopted
from tenement.supervisor.instance import STARTING


class Transactions:
    """The statements (values filled in) of each committed write transaction, from
    SQLite's statement trace."""

    def __init__(self) -> None:
        self.pending: dict[int, list[str]] = {}
        self.committed: list[list[str]] = []

    def on_statement(self, connection: int, statement: str) -> None:
        if statement == "BEGIN IMMEDIATE":
            self.pending[connection] = []
        elif statement == "COMMIT" and connection in self.pending:
            self.committed.append(self.pending.pop(connection))
        elif connection in self.pending:
            self.pending[connection].append(statement)


@pytest.fixture
def transactions(store: Store) -> Iterator[Transactions]:
    assert isinstance(store.database, SqliteDatabase)
    seen = Transactions()
    store.database.trace(seen.on_statement)
    yield seen
    store.database.trace(None)


async def test_adoption_is_one_transaction_with_its_audit_rows(
    config: Config, store: Store, transactions: Transactions
) -> None:
    tenants = ["a1", "a2", "a3", "a4"]
    async with open_supervisor(config, store) as first:
        pids = {t: (await first.spawn("app", t)).pid for t in tenants}
        first.detach()
    # a row saved while its tenant was still starting says more once it is adopted
    starting = attrs.evolve(_row(store, "app:a4"), state=STARTING)
    store.save_instance(starting)
    audited_before = len(store.recent_audit(1000))
    transactions.committed.clear()
    async with open_supervisor(config, store) as second:
        assert {t: second.get(f"app:{t}").pid for t in tenants} == pids
    adopting = [
        statements
        for statements in transactions.committed
        if any("INSERT INTO deploy_log" in s and "'adopt'" in s for s in statements)
    ]
    assert len(adopting) == 1
    (statements,) = adopting
    rewritten = [t for t in tenants if any(_writes_row(s, f"app:{t}") for s in statements)]
    assert rewritten == ["a4"]  # the others' rows say what they said
    assert _row(store, "app:a4").state != STARTING
    adopts = [r for r in store.recent_audit(1000)[: -audited_before or None] if r.action == "adopt"]
    assert sorted(r.instance_id for r in adopts) == tenants
    assert all(r.process == "app" and r.success for r in adopts)


async def test_adopted_tenants_are_watched_once_the_server_serves(
    config: Config, store: Store
) -> None:
    async with open_supervisor(config, store) as first:
        pid = (await first.spawn("app", "w1")).pid
        first.detach()
    serving = trio.Event()
    async with open_supervisor(config, store, serving=serving) as second:
        inst = second.get("app:w1")
        assert inst.pid == pid
        await trio.sleep(0.05)
        assert not second.runner("app:w1").watching
        serving.set()
        with trio.fail_after(5):
            while not second.runner("app:w1").watching:
                await trio.sleep(0.01)
        # watched: its exit is seen and it is restarted, as any crash
        os.kill(pid, signal.SIGKILL)
        with trio.fail_after(10):
            while second.get("app:w1").pid in (None, pid):
                await trio.sleep(0.05)


def _row(store: Store, instance_id: str) -> InstanceRecord:
    (row,) = [r for r in store.load_instances() if r.instance_id == instance_id]
    return row


def _writes_row(statement: str, instance_id: str) -> bool:
    return statement.startswith(("INSERT INTO instances", "UPDATE instances")) and (
        f"'{instance_id}'" in statement
    )


def test_first_health_checks_are_spread_over_one_interval() -> None:
    delays = [first_check_delay(i, 4, 10.0) for i in range(4)]
    assert delays == [0.0, 2.5, 5.0, 7.5]
    assert first_check_delay(0, 1, 10.0) == 0.0
    assert first_check_delay(0, 0, 10.0) == 0.0
    assert all(0 <= first_check_delay(i, 1000, 10.0) < 10.0 for i in range(1000))


async def test_detaching_saves_every_row_in_one_transaction(
    config: Config, store: Store, transactions: Transactions
) -> None:
    tenants = ["d1", "d2", "d3"]
    async with open_supervisor(config, store) as sup:
        for tenant in tenants:
            await sup.spawn("app", tenant)
        sup.detach()
        transactions.committed.clear()
    saving = [
        statements
        for statements in transactions.committed
        if any(s.startswith("INSERT INTO instances") for s in statements)
    ]
    # other writes (a health verdict) may land meanwhile; the shutdown's save holds all rows
    assert any(
        all(any(f"app:{tenant}" in s for s in statements) for tenant in tenants)
        for statements in saving
    ), saving
    async with open_supervisor(config, store) as again:  # and they are adopted, still alive
        assert {again.get(f"app:{t}").state for t in tenants} == {"running"}
        for tenant in tenants:
            await again.stop(f"app:{tenant}")


def test_watching_in_batches_spreads_the_first_checks_over_all_of_them() -> None:
    delays: list[float] = []

    class Recorder:
        """Records the first-check delay each adopted tenant's watch is given."""

        def __init__(self, run: object) -> None:
            self.inst = SimpleNamespace(run=run)

        def watch(self, run: object, delay: float) -> None:
            delays.append(delay)

    adopted = [(Recorder(run), run) for run in [object() for _ in range(25)]]
    sup = SimpleNamespace(
        config=SimpleNamespace(settings=SimpleNamespace(health_check_interval=10.0))
    )
    for start in range(0, 25, 10):
        watch_adopted(sup, adopted, start, start + 10)  # type: ignore[arg-type]
    assert delays == [first_check_delay(i, 25, 10.0) for i in range(25)]
