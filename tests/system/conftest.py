"""The session's container: Debian 12 booted in systemd-nspawn with tenement installed.

One container per session (booting and installing costs ~20 s, building the .deb a few
minutes, and building the cached root ~65 s the first time on a machine; the .deb is
built while the root is made and booted). Every test in tests/system shares it, so the
test module orders its tests: the ones that stop or kill things come last.

Where nspawn cannot run (not root, tools missing, debootstrap failing) every system
test is skipped and the reason is printed.

Run them alone with ``.venv/bin/pytest -m system tests/system -s`` (as root; ``-s``
shows the load figures). Environment:

- ``TENEMENT_TEST_CACHE``: where the Debian root is cached (``/var/cache/tenement-test``);
- ``TENEMENT_TEST_INSTALL=wheels``: install from a wheelhouse, skip the package tests
  (no ``make deb``: fast iteration);
- ``TENEMENT_TEST_DEB_OLD`` + ``TENEMENT_TEST_DEB_NEW``: prebuilt packages to use.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.system import deployment, nspawn
from tests.system.debs import Debs, find_or_build_debs


def _say(message: str) -> None:
    print(f"[system] {message}", file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def _deb_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Future[Debs]]:
    """The .deb build, started at once in a thread (it runs while the root is made)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            nspawn.check_host()
        except nspawn.Unavailable as why:
            done: Future[Debs] = Future()
            done.set_result(Debs(why_not=str(why)))
            yield done
            return
        yield pool.submit(find_or_build_debs, tmp_path_factory.mktemp("debs"), log=_say)


@pytest.fixture(scope="session")
def debs(_deb_build: Future[Debs]) -> Debs:
    """The two .debs (this tree, and a newer repack) or why there are none."""
    return _deb_build.result()


@pytest.fixture(scope="session")
def tenement(_deb_build: Future[Debs]) -> Iterator[deployment.Tenement]:
    """tenement installed and running (socket-activated) in a booted container."""
    try:
        nspawn.check_host()
        root = nspawn.ensure_root(log=_say)
    except nspawn.Unavailable as why:
        _say(f"SKIP: {why}")
        pytest.skip(f"cannot run the system tests here: {why}")
    with tempfile.TemporaryDirectory(prefix="tenement-wheels-") as wheels:
        try:
            with nspawn.booted(root, log=_say) as container:
                debs = _deb_build.result()
                if debs.old is None:
                    _say(f"installing from a wheelhouse, not a .deb: {debs.why_not}")
                    deployment.build_wheelhouse(Path(wheels))
                how = "deb" if debs.old is not None else "wheels"
                installed = deployment.Tenement(container, deployment.free_port(), how)
                installed.prepare()
                if debs.old is not None:
                    deployment.install_deb(container, debs.old)
                else:
                    deployment.install_from_wheels(container, Path(wheels))
                installed.start()
                _say(f"tenement installed ({how}) and serving on 127.0.0.1:{installed.port}")
                yield installed
        except nspawn.Unavailable as why:
            _say(f"SKIP: {why}")
            pytest.skip(f"cannot run the system tests here: {why}")
