"""Instance.target(): made once, made again when what it says changes."""

from __future__ import annotations

from tenement.supervisor.instance import Instance, Target


def test_the_target_is_reused_until_its_port_socket_or_weight_changes() -> None:
    inst = Instance("notes", "alice", "/run/t/notes-alice.sock", port=30001, weight=100)
    first = inst.target()
    assert first == Target("notes:alice", "notes", "alice", 30001, "/run/t/notes-alice.sock", 100)
    assert inst.target() is first

    inst.weight = 10
    assert inst.target().weight == 10
    inst.port = None  # now on its Unix socket
    assert inst.target().port is None
    inst.socket = "/run/t/other.sock"
    assert inst.target() == Target("notes:alice", "notes", "alice", None, "/run/t/other.sock", 10)
