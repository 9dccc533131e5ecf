"""`ten init`: write a starter tenement.toml for the project in the working directory."""

from __future__ import annotations

from pathlib import Path

import click

from tenement.cli.context import global_options
from tenement.errors import TenementError
from tenement.ids import is_valid_name

CONFIG_NAME = "tenement.toml"
DEFAULT_NAME = "app"
DEFAULT_COMMAND = "./app"


class InitError(TenementError):
    """`ten init` cannot write the file (exists, bad name); exit 1 as the reference."""

    exit_code = 1


def detect_command(directory: Path) -> str:
    """The command to run the project in ``directory``, in the reference's order.

    pyproject.toml or requirements.txt -> ``uv run python app.py`` (``main.py`` when only
    that exists); package.json -> ``npm start``; go.mod -> ``go run .``; Cargo.toml ->
    ``cargo run --release``; otherwise ``./app``.
    """
    if (directory / "pyproject.toml").exists() or (directory / "requirements.txt").exists():
        entry = "app.py"
        if not (directory / "app.py").exists() and (directory / "main.py").exists():
            entry = "main.py"
        return f"uv run python {entry}"
    if (directory / "package.json").exists():
        return "npm start"
    if (directory / "go.mod").exists():
        return "go run ."
    if (directory / "Cargo.toml").exists():
        return "cargo run --release"
    return DEFAULT_COMMAND


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string (quotes, backslashes and control characters escaped)."""
    out = []
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def render_config(name: str, command: str) -> str:
    """The starter tenement.toml (the reference's keys and order)."""
    return (
        f"[service.{name}]\n"
        f"command = {toml_string(command)}\n"
        'health = "/health"\n'
        "idle_timeout = 300\n"
        "storage_persist = true\n"
        'isolation = "process"\n'
        "\n"
        "[instances]\n"
        f'{name} = ["default"]\n'
    )


def next_steps(name: str, command: str) -> str:
    return (
        f"Created {CONFIG_NAME}\n\n"
        f"  Service: {name}\n"
        f"  Command: {command}\n\n"
        "Next steps:\n"
        "  1. ten token-gen    # Create API token\n"
        "  2. ten serve        # Start server\n"
        "  3. ten ps           # Check running instances"
    )


def init_project(directory: Path, *, name: str | None, command: str | None) -> tuple[str, str]:
    """Write ``directory/tenement.toml``; return the service name and command used.

    Raises:
        InitError: the file exists already, or the name is not a valid service name.
    """
    path = directory / CONFIG_NAME
    if path.exists():
        raise InitError(f"{CONFIG_NAME} already exists in this directory")
    if name is None:
        name = directory.name or DEFAULT_NAME
    if not is_valid_name(name):
        raise InitError(
            f"Invalid service name '{name}'. Use --name to set a valid name "
            "(alphanumeric, hyphens, underscores)."
        )
    if command is None:
        command = detect_command(directory)
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(render_config(name, command))
    except FileExistsError:
        raise InitError(f"{CONFIG_NAME} already exists in this directory") from None
    except OSError as exc:
        raise InitError(f"Could not write {path}: {exc.strerror or exc}") from exc
    return name, command


@click.command(short_help="Initialize a new tenement project in the current directory")
@click.option("--name", help="Service name (default: directory name)")
@click.option("--command", "command_", help="Command to run (auto-detected if possible)")
@global_options
def init(name: str | None, command_: str | None) -> None:
    """Initialize a new tenement project in the current directory.

    Writes tenement.toml with one service (health /health, idle timeout 300 s,
    isolation "process") and one instance, "default". The command is detected from
    pyproject.toml/requirements.txt, package.json, go.mod or Cargo.toml.
    """
    name, command_ = init_project(Path.cwd(), name=name, command=command_)
    click.echo(next_steps(name, command_))
