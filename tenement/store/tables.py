"""The schema as SQLAlchemy Core tables: the reference 0.2.2's tables, then ours.

What Alembic's autogenerate (``migrations/env.py``) and the migration tests compare a
database with; the store's queries are SQL text and never import this module.

The reference's tables keep its exact names and column types so that a database made
by the reference binary is recognised and keeps working (its tokens too). Its
``logs_fts`` FTS5 table and the ``logs_ai``/``logs_ad`` triggers exist only on SQLite
and are not modelled here (SQLAlchemy has no notion of virtual tables); the baseline
migration creates them. Revision scripts never import this module either: each
revision spells out its own tables, so old revisions stay valid while these models move on.
"""

from __future__ import annotations

import sqlalchemy as sa

from tenement.store._sqlite import FTS_TABLES as FTS_TABLES

#: names for constraints that would otherwise be anonymous, so that a downgrade (and
#: SQLite's batch mode) can drop them by name
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

# --- the reference 0.2.2's tables (revision 0001) ------------------------------------
# Their primary keys are nullable as the reference declares them (SQLite then allows a
# NULL key in a TEXT PRIMARY KEY column); the models say so, so that comparing a
# migrated database with them finds no difference.

logs = sa.Table(
    "logs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True, nullable=True),
    sa.Column("timestamp", sa.Text, nullable=False),  # RFC 3339, UTC
    sa.Column("level", sa.Text, nullable=False),  # stdout | stderr
    sa.Column("process", sa.Text, nullable=False),
    sa.Column("instance_id", sa.Text, nullable=False),  # the tenant id
    sa.Column("message", sa.Text, nullable=False),
    sa.Index("idx_logs_process", "process"),
    sa.Index("idx_logs_instance", "instance_id"),
    sqlite_autoincrement=True,
)

config = sa.Table(
    "config",
    metadata,
    sa.Column("key", sa.Text, primary_key=True, nullable=True),
    sa.Column("value", sa.Text, nullable=False),
)

instance_state = sa.Table(
    "instance_state",
    metadata,
    sa.Column("instance_id", sa.Text, primary_key=True, nullable=True),
    sa.Column("process_name", sa.Text, nullable=False),
    sa.Column("id", sa.Text, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("port", sa.Integer),
    sa.Column("started_at", sa.Text, nullable=False),
)

tenant_tokens = sa.Table(
    "tenant_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True, nullable=True),
    sa.Column("token_hash", sa.Text, nullable=False),
    sa.Column("token_prefix", sa.Text, nullable=False),  # first 8 plaintext chars
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Index("idx_tenant_tokens_tenant", "tenant_id"),
    sa.Index("idx_tenant_tokens_prefix", "token_prefix"),
    sqlite_autoincrement=True,
)

deploy_log = sa.Table(
    "deploy_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True, nullable=True),
    sa.Column("timestamp", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("process", sa.Text, nullable=False),
    sa.Column("instance_id", sa.Text, nullable=False),
    sa.Column("details", sa.Text),
    sa.Column("success", sa.Integer, nullable=False, server_default=sa.text("1")),
    sqlite_autoincrement=True,
)

sa.Index("idx_logs_timestamp", logs.c.timestamp.desc())
sa.Index("idx_deploy_log_timestamp", deploy_log.c.timestamp.desc())

# --- ours (revision 0002) -------------------------------------------------------------

instances = sa.Table(
    "instances",
    metadata,
    sa.Column("instance_id", sa.Text, primary_key=True),  # "service:tenant"
    sa.Column("service", sa.Text, nullable=False, index=True),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("pid", sa.Integer),
    sa.Column("start_ticks", sa.BigInteger),  # /proc/<pid>/stat field 22
    sa.Column("pgid", sa.Integer),
    sa.Column("port", sa.Integer),
    sa.Column("socket", sa.Text, nullable=False),
    sa.Column("weight", sa.Integer, nullable=False, server_default=sa.text("100")),
    sa.Column("health", sa.Text, nullable=False, server_default="unknown"),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("restart_times", sa.JSON, nullable=False),  # epoch seconds
    sa.Column("restarts_total", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("started_at", sa.Double),  # epoch seconds
    sa.Column("updated_at", sa.Double, nullable=False),
    # revision 0005: the fleet node that runs it (NULL: single host, or from before)
    sa.Column("node", sa.Text, index=True),
    sa.Column("epoch", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.CheckConstraint("weight >= 0 AND weight <= 100", name="weight_range"),
)

servers = sa.Table(
    "servers",
    metadata,
    sa.Column("server_id", sa.Text, primary_key=True),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("last_seen", sa.Double, nullable=False),
    sa.Column("node", sa.Text),  # revision 0005: its fleet node (NULL: single host)
)

lease = sa.Table(
    "lease",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),  # one row per lease; "supervisor"
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("acquired_at", sa.Double, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),
)

log_offsets = sa.Table(
    "log_offsets",
    metadata,
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("inode", sa.BigInteger, nullable=False),
    sa.Column("byte_offset", sa.BigInteger, nullable=False),
)

# --- ours (revision 0003) -------------------------------------------------------------

service_users = sa.Table(
    "service_users",
    metadata,
    sa.Column("service", sa.Text, primary_key=True),
    sa.Column("uid", sa.Integer, nullable=False, unique=True),
    sa.Column("allotted_at", sa.Double, nullable=False),  # epoch seconds
)

# --- ours (revision 0004) -------------------------------------------------------------

schema_revisions = sa.Table(
    "schema_revisions",
    metadata,
    sa.Column("revision", sa.Text, primary_key=True),
    sa.Column("oldest_release", sa.Text, nullable=False),  # e.g. "0.3.0"
    sa.Column("summary", sa.Text, nullable=False),  # the script's first line
    sa.Column("applied_by", sa.Text, nullable=False),  # the tenement version
    sa.Column("applied_at", sa.Double, nullable=False),  # epoch seconds
)

# --- ours (revision 0005) -------------------------------------------------------------

nodes = sa.Table(
    "nodes",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),  # [fleet] node
    sa.Column("advertise", sa.Text, nullable=False),  # "host:port" peers reach
    sa.Column("host", sa.Text, nullable=False),  # with data_dir: which ten serve it is
    sa.Column("data_dir", sa.Text, nullable=False),
    sa.Column("version", sa.Text, nullable=False),  # the tenement version
    # epoch seconds, from the database's clock (never a node's)
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("heartbeat_at", sa.Double, nullable=False),
    sa.Column("state", sa.Text, nullable=False, server_default="up"),  # up | down
    sa.Column("cpus", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("memory_total", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("memory_available", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("instances", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("down_at", sa.Double),
    sa.Column("down_by", sa.Text),  # the peer that declared it down
    # revision 0006: how many of its tenants a drain moves at once (NULL: not draining)
    sa.Column("drain_parallel", sa.Integer),
)
