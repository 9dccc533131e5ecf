"""tenement.toml -> frozen attrs objects; aliases, warnings, validation.

The public face of the config layer. Layout:

- ``_model``: the values (:class:`Config`, :class:`Settings`, :class:`Service`, ...), the
  errors and warnings, template filling (:func:`render`) and the JSON form
  (:func:`config_as_dict`);
- ``_parse``: TOML text or one file -> :class:`Config` (:func:`parse_config`,
  :func:`read_config_file`; checks every key, collects warnings);
- ``_discovery``: which file to read (:func:`load_config`);
- ``_limits``: bounds that keep the TOML parser from exhausting stack or memory;
- ``_diff``: what a reload changes (:func:`config_changes`);
- ``_applied``: the record of the config a server runs (:func:`write_applied`).

Unsupported isolations (``sandbox``, ``litebox``, ``quark``, ``firecracker``, ``qemu``)
load with an ``unsupported`` warning so that any config written for the reference still
loads; `ten config --check` rejects them and spawning raises :class:`UnsupportedIsolation`.
"""

from __future__ import annotations

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
    DEFAULT_KEEP_MOVED,
    ISOLATIONS,
    MAX_WORKERS,
    RESTART_POLICIES,
    SECONDS,
    SUPPORTED_ISOLATIONS,
    Config,
    ConfigError,
    ConfigNotFound,
    ConfigWarning,
    Fleet,
    Mount,
    Routing,
    Service,
    Settings,
    TlsSettings,
    UnsupportedIsolation,
    config_as_dict,
    render,
)
from tenement.config._parse import parse_config, read_config_file

__all__ = [
    "CONFIG_FILENAME",
    "DEFAULT_DATA_DIR",
    "DEFAULT_KEEP_MOVED",
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
    "Fleet",
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
    "parse_config",
    "read_applied",
    "read_config_file",
    "render",
    "write_applied",
]
