"""The supervisor's errors carry the reference's messages and are TenementErrors."""

import tenement.supervisor
from tenement.errors import TenementError


def test_errors_are_tenement_errors_with_the_reference_messages() -> None:
    assert str(tenement.supervisor.UnknownService("x")) == "Unknown process: x"
    assert str(tenement.supervisor.InstanceNotFound("a:b")) == "Instance not found: a:b"
    for name in ("DeployError", "InstanceNotFound", "SpawnError", "UnknownService", "WakeError"):
        assert issubclass(getattr(tenement.supervisor, name), TenementError)
    assert issubclass(tenement.supervisor.InstanceNotFound, LookupError)
