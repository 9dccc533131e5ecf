#!/usr/bin/python3
"""The package versions, derived from ``tenement/_version.py`` (PEP 440).

Debian and RPM sort ``~`` before anything, so a PEP 440 pre-release or development
release (``0.3.0.dev0``, ``0.3.0rc1``) becomes ``0.3.0~dev0`` / ``0.3.0~rc1`` and sorts
before the release ``0.3.0``, as it does for pip. A post-release ``0.3.0.post1`` becomes
``0.3.0+post1`` (after the release) and a local label ``+x`` stays ``+x``.

Used by packaging/build-deb.sh and build-rpm.sh (run with Debian's /usr/bin/python3, no
third-party imports) and by the packaging tests::

    packaging/versions.py package             # 0.3.0~dev0 (from tenement/_version.py)
    packaging/versions.py pep440 0.3.1~test1  # 0.3.1+test1 (for a rebuilt _version.py)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION_FILE = ROOT / "tenement" / "_version.py"

_PEP440 = re.compile(
    r"^(?P<release>\d+(?:\.\d+)*)"
    r"(?:(?P<pre>a|b|rc)(?P<pre_n>\d+))?"
    r"(?:\.post(?P<post>\d+))?"
    r"(?:\.dev(?P<dev>\d+))?"
    r"(?:\+(?P<local>[a-z0-9.]+))?$"
)
# What a Debian/RPM version may contain here: digits, letters, '.', '+', '~'.
_PACKAGE = re.compile(r"^\d[0-9A-Za-z.+~]*$")


def project_version(path: Path = VERSION_FILE) -> str:
    """The ``__version__`` string in ``tenement/_version.py``."""
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', path.read_text(), re.M)
    if match is None:
        raise ValueError(f'{path}: no __version__ = "..." line')
    return match.group(1)


def package_version(pep440: str) -> str:
    """The Debian (and RPM ``Version:``) form of a PEP 440 version.

    Raises:
        ValueError: the version is not one of the PEP 440 forms this project uses.
    """
    match = _PEP440.match(pep440)
    if match is None:
        raise ValueError(f"not a PEP 440 version this project uses: {pep440!r}")
    out = match["release"]
    if match["pre"]:
        out += f"~{match['pre']}{match['pre_n']}"
    if match["post"]:
        out += f"+post{match['post']}"
    if match["dev"]:
        # 1.0rc1.dev2 sorts before 1.0rc1: '~~' sorts before '~'.
        out += f"~dev{match['dev']}"
    if match["local"]:
        out += f"+{match['local']}"
    return out


def pep440_version(package: str) -> str:
    """The PEP 440 version to write into a rebuilt ``_version.py`` for a package version.

    ``0.3.0~dev0`` -> ``0.3.0.dev0``; ``0.3.0~rc1`` -> ``0.3.0rc1``; any other
    ``~label`` or ``+label`` becomes a local label (``0.3.1~test1`` -> ``0.3.1+test1``),
    so ``ten --version`` shows which package is running.
    """
    if not _PACKAGE.match(package):
        raise ValueError(f"not a package version: {package!r} (digits, letters, . + ~)")
    match = re.match(r"^([0-9.]+)(?:[~+](.*))?$", package)
    if match is None:
        raise ValueError(f"not a package version: {package!r} (must start with N.N...)")
    release, tail = match.group(1).rstrip("."), match.group(2)
    if not tail:
        return release
    for pattern, form in (
        (r"^dev(\d+)$", ".dev{}"),
        (r"^(?:a|b|rc)\d+$", "{}"),
        (r"^post(\d+)$", ".post{}"),
    ):
        match = re.match(pattern, tail)
        if match:
            return release + form.format(match.group(1) if match.groups() else tail)
    local = re.sub(r"[^0-9A-Za-z]+", ".", tail).strip(".").lower()
    return f"{release}+{local}"


def main(argv: list[str]) -> int:
    if argv[:1] == ["package"] and len(argv) == 1:
        print(package_version(project_version()))
    elif argv[:1] == ["pep440"] and len(argv) == 2:
        print(pep440_version(argv[1]))
    else:
        print(__doc__.split("::")[1], file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
