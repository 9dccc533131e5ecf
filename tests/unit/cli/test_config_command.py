"""`ten config`, `ten config --json`, `ten config --check`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from tenement.cli import ten
from tenement.cli.context import CliContext
from tenement.config import config_as_dict, read_config_file

CONFIG = """\
[settings]
data_dir = "/srv/ten data"
health_check_interval = 7

[service.notes]
command = "python3 notes.py --port {port}"
isolation = "process"
health = "/health"
idle_timeout = 300

[service.api]
command = "./api"
idle_timeout = 0

[service.worker]
command = "./worker"
health = "/h"
"""

EXPECTED = """\
Data dir: "/srv/ten data"
Health interval: 7s

Services:
  [notes]
    command: python3 notes.py --port {port}
    isolation: process
    health: /health
    idle_timeout: 300s
  [api]
    command: ./api
    isolation: namespace
    idle_timeout: 0s
  [worker]
    command: ./worker
    isolation: namespace
    health: /h
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with a tenement.toml; the test runs in it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tenement.toml").write_text(CONFIG)
    return tmp_path


def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """Invoke `ten` as ``main()`` does (with a fresh CliContext as obj)."""
    return CliRunner().invoke(ten, list(args), env=env, obj=CliContext(), catch_exceptions=False)


def test_prints_the_reference_lines(project: Path) -> None:
    result = run("config")
    assert result.exit_code == 0
    assert result.stdout == EXPECTED
    assert result.stderr == ""


