"""Which tenement.toml load_config reads, and which data dir it uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenement.config import (
    SAMPLE_CONFIG,
    ConfigError,
    ConfigNotFound,
    load_config,
    parse_config,
)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """tmp/project/tenement.toml (service 'walked'), cwd tmp/project/sub/deeper,
    tmp/explicit.toml (service 'explicit'), tmp/from_env.toml (service 'env')."""
    project = tmp_path / "project"
    (project / "sub" / "deeper").mkdir(parents=True)
    (project / "tenement.toml").write_text('[service.walked]\ncommand = "x"\n')
    (tmp_path / "explicit.toml").write_text('[service.explicit]\ncommand = "x"\n')
    (tmp_path / "from_env.toml").write_text('[service.env]\ncommand = "x"\n')
    return tmp_path


@pytest.mark.parametrize(
    ("path", "environ", "expected"),
    [
        pytest.param(
            "explicit.toml",
            {"TENEMENT_CONFIG": "from_env.toml"},
            "explicit",
            id="explicit-path-wins",
        ),
        pytest.param(None, {"TENEMENT_CONFIG": "from_env.toml"}, "env", id="env-before-walk"),
        pytest.param(None, {"TENEMENT_CONFIG": ""}, "walked", id="empty-env-is-unset"),
        pytest.param(None, {}, "walked", id="walks-up-from-cwd"),
        pytest.param("project", {}, "walked", id="explicit-directory"),
    ],
)
def test_discovery_order(
    tree: Path, path: str | None, environ: dict[str, str], expected: str
) -> None:
    environ = {key: str(tree / value) if value else value for key, value in environ.items()}
    explicit = tree / path if path else None
    config = load_config(path=explicit, environ=environ, cwd=tree / "project" / "sub" / "deeper")
    assert list(config.services) == [expected]


def test_nearest_file_wins_when_walking_up(tree: Path) -> None:
    (tree / "project" / "sub" / "tenement.toml").write_text('[service.near]\ncommand = "x"\n')
    config = load_config(environ={}, cwd=tree / "project" / "sub" / "deeper")
    assert list(config.services) == ["near"]
    assert config.source == tree / "project" / "sub" / "tenement.toml"


def test_relative_explicit_path_is_relative_to_cwd(tree: Path) -> None:
    config = load_config(path=Path("../explicit.toml"), environ={}, cwd=tree / "project")
    assert config.source == tree / "explicit.toml"


@pytest.mark.parametrize(
    ("path", "environ", "origin"),
    [
        pytest.param("missing.toml", {}, "--config", id="explicit"),
        pytest.param(None, {"TENEMENT_CONFIG": "missing.toml"}, "TENEMENT_CONFIG", id="env"),
    ],
)
def test_named_file_that_is_missing_says_which_and_from_where(
    tree: Path, path: str | None, environ: dict[str, str], origin: str
) -> None:
    environ = {key: str(tree / value) for key, value in environ.items()}
    with pytest.raises(ConfigNotFound) as caught:
        load_config(path=tree / path if path else None, environ=environ, cwd=tree / "project")
    message = str(caught.value)
    assert message.startswith(f"Config file not found: {tree / 'missing.toml'} (from {origin})")
    assert SAMPLE_CONFIG in message
    assert caught.value.exit_code == 2


def test_nothing_found_says_where_it_looked_and_shows_a_sample(tmp_path: Path) -> None:
    with pytest.raises(ConfigNotFound) as caught:
        load_config(environ={}, cwd=tmp_path)
    assert str(caught.value) == (
        f"No tenement.toml found in {tmp_path} or any parent directory, and neither --config "
        f"nor TENEMENT_CONFIG is set. Create one with:\n\n{SAMPLE_CONFIG}"
    )
    assert isinstance(caught.value, ConfigError)
    assert isinstance(caught.value, FileNotFoundError)


def test_the_sample_is_a_valid_config() -> None:
    config = parse_config(SAMPLE_CONFIG, cwd=Path("/"))
    assert config.warnings == ()
    assert config.unsupported() == ()


# -- data_dir precedence: --data-dir > TENEMENT_DATA_DIR > toml > ./tenement-data ----------


@pytest.mark.parametrize(
    ("flag", "env", "toml", "expected"),
    [
        pytest.param("/flag", "/env", "/toml", "/flag", id="flag-wins"),
        pytest.param(None, "/env", "/toml", "/env", id="env-beats-toml"),
        pytest.param(None, None, "/toml", "/toml", id="toml-beats-default"),
        pytest.param(None, None, None, "CWD/tenement-data", id="default"),
        pytest.param(None, None, "data", "CWD/data", id="relative-toml-is-cwd-relative"),
        pytest.param("rel", None, None, "CWD/rel", id="relative-flag-is-cwd-relative"),
        pytest.param(None, "", "/toml", "/toml", id="empty-env-is-unset"),
    ],
)
def test_data_dir_precedence(
    tmp_path: Path, flag: str | None, env: str | None, toml: str | None, expected: str
) -> None:
    project = tmp_path / "project"
    cwd = project / "sub"
    cwd.mkdir(parents=True)
    text = f'[settings]\ndata_dir = "{toml}"\n' if toml else ""
    (project / "tenement.toml").write_text(text)
    environ = {} if env is None else {"TENEMENT_DATA_DIR": env}

    config = load_config(environ=environ, cwd=cwd, data_dir=Path(flag) if flag else None)

    assert config.settings.data_dir == Path(expected.replace("CWD", str(cwd)))


@pytest.mark.parametrize(
    ("flag", "env", "origin"),
    [
        pytest.param("~/data", None, "--data-dir", id="flag"),
        pytest.param(None, "~/data", "TENEMENT_DATA_DIR", id="env"),
    ],
)
def test_tilde_data_dir_is_rejected(
    tmp_path: Path, flag: str | None, env: str | None, origin: str
) -> None:
    (tmp_path / "tenement.toml").write_text("")
    environ = {} if env is None else {"TENEMENT_DATA_DIR": env}
    with pytest.raises(ConfigError) as caught:
        load_config(environ=environ, cwd=tmp_path, data_dir=Path(flag) if flag else None)
    assert str(caught.value) == (
        f"{origin} path \"~/data\" starts with '~'. Tilde is not expanded; pass an absolute "
        "path (e.g. $HOME/.local/share/tenement) instead."
    )
    assert caught.value.exit_code == 2


def test_a_directory_named_tenement_toml_is_not_a_config(tmp_path: Path) -> None:
    (tmp_path / "tenement.toml").mkdir()
    with pytest.raises(ConfigNotFound):
        load_config(environ={}, cwd=tmp_path)
