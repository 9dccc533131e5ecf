"""TOML text -> :class:`Config`: aliases, validation, warnings.

Every problem is collected first, then reported together: invalid values in one
:class:`ConfigError` (exit code 2), everything merely odd as :class:`ConfigWarning` values
on the loaded config. Unknown keys never fail and never pass silently.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tenement.config import _schema as schema
from tenement.config._limits import MAX_KEY_PARTS, deepest_dotted_key
from tenement.config._model import (
    DEFAULT_DATA_DIR,
    FLEET_SECRET_FILE,
    Config,
    ConfigError,
    ConfigNotFound,
    Fleet,
    Mount,
    Routing,
    Service,
    Settings,
    TlsSettings,
)
from tenement.config._report import Locator, Report, check_fields, ensure_table
from tenement.ids import NAME_RULE, is_valid_name


def check_data_dir_override(path: Path, origin: str = "--data-dir") -> Path:
    """Reject a ``~`` path given by flag or environment, with the reference's message."""
    text = str(path)
    if text.startswith("~"):
        raise ConfigError(
            f"{origin} path \"{text}\" starts with '~'. {schema.TILDE_HINT}", key=origin
        )
    if not text:
        raise ConfigError(f"{origin} path is empty; pass a directory", key=origin)
    return path


def _absolute(path: Path, cwd: Path) -> Path:
    return Path(os.path.abspath(cwd / path))


def _settings(report: Report, data: Any, *, cwd: Path, data_dir: Path | None) -> Settings:
    data = ensure_table(report, ("settings",), data, "[settings]")
    values = check_fields(
        report, ("settings",), data, schema.SETTINGS, home="[settings]", handled=("tls",)
    )
    tls_data = ensure_table(report, ("settings", "tls"), data.get("tls", {}), "[settings.tls]")
    tls = check_fields(report, ("settings", "tls"), tls_data, schema.TLS, home="[settings.tls]")
    if "cache_dir" in tls:
        tls["cache_dir"] = _absolute(tls["cache_dir"], cwd)
    if data_dir is not None:
        values["data_dir"] = check_data_dir_override(data_dir)
    values["data_dir"] = _absolute(values.get("data_dir", DEFAULT_DATA_DIR), cwd)
    return Settings(**values, tls=TlsSettings(**tls))


def _mounts(report: Report, table: tuple[str, ...], value: Any) -> tuple[Mount, ...]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        report.error(
            table,
            "mounts",
            f"expected an array of tables ([[{'.'.join(table)}.mounts]]), "
            f"got {schema.describe(value)}",
        )
        return ()
    mounts = []
    for item in value:
        values = check_fields(report, (*table, "mounts"), item, schema.MOUNT, home="")
        missing = [key for key in ("source", "destination") if key not in item]
        for key in missing:
            report.error((*table, "mounts"), None, f"missing required key '{key}'")
        if not missing:
            mounts.append(Mount(**values))
    return tuple(mounts)


def _service(report: Report, table: tuple[str, ...], data: Any) -> Service | None:
    name = table[-1]
    if not isinstance(data, dict):
        ensure_table(report, table, data, f"[{table[0]}.{name}] with command = ...")
        return None
    errors_before = len(report.problems)
    if not is_valid_name(name):
        report.error(table, None, f"service name '{name}' must be {NAME_RULE}")
    data = dict(data)
    for old, new in schema.SERVICE_ALIASES.items():
        if old not in data:
            continue
        if new in data:
            report.error(
                table, old, f"both `{new}` and its deprecated alias `{old}` are set; keep `{new}`"
            )
        else:
            report.deprecated(table, old, old, new)
            data[new] = data[old]
        del data[old]
    values = check_fields(
        report, table, data, schema.SERVICE, home="[service.NAME]", handled=("mounts",)
    )
    if "mounts" in data:
        values["mounts"] = _mounts(report, table, data["mounts"])
    if "command" not in data:
        report.error(
            table, None, "missing required key 'command' (e.g. command = \"python3 app.py\")"
        )
        return None
    if "command" in values and not values.get("args"):
        try:
            if not shlex.split(values["command"]):
                raise ValueError("it has no words")
        except ValueError as exc:
            report.error(table, "command", f"cannot split the command into words: {exc}")
    if len(report.problems) > errors_before:
        return None
    service = Service(name=name, **values)
    reason = service.unsupported_reason()
    if reason is not None:
        report.warn(
            table,
            "isolation" if "isolation" in data else None,
            f"{reason}; its instances will not start",
            "unsupported",
        )
    return service


