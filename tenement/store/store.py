"""The :class:`Store` and :func:`open_store`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from tenement.store import _sqlite
from tenement.store._db import open_database
from tenement.store.audit import AuditArgs, AuditQueries, insert_audit
from tenement.store.drain import DrainQueries
from tenement.store.failover import FailoverQueries
from tenement.store.instances import InstanceQueries, InstanceRecord, upsert_instances
from tenement.store.lease import LeaseQueries
from tenement.store.logs import LogQueries
from tenement.store.moves import MoveQueries
from tenement.store.nodes import NodeQueries
from tenement.store.placement import PlacementQueries
from tenement.store.private import private_database
from tenement.store.tokens import TokenQueries
from tenement.store.users import UserQueries


class Store(
    TokenQueries,
    InstanceQueries,
    LogQueries,
    AuditQueries,
    LeaseQueries,
    UserQueries,
    NodeQueries,
    FailoverQueries,
    MoveQueries,
    PlacementQueries,
    DrainQueries,
):
    """The database: tokens, instances, logs, audit trail, lease, servers, service users,
    fleet nodes.

    Every method is blocking and thread-safe; from trio call them through
    :meth:`run` (``await store.run(store.load_instances)``). Each method is one
    transaction. Open it with :func:`open_store`; bring its schema up to date with
    :func:`~tenement.store.migrate_to_head` first.
    """

    def save_adoption(
        self, records: Sequence[InstanceRecord], entries: Sequence[AuditArgs]
    ) -> None:
        """Insert or replace ``records`` and record ``entries`` (each the arguments of
        :meth:`audit`), all in one transaction.

        What a starting supervisor writes after adopting its tenants: one commit, not
        one per tenant.
        """
        if not records and not entries:
            return
        with self._write() as conn:
            upsert_instances(conn, records, self.node)
            insert_audit(conn, entries)


def default_url(data_dir: str | object) -> str:
    """``sqlite:///{data_dir}/tenement.db``, the reference's database file."""
    return f"sqlite:///{data_dir}/tenement.db"


@contextlib.contextmanager
def open_store(url: str, *, create_dirs: bool = True) -> Iterator[Store]:
    """Open the database at ``url`` (any SQLAlchemy URL); it is not migrated.

    On SQLite every connection uses WAL, ``busy_timeout`` 5 s and foreign keys, and the
    file (with ``create_dirs``, its directory too) is created when missing; the file
    and its ``-wal``/``-shm`` are made 0600 whatever the umask (``private.py``).

    Resource handling: its connections are closed on exit.
    """
    path = _sqlite.sqlite_path(url)
    if path is not None and create_dirs:
        path.parent.mkdir(parents=True, exist_ok=True)
    if path is not None:
        private_database(path)
    store = Store(open_database(url))
    try:
        yield store
    finally:
        store.close()
