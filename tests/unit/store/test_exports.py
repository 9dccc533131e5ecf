import tenement.store


def test_all_is_sorted_and_complete() -> None:
    names = tenement.store.__all__
    assert names == sorted(names)
    for name in names:
        assert hasattr(tenement.store, name), name
