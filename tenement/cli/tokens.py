"""`ten token-gen`, `ten token-list`, `ten token-revoke`: API tokens, managed locally.

They open the database directly (WAL), so they work while the server runs; the server
reads the hashes on every request, so a new admin token replaces the old one at once.
The admin token is also written, in clear, to ``{data_dir}/api_token`` (mode 0600) for
the client commands; tenant tokens are shown once and never written to a file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tenement.cli.context import CliContext, global_options, pass_cli
from tenement.cli.db import LocalDatabase, local_database, open_local_store
from tenement.cli.output import echo_lines

if TYPE_CHECKING:
    from tenement.store import Store

TOKEN_FILE = "api_token"


@contextlib.contextmanager
def _ready_store(database: LocalDatabase) -> Iterator[Store]:
    """Open the store; create the schema in an empty database; refuse one we can't use.

    An older or reference-made schema is used as it is: the token tables are the same
    in every revision, and the server upgrades the schema on its next start.

    A database at head, the usual case, is known by one query: classifying any other
    imports SQLAlchemy (~140 ms), which a token command at head never needs.
    """
    from tenement.store import is_at_head

    with open_local_store(database) as store:
        if not is_at_head(store):
            _prepare_schema(store, database)
        yield store


def _prepare_schema(store: Store, database: LocalDatabase) -> None:
    """Create the schema in an empty database; refuse one the token commands can't use."""
    from tenement.store import (
        SchemaKind,
        UnknownRevision,
        UnrecognisedDatabase,
        migrate_to_head,
        schema_status,
    )

    status = schema_status(store)
    if status.kind is SchemaKind.EMPTY:
        migrate_to_head(store, backup_dir=None)
    elif status.kind is SchemaKind.UNKNOWN_REVISION:
        assert status.revision is not None
        raise UnknownRevision(status.revision, status.head, database.backup_dir)
    elif status.kind is SchemaKind.UNRECOGNISED:
        raise UnrecognisedDatabase(store.display_url, status.foreign_tables, status.detail)


def write_token_file(path: Path, token: str) -> None:
    """Write ``token`` to ``path`` with mode 0600 (created, or replaced atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(token)
    partial.replace(path)


@click.command("token-gen")
@click.option(
    "--tenant", help="Generate a tenant-scoped token (can only access this tenant's instances/logs)"
)
@click.option("--description", help="Description for the token (tenant tokens)")
@click.option(
    "--fleet",
    "fleet",
    is_flag=True,
    help="Generate the fleet secret that nodes' requests to each other carry (printed once)",
)
@global_options
@pass_cli
def token_gen(cli: CliContext, tenant: str | None, description: str | None, fleet: bool) -> None:
    """Generate a new API token (admin or tenant-scoped), or the fleet secret."""
    from tenement.ids import NAME_RULE, is_valid_name
    from tenement.store import generate_token, hash_token, token_prefix

    if tenant is not None and not is_valid_name(tenant):
        raise click.BadParameter(f"{tenant!r} must be {NAME_RULE}", param_hint="--tenant")
    if tenant is not None and fleet:
        raise click.UsageError("--fleet and --tenant exclude each other: the fleet secret is one")
    database = local_database(cli)
    token = generate_token()
    token_hash = hash_token(token)
    if fleet:
        with _ready_store(database) as store:
            store.set_fleet_secret_hash(token_hash)
        echo_lines(
            [
                "Generated the fleet secret (shown once, not saved):\n",
                f"  {token}\n",
                "Put it on every node in the file of [fleet] secret_file (default",
                "{data_dir}/fleet_secret), readable only by the server's user, e.g.:",
                f"  (umask 077; echo '{token}' > DATA_DIR/fleet_secret)",
                "then restart each node: a node checks its file against this secret at start.",
            ]
        )
        return
    with _ready_store(database) as store:
        if tenant is not None:
            store.add_tenant_token(tenant, token_hash, token_prefix(token), description)
        else:
            store.set_admin_token_hash(token_hash)
    if tenant is not None:
        echo_lines(
            [
                f"Generated tenant token for '{tenant}':\n",
                f"  {token}\n",
                f"This token can only access instances/logs for tenant '{tenant}'.",
                "Deploy and route operations are admin-only.",
            ]
        )
        return
    token_file = database.data_dir / TOKEN_FILE
    write_token_file(token_file, token)
    echo_lines(
        [
            "Generated admin API token:\n",
            f"  {token}\n",
            f"Token saved to {token_file}",
            f"Use it in the Authorization header: Bearer {token}",
        ]
    )


@click.command("token-list")
@global_options
@pass_cli
def token_list(cli: CliContext) -> None:
    """List tenant tokens (never their secrets)."""
    database = local_database(cli)
    if database.missing:
        click.echo("No tenant tokens")
        return
    with _ready_store(database) as store:
        rows = store.list_tenant_tokens()
    if not rows:
        click.echo("No tenant tokens")
        return
    click.echo(f"{'ID':<6}{'TENANT':<20}{'PREFIX':<10}{'CREATED':<22}DESCRIPTION")
    for row in rows:
        created = row.created_at.strftime("%Y-%m-%d %H:%M:%SZ")
        click.echo(
            f"{row.id:<6}{row.tenant:<20}{row.prefix:<10}{created:<22}{row.description or ''}"
        )


@click.command("token-revoke")
@click.argument("token_id", metavar="ID", type=int)
@global_options
@pass_cli
def token_revoke(cli: CliContext, token_id: int) -> None:
    """Revoke the tenant token with this ID (see `ten token-list`)."""
    from tenement.errors import TenementError

    database = local_database(cli)
    revoked = False
    if not database.missing:
        with _ready_store(database) as store:
            revoked = store.revoke_tenant_token(token_id)
    if not revoked:
        raise TenementError(f"No tenant token with ID {token_id} (see `ten token-list`)")
    click.echo(f"Revoked tenant token {token_id}")
