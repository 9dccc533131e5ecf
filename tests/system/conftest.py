"""The session's container: Debian 12 booted in systemd-nspawn with tenement installed.

One container per session (booting and installing costs ~20 s, plus ~65 s to build the
cached root the first time on a machine). Every test in tests/system shares it, so the
test module orders its tests: the ones that stop or kill things come last.

Where nspawn cannot run (not root, tools missing, debootstrap failing) every system
test is skipped and the reason is printed.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system import deployment, nspawn
from tests.system.debs import Debs, find_or_build_debs


def _say(message: str) -> None:
    print(f"[system] {message}", file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def debs(tmp_path_factory: pytest.TempPathFactory) -> Debs:
    """The two .debs (this tree, and a bumped rebuild) or why there are none."""
    return find_or_build_debs(tmp_path_factory.mktemp("debs"), log=_say)


@pytest.fixture(scope="session")
def tenement(debs: Debs) -> Iterator[deployment.Tenement]:
    """tenement installed and running (socket-activated) in a booted container."""
    try:
        nspawn.check_host()
        root = nspawn.ensure_root(log=_say)
    except nspawn.Unavailable as why:
        _say(f"SKIP: {why}")
        pytest.skip(f"cannot run the system tests here: {why}")
    with tempfile.TemporaryDirectory(prefix="tenement-wheels-") as wheels:
        if debs.old is None:
            _say(f"installing from a wheelhouse, not a .deb: {debs.why_not}")
            try:
                deployment.build_wheelhouse(Path(wheels))
            except nspawn.Unavailable as why:
                _say(f"SKIP: {why}")
                pytest.skip(f"cannot run the system tests here: {why}")
        try:
            with nspawn.booted(root, log=_say) as container:
                how = "deb" if debs.old is not None else "wheels"
                installed = deployment.Tenement(container, deployment.free_port(), how)
                installed.prepare()
                if debs.old is not None:
                    deployment.install_deb(container, debs.old)
                else:
                    deployment.install_from_wheels(container, Path(wheels))
                installed.start()
                port = installed.port
                _say(f"tenement installed ({how}) and serving on 127.0.0.1:{port}")
                yield installed
        except nspawn.Unavailable as why:
            _say(f"SKIP: {why}")
            pytest.skip(f"cannot run the system tests here: {why}")
