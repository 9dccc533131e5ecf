"""Adoption writes every adopted row and its audit row in one transaction."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tenement.config import Config
from tenement.store import Store
from tenement.store._db import SqliteDatabase
from tenement.supervisor import open_supervisor
from tenement.supervisor.adoption import first_check_delay


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
    for tenant in tenants:
        assert any(
            s.startswith("INSERT INTO instances") and f"app:{tenant}" in s for s in statements
        )
    adopts = [r for r in store.recent_audit(1000)[: -audited_before or None] if r.action == "adopt"]
    assert sorted(r.instance_id for r in adopts) == tenants
    assert all(r.process == "app" and r.success for r in adopts)


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
