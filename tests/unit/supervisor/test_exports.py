"""The supervisor's public face: sorted, complete, and what the other layers need."""

import tenement.supervisor

#: what the proxy, the API and the server use (INTERFACES.md, "Supervisor")
CONTRACT = {
    "DeployError",
    "Health",
    "InstanceNotFound",
    "InstanceView",
    "SpawnError",
    "StorageInfo",
    "Supervisor",
    "SupervisorStatistics",
    "Target",
    "UnknownService",
    "WakeError",
    "open_supervisor",
}


def test_all_is_sorted_and_complete() -> None:
    names = tenement.supervisor.__all__
    assert names == sorted(names)
    assert set(names) >= CONTRACT
    for name in names:
        assert hasattr(tenement.supervisor, name), name


def test_errors_are_tenement_errors_with_the_reference_messages() -> None:
    from tenement.errors import TenementError

    assert str(tenement.supervisor.UnknownService("x")) == "Unknown process: x"
    assert str(tenement.supervisor.InstanceNotFound("a:b")) == "Instance not found: a:b"
    for name in ("DeployError", "InstanceNotFound", "SpawnError", "UnknownService", "WakeError"):
        assert issubclass(getattr(tenement.supervisor, name), TenementError)
    assert issubclass(tenement.supervisor.InstanceNotFound, LookupError)