def _services(report: Report, document: Mapping[str, Any]) -> tuple[dict[str, Service], set[str]]:
    """``[service.X]`` and the deprecated ``[process.X]``, in file order."""
    services: dict[str, Service] = {}
    declared: dict[str, str] = {}
    for top in ("service", *schema.TOP_ALIASES):
        tables = ensure_table(report, (top,), document.get(top, {}), f"[{top}.NAME]")
        for name, data in tables.items():
            if top in schema.TOP_ALIASES:
                report.deprecated((top, name), None, f"[{top}.X]", f"[service.{name}]")
            if name in declared:
                report.error(
                    (top, name),
                    None,
                    f"service '{name}' is defined in both [{declared[name]}.{name}] and "
                    f"[{top}.{name}]; keep only [service.{name}]",
                )
                continue
            declared[name] = top
            service = _service(report, (top, name), data)
            if service is not None:
                services[name] = service
    return services, set(declared)


def _instances(report: Report, data: Any, declared: set[str]) -> dict[str, tuple[str, ...]]:
    data = ensure_table(report, ("instances",), data, 'service = ["tenant", ...]')
    instances: dict[str, tuple[str, ...]] = {}
    for name, value in data.items():
        table = ("instances",)
        if name not in declared:
            message = (
                f"Instance references undefined service '{name}'. "
                f"Define it in [service.{name}] first."
            )
            close = difflib.get_close_matches(name, sorted(declared), n=1, cutoff=0.6)
            if close:
                message += f" (did you mean '{close[0]}'?)"
            report.error(table, name, message)
            continue
        try:
            ids = schema.string_list(value)
        except schema.Invalid as exc:
            report.error(table, name, f'{exc}; write {name} = ["alice", "bob"]')
            continue
        bad = [tenant for tenant in ids if not is_valid_name(tenant)]
        for tenant in bad:
            report.error(table, name, f"tenant id '{tenant}' must be {NAME_RULE}")
        unique = tuple(dict.fromkeys(ids))
        if len(unique) != len(ids):
            repeated = sorted({tenant for tenant in ids if ids.count(tenant) > 1})
            report.warn(
                table,
                name,
                f"tenant {', '.join(repeated)} listed more than once; started once",
                "duplicate",
            )
        if not bad:
            instances[name] = unique
    return instances


def _fleet(report: Report, data: Any, settings: Settings, cwd: Path) -> Fleet | None:
    data = ensure_table(report, ("fleet",), data, '[fleet] with advertise = "10.0.0.11:8080"')
    values = check_fields(report, ("fleet",), data, schema.FLEET, home="[fleet]")
    if "advertise" not in data:
        report.error(
            ("fleet",),
            None,
            "missing required key 'advertise': the host:port where the other nodes reach "
            'this one (e.g. advertise = "10.0.0.11:8080")',
        )
    url = settings.database_url
    if url is None or not url.startswith(("postgresql", "postgres:")):
        uses = "SQLite in data_dir (the default)" if url is None else url.partition(":")[0]
        report.error(
            ("fleet",),
            None,
            f"a fleet needs a shared PostgreSQL database, and this config uses {uses}; set "
            '[settings] database_url = "postgresql://USER@HOST/DATABASE" on every node, '
            "or remove [fleet]",
        )
    if "advertise" not in values or ("node" in data and "node" not in values):
        return None
    values.setdefault("node", _host_node_name())
    # a relative path is relative to where the config is read, as data_dir is
    values["secret_file"] = (
        _absolute(values["secret_file"], cwd)
        if "secret_file" in values
        else settings.data_dir / FLEET_SECRET_FILE
    )
    return Fleet(**values)


def _refuse_nodes_without_fleet(report: Report, services: Mapping[str, Service]) -> None:
    """``nodes`` names fleet nodes: on a single host it would mean nothing, and a host
    whose config lost its ``[fleet]`` would run as a single host on the fleet's
    database (docs/fleet.md): an error says so rather than a constraint ignored."""
    for name, service in services.items():
        if service.nodes is not None:
            report.error(
                ("service", name),
                "nodes",
                f"nodes = {list(service.nodes)} names fleet nodes, and this config has "
                "no [fleet]; add [fleet] (docs/fleet.md) or remove the key on a single host",
            )


def _host_node_name() -> str:
    """The host name, as a node name: its first label when it is fully qualified."""
    name = socket.gethostname().split(".")[0]
    return name if schema.NODE_NAME.fullmatch(name) else "node"


