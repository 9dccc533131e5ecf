"""The fleet secret: `ten token-gen --fleet`, and a node that refuses to start with a
secret file that is missing, readable by others, or not this fleet's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trio

from tenement.server.fleet_secret import FleetSecretError, read_secret_file
from tenement.store import open_store, verify_token
from tests.fleet.conftest import Fleet, Node, make_fleet_secret, write_secret


def test_a_secret_file_is_read_only_when_private_and_sound(tmp_path: Path) -> None:
    path = tmp_path / "fleet_secret"
    with pytest.raises(FleetSecretError, match=r"fleet_secret does not exist: run `ten token-gen"):
        read_secret_file(path)
    write_secret(path, "s3cret-Value_1")
    assert read_secret_file(path) == b"s3cret-Value_1"
    path.chmod(0o640)
    with pytest.raises(FleetSecretError, match=r"has mode 0640: .*chmod 600"):
        read_secret_file(path)
    for bad in ("", "  \n", "two words", "x" * 2000):
        path.write_text(bad)
        path.chmod(0o600)
        with pytest.raises(FleetSecretError, match=r"is empty|does not hold a secret"):
            read_secret_file(path)
    with pytest.raises(FleetSecretError, match="not a regular file"):
        read_secret_file(tmp_path)
    # a link is followed (a secrets mount), and the file it names is what is checked
    write_secret(path, "s3cret")
    (tmp_path / "link").symlink_to(path)
    assert read_secret_file(tmp_path / "link") == b"s3cret"
    path.chmod(0o604)
    with pytest.raises(FleetSecretError, match="has mode 0604"):
        read_secret_file(tmp_path / "link")


def test_token_gen_fleet_prints_the_secret_and_keeps_its_hash(fleet: Fleet) -> None:
    node = fleet.node("a")
    assert fleet.secret is not None
    with open_store(fleet.url) as store:
        stored = store.fleet_secret_hash()
        assert stored is not None and fleet.secret not in stored
        assert verify_token(fleet.secret, stored)
        assert store.admin_token_hash() is None  # an admin token is another thing
    refused = subprocess.run(
        [sys.executable, "-m", "tenement", "token-gen", "--fleet", "--tenant", "x"],
        cwd=node.directory,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and "--fleet and --tenant exclude each other" in refused.stderr


async def _exits(node: Node) -> str:
    process = node.spawn_server()
    with trio.fail_after(60):
        while process.poll() is None:
            await trio.sleep(0.05)
    assert process.returncode == 2, node.log[-3000:]
    return node.log


async def test_a_node_without_a_sound_secret_file_does_not_start(fleet: Fleet) -> None:
    node = fleet.node("a")
    path = node.directory / "data" / "fleet_secret"
    path.unlink()
    assert "fleet_secret does not exist: run `ten token-gen --fleet`" in await _exits(node)

    write_secret(path, fleet.secret or "")
    path.chmod(0o644)
    assert "has mode 0644: others than the server's user can read it" in await _exits(node)

    write_secret(path, "not-the-fleets-secret")
    assert "is not the one `ten token-gen --fleet` made last" in await _exits(node)

    # a new secret made elsewhere: the old file is refused, the new one accepted
    write_secret(path, fleet.secret or "")
    fleet.secret = make_fleet_secret(node.directory)
    assert "is not the one `ten token-gen --fleet` made last" in await _exits(node)
    write_secret(path, fleet.secret)
    await node.start()
    assert fleet.node_row("a")["state"] == "up"


async def test_a_secret_file_of_its_own_path(fleet: Fleet) -> None:
    node = fleet.node("a")
    elsewhere = node.directory / "secrets" / "fleet"
    write_secret(elsewhere, fleet.secret or "")
    (node.directory / "data" / "fleet_secret").unlink()
    config = node.directory / "tenement.toml"
    config.write_text(config.read_text() + 'secret_file = "secrets/fleet"\n')
    await node.start()
    assert str(elsewhere) not in node.log  # no complaint about it
