from datetime import UTC, datetime, timedelta

from tenement.store import Store


def test_audit_rows_newest_first_with_limit(store: Store) -> None:
    store.audit("spawn", "api", "t1")
    store.audit("deploy", "api", "v2", details="weight=100")
    store.audit("stop", "api", "t1", success=False)
    rows = store.recent_audit(2)
    assert [(r.action, r.instance_id, r.details, r.success) for r in rows] == [
        ("stop", "t1", None, False),
        ("deploy", "v2", "weight=100", True),
    ]
    assert abs(rows[0].timestamp - datetime.now(UTC)) < timedelta(minutes=5)
    assert len(store.recent_audit(10)) == 3
    assert store.recent_audit(0) == []
