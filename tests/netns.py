"""Network namespaces for fleet tests: a hub with a bridge, nodes on veth pairs to it.

A fleet test needs nodes with addresses of their own that it can cut off from each
other (a real partition, not a killed process). :func:`fleet_network` makes, for one
test, a *hub* namespace holding a bridge and one namespace per node, each joined to the
bridge by a veth pair, on a private /24 chosen at random. Both ends of every pair are
created inside the test's namespaces, so nothing outside them is touched (no interface,
route or address of the host's), and no traffic can leave them: they have no route
anywhere else. Everything is deleted on exit, and a run killed midway leaves names that
the next run removes (they carry the pid of the run that made them).

Processes run in a namespace through ``ip netns exec`` (:meth:`FleetNetwork.command`);
the test itself talks from inside one with :meth:`FleetNetwork.socket`, since a socket
stays in the namespace it was made in.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import attrs

#: every namespace a test makes is named ``PREFIX<pid>-<role>``
PREFIX = "tenement-t"
_CLONE_NEWNET = 0x40000000
_NETNS_DIR = Path("/run/netns")


class Unavailable(Exception):
    """Namespaces cannot be made here; the message says why (a skip reason)."""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@attrs.define
class FleetNetwork:
    """The namespaces of one test: ``hub`` (the bridge, the address ``hub_address``)
    and ``nodes[i]`` (the address ``addresses[i]``)."""

    hub: str
    nodes: list[str]
    hub_address: str
    addresses: list[str]
    subnet: str

    def command(self, namespace: str, argv: list[str]) -> list[str]:
        """``argv`` run inside ``namespace``."""
        return ["ip", "netns", "exec", namespace, *argv]

    def partition(self, index: int) -> None:
        """Cut node ``index`` off the bridge: it reaches no one, no one reaches it."""
        _ip("-n", self.hub, "link", "set", f"h{index}", "down")

    def heal(self, index: int) -> None:
        """Join node ``index`` to the bridge again."""
        _ip("-n", self.hub, "link", "set", f"h{index}", "up")

    def socket(
        self, namespace: str, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM
    ) -> socket.socket:
        """A socket made inside ``namespace`` (it keeps talking from there)."""
        made: list[socket.socket | BaseException] = []
        # setns moves only the calling thread: a thread of its own keeps the test's
        # other threads (trio's, pytest's) where they are
        thread = threading.Thread(target=_make_socket, args=(namespace, family, kind, made))
        thread.start()
        thread.join()
        result = made[0]
        if isinstance(result, BaseException):
            raise result
        return result


def _make_socket(
    namespace: str, family: int, kind: int, made: list[socket.socket | BaseException]
) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        with open(_NETNS_DIR / namespace) as target:
            if libc.setns(target.fileno(), _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {namespace}")
        made.append(socket.socket(family, kind))
    except BaseException as exc:  # handed to the caller's thread
        made.append(exc)
    # the thread ends here, and its namespace with it


def _remove_leftovers() -> None:
    """Delete the namespaces of runs that died without cleaning up."""
    if not _NETNS_DIR.is_dir():
        return
    for entry in _NETNS_DIR.iterdir():
        if not entry.name.startswith(PREFIX):
            continue
        pid = entry.name[len(PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _delete(entry.name)


def _delete(namespace: str) -> None:
    """Kill what still runs in ``namespace``, then delete it."""
    found = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True)
    for pid in found.stdout.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", namespace], capture_output=True)


@contextlib.contextmanager
def fleet_network(count: int) -> Iterator[FleetNetwork]:
    """A hub and ``count`` node namespaces, deleted (with what runs in them) on exit."""
    if os.geteuid() != 0:
        raise Unavailable("network namespaces need root")
    if shutil.which("ip") is None:
        raise Unavailable("ip (iproute2) is not installed")
    _remove_leftovers()
    base = f"{PREFIX}{os.getpid()}-{random.randrange(16**6):06x}"
    # a /24 in 10.0.0.0/8 that only these namespaces know
    prefix = f"10.{random.randrange(64, 250)}.{random.randrange(1, 250)}"
    network = FleetNetwork(
        hub=f"{base}-hub",
        nodes=[f"{base}-n{i}" for i in range(count)],
        hub_address=f"{prefix}.1",
        addresses=[f"{prefix}.{11 + i}" for i in range(count)],
        subnet=f"{prefix}.0/24",
    )
    made: list[str] = []
    try:
        for namespace in [network.hub, *network.nodes]:
            _ip("netns", "add", namespace)
            made.append(namespace)
            _ip("-n", namespace, "link", "set", "lo", "up")
        _ip("-n", network.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", network.hub, "addr", "add", f"{network.hub_address}/24", "dev", "br0")
        _ip("-n", network.hub, "link", "set", "br0", "up")
        pairs = zip(network.nodes, network.addresses, strict=True)
        for i, (namespace, address) in enumerate(pairs):
            # both ends are made inside our namespaces: the host's list never sees them
            _ip(
                "link", "add", f"h{i}", "netns", network.hub,
                "type", "veth", "peer", "name", "eth0", "netns", namespace,
            )  # fmt: skip
            _ip("-n", network.hub, "link", "set", f"h{i}", "master", "br0")
            _ip("-n", network.hub, "link", "set", f"h{i}", "up")
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", namespace, "link", "set", "eth0", "up")
        yield network
    finally:
        for namespace in reversed(made):
            _delete(namespace)
