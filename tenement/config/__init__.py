"""tenement.toml -> frozen attrs objects; aliases, warnings, validation.

The public face of the config layer. Layout:

- ``_model``: the values (:class:`Config`, :class:`Settings`, :class:`Service`, ...), the
  errors and warnings, and template filling (:func:`render`);
- ``_parse``: TOML text -> :class:`Config` (checks every key, collects warnings);
- ``_discovery``: which file to read (:func:`load_config`);
- ``_limits``: bounds that keep the TOML parser from exhausting stack or memory;
- ``_diff``: what a reload changes (:func:`config_changes`);
- ``_applied``: the record of the config a server runs (:func:`write_applied`).

Unsupported isolations (``sandbox``, ``litebox``, ``quark``, ``firecracker``, ``qemu``)
load with an ``unsupported`` warning so that any config written for the reference still
loads; `ten config --check` rejects them and spawning raises :class:`UnsupportedIsolation`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tenement.config._applied import (
        AppliedConfig,
        applied_record_path,
        read_applied,
        write_applied,
    )
    from tenement.config._diff import ConfigChanges, config_changes
    from tenement.config._discovery import SAMPLE_CONFIG, find_config, load_config
    from tenement.config._model import (
        CONFIG_FILENAME,
        DEFAULT_DATA_DIR,
        ISOLATIONS,
        MAX_WORKERS,
        RESTART_POLICIES,
        SECONDS,
        SUPPORTED_ISOLATIONS,
        Config,
        ConfigError,
        ConfigNotFound,
        ConfigWarning,
        Mount,
        Routing,
        Service,
        Settings,
        TlsSettings,
        UnsupportedIsolation,
        render,
    )

#: public name -> the submodule defining it. Each is imported on first use (PEP 562), so
#: `ten config` loads neither the reload diff nor the applied-config record (nor json).
_HOMES = {
    "AppliedConfig": "_applied",
    "applied_record_path": "_applied",
    "read_applied": "_applied",
    "write_applied": "_applied",
    "ConfigChanges": "_diff",
    "config_changes": "_diff",
    "SAMPLE_CONFIG": "_discovery",
    "find_config": "_discovery",
    "load_config": "_discovery",
    **dict.fromkeys(
        (
            "CONFIG_FILENAME",
            "DEFAULT_DATA_DIR",
            "ISOLATIONS",
            "MAX_WORKERS",
            "RESTART_POLICIES",
            "SECONDS",
            "SUPPORTED_ISOLATIONS",
            "Config",
            "ConfigError",
            "ConfigNotFound",
            "ConfigWarning",
            "Mount",
            "Routing",
            "Service",
            "Settings",
            "TlsSettings",
            "UnsupportedIsolation",
            "render",
        ),
        "_model",
    ),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


__all__ = [
    "CONFIG_FILENAME",
    "DEFAULT_DATA_DIR",
    "ISOLATIONS",
    "MAX_WORKERS",
    "RESTART_POLICIES",
    "SAMPLE_CONFIG",
    "SECONDS",
    "SUPPORTED_ISOLATIONS",
    "AppliedConfig",
    "Config",
    "ConfigChanges",
    "ConfigError",
    "ConfigNotFound",
    "ConfigWarning",
    "Mount",
    "Routing",
    "Service",
    "Settings",
    "TlsSettings",
    "UnsupportedIsolation",
    "applied_record_path",
    "config_as_dict",
    "config_changes",
    "find_config",
    "load_config",
    "read_applied",
    "render",
    "write_applied",
]


def config_as_dict(config: Config) -> dict[str, Any]:
    """The effective config as JSON-ready data (paths as strings, tuples as lists).

    Every key with its value or default; ``warnings`` are left out (they are not config).
    """
    import attrs

    def plain(instance: Any, field: Any, value: Any) -> Any:
        return str(value) if isinstance(value, Path) else value

    return attrs.asdict(
        config,
        value_serializer=plain,
        filter=lambda field, value: field.name != "warnings",
    )
