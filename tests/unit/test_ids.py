from pathlib import Path

import pytest

from tenement.config import ConfigError, parse_config
from tenement.ids import InstanceRef, InvalidInstanceId, is_valid_name
from tenement.proxy.routing import Direct, Rejected, parse_host
from tests.integration.cli.live import invoke


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


# -- a leading '-': every way in refuses it (it reached a command line as `--tenant -h`) ---

DASH = "not starting with '-'"


@pytest.mark.parametrize(
    ("name", "valid"),
    [("-h", False), ("--x", False), ("-", False), ("a-", True), ("a--b", True), ("_x", True)],
)
def test_a_name_may_not_start_with_a_dash(name: str, valid: bool) -> None:
    assert is_valid_name(name) is valid


@pytest.mark.parametrize("text", ["web:-h", "-web:a", "web:--tenant"])
def test_an_instance_id_with_a_leading_dash_is_rejected(text: str) -> None:
    with pytest.raises(InvalidInstanceId, match=DASH):
        InstanceRef.parse(text)


def test_a_proxy_host_naming_a_dashed_tenant_is_404() -> None:
    # with wake_any_id this Host started the app with `--tenant -h`
    assert parse_host("-h.web.example.com", "example.com") == Rejected(404, "Not found")
    assert parse_host("-web.example.com", "example.com") == Rejected(404, "Not found")
    assert parse_host("h.web.example.com", "example.com") == Direct("h", "web")


def test_the_config_refuses_a_dashed_service_or_tenant(tmp_path: Path) -> None:
    text = (
        '[service.-web]\ncommand = "app"\n[service.ok]\ncommand = "app"\n[instances]\nok = ["-h"]\n'
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, cwd=tmp_path)
    assert any("service name '-web'" in p and DASH in p for p in caught.value.problems)
    assert any("tenant id '-h'" in p and DASH in p for p in caught.value.problems)


@pytest.mark.parametrize(
    "args",
    [["spawn", "web:-h"], ["stop", "--", "-web:a"], ["token-gen", "--tenant=-h"]],
    ids=["spawn", "stop", "token-gen"],
)
def test_the_cli_refuses_a_dashed_name(tmp_path: Path, args: list[str]) -> None:
    result = invoke(args, cwd=tmp_path)
    assert result.exit_code in (1, 2)
    assert DASH in result.stderr
