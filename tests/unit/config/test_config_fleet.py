"""``[fleet]``: each bad value is refused with the key, the value and what to write; a
fleet on SQLite is refused; without the section nothing about a single host changes."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tenement.config import ConfigError, config_as_dict, parse_config

PG = '[settings]\ndatabase_url = "postgresql://ten@db.internal/tenement"\n'


def fleet(body: str, settings: str = PG) -> str:
    return f"{settings}[fleet]\n{body}"


def test_a_fleet_node_with_every_key() -> None:
    config = parse_config(
        fleet('node = "web-1"\nadvertise = "10.0.0.11:8080"\nnode_timeout = 5\nkeep_moved = 0\n')
    )
    assert config.fleet is not None
    assert (config.fleet.node, config.fleet.advertise) == ("web-1", "10.0.0.11:8080")
    assert (config.fleet.node_timeout, config.fleet.keep_moved) == (5, 0)
    assert config.warnings == ()


def test_the_node_name_defaults_to_the_host_name_and_the_timeout_to_10_s() -> None:
    config = parse_config(fleet('advertise = "[fd00::11]:8080"\n'))
    assert config.fleet is not None
    assert config.fleet.node == socket.gethostname().split(".")[0]
    assert config.fleet.node_timeout == 10
    assert config.fleet.keep_moved == 7 * 24 * 3600


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('node = "web-1"\n', "missing required key 'advertise'"),
        ('advertise = "10.0.0.11"\n', 'expected "host:port" where the other nodes reach'),
        ('advertise = ":8080"\n', 'expected "host:port"'),
        ('advertise = "10.0.0.11:http"\n', 'expected "host:port"'),
        ('advertise = "10.0.0.11:70000"\n', "expected a TCP port from 1 to 65535"),
        ('advertise = "fd00::11:8080"\n', "an IPv6 address goes in brackets"),
        ('advertise = "0.0.0.0:8080"\n', "is a wildcard that no other host can reach"),
        ('advertise = "[::]:8080"\n', "is a wildcard"),
        ('advertise = "http://10.0.0.11:8080"\n', "without a scheme"),
        ('advertise = "web 1:8080"\n', "expected a host name or address"),
        # printed by every node's `ten nodes`: no terminal escapes, no look-alikes
        ('advertise = "web\\u001b]0;owned\\u0007:8080"\n', r'got "web\x1b]0;owned\x07:8080"'),
        ('advertise = "w\u00e9b.example:8080"\n', "expected a host name or address"),
        ('advertise = "[fd00::zz]:8080"\n', "expected a host name or address"),
        # digits of other scripts: int() takes some and raises on others
        ('advertise = "10.0.0.11:\u00b2"\n', 'expected "host:port"'),
        ('advertise = "10.0.0.11:\u0663"\n', 'expected "host:port"'),
        ("advertise = 8080\n", "expected a string, got the integer 8080"),
        ('advertise = "10.0.0.11:8080"\nnode = "-web"\n', 'got "-web"'),
        ('advertise = "10.0.0.11:8080"\nnode = "web 1"\n', 'got "web 1"'),
        ('advertise = "10.0.0.11:8080"\nnode = ""\n', "non-empty string"),
        ('advertise = "10.0.0.11:8080"\nnode_timeout = 1\n', "expected 2 to 600 seconds"),
        ('advertise = "10.0.0.11:8080"\nnode_timeout = 601\n', "got 601"),
        ('advertise = "10.0.0.11:8080"\nnode_timeout = "10s"\n', "expected a number of seconds"),
        ('advertise = "10.0.0.11:8080"\nkeep_moved = -1\n', "expected 0 or more seconds"),
        ('advertise = "10.0.0.11:8080"\nkeep_moved = "7d"\n', "expected a number of seconds"),
    ],
)
def test_each_bad_value_is_refused_saying_what_to_write(body: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(fleet(body))
    assert message in str(caught.value)
    assert "[fleet]" in str(caught.value)
    assert caught.value.exit_code == 2


def test_fleet_must_be_a_table() -> None:
    with pytest.raises(ConfigError, match=r"expected a table \(\[fleet\]"):
        parse_config('fleet = "yes"\n' + PG)


@pytest.mark.parametrize(
    "settings",
    ["", '[settings]\ndatabase_url = "sqlite:////var/lib/tenement/t.db"\n'],
    ids=["default", "sqlite-url"],
)
def test_a_fleet_on_sqlite_is_refused(settings: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(fleet('advertise = "10.0.0.11:8080"\n', settings))
    assert "a fleet needs a shared PostgreSQL database" in str(caught.value)
    assert "set [settings] database_url" in str(caught.value)


def test_an_unknown_fleet_key_warns_with_a_suggestion() -> None:
    config = parse_config(fleet('advertise = "10.0.0.11:8080"\nnode_timout = 5\n'))
    [warning] = config.warnings
    assert "[fleet] node_timout: unknown key, ignored (did you mean 'node_timeout'?)" in str(
        warning
    )


def test_without_fleet_the_effective_config_is_as_before(tmp_path: Path) -> None:
    config = parse_config('[service.api]\ncommand = "x"\n', cwd=tmp_path)
    assert config.fleet is None
    assert "fleet" not in config_as_dict(config)


def test_a_fleet_change_is_shown_as_taking_effect_at_the_next_restart() -> None:
    from tenement.config import config_changes

    before = parse_config(fleet('advertise = "10.0.0.11:8080"\n'))
    after = parse_config(fleet('advertise = "10.0.0.12:8080"\nnode_timeout = 5\n'))
    changes = config_changes(config_as_dict(before), config_as_dict(after))
    assert changes.settings == ("fleet.advertise", "fleet.node_timeout")
    assert changes.lines() == [
        "~ settings: fleet.advertise, fleet.node_timeout (fleet.advertise, "
        "fleet.node_timeout at the next restart, not at a reload)"
    ]
    single = parse_config(PG)
    assert config_changes(config_as_dict(single), config_as_dict(after)).settings == ("fleet",)
    assert not config_changes(config_as_dict(single), config_as_dict(single))


@pytest.mark.parametrize(
    ("keys", "fails_over"),
    [
        ("", False),  # storage_persist defaults to true: the data is on the lost disk
        ("storage_persist = false\n", True),
        ("storage_persist = true\n", False),
        ("storage_persist = true\nfailover = true\n", True),
        ("storage_persist = false\nfailover = false\n", False),
    ],
)
def test_failover_defaults_to_whether_the_data_is_thrown_away(keys: str, fails_over: bool) -> None:
    config = parse_config(
        fleet('advertise = "10.0.0.11:8080"\n') + f'[service.web]\ncommand = "w"\n{keys}'
    )
    assert config.services["web"].fails_over is fails_over
    assert config.warnings == ()


def test_a_failover_that_is_not_a_boolean_is_refused_with_its_value() -> None:
    with pytest.raises(ConfigError, match='failover: expected true or false, got the string "yes"'):
        parse_config('[service.web]\ncommand = "w"\nfailover = "yes"\n')


def test_the_secret_file_defaults_to_the_data_dir_and_is_made_absolute(tmp_path: Path) -> None:
    text = fleet('advertise = "10.0.0.11:8080"\n', PG + 'data_dir = "state"\n')
    config = parse_config(text, cwd=tmp_path)
    assert config.fleet is not None
    assert config.fleet.secret_file == tmp_path / "state" / "fleet_secret"
    own = parse_config(text + 'secret_file = "keys/fleet"\n', cwd=tmp_path)
    assert own.fleet is not None and own.fleet.secret_file == tmp_path / "keys" / "fleet"
    with pytest.raises(ConfigError, match="starts with '~'"):
        parse_config(text + 'secret_file = "~/fleet"\n', cwd=tmp_path)


def test_a_service_may_be_pinned_to_some_fleet_nodes() -> None:
    config = parse_config(
        fleet('advertise = "10.0.0.11:8080"\n')
        + '[service.web]\ncommand = "w"\nnodes = ["web-1", "web-2"]\n[service.any]\ncommand = "a"\n'
    )
    web, anywhere = config.services["web"], config.services["any"]
    assert web.nodes == ("web-1", "web-2")
    assert web.allows("web-2") and not web.allows("web-3")
    assert anywhere.nodes is None and anywhere.allows("web-3")
    assert config.warnings == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[]", "expected at least one fleet node name"),
        ('"web-1"', 'expected an array of fleet node names (e.g. nodes = ["web-1", "web-2"]), '
         'got the string "web-1"'),
        ('["web 1"]', 'got "web 1" in the array'),
        ('["-web"]', 'got "-web" in the array'),
        ("[1]", "got the integer 1 in the array"),
        ('["web-1", "web-2", "web-1"]', "node web-1 is listed more than once"),
    ],
)  # fmt: skip
def test_bad_nodes_are_refused_naming_the_value(value: str, message: str) -> None:
    text = (
        fleet('advertise = "10.0.0.11:8080"\n') + f'[service.web]\ncommand = "w"\nnodes = {value}\n'
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert "[service.web] nodes: " in str(caught.value)
    assert message in str(caught.value)


def test_nodes_without_a_fleet_are_refused() -> None:
    """On a single host the key would mean nothing; more likely the host lost its [fleet]."""
    with pytest.raises(ConfigError) as caught:
        parse_config('[service.web]\ncommand = "w"\nnodes = ["web-1"]\n')
    assert "[service.web] nodes: nodes = ['web-1'] names fleet nodes, and this config has no " \
        "[fleet]; add [fleet]" in str(caught.value)  # fmt: skip
