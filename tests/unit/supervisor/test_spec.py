"""build_spec: templates, command splitting, the tenant's environment, log paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenement.config import Service
from tenement.supervisor.process import SpawnError
from tenement.supervisor.spec import build_spec, log_paths, scrub_environ, socket_path

DATA = Path("/srv/data")
LOGS = Path("/srv/data/logs")


def spec_of(service: Service, *, port: int | None = 30001, environ: dict | None = None):
    return build_spec(
        service, "alice", data_dir=DATA, port=port, environ=environ or {}, log_dir=LOGS
    )


def test_command_is_interpolated_and_shell_split() -> None:
    svc = Service(
        name="notes",
        command="./app --name '{name} {id}' --port {port} --data {data_dir}/{id} --sock {socket}",
    )
    spec = spec_of(svc)
    assert spec.argv == (
        "./app",
        "--name",
        "notes alice",
        "--port",
        "30001",
        "--data",
        "/srv/data/alice",
        "--sock",
        "/tmp/tenement/notes-alice.sock",
    )


def test_args_given_use_the_command_verbatim_as_the_program() -> None:
    svc = Service(name="notes", command="/opt/my app", args=("--id", "{id} x", "{port}"))
    assert spec_of(svc, port=None).argv == ("/opt/my app", "--id", "alice x", "")


def test_templates_are_replaced_in_the_reference_order() -> None:
    # {name} is replaced before {id}: a tenant id holding "{name}" text is not re-expanded,
    # but a service name holding "{id}" is (plain string replace, in order)
    svc = Service(name="n{id}", command="run {name}")
    assert spec_of(svc).argv == ("run", "nalice")


def test_socket_gets_only_name_and_id() -> None:
    svc = Service(name="notes", command="app", socket="/run/{name}/{id}-{port}.sock")
    assert socket_path(svc, "alice") == "/run/notes/alice-{port}.sock"
    assert spec_of(svc).env["SOCKET_PATH"] == "/run/notes/alice-{port}.sock"


def test_environment_is_scrubbed_then_configured_then_port_and_socket() -> None:
    environ = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "LISTEN_FDS": "2",
        "LISTEN_PID": "1",
        "LISTEN_FDNAMES": "http:admin",
        "NOTIFY_SOCKET": "/run/systemd/notify",
        "WATCHDOG_USEC": "30000000",
        "WATCHDOG_PID": "1",
        "JOURNAL_STREAM": "8:1234",
        "FDSTORE": "16",
        "INVOCATION_ID": "abc",
        "CREDENTIALS_DIRECTORY": "/run/credentials/tenement.service",
        "STATE_DIRECTORY": "/var/lib/tenement",
        "TENEMENT_TOKEN": "secret",
        "TENEMENT_CONFIG": "/etc/tenement.toml",
        "PORT": "8080",
    }
    svc = Service(
        name="notes",
        command="app",
        env={
            "DATA_DIR": "{data_dir}/{id}",
            "HOME": "/home/{id}",
            "PORT": "1",
            "JOURNAL_STREAM": "x",
        },
    )
    env = spec_of(svc, environ=environ).env
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/alice",
        "DATA_DIR": "/srv/data/alice",
        "JOURNAL_STREAM": "x",  # set on purpose by the service: kept
        "PORT": "30001",  # the allocated port wins over inherited and configured values
        "SOCKET_PATH": "/tmp/tenement/notes-alice.sock",
    }


def test_no_port_means_no_PORT_variable_even_if_inherited() -> None:
    env = spec_of(Service(name="notes", command="app"), port=None, environ={"PORT": "80"}).env
    assert env["PORT"] == "80"  # inherited, as the reference: only an allocated port overrides
    env = spec_of(Service(name="notes", command="app"), port=None).env
    assert "PORT" not in env


def test_scrub_leaves_similar_names_alone() -> None:
    kept = {"LISTENER": "x", "MY_NOTIFY_SOCKET": "y", "WATCHDOG": "z"}
    assert scrub_environ({**kept, "LISTEN_FDS": "1"}) == kept


def test_spec_carries_workdir_limits_isolation_and_log_files() -> None:
    svc = Service(
        name="notes",
        command="app",
        workdir="/srv/notes",
        isolation="process",
        memory_limit_mb=128,
        cpu_shares=200,
    )
    spec = spec_of(svc)
    assert spec.cwd == "/srv/notes"
    assert (spec.isolation, spec.memory_limit_mb, spec.cpu_shares) == ("process", 128, 200)
    assert spec.cgroup_name == "notes:alice"
    assert (spec.stdout_path, spec.stderr_path) == log_paths(LOGS, "notes", "alice")
    assert spec.stdout_path == LOGS / "notes" / "alice.stdout.log"
    assert spec.stderr_path == LOGS / "notes" / "alice.stderr.log"


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("app 'unbalanced", "cannot split the command of [service.notes]"),
        ("   ", "[service.notes] has an empty command"),
    ],
    ids=["unbalanced-quote", "empty"],
)
def test_bad_commands_are_clear_errors(command: str, message: str) -> None:
    with pytest.raises(SpawnError, match=message.replace("[", r"\[").replace("]", r"\]")):
        spec_of(Service(name="notes", command=command))


def test_unsupported_isolation_is_an_error_naming_the_alternatives() -> None:
    with pytest.raises(
        SpawnError,
        match=r"\[service.notes\]: isolation 'firecracker' is not supported by this build",
    ):
        spec_of(Service(name="notes", command="app", isolation="firecracker"))
    with pytest.raises(SpawnError, match='set isolation = "process" or "namespace"'):
        spec_of(Service(name="notes", command="app", isolation="firecracker"))
