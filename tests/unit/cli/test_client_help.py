"""Every client command answers --help, and the token is resolved in the reference's order."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tenement.cli import ten
from tenement.cli.client import ClientError, resolve_token
from tenement.cli.context import CliContext

COMMANDS = ["spawn", "stop", "restart", "ps", "ls", "health", "weight", "deploy", "route",
            "logs", "init", "caddy"]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_help(command: str) -> None:
    result = CliRunner().invoke(ten, [command, "--help"], obj=CliContext())
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Usage: ten {command} [OPTIONS]")
    assert "--server" in result.stdout and "--token" in result.stdout


def test_token_flag_beats_env_and_file(tmp_path: Path) -> None:
    (tmp_path / "api_token").write_text("from-file\n")
    cli = CliContext(token=" from-flag ", data_dir=tmp_path)
    token = resolve_token(cli, environ={"TENEMENT_TOKEN": "from-env"}, cwd=tmp_path)
    assert (token.value, token.origin) == ("from-flag", "--token")


def test_env_beats_file(tmp_path: Path) -> None:
    (tmp_path / "api_token").write_text("from-file\n")
    cli = CliContext(data_dir=tmp_path)
    token = resolve_token(cli, environ={"TENEMENT_TOKEN": "from-env\n"}, cwd=tmp_path)
    assert (token.value, token.origin) == ("from-env", "TENEMENT_TOKEN")


def test_file_in_a_relative_data_dir(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "api_token").write_text("  from-file\n")
    token = resolve_token(CliContext(data_dir=Path("d")), environ={}, cwd=tmp_path)
    assert (token.value, token.origin) == ("from-file", str(tmp_path / "d" / "api_token"))


def test_file_through_the_config(tmp_path: Path) -> None:
    (tmp_path / "tenement.toml").write_text('[settings]\ndata_dir = "state"\n')
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "api_token").write_text("t0k\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    token = resolve_token(CliContext(), environ={}, cwd=tmp_path)
    assert token.value == "t0k"
    # the config is found walking up; a relative data_dir is relative to the cwd (reference)
    with pytest.raises(ClientError, match="No API token found"):
        resolve_token(CliContext(), environ={}, cwd=sub)


def test_tilde_data_dir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match="starts with '~'"):
        resolve_token(CliContext(data_dir=Path("~/x")), environ={}, cwd=tmp_path)
