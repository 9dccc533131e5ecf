"""Which tenement.toml to read, and which data dir to use.

The reference only walks up from the working directory (it documents, but never reads,
``TENEMENT_CONFIG``). We look in this order: an explicit path (``--config``), then
``TENEMENT_CONFIG``, then ``tenement.toml`` in the working directory and each parent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from tenement.config._model import CONFIG_FILENAME, Config, ConfigNotFound
from tenement.config._parse import check_data_dir_override, read_config_file

#: what the "not found" error suggests, like the reference's
SAMPLE_CONFIG = """\
[service.myapp]
command = "./my-app"
isolation = "process"
"""


def find_config(*, path: Path | None, environ: Mapping[str, str], cwd: Path) -> Path:
    """The config file to read.

    Args:
        path: an explicit file (from ``--config``); a directory means its tenement.toml.
            Relative paths are relative to ``cwd``.
        environ: consulted for ``TENEMENT_CONFIG`` when ``path`` is None.
        cwd: where the upward search starts.

    Raises:
        ConfigNotFound: naming the path that was given, or every directory searched,
            with a minimal sample config.
    """
    for given, origin in ((path, "--config"), (environ.get("TENEMENT_CONFIG"), "TENEMENT_CONFIG")):
        if given is None or str(given) == "":
            continue
        candidate = Path(os.path.normpath(cwd / Path(given)))
        if candidate.is_dir():
            candidate = candidate / CONFIG_FILENAME
        if not candidate.is_file():
            raise ConfigNotFound(
                f"Config file not found: {candidate} (from {origin}). "
                f"Create it with, for example:\n\n{SAMPLE_CONFIG}",
                path=candidate,
            )
        return candidate
    searched = []
    for directory in (cwd, *cwd.parents):
        candidate = directory / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
        searched.append(str(directory))
    raise ConfigNotFound(
        f"No {CONFIG_FILENAME} found in {cwd} or any parent directory, and neither --config "
        f"nor TENEMENT_CONFIG is set. Create one with:\n\n{SAMPLE_CONFIG}"
    )


def load_config(
    *,
    path: Path | None = None,
    environ: Mapping[str, str],
    cwd: Path,
    data_dir: Path | None = None,
    refuse_empty: bool = False,
) -> Config:
    """Find, read and validate tenement.toml.

    Args:
        path: explicit config file (``--config``); else ``TENEMENT_CONFIG``; else the first
            tenement.toml found walking up from ``cwd``.
        environ: the environment (``TENEMENT_CONFIG``, ``TENEMENT_DATA_DIR``).
        cwd: the directory ``ten`` runs in; the search starts there and a relative
            data_dir is relative to it (as in the reference), whichever directory the
            file is in.
        data_dir: ``--data-dir``; it and then ``TENEMENT_DATA_DIR`` win over
            ``settings.data_dir``, which wins over ``./tenement-data``.
        refuse_empty: an empty file (white space only) is an error; a reload and
            `ten config --check` ask for that.

    Returns:
        The config, with ``settings.data_dir`` absolute and ``warnings`` filled.

    Raises:
        ConfigNotFound: no file (the message says where it looked).
        ConfigError: unreadable file, malformed TOML, invalid values, a ``~`` data dir,
            an empty file when ``refuse_empty``.
    """
    cwd = Path(os.path.abspath(cwd))
    override = None
    if data_dir is not None and str(data_dir) != "":
        override = check_data_dir_override(Path(data_dir), "--data-dir")
    elif environ.get("TENEMENT_DATA_DIR"):
        override = check_data_dir_override(Path(environ["TENEMENT_DATA_DIR"]), "TENEMENT_DATA_DIR")
    found = find_config(path=path, environ=environ, cwd=cwd)
    return read_config_file(found, cwd=cwd, data_dir=override, refuse_empty=refuse_empty)
