"""Each subpackage's public face: `__all__` sorted, complete, and one home per name.

Other layers import only what a subpackage's ``__init__`` lists; a name listed there
must exist, and no public name may be exported by two subpackages (one concept, one home).
"""

from __future__ import annotations

import importlib

import pytest

SUBPACKAGES = [
    "tenement.config",
    "tenement.store",
    "tenement.supervisor",
    "tenement.proxy",
    "tenement.api",
]

#: what the layers above rely on (docs/ and the server's wiring)
CONTRACTS = {
    "tenement.supervisor": {
        "DeployError",
        "Health",
        "InstanceNotFound",
        "InstanceView",
        "SpawnError",
        "StorageInfo",
        "Supervisor",
        "SupervisorStatistics",
        "Target",
        "UnknownService",
        "WakeError",
        "open_supervisor",
    },
    "tenement.store": {"Store", "is_at_head", "migrate_to_head", "open_store"},
    "tenement.proxy": {"Proxy", "ProxyMetrics"},
    "tenement.api": {"build_api"},
    "tenement.config": {"Config", "ConfigError", "load_config", "render"},
}


def isort_key(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions, each alphabetical (ruff's RUF022 order)."""
    if name.isupper():
        return (0, name)
    return (1 if name[0].isupper() else 2, name)


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_all_is_sorted_and_complete(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(exported, key=isort_key), f"{name}.__all__ is not sorted"
    missing = [item for item in exported if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ lists names it does not have: {missing}"
    assert set(exported) >= CONTRACTS[name], f"{name} lost {CONTRACTS[name] - set(exported)}"


def test_each_name_has_one_home() -> None:
    homes: dict[object, str] = {}
    for name in SUBPACKAGES:
        module = importlib.import_module(name)
        for item in module.__all__:
            obj = getattr(module, item)
            if not isinstance(obj, type) and not callable(obj):
                continue
            other = homes.setdefault(obj, f"{name}.{item}")
            assert other == f"{name}.{item}", f"{item} is exported by {other} and {name}"
