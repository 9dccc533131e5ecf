"""tenement/store/_connect.py: the driver a URL gets, and what a failed connect means.

The driver's messages here are libpq's own words, as psycopg raises them; the real
failures are met in tests/integration/store/test_postgresql_cli.py.
"""

from __future__ import annotations

import pytest

from tenement.store import DatabaseUnavailable, StoreError
from tenement.store._connect import connect_args, connect_failed, display, parse_url, redact

URL = parse_url("postgresql://ten:S3cret@db.example:5433/tenement")


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u@h/d", "postgresql+psycopg"),
        ("postgres://u@h/d", "postgresql+psycopg"),
        ("postgresql+psycopg2://u@h/d", "postgresql+psycopg2"),
        ("sqlite:///x.db", "sqlite"),
    ],
)
def test_postgresql_urls_mean_psycopg_3_unless_they_name_a_driver(given: str, driver: str) -> None:
    assert parse_url(given).drivername == driver


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://ten:S3cret@h/d",
        "postgresql://ten@h/d?sslmode=require&password=S3cret",
        "postgresql://ten@h/d?PASSWORD=S3cret",
    ],
)
def test_display_hides_the_password_wherever_the_url_carries_it(url: str) -> None:
    shown = display(parse_url(url))
    assert "S3cret" not in shown and "***" in shown


def test_an_unparseable_url_is_refused_without_showing_its_password() -> None:
    with pytest.raises(StoreError, match=r"not a database URL") as caught:
        parse_url("postgresql://ten:S3cr@t@:port:/x")
    assert "S3cr" not in str(caught.value)


def test_redact_hides_a_password_it_is_given_anywhere_in_a_text() -> None:
    assert redact("FATAL: S3cret is wrong", "S3cret") == "FATAL: *** is wrong"


def _failed(message: str) -> DatabaseUnavailable:
    return connect_failed(URL, Exception(message))


@pytest.mark.parametrize(
    ("message", "reason", "hint", "transient"),
    [
        (
            'connection failed: connection to server at "10.0.0.5", port 5433 failed: '
            "Connection refused\n\tIs the server running on that host and accepting "
            "TCP/IP connections?",
            "Connection refused",
            "running and reachable",
            True,
        ),
        (
            'connection failed: connection to server at "10.0.0.5", port 5433 failed: '
            "timeout expired",
            "timeout expired",
            "running and reachable",
            True,
        ),
        (
            'connection failed: connection to server at "10.0.0.5", port 5433 failed: '
            "FATAL:  the database system is starting up",
            "starting up",
            "wait for it",
            True,
        ),
        (
            'connection failed: connection to server at "10.0.0.5", port 5433 failed: '
            'FATAL:  password authentication failed for user "ten"',
            "the password was refused",
            "check the user and password",
            False,
        ),
        (
            'connection failed: connection to server at "10.0.0.5", port 5433 failed: '
            'FATAL:  database "tenement" does not exist',
            'database "tenement" does not exist',
            "create it",
            False,
        ),
        (
            'connection failed: connection to server at "10.0.0.5", port 5433 failed: '
            'FATAL:  no pg_hba.conf entry for host "10.0.0.9", user "ten", database '
            '"tenement", no encryption',
            "accepts only TLS",
            "sslmode=require",
            False,
        ),
        (
            'connection failed: connection to server at "10.0.0.5", port 5433 failed: '
            "server does not support SSL, but SSL was required",
            "does not offer",
            "sslmode",
            False,
        ),
    ],
    ids=["refused", "timeout", "starting", "password", "no database", "tls", "no tls"],
)
def test_a_failed_connect_says_where_why_and_what_to_do(
    message: str, reason: str, hint: str, transient: bool
) -> None:
    error = _failed(message)
    assert error.where == 'postgresql database "tenement" at db.example:5433 as user ten'
    assert reason in error.reason
    assert hint in str(error)
    assert error.transient is transient
    assert "S3cret" not in str(error)


def test_a_driver_message_that_quotes_the_password_is_redacted() -> None:
    error = _failed("FATAL: something odd about S3cret")
    assert "S3cret" not in str(error)


def test_a_unix_socket_url_names_the_socket_directory() -> None:
    url = parse_url("postgresql://ten@/tenement?host=/run/postgresql&port=5434")
    assert connect_failed(url, Exception("x")).where == (
        'postgresql database "tenement" at the socket in /run/postgresql (port 5434) as user ten'
    )


def test_libpq_connections_get_a_bounded_connect_and_bounded_statements() -> None:
    """A statement sent into a network partition fails in 10 s, not the kernel's ~15
    minutes of retransmissions (a fleet node could not rejoin meanwhile)."""
    bounded = connect_args(parse_url("postgresql://ten@db.internal/tenement"))
    assert bounded == {"connect_timeout": 10, "tcp_user_timeout": 10_000}
    # the URL's own choice wins
    chosen = connect_args(parse_url("postgresql://ten@db/t?tcp_user_timeout=3000"))
    assert chosen == {"connect_timeout": 10}
    assert connect_args(parse_url("sqlite:///x.db")) == {}
