"""The supervisor lease: one live supervisor per database."""

from __future__ import annotations

import os
import socket
import time

import pytest
import trio

from tenement.config import Config
from tenement.store import Store
from tenement.supervisor import SupervisorBusy, open_supervisor


async def test_lease_taken_by_a_dead_local_holder_is_taken_over(
    config: Config, store: Store
) -> None:
    # a holder on this host whose pid does not exist (pid 2**22+1 is above pid_max's default)
    store.try_acquire_lease(f"{socket.gethostname()}:4194305:dead", 3600, time.time())
    async with open_supervisor(config, store):
        assert store.lease_holder(time.time()).split(":")[1] == str(os.getpid())
    assert store.lease_holder(time.time()) is None  # released on exit


async def test_losing_the_lease_detaches_and_stops(
    config: Config, store: Store, autojump_clock: trio.abc.Clock
) -> None:
    detached = []
    with pytest.RaisesGroup(SupervisorBusy, flatten_subgroups=True):
        async with open_supervisor(config, store) as sup:
            holder = store.lease_holder(time.time())
            store.release_lease(holder)
            assert store.try_acquire_lease("elsewhere:1:other", 3600, time.time())
            try:
                await trio.sleep_forever()  # ended by the lost lease
            finally:
                detached.append(sup.detached)
    assert detached == [True]  # its tenants are left to the server that holds the lease
    assert store.lease_holder(time.time()) == "elsewhere:1:other"
