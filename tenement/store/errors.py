"""What the store raises. Every message says what was found and what to do."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tenement.errors import TenementError

if TYPE_CHECKING:
    from tenement.store.window import Ahead


class StoreError(TenementError):
    """A database problem the user can act on."""


class UnknownRevision(StoreError):
    """The database is at a schema revision this tenement does not know (a newer release's).

    Attributes:
        revision: the database's revision.
        head: this tenement's newest revision.
        backup_dir: where backups are kept, if known.
        ahead: what the database's rows say of its revision, when it has them.
    """

    def __init__(
        self,
        revision: str,
        head: str,
        backup_dir: Path | None = None,
        ahead: Ahead | None = None,
    ) -> None:
        self.revision = revision
        self.head = head
        self.backup_dir = backup_dir
        self.ahead = ahead
        where = f" from {backup_dir}/" if backup_dir is not None else ""
        newer = "the newer tenement"
        who = "a newer tenement wrote it"
        if ahead is not None:
            newer = f"tenement {ahead.applied_by}"
            who = f"{newer} wrote it"
            if ahead.in_window:
                # refused only for a downgrade: this release runs on it as it is
                super().__init__(
                    f"database is at schema revision {revision}, which this tenement does "
                    f"not know (its newest is {head}); {who}. This tenement runs on it as it "
                    f"is; to take it back to {head}, run `ten db downgrade {head}` with {newer}."
                )
                return
            who += (
                f", and it needs tenement {ahead.oldest_release} or later (this is {ahead.version})"
            )
        super().__init__(
            f"database is at schema revision {revision}, which this tenement does not know "
            f"(its newest is {head}); {who}. To go back: run "
            f"`ten db downgrade {head}` with {newer}, or stop tenement and restore "
            f"a backup{where} with `ten db restore FILE`."
        )


class UnrecognisedDatabase(StoreError):
    """The database holds tables that are neither tenement's nor the reference 0.2.2's.

    Attributes:
        url: the database (password hidden).
        tables: the tables that were not recognised.
    """

    def __init__(self, url: str, tables: tuple[str, ...], reason: str) -> None:
        self.url = url
        self.tables = tables
        super().__init__(
            f"{url} is not a tenement database: {reason}. tenement will not touch it; "
            "point data_dir (or database_url) at an empty or tenement database."
        )


class BackupError(StoreError):
    """A backup could not be written or restored."""


class DriverMissing(StoreError):
    """``database_url`` names a database whose Python driver is not installed.

    A configuration problem (exit 2), found before anything is opened.

    Attributes:
        dialect: the URL's database (``postgresql``, …).
        module: the module that could not be imported.
        install: the command that installs what is missing.

    Added in 0.3.
    """

    exit_code = 2

    def __init__(self, dialect: str, module: str, install: str, detail: str = "") -> None:
        self.dialect = dialect
        self.module = module
        self.install = install
        why = f" ({detail})" if detail else ""
        super().__init__(
            f"database_url is a {dialect} URL, but its driver `{module}` cannot be "
            f"imported{why}; install it with: {install}"
        )


class DatabaseUnavailable(StoreError):
    """The database server could not be reached or refused the connection.

    The message names the host, port, database and user, never the password.

    Attributes:
        where: ``database "DB" at HOST:PORT as user USER``.
        reason: what the driver said, in a few words.
        transient: true when waiting may help (the server is down or starting), false when
            only a change of configuration will (wrong password, no such database, TLS
            required).

    Added in 0.3.
    """

    def __init__(self, where: str, reason: str, hint: str, *, transient: bool) -> None:
        self.where = where
        self.reason = reason
        self.transient = transient
        super().__init__(f"cannot connect to {where}: {reason}; {hint}")
