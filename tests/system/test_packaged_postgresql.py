"""The packaged install on PostgreSQL (issue #17): no pip step, restarts adopt, the
password shows nowhere, and a database that comes up after tenement does not fail the unit.

The database is a throwaway cluster on the host (tests/postgresql.py) on a loopback port:
the container shares the host's network namespace, so the packaged server reaches it at
127.0.0.1 with a password over TCP, as it would a database on another host. (Installing
PostgreSQL in the container would cost an apt download per session and test nothing more
of tenement.) The container has no pg_dump, so backups say to use the database's tools.

Runs after test_lifecycle.py (which may leave tenement stopped) and leaves tenement as
it found the configuration: SQLite, web:alice and web:bob.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.postgresql import Cluster, Unavailable, running_cluster
from tests.system.deployment import CONFIG, CONFIG_TEXT, VENV, Tenement

pytestmark = [pytest.mark.system, pytest.mark.timeout(900)]

PASSWORD = f"Pw-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    try:
        with running_cluster() as cluster:
            yield cluster
    except Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def on_postgresql(tenement: Tenement, cluster: Cluster) -> Iterator[tuple[Tenement, str]]:
    """tenement restarted on a fresh PostgreSQL database (password in the URL), with a new
    admin token; SQLite and the stock config again afterwards. Yields the database name."""
    role = cluster.new_role(PASSWORD)
    database = cluster.new_database(owner=role)
    url = cluster.tcp_url(database, role, PASSWORD)
    c = tenement.container
    c.run("systemctl stop tenement", timeout=120)
    tenement.write_config(
        CONFIG_TEXT.replace("[settings]\n", f'[settings]\ndatabase_url = "{url}"\n', 1)
    )
    try:
        c.run("systemctl start tenement", timeout=150)
        tenement.wait_active()
        tenement.ten_as_service_user("token-gen")
        tenement.wait_instances({"web:alice", "web:bob"})
        yield tenement, database
    finally:
        c.run("systemctl stop tenement", check=False, timeout=120)
        tenement.write_config(CONFIG_TEXT)
        c.run("systemctl reset-failed tenement", check=False)
        c.run("systemctl start tenement", timeout=150)
        tenement.wait_active()
        tenement.ten_as_service_user("token-gen")
        tenement.wait_instances({"web:alice", "web:bob"})


def _password_shown_anywhere(tenement: Tenement) -> list[str]:
    c = tenement.container
    places = {
        "journal": c.out("journalctl -u tenement --no-pager -o cat"),
        "systemctl status": c.out("systemctl status tenement --no-pager", check=False),
        "ten db current": tenement.ten_as_service_user("db", "current", check=False),
    }
    return [where for where, text in places.items() if PASSWORD in text]


def test_the_package_reaches_postgresql_with_no_pip_step(tenement: Tenement) -> None:
    impl = tenement.container.out(
        [f"{VENV}/bin/python", "-c", "import psycopg; print(psycopg.pq.__impl__)"]
    )
    assert impl == "binary"


def test_spawn_restart_and_adoption_on_postgresql(
    on_postgresql: tuple[Tenement, str],
) -> None:
    tenement, database = on_postgresql
    current = tenement.ten_as_service_user("db", "current")
    assert "postgresql+psycopg://" in current and ":***@127.0.0.1:" in current
    assert f"/{database}" in current
    tenement.ten("spawn", "web:carol")
    tenement.wait_instances({"web:alice", "web:bob", "web:carol"})
    before = tenement.tenant_pids()
    main = tenement.main_pid()
    tenement.container.run("systemctl restart tenement", timeout=150)
    tenement.container.wait_for(
        f'test "$(systemctl show -p MainPID --value tenement)" != {main}',
        what="a new main pid",
    )
    tenement.wait_active()
    tenement.wait_instances({"web:alice", "web:bob", "web:carol"})
    assert tenement.tenant_pids() == before, "the restarted server adopted the same tenants"
    backup = tenement.container.run(
        ["runuser", "-u", "tenement", "--", "ten", "--config", CONFIG, "db", "backup"],
        check=False,
    )
    assert backup.returncode == 1
    assert "pg_dump" in backup.stderr and "database's own tools" in backup.stderr
    assert _password_shown_anywhere(tenement) == []


def test_a_database_that_starts_after_tenement_does_not_fail_the_unit(
    on_postgresql: tuple[Tenement, str], cluster: Cluster
) -> None:
    tenement, database = on_postgresql
    c = tenement.container
    c.run("systemctl stop tenement", timeout=120)
    cluster.stop()
    try:
        c.run("systemctl start --no-block tenement")
        status = c.wait_for(
            "systemctl show -p StatusText --value tenement | grep 'waiting for the database'",
            timeout=60,
            what="STATUS= waiting for the database",
        )
        assert f'database "{database}" at 127.0.0.1:{cluster.port}' in status
        assert c.out("systemctl show -p ActiveState --value tenement") == "activating"
    finally:
        cluster.start()
    tenement.wait_active(timeout=90)
    tenement.wait_instances({"web:alice", "web:bob"})
    assert c.out("systemctl show -p NRestarts --value tenement") == "0"
    assert _password_shown_anywhere(tenement) == []
