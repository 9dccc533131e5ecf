"""Layers import one way: config <- store <- supervisor <- proxy, api <- server.

``cli`` may use config and store (for the local commands) but never the supervisor,
the proxy, the API or the server, except ``ten serve``, which imports the server
inside its callback.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tenement

PACKAGE = Path(tenement.__file__).parent

#: layer -> layers it may import (itself always allowed)
ALLOWED = {
    "base": set(),
    "config": {"base"},
    "store": {"base", "config"},
    "supervisor": {"base", "config", "store"},
    "proxy": {"base", "config", "store", "supervisor"},
    "api": {"base", "config", "store", "supervisor"},
    "systemd": {"base"},
    "server": {"base", "config", "store", "supervisor", "proxy", "api", "systemd"},
    "cli": {"base", "config", "store"},
    "demo": {"base"},
    "__main__": {"base", "cli"},
}

BASE_MODULES = {
    "__init__",
    "_version",
    "asgi",
    "deadlines",
    "errors",
    "ids",
    "sockets",
    "types",
    "wire",
}


def layer_of(module: str) -> str:
    """tenement.supervisor.ports -> supervisor; tenement.errors -> base."""
    parts = module.split(".")
    if len(parts) == 1:
        return "base"
    head = parts[1]
    if head in BASE_MODULES:
        return "base"
    return head


def imports_of(path: Path) -> list[tuple[str, int, bool]]:
    """(module, line, at top level) for every tenement import in the file."""
    tree = ast.parse(path.read_text(), str(path))
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            if name == "tenement" or name.startswith("tenement."):
                found.append((name, node.lineno, id(node) in top_level))
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "_migrations" not in p.parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_imports_point_down(path: Path) -> None:
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    own = layer_of(module)
    for imported, line, top_level in imports_of(path):
        target = layer_of(imported)
        if target == own or target in ALLOWED[own]:
            continue
        # `ten serve` (and only it) may pull the server in, lazily, inside its callback.
        if own == "cli" and target == "server" and not top_level:
            continue
        pytest.fail(f"{module}:{line} imports {imported} ({own} may not depend on {target})")


def test_every_module_has_a_layer() -> None:
    for path in MODULES:
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        assert layer_of(module) in ALLOWED, f"{module} belongs to no known layer"


def private_imports_of(path: Path) -> list[tuple[str, int]]:
    """(name, line) for every private tenement module or name the file imports:
    ``tenement.store._sqlite``, ``from tenement.store import _sqlite``."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            private = [part for part in parts[2:] if part.startswith("_") and part[-1] != "_"]
            if parts[0] == "tenement" and private:
                found.append((name, node.lineno))
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_other_layers_use_a_package_public_face(path: Path) -> None:
    """A subpackage's ``_private`` modules and names are its own: other layers import what
    its ``__init__`` exports."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    own = layer_of(module)
    for imported, line in private_imports_of(path):
        if layer_of(imported) != own:
            pytest.fail(f"{module}:{line} imports {imported}, private to {layer_of(imported)}")
