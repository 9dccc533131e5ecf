"""Find or install the reference binary (tenement 0.2.2 from PyPI), outside our venv.

The wheel holds ``tenement-0.2.2.data/scripts/ten``. It is unpacked under
``bench/.work/ref/`` (gitignored), never installed into the venv (it would shadow our ``ten``).
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)

VERSION = "0.2.2"
SCRIPT = f"tenement-{VERSION}.data/scripts/ten"


def reference_binary(work: Path) -> Path:
    """The path of a runnable reference ``ten``, downloading and unpacking it if needed.

    ``TENEMENT_REF_BIN`` overrides; otherwise the cache under ``work`` is used.

    Raises:
        RuntimeError: pip could not download the wheel, or it has no ``ten``.
    """
    override = os.environ.get("TENEMENT_REF_BIN")
    if override:
        return Path(override)
    target = work / "ref"
    binary = target / "unpacked" / SCRIPT
    if binary.exists():
        return binary
    target.mkdir(parents=True, exist_ok=True)
    wheels = list(target.glob(f"tenement-{VERSION}-*.whl"))
    if not wheels:
        log.info("downloading tenement==%s (the reference) into %s", VERSION, target)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                f"tenement=={VERSION}",
                "-d",
                str(target),
            ],
            check=True,
        )
        wheels = list(target.glob(f"tenement-{VERSION}-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip downloaded no tenement {VERSION} wheel into {target}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extract(SCRIPT, target / "unpacked")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary
