import sqlite3

import pytest

from tenement.store import InstanceRecord, Store


def record(**changes: object) -> InstanceRecord:
    values: dict[str, object] = {
        "instance_id": "notes:alice",
        "service": "notes",
        "tenant": "alice",
        "pid": 4242,
        "start_ticks": 123456789012,
        "pgid": 4242,
        "port": 30001,
        "socket": "/tmp/tenement/notes-alice.sock",
        "state": "running",
        "updated_at": 1_700_000_100.5,
        "weight": 80,
        "health": "healthy",
        "restart_times": (1_700_000_000.25, 1_700_000_050.5),
        "restarts_total": 2,
        "started_at": 1_700_000_050.75,
    }
    values.update(changes)
    return InstanceRecord(**values)  # type: ignore[arg-type]


def test_save_then_load_round_trips_every_field(store: Store) -> None:
    rec = record()
    store.save_instance(rec)
    assert store.load_instances() == [rec]
    assert store.get_instance("notes:alice") == rec
    assert store.get_instance("notes:bob") is None


def test_save_is_an_upsert(store: Store) -> None:
    store.save_instance(record())
    stopped = record(pid=None, start_ticks=None, pgid=None, state="stopped", restart_times=[])
    store.save_instance(stopped)
    assert store.load_instances() == [stopped]
    assert stopped.restart_times == ()


def test_defaults_and_ordering(store: Store) -> None:
    minimal = InstanceRecord(
        instance_id="api:b",
        service="api",
        tenant="b",
        pid=None,
        start_ticks=None,
        pgid=None,
        port=None,
        socket="/s",
        state="starting",
        updated_at=1.0,
    )
    store.save_instance(minimal)
    store.save_instance(record(instance_id="api:a", service="api", tenant="a"))
    loaded = store.load_instances()
    assert [r.instance_id for r in loaded] == ["api:a", "api:b"]
    assert loaded[1] == minimal
    assert (minimal.weight, minimal.health, minimal.restarts_total) == (100, "unknown", 0)


def test_delete(store: Store) -> None:
    store.save_instance(record())
    assert store.delete_instance("notes:alice") is True
    assert store.delete_instance("notes:alice") is False
    assert store.load_instances() == []


def test_weight_outside_0_100_is_refused_by_the_database(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.save_instance(record(weight=101))


async def test_store_run_calls_from_trio_in_a_worker_thread(store: Store) -> None:
    await store.run(store.save_instance, record())
    assert await store.run(store.load_instances) == [record()]


def test_the_signature_changes_with_every_save_and_delete(store: Store) -> None:
    assert store.instances_signature() == (0, 0.0)
    store.save_instance(record(updated_at=10.0))
    first = store.instances_signature()
    assert first == (1, 10.0)
    store.save_instance(record(updated_at=11.0, state="stopped"))
    assert store.instances_signature() == (1, 11.0)
    store.save_instance(record(instance_id="notes:bob", tenant="bob", updated_at=11.0))
    assert store.instances_signature() == (2, 11.0)
    store.delete_instance("notes:bob")
    assert store.instances_signature() == (1, 11.0)
