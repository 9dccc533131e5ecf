"""What each tenement.toml table may hold: one checker per key.

A checker takes the value tomllib produced and returns the finished value, or raises
:class:`Invalid` saying what the key allows.
"""

from __future__ import annotations

import math
import pwd
import re
from collections.abc import Callable
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from tenement.config._model import (
    ISOLATIONS,
    MAX_NODE_TIMEOUT,
    MAX_WORKERS,
    MIN_NODE_TIMEOUT,
    RESTART_POLICIES,
)
from tenement.shown import shown

TILDE_HINT = (
    "Tilde is not expanded; pass an absolute path (e.g. $HOME/.local/share/tenement) instead."
)


class Invalid(Exception):
    """A value is not what its key allows; the message says what is.

    ``subkey`` names the entry of a table value (``env``) that is wrong.
    """

    def __init__(self, message: str, subkey: str | None = None) -> None:
        super().__init__(message)
        self.subkey = subkey


# -- value checkers: value from tomllib -> finished value, or Invalid ------------------


def describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return f'the string "{value}"'
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime | date | time):
        return f"the date/time {value.isoformat()}"
    return repr(value)


def string(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {describe(value)}")
    if not value:
        raise Invalid("expected a non-empty string, got an empty one")
    return value


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {describe(value)}")
    return value


def number(value: Any, unit: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"expected a number of {unit} (e.g. 30), got {describe(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise Invalid(f"expected a finite number of {unit}, got {value}")
    if value < 0:
        raise Invalid(f"expected 0 or more {unit}, got {value}")
    return value


def seconds(value: Any) -> float:
    return float(number(value, "seconds"))


def positive_seconds(value: Any) -> float:
    result = seconds(value)
    if result == 0:
        raise Invalid("expected more than 0 seconds, got 0")
    return result


def count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"expected a whole number (e.g. 3), got {describe(value)}")
    if value < 0:
        raise Invalid(f"expected 0 or more, got {value}")
    return value


def port(value: Any) -> int:
    port = count(value)
    if not 1 <= port <= 65535:
        raise Invalid(f"expected a TCP port from 1 to 65535, got {port}")
    return port


def choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in options:
            raise Invalid(f"expected one of {', '.join(options)}; got {describe(value)}")
        return value

    return check


def health_path(value: Any) -> str:
    path = string(value)
    # the path goes into the request line of every health check: a CR or LF would end that
    # line early and let the rest pass as headers or a second request to the tenant
    bad = next((char for char in path if not "!" <= char <= "~"), None)
    if bad is not None:
        raise Invalid(
            f"the HTTP path {path!r} holds {_char_name(bad)}; a path holds only visible "
            "ASCII characters: percent-encode the others (a space is %20)"
        )
    if not path.startswith("/"):
        raise Invalid(f'expected an HTTP path starting with "/" (e.g. "/health"), got "{path}"')
    return path


def _char_name(char: str) -> str:
    names = {"\r": "a carriage return (CR)", "\n": "a line feed (LF)", " ": "a space"}
    return names.get(char, f"the character U+{ord(char):04X}")


def workers(value: Any) -> int:
    result = count(value)
    if result > MAX_WORKERS:
        raise Invalid(f"expected 0 (one per CPU) to {MAX_WORKERS} processes, got {result}")
    return result


def string_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Invalid(
            f'expected an array of strings (e.g. ["--port", "{{port}}"]), got {describe(value)}'
        )
    for item in value:
        if not isinstance(item, str):
            raise Invalid(f"expected an array of strings, but it holds {describe(item)}")
    return tuple(value)


def string_table(what: str) -> Callable[[Any], dict[str, str]]:
    def check(value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise Invalid(f"expected a table of {what}, got {describe(value)}")
        for key, item in value.items():
            if not isinstance(item, str):
                raise Invalid(
                    f'expected a string, got {describe(item)} (quote it: {key} = "...")', key
                )
        return dict(value)

    return check


def env_table(value: Any) -> dict[str, str]:
    env = string_table("environment variables")(value)
    for key in env:
        if not key or "=" in key or "\0" in key:
            raise Invalid(f"'{key}' is not a valid environment variable name", key)
    return env


def path(value: Any) -> Path:
    text = string(value)
    if text.startswith("~"):
        raise Invalid(f"path \"{text}\" starts with '~'. {TILDE_HINT}")
    return Path(text)


#: the highest uid a range may hold (65535 and 4294967295 mean "no user" to the kernel)
MAX_TENANT_UID = 2**31 - 1


def user_name(value: Any) -> str:
    """A user that exists on this host and is not root."""
    name = string(value)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise Invalid(
            f'no user "{name}" on this host; create it (useradd --system {name}) or remove '
            "the key to run the service as a uid of its own from [settings] tenant_uids"
        ) from None
    if entry.pw_uid == 0:
        raise Invalid(f'user "{name}" is root (uid 0): a tenant may not run as root')
    return name


def uid_range(value: Any) -> tuple[int, int]:
    """``"FIRST-LAST"``: uids from FIRST to LAST inclusive, 1 or more."""
    text = string(value)
    first, sep, last = text.partition("-")
    if not (sep and first.strip().isdigit() and last.strip().isdigit()):
        raise Invalid(f'expected a uid range "FIRST-LAST" (e.g. "61184-65519"), got "{text}"')
    low, high = int(first), int(last)
    if not 1 <= low <= high <= MAX_TENANT_UID:
        raise Invalid(
            f'expected 1 <= FIRST <= LAST <= {MAX_TENANT_UID} (uid 0 is root), got "{text}"'
        )
    return low, high


# -- schemas: key -> checker, one per table kind ----------------------------------------

SETTINGS: dict[str, Callable[[Any], Any]] = {
    "data_dir": path,
    "health_check_interval": positive_seconds,
    "max_restarts": count,
    "restart_window": seconds,
    "backoff_base_ms": count,
    "backoff_max_ms": count,
    "database_url": string,
    "database_start_timeout": seconds,
    "wake_any_id": boolean,
    "workers": workers,
    "tenant_uids": uid_range,
    "tenant_users": boolean,
    "body_timeout": positive_seconds,
}


def any_string(value: Any) -> str:
    """A string, empty or not (``ten serve`` says what is wrong with an empty email)."""
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {describe(value)}")
    return value


def acme_directory(value: Any) -> str:
    text = string(value)
    if not text.startswith(("https://", "http://")):
        raise Invalid(
            f'expected the ACME directory\'s URL (https://...), got "{text}"; e.g. '
            "https://acme-v02.api.letsencrypt.org/directory"
        )
    return text


def node_name(value: Any) -> str:
    """A fleet node's name: a host-name-like label, so that it reads well in logs."""
    name = string(value)
    if not NODE_NAME.fullmatch(name):
        raise Invalid(
            f'expected a node name of letters, digits, "-", "_" and "." (up to 63, '
            f'starting with a letter or digit, e.g. "web-1"), got "{name}"'
        )
    return name


NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def node_names(value: Any) -> tuple[str, ...]:
    """``[service.X] nodes``: the fleet nodes an app is installed on, at least one."""
    example = 'e.g. nodes = ["web-1", "web-2"]'
    if not isinstance(value, list):
        raise Invalid(f"expected an array of fleet node names ({example}), got {describe(value)}")
    if not value:
        raise Invalid(
            f"expected at least one fleet node name ({example}); an empty list would let the "
            "service run nowhere: remove the key to let it run on any node"
        )
    names = []
    for item in value:
        try:
            names.append(node_name(item))
        except Invalid as exc:
            raise Invalid(f"{exc} in the array") from None
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise Invalid(f"node {', '.join(repeated)} is listed more than once ({example})")
    return tuple(names)


TLS: dict[str, Callable[[Any], Any]] = {
    "enabled": boolean,
    "acme_email": any_string,
    "domain": string,
    "cache_dir": path,
    "staging": boolean,
    "https_port": port,
    "http_port": port,
    "dns_provider": string,
    "directory": acme_directory,
    "challenge": choice(("tls-alpn-01", "http-01")),
}
SERVICE: dict[str, Callable[[Any], Any]] = {
    "command": string,
    "args": string_list,
    "isolation": choice(ISOLATIONS),
    "socket": string,
    "health": health_path,
    "env": env_table,
    "workdir": string,
    "restart": choice(RESTART_POLICIES),
    "idle_timeout": seconds,
    "startup_timeout": seconds,
    "request_timeout": seconds,
    "stop_timeout": seconds,
    "memory_limit_mb": count,
    "cpu_shares": count,
    "storage_quota_mb": count,
    "storage_persist": boolean,
    "kernel": string,
    "rootfs": string,
    "memory_mb": count,
    "vcpus": count,
    "vsock_port": count,
    "image": string,
    "user": user_name,
    "failover": boolean,
    "nodes": node_names,
}
MOUNT: dict[str, Callable[[Any], Any]] = {
    "source": string,
    "destination": string,
    "readonly": boolean,
}
ROUTING: dict[str, Callable[[Any], Any]] = {
    "default": string,
    "subdomain": string_table("subdomain -> service"),
    "path": string_table("path -> service"),
}


def advertise_address(value: Any) -> str:
    """``host:port`` (``[v6]:port``) that other hosts can reach: not a wildcard.

    The value is written to the shared database, where every node's ``ten nodes`` and logs
    print it: only the characters of a host name or address pass (no control bytes, no
    non-ASCII look-alikes, no digits of other scripts in the port).
    """
    text = string(value)
    text_ = shown(text)
    host, sep, port_text = text.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    bare = host[1:-1] if bracketed else host
    example = 'e.g. "10.0.0.11:8080" or "[fd00::11]:8080"'
    if "://" in text:
        raise Invalid(f'expected "host:port" without a scheme ({example}), got "{text_}"')
    if not sep or not host or not _PORT.fullmatch(port_text) or not bare:
        raise Invalid(
            f'expected "host:port" where the other nodes reach this one ({example}), got "{text_}"'
        )
    if ":" in bare and not bracketed:
        raise Invalid(f'an IPv6 address goes in brackets ({example}), got "{text_}"')
    if bare in ("0.0.0.0", "::", "*"):
        raise Invalid(
            f'"{text}" is a wildcard that no other host can reach; advertise this host\'s own '
            f"address ({example})"
        )
    if not (_ADVERTISE_V6 if bracketed else _ADVERTISE_HOST).fullmatch(bare):
        raise Invalid(
            f'expected a host name or address before ":port" (ASCII letters, digits, "." and '
            f'"-"; {example}), got "{text_}"'
        )
    if not 1 <= int(port_text) <= 65535:
        raise Invalid(f'expected a TCP port from 1 to 65535 after the host, got "{text_}"')
    return text


_PORT = re.compile(r"[0-9]{1,5}")
_ADVERTISE_HOST = re.compile(r"[A-Za-z0-9._-]{1,253}")
_ADVERTISE_V6 = re.compile(r"[0-9A-Fa-f:.]{2,45}")


def node_timeout(value: Any) -> float:
    result = seconds(value)
    if not MIN_NODE_TIMEOUT <= result <= MAX_NODE_TIMEOUT:
        raise Invalid(
            f"expected {MIN_NODE_TIMEOUT:g} to {MAX_NODE_TIMEOUT:g} seconds (a node heartbeats "
            f"every second), got {value}"
        )
    return result


FLEET: dict[str, Callable[[Any], Any]] = {
    "node": node_name,
    "advertise": advertise_address,
    "node_timeout": node_timeout,
    "secret_file": path,
    "keep_moved": seconds,
}
TOP_LEVEL = ("settings", "service", "instances", "routing", "fleet")
#: aliases accepted with a deprecation warning: old spelling -> new
SERVICE_ALIASES = {"runtime": "isolation"}
TOP_ALIASES = {"process": "service"}
#: where each kind of key belongs, to say so when one is in the wrong table
HOMES = {
    "[settings]": (*SETTINGS, "tls"),
    "[settings.tls]": tuple(TLS),
    "[service.NAME]": (*SERVICE, "mounts", *SERVICE_ALIASES),
    "[routing]": tuple(ROUTING),
    "[fleet]": tuple(FLEET),
}
