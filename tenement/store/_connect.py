"""Reaching a database server: the driver a URL needs, and what its failures mean.

``postgresql://`` (and the ``postgres://`` many hosts hand out) means psycopg 3, the driver
the ``postgresql`` extra installs and the .deb/.rpm venvs include; SQLAlchemy's own
default for that scheme is psycopg2, which tenement does not ship. A driver that cannot
be imported, and a server that cannot be reached, become one sentence each: which
database, where, what to do. Passwords never appear in them.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any

from tenement.store.errors import DatabaseUnavailable, DriverMissing, StoreError

if TYPE_CHECKING:
    import sqlalchemy as sa

#: scheme -> the SQLAlchemy driver tenement uses for it
DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}
#: seconds libpq waits for a server to answer before giving up on it; without a bound a
#: host that drops packets holds each attempt for the kernel's ~2 minutes of SYN retries
CONNECT_TIMEOUT = 10
#: milliseconds a statement's bytes may go unacknowledged before libpq's connection fails:
#: without it, a query sent just before a network partition waits out the kernel's
#: ~15 minutes of retransmissions, and a fleet node could not rejoin once the network
#: is back (a single host's outage ends sooner too)
TCP_USER_TIMEOUT_MS = 10_000
#: driver module -> what to ``pip install`` for it
_PIP_NAMES = {"psycopg": "'tenement-py[postgresql]'", "psycopg2": "psycopg2-binary"}

# greedy: a password with an unencoded "@" in it is hidden whole (over-hiding is fine)
_SECRET_IN_URL = re.compile(r"(://[^:/@?#\s]*:)\S*@")
_SECRET_IN_QUERY = re.compile(r"([?&]password=)[^&\s]*", re.IGNORECASE)


def redact(text: str, password: str | None = None) -> str:
    """``text`` with any ``user:password@`` or ``password=`` of a URL in it, and
    ``password``, hidden."""
    text = _SECRET_IN_QUERY.sub(r"\1***", _SECRET_IN_URL.sub(r"\1***@", text))
    if password:
        text = text.replace(password, "***")
    return text


def parse_url(url: str) -> sa.URL:
    """``url`` as SQLAlchemy reads it, with tenement's default driver filled in.

    Raises:
        StoreError: the URL cannot be parsed (the message hides its password).
    """
    import sqlalchemy as sa

    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        raise StoreError(
            f"database_url {redact(url)!r} is not a database URL; write it as "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE (docs/configuration.md)"
        ) from None
    driver = DEFAULT_DRIVERS.get(parsed.drivername)
    return parsed if driver is None else parsed.set(drivername=driver)


def display(url: sa.URL) -> str:
    """``url`` for messages and logs: its password hidden, in the user part or the query
    (libpq takes ``?password=`` too)."""
    return redact(url.render_as_string(hide_password=True))


def connect_args(url: sa.URL) -> dict[str, Any]:
    """Keyword arguments for the driver's ``connect()``: a bounded connect and bounded
    statements for libpq (each unless the URL sets it)."""
    if url.get_driver_name() not in ("psycopg", "psycopg2"):
        return {}
    bounds = {"connect_timeout": CONNECT_TIMEOUT, "tcp_user_timeout": TCP_USER_TIMEOUT_MS}
    return {key: value for key, value in bounds.items() if key not in url.query}


def driver_missing(url: sa.URL, exc: ImportError) -> DriverMissing:
    """The error for a driver of ``url`` that failed to import with ``exc``."""
    module = (exc.name or "").partition(".")[0] or url.get_driver_name()
    spec = _PIP_NAMES.get(module, module)
    # ModuleNotFoundError says nothing more than the name; another ImportError (psycopg
    # without a libpq to load) says what it lacks
    detail = "" if isinstance(exc, ModuleNotFoundError) else str(exc).splitlines()[0]
    return DriverMissing(
        url.get_backend_name(), module, f"{sys.executable} -m pip install {spec}", detail
    )


def where(url: sa.URL) -> str:
    """``database "ten" at db.example:5432 as user ten``: never the password."""
    host = url.host or url.query.get("host")
    if isinstance(host, tuple):
        host = ",".join(host)
    port = url.port or url.query.get("port") or 5432
    if host is None:
        place = f"the local socket (port {port})"
    elif str(host).startswith("/"):
        place = f"the socket in {host} (port {port})"
    else:
        place = f"{host}:{port}"
    user = f" as user {url.username}" if url.username else ""
    return f'{url.get_backend_name()} database "{url.database or ""}" at {place}{user}'


#: (what the driver says, in lower case; our reason; what to do; may waiting help)
_CAUSES: tuple[tuple[str, str, str, bool], ...] = (
    (
        "password authentication failed",
        "the password was refused",
        "check the user and password in database_url",
        False,
    ),
    (
        "no password supplied",
        "the server asks for a password and none was given",
        "put it in database_url (postgresql://USER:PASSWORD@HOST/DB, or ?passfile=FILE)",
        False,
    ),
    (
        "does not exist",
        "",  # the driver's own words name the missing role or database
        "create it (docs/configuration.md, PostgreSQL) or fix the name in database_url",
        False,
    ),
    (
        "no encryption",
        "the server accepts only TLS connections from here",
        "add ?sslmode=require (or verify-full) to database_url",
        False,
    ),
    (
        "no pg_hba.conf entry",
        "the server's pg_hba.conf does not let this host, user and database in",
        "add a line for them to pg_hba.conf and reload PostgreSQL",
        False,
    ),
    (
        "server does not support ssl",
        "database_url asks for TLS, which the server does not offer",
        "enable ssl on the server, or change sslmode in database_url",
        False,
    ),
    (
        "certificate",
        "the server's TLS certificate was not accepted",
        "set sslrootcert in database_url to the CA that signed it",
        False,
    ),
    (
        "starting up",
        "the database server is starting up",
        "wait for it",
        True,
    ),
    (
        "too many clients",
        "the server has no connection slots left",
        "raise max_connections or close other clients",
        True,
    ),
)


def _core(message: str) -> str:
    """The words that matter in a libpq message: the server's after ``FATAL:``, else the
    cause after the last ``failed:`` of its first line (its second line is libpq's guess)."""
    lines = message.strip().splitlines() or [""]
    first = lines[0]
    if "FATAL:" in message:
        return message.rpartition("FATAL:")[2].strip().splitlines()[0]
    return first.rpartition("failed: ")[2].strip() or first


def connect_failed(url: sa.URL, original: BaseException) -> DatabaseUnavailable:
    """What a failed connect to ``url`` means, from the driver's exception ``original``."""
    said = redact(" ".join(str(original).split()), url.password and str(url.password))
    lowered = said.lower()
    reason = _core(redact(str(original), url.password and str(url.password)))
    for clue, cause, hint, transient in _CAUSES:
        if clue in lowered:
            return DatabaseUnavailable(where(url), cause or reason, hint, transient=transient)
    # refused, no socket, a timeout, a name not (yet) resolving: the server or the network
    # is not up yet, which waiting may mend
    return DatabaseUnavailable(
        where(url),
        reason,
        "is the database server running and reachable from here?",
        transient=True,
    )
