"""Fixtures for the proxy tests: tenant processes shared by the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.proxy.proxy_support import Backend, start_backend, stop_backend


@pytest.fixture(scope="session")
def backends_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Backend]]:
    """Three TCP tenants (a, b, c) and one on a Unix socket, shared by the session."""
    sock = tmp_path_factory.mktemp("sock") / "u.sock"
    started: dict[str, Backend] = {}
    try:
        for name in ("a", "b", "c"):
            started[name] = start_backend("127.0.0.1:0", name)
        started["unix"] = start_backend(f"unix:{sock}", "unix")
        yield started
    finally:
        for backend in started.values():
            stop_backend(backend)


@pytest.fixture
def fresh_backend() -> Iterator[Backend]:
    """A tenant of its own, for tests that count its connections."""
    backend = start_backend("127.0.0.1:0", "fresh")
    yield backend
    stop_backend(backend)
