"""Client commands start fast: registration is lazy and nothing heavy is imported."""

import gc
import socket
import subprocess
import sys
import threading
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tenement.cli import commands, ten

#: what a client command must not import: the server's stack, and attrs (30-40 ms here)
HEAVY = (
    "sqlalchemy",
    "alembic",
    "trio",
    "anyio",
    "hypercorn",
    "h2",
    "httpx",
    "httpcore",
    "attr",
    "attrs",
)

_PROBE = """
import sys
import threading
from pathlib import Path
from click.testing import CliRunner
from tenement.cli import ten
result = CliRunner().invoke(ten, sys.argv[1:], obj=None)
import tenement.cli.client  # what every server-talking command loads
heavy = {heavy!r}
print(sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy)))
"""


def _heavy_modules_after(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("args", [("--help",), ("ps", "--help"), ("spawn", "--help")])
def test_client_commands_import_no_store_server_or_async_stack(args: tuple[str, ...]) -> None:
    assert _heavy_modules_after(*args) == "[]"


def test_ps_against_a_closed_port_imports_nothing_heavy() -> None:
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['ten', 'ps', '--server', 'http://127.0.0.1:9', '--token', 'x']\n"
        "try:\n"
        "    runpy.run_module('tenement', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert "Failed to connect" in out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_root_help_lists_every_command_with_its_real_short_help() -> None:
    result = CliRunner().invoke(ten, ["--help"])
    assert result.exit_code == 0
    for command in commands.all_commands():
        assert isinstance(command, commands.LazyCommand)
        real = command.real()
        assert command.name == real.name
        assert command.hidden == real.hidden
        assert command.get_short_help_str() == real.get_short_help_str()
        if not real.hidden:
            assert f"  {real.name} " in result.output


def test_every_registered_command_is_in_the_table() -> None:
    names = {command.name for command in commands.all_commands()}
    assert set(ten.commands) == names
    assert len(names) == 25  # `ten nodes`, `ten move`, `ten drain`, `ten undrain` (the fleet)


def test_subcommand_help_and_groups_come_from_the_real_command() -> None:
    result = CliRunner().invoke(ten, ["db", "--help"])
    assert result.exit_code == 0
    assert "upgrade" in result.output
    db = ten.commands["db"]
    assert isinstance(db, commands.LazyCommand)
    assert isinstance(db.real(), click.Group)


def _modules_after_running(tmp_path: Path, *args: str) -> set[str]:
    """Every module a real `ten ARGS` process (cwd ``tmp_path``) had imported when done."""
    probe = (
        "import sys, runpy\n"
        f"sys.argv = ['ten', *{args!r}]\n"
        "try:\n"
        "    runpy.run_module('tenement', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print('MODULES', *sorted(sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    return set(out.stdout.splitlines()[-1].split()[1:])


#: what `ten config` must not load: the store, the HTTP client, the reload diff and record
NOT_FOR_CONFIG = (
    *(name for name in HEAVY if not name.startswith("attr")),  # config classes are attrs
    "http.client",
    "tenement.store",
    "tenement.cli.client",
)


def test_config_imports_only_the_config_reader(tmp_path: Path) -> None:
    (tmp_path / "tenement.toml").write_text('[service.api]\ncommand = "./api"\n')
    loaded = _modules_after_running(tmp_path, "config")
    assert "tenement.config._parse" in loaded  # the probe really ran the command
    assert sorted(set(NOT_FOR_CONFIG) & loaded) == []


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_imports_no_click(tmp_path: Path, flag: str) -> None:
    loaded = _modules_after_running(tmp_path, flag)
    assert "tenement._version" in loaded
    assert sorted({"click", "typing", "tenement.cli.root"} & loaded) == []


#: what a token command on a database already at head must not load: the schema
#: classifier and migrations run on SQLAlchemy and Alembic (~140 ms and more to import)
NOT_FOR_TOKENS_AT_HEAD = ("sqlalchemy", "alembic", "trio", "http.client")


def test_token_commands_on_a_database_at_head_import_no_sqlalchemy(tmp_path: Path) -> None:
    (tmp_path / "tenement.toml").write_text(f'[settings]\ndata_dir = "{tmp_path / "data"}"\n')
    first = _modules_after_running(tmp_path, "token-gen")
    assert "alembic" in first  # an empty database is created at head through the migrations
    for args in (
        ("token-gen",),
        ("token-gen", "--tenant", "acme"),
        ("token-list",),
        ("token-revoke", "1"),
    ):
        loaded = _modules_after_running(tmp_path, *args)
        assert "tenement.store.tokens" in loaded, args  # the probe really ran the command
        assert sorted(set(NOT_FOR_TOKENS_AT_HEAD) & loaded) == [], args


def test_a_command_runs_with_the_collector_on_and_the_start_up_frozen(tmp_path: Path) -> None:
    """The cyclic collector is off while `ten` starts; a command (serve runs for days)
    must get it back, with what the start made frozen out of its scans."""
    (tmp_path / "tenement.toml").write_text('[service.api]\ncommand = "./api"\n')
    probe = (
        "import gc, sys\n"
        "sys.argv = ['ten', 'config']\n"
        "from tenement.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print('GC', gc.isenabled(), gc.get_freeze_count() > 1000)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert "Services:" in out.stdout  # the command really ran
    assert out.stdout.splitlines()[-1] == "GC True True"


def _answer_once(listener: socket.socket, answer: bytes) -> None:
    conn, _ = listener.accept()
    with conn:
        head = b""
        while b"\r\n\r\n" not in head and (chunk := conn.recv(65536)):
            head += chunk
        conn.sendall(answer)


def test_ps_reads_a_plain_answer_without_http_client(tmp_path: Path) -> None:
    """http.client (and the email package under it) is ~20 ms of every server-talking
    command; a plain-http answer wire takes whole needs none of it."""
    body = b'[{"id": "api:a", "service": "api", "status": "running"}]'
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        server = threading.Thread(target=_answer_once, args=(listener, answer), daemon=True)
        server.start()
        port = listener.getsockname()[1]
        loaded = _modules_after_running(
            tmp_path, "ps", "--server", f"http://127.0.0.1:{port}", "--token", "x"
        )
        server.join(timeout=10)
    assert "tenement.cli.exchange" in loaded  # the probe really talked to the server
    assert sorted({"http.client", "email", "ssl"} & loaded) == []


def test_a_command_run_in_process_freezes_nothing() -> None:
    """The start-up freeze is `ten`'s own (tenement.cli.main): a process that runs the
    group itself, collector on, keeps its garbage collectable."""
    before = gc.get_freeze_count()
    result = CliRunner().invoke(ten, ["ps", "--help"])
    assert result.exit_code == 0
    assert gc.isenabled()
    assert gc.get_freeze_count() == before
