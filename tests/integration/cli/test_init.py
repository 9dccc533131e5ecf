"""`ten init` in empty and populated directories: the reference's detection and file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from tenement.cli import ten
from tenement.cli.context import CliContext
from tenement.config import load_config


def init(directory: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    monkeypatch.chdir(directory)
    result = CliRunner().invoke(ten, ["init", *args], obj=CliContext())
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("files", "command"),
    [
        ([], "./app"),
        (["requirements.txt"], "uv run python app.py"),
        (["pyproject.toml", "main.py"], "uv run python main.py"),
        (["pyproject.toml", "main.py", "app.py"], "uv run python app.py"),
        (["pyproject.toml", "package.json"], "uv run python app.py"),
        (["package.json", "go.mod"], "npm start"),
        (["go.mod", "Cargo.toml"], "go run ."),
        (["Cargo.toml"], "cargo run --release"),
    ],
    ids=["nothing", "requirements", "main-only", "app-and-main", "python-first", "node",
         "go", "rust"],
)  # fmt: skip
def test_detects_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: list[str], command: str
) -> None:
    project = tmp_path / "my-proj"
    project.mkdir()
    for name in files:
        (project / name).touch()
    code, out, err = init(project, monkeypatch)
    assert (code, err) == (0, "")
    assert out == (
        "Created tenement.toml\n\n"
        "  Service: my-proj\n"
        f"  Command: {command}\n\n"
        "Next steps:\n"
        "  1. ten token-gen    # Create API token\n"
        "  2. ten serve        # Start server\n"
        "  3. ten ps           # Check running instances\n"
    )
    assert (project / "tenement.toml").read_text() == (
        "[service.my-proj]\n"
        f'command = "{command}"\n'
        'health = "/health"\n'
        "idle_timeout = 300\n"
        "storage_persist = true\n"
        'isolation = "process"\n'
        "\n"
        "[instances]\n"
        'my-proj = ["default"]\n'
    )


def test_written_file_loads_with_our_config_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = 'sh -c "echo \\hi"\tthere'
    code, _, err = init(tmp_path, monkeypatch, "--name", "web", "--command", command)
    assert code == 0, err
    assert (
        tomllib.loads((tmp_path / "tenement.toml").read_text())["service"]["web"]["command"]
        == command
    )
    config = load_config(environ={}, cwd=tmp_path)
    assert config.services["web"].command == command
    assert config.services["web"].isolation == "process"
    assert config.instances == {"web": ("default",)}


def test_refuses_to_overwrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tenement.toml").write_text("# mine\n")
    code, out, err = init(tmp_path, monkeypatch, "--name", "x")
    assert code == 1
    assert out == ""
    assert err == "Error: tenement.toml already exists in this directory\n"
    assert (tmp_path / "tenement.toml").read_text() == "# mine\n"


@pytest.mark.parametrize(
    "name", ["", "a b", "a.b", "a[b", 'a"b', "a'b", "a\\b", "a`b", "a:b", "a/b", "ü", "x" * 64]
)
def test_rejects_bad_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    code, out, err = init(tmp_path, monkeypatch, "--name", name)
    assert code == 1
    assert out == ""
    assert err == (
        f"Error: Invalid service name '{name}'. Use --name to set a valid name "
        "(alphanumeric, hyphens, underscores).\n"
    )
    assert not (tmp_path / "tenement.toml").exists()


def test_rejects_a_directory_name_that_is_not_a_service_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "has space"
    project.mkdir()
    code, _, err = init(project, monkeypatch)
    assert code == 1
    assert "Invalid service name 'has space'. Use --name" in err
    code, out, _ = init(project, monkeypatch, "--name", "ok_name")
    assert code == 0
    assert "  Service: ok_name\n" in out
