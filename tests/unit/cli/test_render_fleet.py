"""`ten nodes` and the NODE column of `ten ps`: only a fleet node's answer has them."""

from __future__ import annotations

from tenement.cli import render

INSTANCE = {
    "id": "echo:alice",
    "socket": "127.0.0.1:30001",
    "uptime_secs": 61,
    "idle_secs": 5,
    "health": "healthy",
    "weight": 100,
}


def test_ps_has_a_node_column_only_when_the_server_names_nodes() -> None:
    single = render.ps_table([INSTANCE], "http://localhost:8080")
    assert single.splitlines()[0].startswith("INSTANCE ")
    fleet = render.ps_table([{**INSTANCE, "node": "web-1"}], "http://localhost:8080")
    header, row = fleet.splitlines()[:2]
    assert header == "NODE         " + single.splitlines()[0]
    assert row == "web-1        " + single.splitlines()[1]


def test_a_tenant_being_moved_shows_where_to_and_its_step() -> None:
    moving = {
        **INSTANCE,
        "node": "web-1",
        "state": "moving",
        "health": "unknown",
        "move": {"to": "web-2", "step": "sending", "bytes": 8 * 2**20, "secs": 1.5},
    }
    row = render.ps_table([moving], "http://localhost:8080").splitlines()[1]
    assert row.startswith("web-1->web-2 echo:alice ")
    assert row.split()[5] == "sending"  # in place of its health


def test_nodes_table() -> None:
    answer = {
        "fleet": True,
        "node": "web-1",
        "nodes": [
            {
                "name": "web-1",
                "advertise": "10.0.0.11:8080",
                "version": "0.3.0",
                "state": "up",
                "silent_secs": 0.42,
                "instances": 12,
                "memory_available_bytes": 3 * 2**30,
                "memory_total_bytes": 8 * 2**30,
            },
            {"name": "web-2", "advertise": "10.0.0.12:8080", "state": "down"},
        ],
    }
    assert render.nodes_table(answer, "http://localhost:8080").splitlines() == [
        "NAME         ADDRESS                VERSION      STATE  LAST-HEARTBEAT  INSTANCES  MEMORY",
        "web-1        10.0.0.11:8080         0.3.0        up     0.4s ago        12         "
        "3.0G/8.0G",
        "web-2        10.0.0.12:8080         -            down   -               -          -/-",
        "",
        "2 node(s), 1 up, seen from web-1 (http://localhost:8080)",
    ]


def test_nodes_of_a_server_not_in_a_fleet() -> None:
    text = render.nodes_table({"fleet": False, "node": None, "nodes": []}, "http://h:8080")
    assert text == (
        "The server at http://h:8080 is not in a fleet: its tenement.toml has no [fleet] "
        "section (see docs/fleet.md)"
    )


def test_format_bytes() -> None:
    assert [render.format_bytes(n) for n in (None, 0, 512, 1536, 5 * 2**20, 2**40)] == [
        "-", "-", "512B", "1.5K", "5.0M", "1.0T",
    ]  # fmt: skip


def test_a_hostile_node_row_cannot_drive_the_terminal_or_crash_the_table() -> None:
    # any host with the database's password can write its row: escapes, absurd values
    escape = "\x1b]0;owned\x07\x1b[2J"
    answer = {
        "fleet": True,
        "node": "web-1" + escape,
        "nodes": [
            {
                "name": "evil" + escape,
                "advertise": "\x1b[31m10.0.0.66:8080",
                "version": "x" * 10_000,
                "state": "up\r\n",
                "silent_secs": "soon",
                "instances": -5,
                "memory_available_bytes": -(2**40),
                "memory_total_bytes": "lots",
            }
        ],
    }
    text = render.nodes_table(answer, "http://localhost:8080")
    assert not any(ord(char) < 0x20 and char != "\n" for char in text)
    assert "\x7f" not in text
    row = text.splitlines()[1]
    assert row.startswith("evil\\x1b]0;owned\\x07\\x1b[2J \\x1b[31m10.0.0.66:8080")
    assert "soon" in row and "lots" in row
    assert text.splitlines()[-1].startswith("1 node(s), 0 up, seen from web-1\\x1b]0;owned")


def test_ps_escapes_a_hostile_node_name() -> None:
    text = render.ps_table([{**INSTANCE, "node": "web\x1b[2J"}], "http://localhost:8080")
    assert "\x1b" not in text and "web\\x1b[2J" in text


def test_nodes_says_how_much_a_draining_node_has_left() -> None:
    node = {"advertise": "10.0.0.11:8080", "version": "0.3.0", "silent_secs": 0.1}
    answer = {
        "fleet": True,
        "node": "web-2",
        "nodes": [
            {
                **node,
                "name": "web-1",
                "state": "draining",
                "instances_held": 3,
                "drain_parallel": 4,
            },
            {**node, "name": "web-2", "state": "up", "instances_held": 9, "drain_parallel": None},
            {**node, "name": "web-3", "state": "draining", "instances_held": 0},
        ],
    }
    lines = render.nodes_table(answer, "http://h:8080").splitlines()
    assert lines[-3:] == [
        "3 node(s), 1 up, 2 draining, seen from web-2 (http://h:8080)",
        "web-1 is draining: 3 instance(s) left to move, 4 at a time",
        "web-3 is drained: it holds no instance (ten undrain web-3 puts it back)",
    ]


def test_the_cli_and_the_server_take_the_same_parallel_drains() -> None:
    # the CLI imports no server module: its bound is a copy, which must not drift
    from tenement.cli.nodes import MAX_PARALLEL as CLI_MAX
    from tenement.store.drain import MAX_PARALLEL

    assert CLI_MAX == MAX_PARALLEL
