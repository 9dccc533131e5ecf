"""The keys that say which user tenants run as: ``[service.X] user``,
``[settings] tenant_uids`` and ``tenant_users``."""

from __future__ import annotations

import pwd
from pathlib import Path

import pytest

from tenement.config import Config, ConfigError, parse_config

SOURCE = Path("/etc/tenement/tenement.toml")


def parse(text: str) -> Config:
    return parse_config(text, source=SOURCE, cwd=Path("/work/dir"))


def an_existing_user() -> str:
    """A non-root user of this host (``nobody`` on most)."""
    for entry in pwd.getpwall():
        if entry.pw_uid != 0:
            return entry.pw_name
    pytest.skip("no user but root on this host")


def test_defaults() -> None:
    config = parse('[service.a]\ncommand = "x"\n')
    assert config.services["a"].user is None
    assert config.settings.tenant_uids == (61184, 65519)
    assert config.settings.tenant_users is True


def test_an_existing_user_and_a_range_are_read() -> None:
    name = an_existing_user()
    config = parse(
        f'[settings]\ntenant_uids = "70000-70009"\ntenant_users = false\n'
        f'[service.a]\ncommand = "x"\nuser = "{name}"\n'
    )
    assert config.services["a"].user == name
    assert config.settings.tenant_uids == (70000, 70009)
    assert config.settings.tenant_users is False


@pytest.mark.parametrize(
    ("text", "line", "table", "key", "message"),
    [
        pytest.param(
            '[service.notes]\ncommand = "x"\nuser = "nosuchuser"\n',
            3,
            "service.notes",
            "user",
            'no user "nosuchuser" on this host; create it (useradd --system nosuchuser) or '
            "remove the key to run the service as a uid of its own from [settings] tenant_uids",
            id="unknown-user",
        ),
        pytest.param(
            '[service.notes]\ncommand = "x"\nuser = "root"\n',
            3,
            "service.notes",
            "user",
            'user "root" is root (uid 0): a tenant may not run as root',
            id="root",
        ),
        pytest.param(
            '[settings]\ntenant_uids = "61184"\n',
            2,
            "settings",
            "tenant_uids",
            'expected a uid range "FIRST-LAST" (e.g. "61184-65519"), got "61184"',
            id="not-a-range",
        ),
        pytest.param(
            '[settings]\ntenant_uids = "0-100"\n',
            2,
            "settings",
            "tenant_uids",
            'expected 1 <= FIRST <= LAST <= 2147483647 (uid 0 is root), got "0-100"',
            id="holds-root",
        ),
        pytest.param(
            '[settings]\ntenant_uids = "65519-61184"\n',
            2,
            "settings",
            "tenant_uids",
            'expected 1 <= FIRST <= LAST <= 2147483647 (uid 0 is root), got "65519-61184"',
            id="reversed",
        ),
    ],
)
def test_invalid_user_settings_name_file_line_table_and_key(
    text: str, line: int, table: str, key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    error = caught.value
    assert str(error) == f"{SOURCE}:{line}: [{table}] {key}: {message}"
    assert (error.table, error.key) == (table, key)
