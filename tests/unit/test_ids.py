import pytest

from tenement.ids import InstanceRef, InvalidInstanceId


@pytest.mark.parametrize(
    ("text", "service", "tenant"),
    [("notes:alice", "notes", "alice"), ("api:v2", "api", "v2"), ("a_b-c:X-1_y", "a_b-c", "X-1_y")],
)
def test_parse(text: str, service: str, tenant: str) -> None:
    ref = InstanceRef.parse(text)
    assert (ref.service, ref.tenant) == (service, tenant)
    assert str(ref) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("notes", "Expected format: process:id"),
        (":alice", "Expected format: process:id"),
        ("notes:", "Expected format: process:id"),
        ("api:user:x", "'user:x' must be"),
        ("api:../etc", "'../etc' must be"),
        ("a" * 64 + ":x", "must be 1 to 63"),
        ("sp ace:x", "'sp ace' must be"),
    ],
    ids=["no-colon", "no-service", "no-tenant", "two-colons", "dotdot", "too-long", "space"],
)
def test_rejects(text: str, message: str) -> None:
    with pytest.raises(InvalidInstanceId, match=message) as info:
        InstanceRef.parse(text)
    assert info.value.exit_code == 2
