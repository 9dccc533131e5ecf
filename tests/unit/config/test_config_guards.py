"""Config mistakes that used to act: a file that crashed the parser, values nothing bounded.

Each case was accepted (or crashed `ten config` with a traceback) before these checks.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tenement.config import (
    MAX_WORKERS,
    Config,
    ConfigError,
    load_config,
    parse_config,
)
from tenement.config._limits import MAX_KEY_PARTS, deepest_dotted_key

SOURCE = Path("/etc/tenement/tenement.toml")
SERVICE = '[service.notes]\ncommand = "python3 app.py"\n'


def parse(text: str) -> Config:
    return parse_config(text, source=SOURCE, cwd=Path("/work"))


@pytest.mark.parametrize(
    ("health", "named"),
    [
        pytest.param("/h\r\nX-Injected: 1", "a carriage return (CR)", id="crlf"),
        pytest.param("/h\nGET /admin", "a line feed (LF)", id="lf"),
        pytest.param("/h\x00", "the character U+0000", id="nul"),
        pytest.param("/h\x7f", "the character U+007F", id="del"),
        pytest.param("/h\tx", "the character U+0009", id="tab"),
        pytest.param("/my health", "a space", id="space"),
        pytest.param("/gesundheit\u00e9", "the character U+00E9", id="non-ascii"),
    ],
)
def test_health_path_with_a_control_character_is_an_error(health: str, named: str) -> None:
    text = SERVICE + f"health = {health!r}\n".replace("'", '"')
    # TOML's basic strings take the escapes Python's repr writes (\r, \n, \x00 as \u0000)
    text = text.replace("\\x00", "\\u0000").replace("\\x7f", "\\u007f")
    text = text.replace("\\t", "\\u0009").replace("\\xe9", "\\u00e9")
    with pytest.raises(ConfigError) as caught:
        parse(text)
    error = caught.value
    assert (error.path, error.line, error.table, error.key) == (
        SOURCE,
        3,
        "service.notes",
        "health",
    )
    assert str(error).startswith(f"{SOURCE}:3: [service.notes] health: the HTTP path ")
    assert named in str(error)
    assert "\r" not in str(error) and "\n" not in str(error)


def test_health_path_must_still_start_with_a_slash() -> None:
    with pytest.raises(ConfigError, match=r"\[service.notes\] health: expected an HTTP path"):
        parse(SERVICE + 'health = "health"\n')


@pytest.mark.parametrize("path", ["/", "/health", "/a/b?probe=1&x=%20y", "/~user/ok"])
def test_ordinary_health_paths_are_accepted(path: str) -> None:
    assert parse(SERVICE + f'health = "{path}"\n').services["notes"].health == path


@pytest.mark.parametrize("workers", [0, 1, 8, MAX_WORKERS])
def test_workers_within_bounds_are_accepted(workers: int) -> None:
    assert parse(f"[settings]\nworkers = {workers}\n").settings.workers == workers


@pytest.mark.parametrize("workers", [MAX_WORKERS + 1, 100000])
def test_workers_past_the_bound_are_an_error(workers: int) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(f"[settings]\nworkers = {workers}\n")
    assert str(caught.value) == (
        f"{SOURCE}:2: [settings] workers: expected 0 (one per CPU) to {MAX_WORKERS} "
        f"processes, got {workers}"
    )


def test_workers_flag_past_the_bound_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "tenement.toml").write_text(SERVICE)
    # the unusable --bind fails the start before any fork: a regression (no bound) must
    # not fork 100000 workers on the machine running the tests
    result = subprocess.run(
        [sys.executable, "-m", "tenement", "serve", "--workers", "100000", "--bind", "unusable"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert (
        f"Invalid value for '--workers': 100000 is more than {MAX_WORKERS} serving processes"
        in result.stderr
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "a = " + "[" * 100000 + "\n",
            f"{SOURCE}: invalid TOML: arrays or inline tables nested too deeply",
            id="nested-arrays",
        ),
        pytest.param(
            "a = " + "{b = " * 20000 + "\n",
            f"{SOURCE}: invalid TOML: arrays or inline tables nested too deeply",
            id="nested-inline-tables",
        ),
        pytest.param(
            SERVICE + "a" + ".a" * 100000 + " = 1\n",
            f"{SOURCE}:3: invalid TOML: a dotted key of 100001 parts",
            id="dotted-key",
        ),
        pytest.param(
            "[" + ".".join(["a"] * 100000) + "]\n",
            f"{SOURCE}:1: invalid TOML: a dotted key of 100000 parts",
            id="dotted-header",
        ),
    ],
)
def test_a_file_that_would_exhaust_the_parser_is_an_error(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert str(caught.value).startswith(expected)
    assert caught.value.exit_code == 2


def test_ten_config_on_a_deeply_nested_file_says_so_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "tenement.toml").write_text("a = " + "[" * 100000 + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "tenement", "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr == (
        f"Error: {tmp_path / 'tenement.toml'}: invalid TOML: arrays or inline tables nested "
        "too deeply for this parser; tenement.toml needs two levels at most\n"
    )


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        pytest.param("", 1, id="empty"),
        pytest.param('[service.notes.env]\nA = "x.y.z"\n', 3, id="dots-in-strings-skipped"),
        pytest.param('"a.b" . c . "d" = 1\n', 3, id="quoted-parts"),
        pytest.param("x = 1.5\ny = [1.5, 2.5]\n", 2, id="floats"),
        pytest.param('x = """\n.....\n"""\n', 1, id="multi-line-string"),
        pytest.param('x = "' + "a." * 1000 + "\n", 1, id="unterminated-string"),
    ],
)
def test_deepest_dotted_key(text: str, parts: int) -> None:
    assert deepest_dotted_key(text)[0] == parts


def test_a_key_of_as_many_parts_as_allowed_loads() -> None:
    key = ".".join(["a"] * MAX_KEY_PARTS)
    config = parse(f"[{key}]\n")
    assert [w.category for w in config.warnings] == ["unknown"]


@pytest.mark.parametrize("text", ["", "\n\n", "  \t\n"])
def test_an_empty_file_is_refused_when_asked(tmp_path: Path, text: str) -> None:
    path = tmp_path / "tenement.toml"
    path.write_text(text)
    # ten serve starts on an empty file, as the reference does...
    assert load_config(path=path, environ={}, cwd=tmp_path).services == {}
    # ...but a reload and `ten config --check` refuse it
    with pytest.raises(ConfigError) as caught:
        load_config(path=path, environ={}, cwd=tmp_path, refuse_empty=True)
    assert str(caught.value).startswith(f"{path} is empty ({len(text)} bytes): refused")
    assert caught.value.path == path


def test_a_file_of_comments_only_is_not_empty(tmp_path: Path) -> None:
    path = tmp_path / "tenement.toml"
    path.write_text("# no service yet\n")
    config = load_config(path=path, environ={}, cwd=tmp_path, refuse_empty=True)
    assert config.services == {}


def test_body_timeout_defaults_to_30_seconds_and_takes_a_number() -> None:
    assert parse("[settings]\n").settings.body_timeout == 30
    assert parse("[settings]\nbody_timeout = 2.5\n").settings.body_timeout == 2.5


@pytest.mark.parametrize("value", ["0", "-1", '"30s"'])
def test_body_timeout_must_be_a_positive_number(value: str) -> None:
    with pytest.raises(ConfigError, match=r"\[settings\] body_timeout"):
        parse(f"[settings]\nbody_timeout = {value}\n")


def test_database_start_timeout_defaults_to_60_seconds_and_0_means_try_once() -> None:
    assert parse("[settings]\n").settings.database_start_timeout == 60
    assert parse("[settings]\ndatabase_start_timeout = 0\n").settings.database_start_timeout == 0
    assert (
        parse("[settings]\ndatabase_start_timeout = 300\n").settings.database_start_timeout == 300
    )


@pytest.mark.parametrize("value", ["-1", '"60s"', "true", "nan"])
def test_database_start_timeout_must_be_a_number_of_seconds(value: str) -> None:
    with pytest.raises(ConfigError, match=r"\[settings\] database_start_timeout.*seconds"):
        parse(f"[settings]\ndatabase_start_timeout = {value}\n")
