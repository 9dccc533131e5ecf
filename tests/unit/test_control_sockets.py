"""The control sockets' names: the server's and `ten reload`'s reading of them agree."""

from __future__ import annotations

from pathlib import Path

from tenement.control_sockets import control_socket_path, control_sockets, run_dir


def test_a_servers_socket_is_found_by_its_pid(tmp_path: Path) -> None:
    path = control_socket_path(tmp_path, "host.example:4242:ab-cd")
    other = control_socket_path(tmp_path, "host.example:77:ef")
    assert path.parent == other.parent == run_dir(tmp_path)
    path.parent.mkdir()
    path.touch()
    other.touch()
    assert control_sockets(run_dir(tmp_path)) == [(4242, path), (77, other)]
    assert control_sockets(run_dir(tmp_path), 4242) == [(4242, path)]
    assert control_sockets(run_dir(tmp_path), 42) == []


def test_names_that_are_not_a_servers_socket_are_ignored(tmp_path: Path) -> None:
    directory = run_dir(tmp_path)
    directory.mkdir()
    for name in ("server-x1-a.sock", "server--a.sock", "server-12-a.pid", "applied.json"):
        (directory / name).touch()
    assert control_sockets(directory) == []


def test_a_missing_run_directory_holds_no_sockets(tmp_path: Path) -> None:
    assert control_sockets(run_dir(tmp_path)) == []
