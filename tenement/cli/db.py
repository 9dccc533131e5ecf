"""`ten db`: the database's schema revision, upgrades, downgrades, backups.

Local commands: they open the database named by tenement.toml (``database_url``, else
``{data_dir}/tenement.db``) directly, so they work with or without a running server.
Migrations and restores should run with the server stopped (``ten serve`` upgrades on
start by itself).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import click

from tenement.cli.context import CliContext, global_options, pass_cli

if TYPE_CHECKING:
    from tenement.store import Store


@attrs.frozen
class LocalDatabase:
    """Where the configured database is: its URL and the data dir (for backups)."""

    url: str
    data_dir: Path

    @property
    def backup_dir(self) -> Path:
        return self.data_dir / "backups"

    @property
    def missing(self) -> bool:
        """True for a SQLite file that does not exist yet."""
        from tenement.store import sqlite_path

        path = sqlite_path(self.url)
        return path is not None and not path.exists()


def local_database(cli: CliContext) -> LocalDatabase:
    """Load tenement.toml (honouring --config/--data-dir) and say where its database is.

    Config warnings go to stderr.
    """
    from tenement.config import load_config

    config = load_config(
        path=cli.config_path, environ=os.environ, cwd=Path.cwd(), data_dir=cli.data_dir
    )
    for warning in config.warnings:
        click.echo(f"warning: {warning}", err=True)
    settings = config.settings
    return LocalDatabase(settings.database_url_or_default(), Path(settings.data_dir))


@contextlib.contextmanager
def open_local_store(database: LocalDatabase) -> Iterator[Store]:
    """The store of ``database`` (not migrated)."""
    from tenement.store import open_store

    with open_store(database.url) as store:
        yield store


def _say(line: str) -> None:
    click.echo(line)


def refuse_while_serving(store: Store) -> None:
    """Raise if a server holds the supervisor lease on this database (it must be stopped)."""
    import time

    from tenement.errors import TenementError

    try:
        # every node's lease: a fleet's database is in use while any node serves
        holders = store.lease_holders(time.time())
    except store.database.error:  # no lease table: a database from before revision 0002
        return
    if holders:
        holder = ", ".join(holders)
        raise TenementError(
            f"a tenement server is running on this database (lease held by {holder}); "
            "stop it first (systemctl stop tenement), or pass --force"
        )


_force = click.option("--force", is_flag=True, help="Even if a server seems to be running")


@click.group()
def db() -> None:
    """Database schema: show, upgrade, downgrade, back up."""


@db.command()
@global_options
@pass_cli
def current(cli: CliContext) -> None:
    """Show the database and its schema revision."""
    from tenement.store import schema_status

    database = local_database(cli)
    with open_local_store(database) as store:
        click.echo(f"Database: {store.display_url}")
        if database.missing:
            click.echo("Schema: none (no database yet; `ten db upgrade` creates it)")
            return
        click.echo(f"Schema: {schema_status(store).describe()}")


@db.command()
@global_options
@pass_cli
def history(cli: CliContext) -> None:
    """List the schema revisions this tenement knows, newest first."""
    from tenement.store import schema_status
    from tenement.store.migrate import script_revisions

    database = local_database(cli)
    current_revision = None
    if not database.missing:
        with open_local_store(database) as store:
            status = schema_status(store)
        current_revision = status.revision
        # the newer revisions a rollback runs on: this tenement has no script for them
        if status.ahead is not None:
            unknown = status.ahead.unknown
            downs = (status.head, *(r.revision for r in unknown))
            for newer, below in reversed(list(zip(unknown, downs, strict=False))):
                note = "current, " if newer.revision == current_revision else ""
                note += f"applied by tenement {newer.applied_by}, not known to this one"
                click.echo(f"{below} -> {newer.revision} ({note}): {newer.summary}")
    for info in reversed(script_revisions()):
        marks = [
            m
            for m, on in (("head", info.is_head), ("current", info.revision == current_revision))
            if on
        ]
        suffix = f" ({', '.join(marks)})" if marks else ""
        click.echo(f"{info.down_revision or 'base'} -> {info.revision}{suffix}: {info.summary}")


@db.command()
@click.argument("revision", default="head")
@global_options
@pass_cli
def upgrade(cli: CliContext, revision: str) -> None:
    """Back the database up, then upgrade it to REVISION (default: head)."""
    from tenement.store.migrate import upgrade as run_upgrade

    database = local_database(cli)
    with open_local_store(database) as store:
        report = run_upgrade(store, revision, backup_dir=database.backup_dir, say=_say)
    if report.changed:
        click.echo(f"Database is at revision {report.to_revision}")
    else:
        click.echo(f"Database is already at revision {report.to_revision}")


@db.command()
@click.argument("revision")
@_force
@global_options
@pass_cli
def downgrade(cli: CliContext, revision: str, force: bool) -> None:
    """Back the database up, then downgrade it to REVISION (`base` drops every table)."""
    from tenement.store.migrate import downgrade as run_downgrade

    database = local_database(cli)
    with open_local_store(database) as store:
        if not force and not database.missing:
            refuse_while_serving(store)
        report = run_downgrade(store, revision, backup_dir=database.backup_dir, say=_say)
    where = report.to_revision or "base (no tables)"
    if report.changed:
        click.echo(f"Database is at revision {where}")
    else:
        click.echo(f"Database is already at revision {where}")


@db.command()
@click.argument("path", required=False, type=click.Path(path_type=Path))
@global_options
@pass_cli
def backup(cli: CliContext, path: Path | None) -> None:
    """Back the database up to PATH (a file or directory; default: {data_dir}/backups/)."""
    from tenement.store import SchemaKind, StoreError, backup_database, schema_status

    database = local_database(cli)
    if database.missing:
        raise StoreError(f"no database to back up at {database.url}")
    with open_local_store(database) as store:
        status = schema_status(store)
        reference = status.kind is SchemaKind.REFERENCE
        label = status.revision or ("reference-0.2.2" if reference else "none")
        target = backup_database(store, path or database.backup_dir, label=label)
    click.echo(f"Backed up to {target}")


@db.command()
@click.argument("path", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@_force
@global_options
@pass_cli
def restore(cli: CliContext, path: Path, force: bool) -> None:
    """Replace the database with the backup at PATH (stop the server first).

    The database as it was is backed up first, into {data_dir}/backups/.
    """
    from tenement.store import backup_database, check_restorable, restore_backup, schema_status

    database = local_database(cli)
    with open_local_store(database) as store:
        check_restorable(store)
        if not database.missing:
            if not force:
                refuse_while_serving(store)
            label = schema_status(store).revision or "none"
            saved = backup_database(store, database.backup_dir, label=label)
            click.echo(f"Backed up the current database to {saved}")
        restore_backup(store, path)
        click.echo(f"Restored {path}")
        click.echo(f"Schema: {schema_status(store).describe()}")


@db.command()
@global_options
@pass_cli
def check(cli: CliContext) -> None:
    """Exit 0 if this tenement runs on the schema (at head, or ahead inside its window),
    1 if it needs an upgrade, 2 if it is unknown."""
    from tenement.store import schema_status

    database = local_database(cli)
    if database.missing:
        click.echo("No database yet: `ten db upgrade` or `ten serve` creates it")
        raise click.exceptions.Exit(1)
    with open_local_store(database) as store:
        status = schema_status(store)
    click.echo(status.describe())
    if status.usable:
        return
    if status.needs_upgrade:
        raise click.exceptions.Exit(1)
    raise click.exceptions.Exit(2)
