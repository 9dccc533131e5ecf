"""Test modules are imported by their file name (tests/ has no packages, and pytest puts
each test's directory first on sys.path), so two files with one name in different
directories stop the whole run at collection, and a helper named like a standard module
(tests/fleet/secrets.py) hides that module from everything imported after it: say
which, before a full run finds out."""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).parents[1]


def test_every_test_module_has_a_name_of_its_own() -> None:
    places: defaultdict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("test_*.py"):
        places[path.name].append(str(path.relative_to(TESTS)))
    shared = {name: where for name, where in places.items() if len(where) > 1}
    assert not shared, f"rename one of each: {shared}"


def test_no_module_in_tests_is_named_like_a_standard_one() -> None:
    hiding = sorted(
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("*.py")
        if path.stem in sys.stdlib_module_names
    )
    assert not hiding, f"rename, they hide standard modules: {hiding}"