def parse_config(
    text: str,
    *,
    source: Path | None = None,
    cwd: Path | None = None,
    data_dir: Path | None = None,
) -> Config:
    """Parse a tenement.toml document (TOML text -> :class:`Config`).

    Args:
        text: the TOML document.
        source: the file it came from, used in messages and kept as ``Config.source``.
        cwd: what a relative data_dir is relative to (default: the process's cwd).
        data_dir: overrides ``settings.data_dir`` (from --data-dir / TENEMENT_DATA_DIR).

    Raises:
        ConfigError: malformed TOML or invalid values, all problems in one message.
    """
    cwd = Path.cwd() if cwd is None else cwd
    place = str(source) if source is not None else "<config>"
    parts, offset = deepest_dotted_key(text)
    if parts > MAX_KEY_PARTS:
        line = text.count("\n", 0, offset) + 1
        raise ConfigError(
            f"{place}:{line}: invalid TOML: a dotted key of {parts} parts; tenement.toml's "
            f"keys have four at most (this parser takes up to {MAX_KEY_PARTS})",
            path=source,
            line=line,
        )
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(exc, text, source) from None
    except RecursionError:
        # see _limits: `a = [[[[...` of a few thousand levels exhausts Python's stack
        raise ConfigError(
            f"{place}: invalid TOML: arrays or inline tables nested too deeply for this "
            "parser; tenement.toml needs two levels at most",
            path=source,
        ) from None
    report = Report(source, Locator(text))
    for key, value in document.items():
        if key not in (*schema.TOP_LEVEL, *schema.TOP_ALIASES):
            report.unknown((), key, value, schema.TOP_LEVEL, home="")
    settings = _settings(report, document.get("settings", {}), cwd=cwd, data_dir=data_dir)
    services, declared = _services(report, document)
    instances = _instances(report, document.get("instances", {}), declared)
    routing_data = ensure_table(report, ("routing",), document.get("routing", {}), "[routing]")
    routing = Routing(
        **check_fields(report, ("routing",), routing_data, schema.ROUTING, home="[routing]")
    )
    fleet = _fleet(report, document["fleet"], settings, cwd) if "fleet" in document else None
    if "fleet" not in document:
        _refuse_nodes_without_fleet(report, services)
    report.raise_if_failed()
    return Config(
        settings=settings,
        services=services,
        instances=instances,
        routing=routing,
        fleet=fleet,
        source=source,
        warnings=tuple(report.warnings),
    )


_TOML_WHERE = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)$")


def _toml_error(exc: tomllib.TOMLDecodeError, text: str, source: Path | None) -> ConfigError:
    message = str(exc)
    where = _TOML_WHERE.search(message)
    lines = text.splitlines()
    line = column = None
    if where:
        message = message[: where.start()]
        if where.group(1):
            line, column = int(where.group(1)), int(where.group(2))
        else:
            line = max(len(lines), 1)
    place = str(source) if source is not None else "<config>"
    if line is not None:
        place += f":{line}" + (f":{column}" if column else "")
    detail = f"{place}: invalid TOML: {message}"
    if line is not None and line <= len(lines):
        detail += f"\n  {line} | {lines[line - 1]}"
        if column:
            detail += f"\n  {' ' * len(str(line))} | {' ' * (column - 1)}^"
    return ConfigError(detail, path=source, line=line)


def read_config_file(
    path: Path,
    *,
    cwd: Path | None = None,
    data_dir: Path | None = None,
    refuse_empty: bool = False,
) -> Config:
    """Read and parse one tenement.toml (no discovery); a missing or unreadable file is a
    :class:`ConfigError`.

    Args:
        cwd, data_dir: as for :func:`parse_config`.
        refuse_empty: a file with nothing but white space is an error rather than a
            config without services (a reload must not take it for "stop everything").
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigNotFound(f"Config file not found: {path}", path=path) from None
    except OSError as exc:
        raise ConfigError(f"Cannot read {path}: {exc.strerror}", path=path) from None
    try:
        text = raw.decode("utf-8-sig")  # an editor's byte-order mark is harmless
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}:{line}: not valid UTF-8 (byte {exc.start}); save the file as UTF-8",
            path=path,
            line=line,
        ) from None
    if refuse_empty and not text.strip():
        raise ConfigError(
            f"{path} is empty ({len(raw)} bytes): refused, as a file still being written "
            "or truncated would stop every service. Write the whole config (to a temporary "
            "file, then `mv` it into place), or, to run no service, keep at least a comment.",
            path=path,
        )
    return parse_config(text, source=path, cwd=cwd, data_dir=data_dir)
