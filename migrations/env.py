"""Alembic environment for tenement's schema.

tenement runs migrations itself (``ten db upgrade``, ``ten serve``): it passes its own
connection, already inside a write transaction, in ``config.attributes["connection"]``,
so a whole upgrade commits or rolls back as one. Run by the ``alembic`` command line
(``alembic -c migrations/alembic.ini ...``, for writing new revisions), this file builds
an engine from ``sqlalchemy.url`` instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from tenement.store.tables import FTS_TABLES, metadata

config = context.config
target_metadata = metadata


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Leave SQLite's FTS5 index of logs (not modelled as tables) out of comparisons."""
    return not (type_ == "table" and name in FTS_TABLES)


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        include_name=include_name,
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as connection:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
