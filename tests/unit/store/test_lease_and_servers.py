from tenement.store import Store


def test_lease_acquire_renew_expire_release(store: Store) -> None:
    assert store.lease_holder(now=100.0) is None
    assert store.try_acquire_lease("a", ttl_s=10, now=100.0) is True
    assert store.lease_holder(now=105.0) == "a"
    # held: b can't take it, a can take it again
    assert store.try_acquire_lease("b", ttl_s=10, now=105.0) is False
    assert store.try_acquire_lease("a", ttl_s=10, now=105.0) is True
    assert store.renew_lease("a", ttl_s=10, now=112.0) is True
    assert store.lease_holder(now=121.9) == "a"
    assert store.renew_lease("b", ttl_s=10, now=112.0) is False
    # expired: b takes it, a can no longer renew
    assert store.lease_holder(now=122.0) is None
    assert store.try_acquire_lease("b", ttl_s=10, now=122.0) is True
    assert store.renew_lease("a", ttl_s=10, now=123.0) is False
    assert store.lease_holder(now=123.0) == "b"
    # release by a non-holder does nothing; by the holder frees it
    store.release_lease("a")
    assert store.lease_holder(now=123.0) == "b"
    store.release_lease("b")
    assert store.lease_holder(now=123.0) is None
    assert store.try_acquire_lease("a", ttl_s=10, now=124.0) is True


def test_servers_register_heartbeat_and_age_out(store: Store) -> None:
    store.register_server("s1", 100, "http://127.0.0.1:8080", now=1000.0)
    store.register_server("s2", 200, "unix:/run/tenement/tenement.sock", now=1005.0)
    assert [s.server_id for s in store.live_servers(now=1010.0, max_age_s=30)] == ["s1", "s2"]
    assert store.server_heartbeat("s2", now=1040.0) is True
    assert store.server_heartbeat("nope", now=1040.0) is False
    live = store.live_servers(now=1040.0, max_age_s=30)
    assert [(s.server_id, s.pid, s.last_seen) for s in live] == [("s2", 200, 1040.0)]
    store.unregister_server("s2")
    assert store.live_servers(now=1040.0, max_age_s=30) == []


def test_server_looks_one_server_up(store: Store) -> None:
    assert store.server("s1") is None
    store.register_server("s1", 100, "unix:/data/run/s1.sock", now=1000.0)
    found = store.server("s1")
    assert found is not None
    assert (found.pid, found.url) == (100, "unix:/data/run/s1.sock")
