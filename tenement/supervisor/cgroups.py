"""cgroups v2 memory and CPU limits for tenants (``memory_limit_mb``, ``cpu_shares``).

Where the cgroup of a tenant goes:

1. Under systemd with ``Delegate=yes`` and ``DelegateSubgroup=supervisor`` (systemd
   254+), tenement runs in ``<unit>/supervisor`` and owns ``<unit>``: tenants go to
   ``<unit>/tenants/<instance>``, so ``systemctl status`` shows them under the unit
   and the unit's own limits bound them all.
2. Otherwise, as the reference: ``/sys/fs/cgroup/tenement/<instance>``.

Why tenement never moves itself into a ``supervisor`` leaf of its unit on its own:
cgroup v2 forbids processes in a cgroup whose ``subtree_control`` enables
controllers. Tenants outlive a restart (``KillMode=process``), so their
``tenants/`` subtree, and with it the enabled controllers of the unit's cgroup,
would outlive the server process too; systemd starts the next server process in the
unit's own cgroup, which then fails with EBUSY. ``DelegateSubgroup=`` is systemd's
answer (it starts the main process in the leaf), so the delegated layout is used
only when systemd already put us in such a leaf.

No cgroup v2 (``/sys/fs/cgroup/cgroup.controllers`` missing, as on hybrid hosts), no
write access or a missing controller: :func:`place` logs a warning and the tenant
runs without the limit (as the reference). A write that fails where the cgroup is
usable is a :class:`CgroupError`, and the caller fails the spawn.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from tenement.errors import TenementError
from tenement.supervisor import procfs

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
#: the reference's base outside any delegated subtree
FALLBACK_BASE = CGROUP_ROOT / "tenement"
#: the leaf systemd puts us in with DelegateSubgroup=supervisor
SUPERVISOR_LEAF = "supervisor"
TENANTS_DIR = "tenants"
MIB = 1024 * 1024


class CgroupError(TenementError):
    """A limit could not be applied where cgroups v2 is usable."""


def available(root: Path = CGROUP_ROOT) -> bool:
    """Whether a cgroup v2 hierarchy is mounted at ``root``."""
    return (root / "cgroup.controllers").exists()


def base_dir(root: Path = CGROUP_ROOT, *, own: str | None = None) -> Path:
    """The directory tenant cgroups are created in (see the module docstring).

    Args:
        root: the cgroup v2 mount.
        own: our own cgroup path (``/system.slice/tenement.service/supervisor``);
            read from /proc/self/cgroup when None.
    """
    if own is None:
        own = procfs.cgroup_of("self")
    if own and own != "/":
        own_dir = root / own.lstrip("/")
        if own_dir.name == SUPERVISOR_LEAF and os.access(own_dir.parent, os.W_OK):
            return own_dir.parent / TENANTS_DIR
    return root / FALLBACK_BASE.relative_to(CGROUP_ROOT)


def _enable_controllers(directory: Path, wanted: list[str]) -> None:
    """Make ``wanted`` controllers available to the children of ``directory``."""
    available_here = (directory / "cgroup.controllers").read_text().split()
    missing = [c for c in wanted if c not in available_here]
    if missing:
        raise CgroupError(
            f"cgroup controller(s) {', '.join(missing)} not available in {directory}; "
            f"enable them in the parent's cgroup.subtree_control"
        )
    enabled = (directory / "cgroup.subtree_control").read_text().split()
    todo = " ".join(f"+{c}" for c in wanted if c not in enabled)
    if todo:
        (directory / "cgroup.subtree_control").write_text(todo)


def cgroup_dir(name: str, *, root: Path = CGROUP_ROOT) -> Path:
    """The cgroup directory of instance ``name`` (``notes:alice``)."""
    return base_dir(root) / name


def prepare(
    name: str,
    *,
    memory_limit_mb: int | None,
    cpu_shares: int | None,
    root: Path = CGROUP_ROOT,
) -> Path | None:
    """Create the cgroup of instance ``name`` with the given limits, before its process starts.

    The process moves itself in (it writes ``0`` to ``cgroup.procs`` between fork and
    exec, see :func:`tenement.supervisor.process.start_process`), so nothing it
    forks can start outside the cgroup.

    Args:
        name: the instance id; the cgroup's directory name.
        memory_limit_mb: ``memory.max`` in MiB; None or 0 writes no memory limit.
        cpu_shares: ``cpu.weight``, clamped to 1-10000; None writes none.
        root: the cgroup v2 mount.

    Returns:
        The cgroup directory, or None when no limit was asked for or cgroups v2 is
        not usable here (a warning is logged).

    Raises:
        CgroupError: cgroups v2 is usable but a write failed.
    """
    wanted = []
    if memory_limit_mb:
        wanted.append("memory")
    if cpu_shares is not None:
        wanted.append("cpu")
    if not wanted:
        return None
    if not available(root):
        log.warning(
            "cgroups v2 is not available (no %s); %s runs without memory/cpu limits",
            root / "cgroup.controllers",
            name,
        )
        return None
    base = base_dir(root)
    if not os.access(base if base.exists() else base.parent, os.W_OK):
        log.warning(
            "cannot write to %s; %s runs without memory/cpu limits "
            "(run as root, or: sudo mkdir -p %s && sudo chown $USER %s)",
            base,
            name,
            base,
            base,
        )
        return None
    directory = base / name
    try:
        _enable_controllers(base.parent, wanted)
        base.mkdir(exist_ok=True)
        _enable_controllers(base, wanted)
        directory.mkdir(exist_ok=True)
        if memory_limit_mb:
            (directory / "memory.max").write_text(str(memory_limit_mb * MIB))
        if cpu_shares is not None:
            (directory / "cpu.weight").write_text(str(min(max(cpu_shares, 1), 10000)))
    except OSError as exc:
        raise CgroupError(f"cannot apply cgroup limits to {name} in {base}: {exc}") from exc
    return directory


def kill_all(directory: Path) -> None:
    """SIGKILL every process in the cgroup (``cgroup.kill``, Linux 5.14+), if it exists."""
    try:
        (directory / "cgroup.kill").write_text("1")
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot kill the processes of cgroup %s: %s", directory, exc)


def populated(directory: Path) -> bool:
    """Whether any process is left in the cgroup (or its children)."""
    try:
        events = (directory / "cgroup.events").read_text()
    except FileNotFoundError:
        return False
    return "populated 1" in events


def remove(directory: Path) -> None:
    """Remove an empty tenant cgroup; warn if it cannot be removed."""
    try:
        directory.rmdir()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove cgroup %s: %s", directory, exc)
