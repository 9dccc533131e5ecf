import sqlite3

import pytest

from tenement.store import LogEntry, Store

BASE = 1_700_000_000_000


def entry(n: int, message: str, *, process: str = "api", tenant: str = "t1", level: str = "stdout"):
    return LogEntry(BASE + n, level, process, tenant, message)


def test_insert_then_query_oldest_first(store: Store) -> None:
    entries = [entry(i, f"line {i}") for i in range(5)]
    store.insert_logs(entries)
    assert store.query_logs() == entries


def test_limit_is_the_last_n_oldest_first(store: Store) -> None:
    store.insert_logs([entry(i, f"line {i}") for i in range(10)])
    assert [e.message for e in store.query_logs(limit=3)] == ["line 7", "line 8", "line 9"]
    assert store.query_logs(limit=0) == []


def test_filters_combine(store: Store) -> None:
    store.insert_logs(
        [
            entry(1, "a", process="api", tenant="t1", level="stdout"),
            entry(2, "b", process="api", tenant="t2", level="stderr"),
            entry(3, "c", process="web", tenant="t1", level="stderr"),
            entry(4, "d", process="api", tenant="t1", level="stderr"),
        ]
    )
    assert [e.message for e in store.query_logs(process="api")] == ["a", "b", "d"]
    assert [e.message for e in store.query_logs(instance_id="t1", level="stderr")] == ["c", "d"]
    assert [e.message for e in store.query_logs(process="api", level="stderr", limit=1)] == ["d"]


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("hello", ["hello world", 'say "hello"']),
        ('"foo*', ['"foo* bar']),
        ("a:b", ["key a:b set"]),
        ("NEAR(x y)", ["NEAR(x y) literally"]),
        ("col:umn ^start (paren) {brace} +plus", []),
        ("***", ["stars *** here"]),
        ("100%", ["at 100% now"]),
        ("nomatch", []),
    ],
    ids=[
        "word",
        "quote-star",
        "colon",
        "near-operator",
        "operators",
        "punctuation-only",
        "like-percent",
        "none",
    ],
)
def test_search_neutralises_fts_metacharacters(
    store: Store, search: str, expected: list[str]
) -> None:
    messages = [
        "hello world",
        'say "hello"',
        '"foo* bar',
        "key a:b set",
        "NEAR(x y) literally",
        "stars *** here",
        "at 100% now",
        "at 1000 now",
        "unrelated",
    ]
    store.insert_logs([entry(i, m) for i, m in enumerate(messages)])
    assert [e.message for e in store.query_logs(search=search)] == expected


def test_search_with_limit_and_filters(store: Store) -> None:
    store.insert_logs([entry(i, f"error {i}", tenant="t1" if i % 2 else "t2") for i in range(10)])
    found = store.query_logs(search="error", instance_id="t1", limit=2)
    assert [e.message for e in found] == ["error 7", "error 9"]


def test_offsets_are_saved_with_the_lines(store: Store) -> None:
    assert store.log_offset("/logs/a.out") is None
    store.insert_logs([entry(1, "x")], offsets={"/logs/a.out": (42, 100)})
    assert store.log_offset("/logs/a.out") == (42, 100)
    store.insert_logs([entry(2, "y")], offsets={"/logs/a.out": (42, 200)})
    assert store.log_offset("/logs/a.out") == (42, 200)
    store.save_log_offsets({"/logs/a.out": (43, 0), "/logs/a.err": (44, 7)})
    assert store.log_offset("/logs/a.out") == (43, 0)
    assert store.log_offset("/logs/a.err") == (44, 7)


def test_a_failed_insert_saves_no_offset(store: Store) -> None:
    bad = LogEntry(1, "stdout", "api", "t1", None)  # type: ignore[arg-type]
    with pytest.raises(sqlite3.IntegrityError):
        store.insert_logs([entry(1, "fine"), bad], offsets={"/logs/a.out": (1, 50)})
    assert store.query_logs() == []
    assert store.log_offset("/logs/a.out") is None


def test_prune_by_age_and_by_count_keeps_fts_in_step(store: Store) -> None:
    store.insert_logs([entry(i * 1000, f"msg {i}") for i in range(10)])
    assert store.prune_logs(older_than_ms=1_700_000_000_000 + 3000) == 3
    assert store.query_logs()[0].message == "msg 3"
    assert store.prune_logs(keep_rows=4) == 3
    assert [e.message for e in store.query_logs()] == ["msg 6", "msg 7", "msg 8", "msg 9"]
    assert [e.message for e in store.query_logs(search="msg")] == [
        "msg 6",
        "msg 7",
        "msg 8",
        "msg 9",
    ]
    assert store.prune_logs(keep_rows=10) == 0


def test_many_offsets_are_read_at_once(store: Store) -> None:
    """The tailer loads every file's offset in one read (1,000 tenants: 2,000 files)."""
    saved = {f"/logs/t{i}.out": (i, i * 10) for i in range(1200)}  # more than one IN chunk
    store.save_log_offsets(saved)
    wanted = [*saved, "/logs/never-seen.out"]
    assert store.log_offsets(wanted) == saved
    assert store.log_offsets([]) == {}


@pytest.mark.parametrize(
    ("search", "expected"),
    [("a\x00b", ["a\x00b", "a b"]), ("!\x00", ["x!\x00y"]), ("\x00", ["a\x00b", "x!\x00y"])],
    ids=["words", "punctuation", "nul-only"],
)
def test_search_with_a_nul_character(store: Store, search: str, expected: list[str]) -> None:
    # FTS5 refused a NUL ("unterminated string") and LIKE stopped reading at it
    store.insert_logs([entry(1, "a\x00b"), entry(2, "a b"), entry(3, "x!\x00y"), entry(4, "x!")])
    assert [e.message for e in store.query_logs(search=search)] == expected


def test_a_limit_beyond_64_bits_means_all(store: Store) -> None:
    store.insert_logs([entry(i, f"line {i}") for i in range(3)])
    assert len(store.query_logs(limit=2**64 - 1)) == 3


def test_a_character_budget_keeps_the_newest_entries_that_fit(store: Store) -> None:
    store.insert_logs([entry(n, "x" * 100) for n in range(10)])
    store.insert_logs([entry(99, "y" * 30, process="other")])
    kept = store.query_logs(process="api", max_chars=350)
    assert [e.timestamp_ms - BASE for e in kept] == [7, 8, 9]  # 3 x 100 fit in 350, 4 do not
    assert [
        e.timestamp_ms - BASE for e in store.query_logs(process="api", limit=2, max_chars=350)
    ] == [
        8,
        9,
    ]
    # one entry larger than the budget is still answered (the newest)
    assert [e.timestamp_ms - BASE for e in store.query_logs(process="api", max_chars=10)] == [9]
    assert len(store.query_logs(max_chars=10**9)) == 11
    assert store.query_logs(process="none", max_chars=10) == []
