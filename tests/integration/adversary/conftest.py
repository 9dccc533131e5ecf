"""One `ten serve` (with its tenants) per test module; a test that killed it gets the next
test a new one, so one crash fails one test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio

from tests.integration.adversary.adversary_support import LiveServe


class _Servers:
    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.current: LiveServe | None = None

    def live(self) -> LiveServe:
        if self.current is not None and not self.current.alive():
            self.current.stop()  # its tenants, if it died without stopping them
            self.current = None
        if self.current is None:
            self.current = trio.run(LiveServe.start, self.factory.mktemp("serve") / "project")
        return self.current

    def discard(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None

    def close(self) -> None:
        if self.current is not None:
            self.current.stop()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Servers]:
    held = _Servers(tmp_path_factory)
    try:
        yield held
    finally:
        held.close()


@pytest.fixture
def serve(servers: _Servers) -> Iterator[LiveServe]:
    """A running `ten serve`, shared by the module unless a test before broke it (one that
    no longer answers /health after a test is stopped, and the next test gets a new one)."""
    server = servers.live()
    yield server
    if trio.run(server.status_of, "127.0.0.1", "/health") != 200:
        servers.discard()


@pytest.fixture
def disposable_serve(servers: _Servers) -> Iterator[LiveServe]:
    """A running `ten serve` that no test after this one uses: for an attack that may
    leave it poisoned (a tenant connection out of step) without killing it."""
    yield servers.live()
    servers.discard()


@pytest.fixture
def fresh_serve(servers: _Servers) -> LiveServe:
    """A `ten serve` no test before used: what fails with it, its own test caused."""
    servers.discard()
    return servers.live()