def test_relative_data_dir_is_printed_absolute(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tenement.toml").write_text("")
    result = run("config")
    assert (
        result.stdout
        == f'Data dir: "{tmp_path}/tenement-data"\nHealth interval: 10s\n\nServices:\n'
    )


def _reference_output(
    reference: Path, directory: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TENEMENT_")}
    return subprocess.run(
        [str(reference), "config", *args],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def _blocks(text: str) -> tuple[str, set[str]]:
    """Header, and the service blocks as a set: the reference prints services in hash order."""
    header, _, services = text.partition("Services:\n")
    blocks = ["  [" + block for block in services.split("  [") if block]
    return header, set(blocks)


@pytest.mark.parametrize("args", [(), ("--data-dir", "/elsewhere")], ids=["toml", "data-dir-flag"])
def test_output_matches_the_reference_binary(
    project: Path, reference_ten: Path, args: tuple[str, ...]
) -> None:
    reference = _reference_output(reference_ten, project, *args)
    assert reference.returncode == 0, reference.stderr

    ours = run("config", *args)

    assert ours.exit_code == 0
    assert _blocks(ours.stdout) == _blocks(reference.stdout)
    assert len(ours.stdout.splitlines()) == len(reference.stdout.splitlines())


def test_single_service_output_is_byte_identical_to_the_reference(
    project: Path, reference_ten: Path
) -> None:
    (project / "tenement.toml").write_text(CONFIG.split("[service.api]")[0])
    reference = _reference_output(reference_ten, project)
    assert reference.returncode == 0, reference.stderr
    assert run("config").stdout == reference.stdout


def test_warnings_go_to_stderr(project: Path) -> None:
    (project / "tenement.toml").write_text('[service.a]\ncommand = "x"\nidle_timout = 3\n')
    result = run("config")
    assert result.exit_code == 0
    assert "idle_timout" not in result.stdout
    assert result.stderr == (
        f"Warning: {project / 'tenement.toml'}:3: [service.a] idle_timout: unknown key, "
        "ignored (did you mean 'idle_timeout'?)\n"
    )


def test_json_is_the_whole_effective_config(project: Path) -> None:
    result = run("config", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    expected = read_config_file(project / "tenement.toml", cwd=project)
    assert data == json.loads(json.dumps(config_as_dict(expected)))
    assert data["services"]["api"]["stop_timeout"] == 5.0
    assert data["settings"]["database_url"] is None


@pytest.mark.parametrize(
    ("text", "exit_code", "stdout", "stderr"),
    [
        pytest.param(
            '[service.a]\ncommand = "x"\n', 0, "{file}: OK (1 service)\n", "{note}", id="ok"
        ),
        pytest.param(
            '[service.a]\ncommand = "x"\n[settings]\nbogus = 1\n',
            0,
            "{file}: OK (1 service, 1 warning)\n",
            "Warning: {file}:4: [settings] bogus: unknown key, ignored\n{note}",
            id="warnings-are-accepted",
        ),
        pytest.param(
            '[service.a]\ncommand = "x"\nisolation = "sandbox"\n',
            1,
            "",
            "Error: {file}:3: [service.a] isolation: isolation 'sandbox' is not supported by "
            "this build (supported: process, namespace); its instances will not start\n",
            id="unsupported-isolation-is-rejected",
        ),
        pytest.param(
            '[service.a]\ncommand = "x"\nidle_timeout = -1\n',
            1,
            "",
            "Error: {file}:3: [service.a] idle_timeout: expected 0 or more seconds, got -1\n",
            id="invalid-value",
        ),
        pytest.param(
            "[service.a\n",
            1,
            "",
            "Error: {file}:1:11: invalid TOML: Expected ']' at the end of a table declaration\n"
            "  1 | [service.a\n    |           ^\n",
            id="malformed-toml",
        ),
        pytest.param(
            "",
            1,
            "",
            "Error: {file} is empty (0 bytes): refused, as a file still being written or "
            "truncated would stop every service. Write the whole config (to a temporary file, "
            "then `mv` it into place), or, to run no service, keep at least a comment.\n",
            id="empty-file",
        ),
    ],
)
def test_check_exit_codes(
    project: Path, text: str, exit_code: int, stdout: str, stderr: str
) -> None:
    (project / "tenement.toml").write_text(text)
    file = project / "tenement.toml"
    record = project / "tenement-data" / "run" / "applied-config.json"
    note = (
        f"Note: no server has recorded a running config in {record}: nothing to compare "
        "with (a server started on this file applies all of it)\n"
    )
    result = run("config", "--check")
    assert result.exit_code == exit_code
    assert result.stdout == stdout.format(file=file)
    assert result.stderr == stderr.format(file=file, note=note)


def test_unsupported_isolation_is_only_a_warning_without_check(project: Path) -> None:
    (project / "tenement.toml").write_text('[service.a]\ncommand = "x"\nisolation = "qemu"\n')
    result = run("config")
    assert result.exit_code == 0
    assert "isolation: qemu" in result.stdout
    assert "isolation 'qemu' is not supported by this build" in result.stderr


def test_missing_config_fails_with_a_sample(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    result = run("config")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: No tenement.toml found in {tmp_path}")
    assert '[service.myapp]\ncommand = "./my-app"' in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["config", "--config", "{path}"], id="flag-after-subcommand"),
        pytest.param(["--config", "{path}", "config"], id="flag-before-subcommand"),
    ],
)
def test_config_flag_in_either_position(tmp_path: Path, monkeypatch, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)  # no tenement.toml here
    other = tmp_path / "elsewhere.toml"
    other.write_text('[service.flagged]\ncommand = "x"\n')
    result = run(*(arg.format(path=other) for arg in args))
    assert result.exit_code == 0, result.stderr
    assert "  [flagged]\n" in result.stdout


def test_environment_variables_choose_config_and_data_dir(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    other = tmp_path / "elsewhere.toml"
    other.write_text('[settings]\ndata_dir = "/toml"\n[service.env]\ncommand = "x"\n')
    result = run("config", env={"TENEMENT_CONFIG": str(other), "TENEMENT_DATA_DIR": "/from-env"})
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith('Data dir: "/from-env"\n')
    assert "  [env]\n" in result.stdout


def test_data_dir_flag_wins_and_tilde_is_rejected(project: Path) -> None:
    assert run("config", "--data-dir", "/flag").stdout.startswith('Data dir: "/flag"\n')
    result = run("config", "--data-dir", "~/x")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: --data-dir path \"~/x\" starts with '~'. Tilde is not expanded; pass an "
        "absolute path (e.g. $HOME/.local/share/tenement) instead.\n"
    )


def test_json_and_check_together_is_a_usage_error(project: Path) -> None:
    result = run("config", "--json", "--check")
    assert result.exit_code == 2
    assert "--json and --check cannot be used together" in result.stderr


def test_help() -> None:
    result = run("config", "--help")
    assert result.exit_code == 0
    assert "--check" in result.stdout
    assert "--json" in result.stdout
