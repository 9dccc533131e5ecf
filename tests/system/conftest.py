"""The session's container: Debian 12 booted in systemd-nspawn with tenement installed.

One container per session (booting and installing costs ~20 s, building the .deb a few
minutes, and building the cached root ~65 s the first time on a machine). Every test in
tests/system shares it, so the test module orders its tests: the ones that stop or kill
things come last.

When a run includes system tests, the .deb and the root are made in the background from
the end of collection on, at the lowest CPU priority (``nice`` 19), while the other
tests run: by the time the system tests come (after tests/integration) they are there.
They used to be made when the first system test started, which kept a CI run waiting
for ~75 s.

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

import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest

from tests.system import deployment, nspawn
from tests.system.debs import Debs, find_or_build_debs


def _say(message: str) -> None:
    print(f"[system] {message}", file=sys.stderr, flush=True)


HERE = Path(__file__).resolve().parent
T = TypeVar("T")


class _Early:
    """The .deb build and the root, started at the end of collection (see above)."""

    pool: ThreadPoolExecutor | None = None
    debs: Future[Debs] | None = None
    into: Path | None = None


def _niced(work: Callable[[], T]) -> Callable[[], T]:
    def run() -> T:
        # Linux keeps a niceness per thread, and the processes this thread starts
        # (debootstrap, make deb) inherit it: the tests running meanwhile come first.
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        return work()

    return run


def pytest_collection_finish(session: pytest.Session) -> None:
    if not any(Path(item.path).is_relative_to(HERE) for item in session.items):
        return
    try:
        nspawn.check_host()
    except nspawn.Unavailable:
        return  # the fixtures say why, once a system test asks
    _Early.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="system-early")
    # the fixtures' own ensure_root waits on the root's lock until this one is done
    _Early.pool.submit(_niced(lambda: nspawn.ensure_root(log=_say)))
    _Early.into = Path(tempfile.mkdtemp(prefix="tenement-test-debs-"))
    into = _Early.into
    _Early.debs = _Early.pool.submit(_niced(lambda: find_or_build_debs(into, log=_say)))


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _Early.pool is not None:
        _Early.pool.shutdown(wait=True, cancel_futures=True)
    if _Early.into is not None:
        shutil.rmtree(_Early.into, ignore_errors=True)


@pytest.fixture(scope="session")
def _deb_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Future[Debs]]:
    """The .deb build: the one started at the end of collection, or one started now (a
    session that did not collect system tests at first, e.g. ``--lf``)."""
    if _Early.debs is not None:
        yield _Early.debs
        return
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
