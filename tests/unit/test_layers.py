"""Layers import one way: config <- store <- supervisor <- proxy, api <- server;
config <- tls <- server (built-in TLS).

``cli`` may use config and store (for the local commands) but never the supervisor,
the proxy, the API or the server, except ``ten serve``, which imports the server
inside its callback. No two modules import each other, even through a lazy import.
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
    "tls": {"base", "config"},
    "server": {"base", "config", "store", "supervisor", "proxy", "api", "systemd", "tls"},
    "cli": {"base", "config", "store", "tls"},
    "demo": {"base"},
    "__main__": {"base", "cli"},
}

BASE_MODULES = {
    "__init__",
    "_version",
    "asgi",
    "control_sockets",
    "deadlines",
    "errors",
    "ids",
    "processes",
    "shown",
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


def module_name(path: Path) -> str:
    """tenement/api/app.py -> tenement.api.app; tenement/api/__init__.py -> tenement.api."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULE_NAMES = {module_name(path) for path in MODULES}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_imports(path: Path) -> list[tuple[str, int, bool]]:
    """(module, line, at import time) for every tenement module the file imports, lazy
    imports inside functions included; ``if TYPE_CHECKING:`` imports never run, so they
    are left out. ``from tenement.api import http`` is the module ``tenement.api.http``;
    ``from tenement.config import Config`` is the package ``tenement.config``."""
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, eager: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for statement in child.orelse:
                    visit_one(statement, eager)
            else:
                visit_one(child, eager)

    def visit_one(node: ast.AST, eager: bool) -> None:
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [
                f"{node.module}.{alias.name}"
                if f"{node.module}.{alias.name}" in MODULE_NAMES
                else node.module
                for alias in node.names
            ]
        else:
            body_runs_later = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            visit(node, eager and not body_runs_later)
            return
        found.extend((target, node.lineno, eager) for target in targets if target in MODULE_NAMES)

    visit(ast.parse(path.read_text(), str(path)), eager=True)
    return found


def test_module_imports_sees_eager_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    """The walk the cycle check relies on: it must see an import hidden in a function."""
    source = tmp_path / "sample.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from tenement.api import http\n"
        "from tenement.config import Config\n"
        "if TYPE_CHECKING:\n"
        "    from tenement.store import Store\n"
        "def later():\n"
        "    from tenement.api.dashboard import index\n"
    )
    assert module_imports(source) == [
        ("tenement.api.http", 2, True),
        ("tenement.config", 3, True),
        ("tenement.api.dashboard", 7, False),
    ]


def test_no_module_imports_a_module_that_imports_it_back() -> None:
    """An import cycle hidden by a lazy import (``_model`` calling into ``_parse``, ``app``
    falling back to ``dashboard``) still ties the two modules together: a module may
    import, at import time, only modules that never import it back, lazily or not."""
    imports = {
        module_name(path): {(target, line, eager) for target, line, eager in module_imports(path)}
        for path in MODULES
    }
    cycles = sorted(
        f"{module}:{line} imports {target}, and {target}:{back_line} imports {module} back"
        for module, targets in imports.items()
        for target, line, eager in targets
        if eager and target != module
        for back, back_line, _ in imports[target]
        if back == module
    )
    assert not cycles, "\n".join(cycles)
