"""The dashboard of a real `ten serve` that is a one-node fleet (PostgreSQL, a fleet
secret), in Chromium: the Nodes panel, the Node column, and that what other hosts wrote
in the shared database is shown as text.

Chromium only: the panel is drawn by the same code as the instance table, which
test_dashboard_browser.py runs in both browsers; a second fleet for Firefox cost CI
about 20 s for nothing more.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from selenium.webdriver.common.by import By

from tests.fleet.secret_files import secret_in, write_secret
from tests.integration.cli.live import free_port
from tests.integration.dashboard.conftest import TINY_APP, DashboardServer, serving
from tests.integration.dashboard.test_dashboard_browser import (
    cell,
    go,
    row_ids,
    severe_console_entries,
    sign_in,
    signed_in_as,
    spawn,
    text_of,
    wait_for,
)
from tests.postgresql import Cluster

NODE = "n1"
#: a peer's name as a hostile or broken host could write it in the shared database
HOSTILE = '<img src=x onerror="document.title=1">'


@pytest.fixture(scope="module")
def browser_name() -> str:
    return "chromium"


@pytest.fixture(scope="module")
def database(pg_cluster: Cluster, browser_name: str) -> str:
    """The fleet's database (one per browser: a server of its own each)."""
    return pg_cluster.socket_url(pg_cluster.new_database())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[DashboardServer]:
    """A one-node fleet: [fleet] with the database, the secret written 0600."""
    project = tmp_path_factory.mktemp("dashboard-fleet") / "project"
    project.mkdir()
    (project / "tiny.py").write_text(TINY_APP)
    port = free_port()
    (project / "tenement.toml").write_text(
        textwrap.dedent(
            f"""
            [settings]
            data_dir = "./data"
            database_url = "{database}"
            # the app lives in tmp_path (0700): tenants run as the server's user
            tenant_users = false

            [fleet]
            node = "{NODE}"
            advertise = "127.0.0.1:{port}"
            node_timeout = 3

            [service.tiny]
            command = "{sys.executable} -S tiny.py"
            isolation = "process"
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENEMENT_")}

    def ten(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "tenement", *args],
            cwd=project, env=env, check=True, capture_output=True, text=True, timeout=60,
        ).stdout  # fmt: skip

    write_secret(project / "data" / "fleet_secret", secret_in(ten("token-gen", "--fleet")))
    ten("token-gen")
    with serving(project, env, port, {}) as live:
        yield live


def node_row(driver: Any, name: str) -> list[str]:
    """The texts of the Nodes panel's row of ``name`` ([] while there is none)."""
    return driver.execute_script(
        "const row = [...document.querySelectorAll('#node-rows tr')]"
        ".find((r) => r.dataset.node === arguments[0]);"
        "return row ? [...row.children].map((td) => td.textContent) : []",
        name,
    )


def test_the_admin_sees_the_node_up(page: Any, server: DashboardServer) -> None:
    spawn(server, "tiny", "alice")
    sign_in(page, server.admin_token)
    signed_in_as(page, "admin")
    wait_for(page, lambda d: node_row(d, NODE), "the node's row")
    name, address, state, heard, _, _ = node_row(page, NODE)
    assert name == f"{NODE} (this node)"
    assert address == f"127.0.0.1:{server.port}"
    assert state == "up"
    assert (
        page.execute_script("return document.querySelector('#node-rows .node').className")
        == "node n-up"
    )
    assert heard.endswith(" ago")
    # at its next heartbeat it counts the tenant
    wait_for(page, lambda d: node_row(d, NODE)[4] == "1", "the node's one instance")
    memory = node_row(page, NODE)[5]
    assert " of " in memory and not memory.startswith("0 B of")
    assert "orphaned" in text_of(page, "state-counts")
    go(page, "#/instances")
    wait_for(page, lambda d: row_ids(d) == ["tiny:alice"], "the instance")
    assert cell(page, "tiny:alice", "node") == NODE
    assert severe_console_entries(page) == []


def test_a_peers_name_is_shown_as_text(page: Any, server: DashboardServer, database: str) -> None:
    engine = sa.create_engine(database.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO nodes (name, advertise, host, data_dir, version, started_at,"
                    " heartbeat_at, state) VALUES (:name, :name, 'elsewhere', '/x', '0',"
                    " :now, :now, 'down')"
                ),
                {"name": HOSTILE, "now": time.time()},
            )
    finally:
        engine.dispose()
    sign_in(page, server.admin_token)
    signed_in_as(page, "admin")
    wait_for(page, lambda d: node_row(d, HOSTILE), "the peer's row")
    name, address, state, heard, _, _ = node_row(page, HOSTILE)
    assert [name, address, state] == [HOSTILE, HOSTILE, "down"]
    assert page.find_elements(By.CSS_SELECTOR, "#nodes img") == []
    assert page.title != "1"
    # a later poll answered too: the server lives on with that row (its directory, which
    # reads the rows every 0.5 s, once ended the server on the address)
    wait_for(page, lambda d: node_row(d, HOSTILE)[3] != heard, "the next poll of the nodes")
    assert server.process.poll() is None
    assert severe_console_entries(page) == []
