from pathlib import Path

from tenement.store import Store, open_store
from tenement.store._sqlite import fts_phrase, sqlite_path


def test_every_connection_has_wal_busy_timeout_and_foreign_keys(store: Store) -> None:
    with store.engine.connect() as conn:
        pragma = lambda name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("busy_timeout") == 5000
        assert pragma("foreign_keys") == 1


def test_open_store_creates_the_directory(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/a/b/tenement.db") as store:
        store.engine.connect().close()
    assert (tmp_path / "a" / "b" / "tenement.db").is_file()


def test_sqlite_path() -> None:
    assert sqlite_path("sqlite:////var/lib/t/tenement.db") == Path("/var/lib/t/tenement.db")
    assert sqlite_path("sqlite://") is None
    assert sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("postgresql://u@h/db") is None


def test_fts_phrase_quotes_everything() -> None:
    assert fts_phrase("hello") == '"hello"'
    assert fts_phrase('"foo*') == '"""foo*"'
    assert fts_phrase("a:b") == '"a:b"'
    assert fts_phrase("*** ()") is None
