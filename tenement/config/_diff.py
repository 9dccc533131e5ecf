"""What a reload changes: two effective configs compared, key by key.

Both sides are :func:`~tenement.config.config_as_dict` data (every key with its value or
default), so that the server (comparing the running config with the file) and
`ten config --check` (comparing the file with the config the server last applied) say
the same thing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

#: settings read once at start: a reload leaves them as they are
START_ONLY_SETTINGS = (
    "data_dir",
    "database_url",
    "database_start_timeout",
    "workers",
    "body_timeout",
)


@attrs.frozen(kw_only=True)
class ConfigChanges:
    """The differences between a running config and a new one.

    Attributes:
        added: services only the new config has.
        removed: services only the running config has; a reload stops their instances.
        changed: service -> the keys whose values differ (in key order); running
            instances keep the old values until their next start.
        settings: ``[settings]`` keys whose values differ (``tls.enabled`` for a
            ``[settings.tls]`` key).
        listed: ``service:tenant`` newly in ``[instances]``; a reload starts them.
        unlisted: ``service:tenant`` no longer in ``[instances]`` (of a service that
            stays); they keep running.
    """

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: dict[str, tuple[str, ...]] = attrs.field(factory=dict)
    settings: tuple[str, ...] = ()
    listed: tuple[str, ...] = ()
    unlisted: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return any(attrs.astuple(self, recurse=False))

    def lines(self) -> list[str]:
        """One line per change: ``+`` added, ``-`` removed, ``~`` changed."""
        lines = [f"+ service {name}" for name in self.added]
        lines += [f"~ service {name}: {', '.join(keys)}" for name, keys in self.changed.items()]
        lines += [f"- service {name} (its instances stop)" for name in self.removed]
        if self.settings:
            later = [key for key in self.settings if _start_only(key)]
            note = f" ({', '.join(later)} at the next restart, not at a reload)" if later else ""
            lines.append(f"~ settings: {', '.join(self.settings)}{note}")
        lines += [f"+ [instances] {iid} (starts)" for iid in self.listed]
        lines += [f"- [instances] {iid} (keeps running)" for iid in self.unlisted]
        return lines

    def as_json(self) -> dict[str, Any]:
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": {name: list(keys) for name, keys in self.changed.items()},
            "settings": list(self.settings),
            "listed": list(self.listed),
            "unlisted": list(self.unlisted),
        }


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> ConfigChanges:
    """What changes from ``old`` to ``new`` (both :func:`config_as_dict` data)."""
    # one side may have come through JSON: tuples there are lists
    old, new = json.loads(json.dumps(old)), json.loads(json.dumps(new))
    old_services, new_services = old.get("services", {}), new.get("services", {})
    changed = {}
    for name, service in new_services.items():
        if name in old_services:
            keys = _differing(old_services[name], service)
            if keys:
                changed[name] = keys
    old_listed = _listed(old.get("instances", {}))
    new_listed = _listed(new.get("instances", {}))
    return ConfigChanges(
        added=tuple(name for name in new_services if name not in old_services),
        removed=tuple(name for name in old_services if name not in new_services),
        changed=changed,
        settings=_differing(old.get("settings", {}), new.get("settings", {}))
        + _fleet_differs(old.get("fleet"), new.get("fleet")),
        listed=tuple(iid for iid in new_listed if iid not in old_listed),
        unlisted=tuple(
            iid
            for iid in old_listed
            if iid not in new_listed and iid.split(":", 1)[0] in new_services
        ),
    )


def _start_only(key: str) -> bool:
    # a node's name, address and timeout are its membership: read once, at start
    return key in START_ONLY_SETTINGS or key == "fleet" or key.startswith("fleet.")


def _fleet_differs(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> tuple[str, ...]:
    """``[fleet]`` keys that differ (``fleet`` when the section comes or goes)."""
    if old is None and new is None:
        return ()
    if old is None or new is None:
        return ("fleet",)
    return _differing(old, new, "fleet.")


def _differing(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> tuple[str, ...]:
    keys: list[str] = []
    for key in dict.fromkeys([*new, *old]):
        before, after = old.get(key), new.get(key)
        if isinstance(before, Mapping) and isinstance(after, Mapping) and key == "tls":
            keys += _differing(before, after, f"{prefix}{key}.")
        elif before != after:
            keys.append(f"{prefix}{key}")
    return tuple(keys)


def _listed(instances: Mapping[str, Any]) -> list[str]:
    return [f"{service}:{tenant}" for service, tenants in instances.items() for tenant in tenants]
