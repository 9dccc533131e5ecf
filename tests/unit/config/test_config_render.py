"""Templates ({name} {id} {data_dir} {socket} {port}), per-tenant values, JSON form."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from tenement.config import (
    Service,
    Settings,
    config_as_dict,
    parse_config,
    render,
)

VALUES = {
    "name": "notes",
    "id": "alice",
    "data_dir": Path("/srv/t"),
    "socket": "/run/notes-alice.sock",
    "port": 30001,
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param("{name}-{id}", "notes-alice", id="name-and-id"),
        pytest.param("{data_dir}/{name}/{id}", "/srv/t/notes/alice", id="instance-dir"),
        pytest.param("--socket={socket}", "--socket=/run/notes-alice.sock", id="socket"),
        pytest.param("127.0.0.1:{port}", "127.0.0.1:30001", id="port"),
        pytest.param("{other} {NAME} {{id}}", "{other} {NAME} {alice}", id="others-untouched"),
        pytest.param("{id}{id}", "alicealice", id="every-occurrence"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, **VALUES) == expected


def test_render_without_port_is_empty() -> None:
    assert render("port={port}", **{**VALUES, "port": None}) == "port="


def test_render_goes_in_the_reference_order() -> None:
    # Plain replacement in order: a tenant id that spells a later variable gets filled.
    assert render("{id}", **{**VALUES, "id": "{port}"}) == "30001"
    assert render("{port}", **{**VALUES, "id": "{port}"}) == "30001"
    assert render("{port}", **{**VALUES, "port": None, "socket": "{name}"}) == ""
    assert render("{socket}", **{**VALUES, "socket": "{name}"}) == "{name}"


def test_socket_gets_only_name_and_id() -> None:
    service = Service(name="notes", command="x", socket="{data_dir}/{name}-{id}-{port}.sock")
    assert service.socket_path("alice") == "{data_dir}/notes-alice-{port}.sock"
    assert Service(name="notes", command="x").socket_path("bob") == "/tmp/tenement/notes-bob.sock"


def test_instance_dir_is_data_dir_name_id() -> None:
    service = Service(name="notes", command="x")
    assert service.instance_dir(Path("/srv/t"), "alice") == Path("/srv/t/notes/alice")


@pytest.mark.parametrize(
    ("database_url", "expected"),
    [
        pytest.param(None, "sqlite:////srv/t/tenement.db", id="default-sqlite-in-data-dir"),
        pytest.param("sqlite:///{data_dir}/other.db", "sqlite:////srv/t/other.db", id="template"),
        pytest.param(
            "postgresql://ten@127.0.0.1/ten", "postgresql://ten@127.0.0.1/ten", id="verbatim"
        ),
    ],
)
def test_database_url(database_url: str | None, expected: str) -> None:
    settings = Settings(data_dir=Path("/srv/t"), database_url=database_url)
    assert settings.database_url_or_default() == expected


def test_config_as_dict_is_json_with_every_field() -> None:
    config = parse_config(
        '[service.a]\ncommand = "x"\n[[service.a.mounts]]\nsource = "/s"\ndestination = "/d"\n'
        '[instances]\na = ["t"]\n',
        source=Path("/etc/tenement.toml"),
        cwd=Path("/w"),
    )
    data = json.loads(json.dumps(config_as_dict(config)))

    assert set(data) == {"settings", "services", "instances", "routing", "source"}
    assert set(data["settings"]) == {f.name for f in attrs.fields(Settings)}
    assert set(data["services"]["a"]) == {f.name for f in attrs.fields(Service)}
    assert data["settings"]["data_dir"] == "/w/tenement-data"
    assert data["services"]["a"]["mounts"] == [
        {"source": "/s", "destination": "/d", "readonly": False}
    ]
    assert data["instances"] == {"a": ["t"]}
    assert data["source"] == "/etc/tenement.toml"
