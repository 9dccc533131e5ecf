"""isolation = "namespace": the command line that gives a tenant its own PID and mount namespaces.

The tenant runs under ``unshare --pid --fork --mount --mount-proc --kill-child``
(util-linux) with a tiny init (``_nsinit.py``) as pid 1 of the new PID namespace:
it sees only its own processes and its own /proc. The pid tenement records is
``unshare``'s; ``unshare``, the init, the tenant and its children share one process
group, so stopping the group stops them all, and when the tenant exits, the init
exits and the kernel kills whatever is left in the namespace.

Needs Linux and CAP_SYS_ADMIN (root): there is no user namespace. Network is shared.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from tenement.supervisor import procfs
from tenement.supervisor.spec import ProcessSpec, SpawnError

NAMESPACE_INIT = Path(__file__).with_name("_nsinit.py")
NAMESPACE_NEEDS_ROOT = 'namespace isolation needs root (CAP_SYS_ADMIN); set isolation = "process"'


def namespace_argv(argv: tuple[str, ...], *, inside: Sequence[str] = ()) -> list[str]:
    """The command line that runs ``argv`` in new PID and mount namespaces.

    Args:
        inside: a command prefix run inside the namespaces, before the init (``setpriv``:
            ``unshare`` itself needs the server's privileges).
    """
    if not sys.platform.startswith("linux"):
        raise SpawnError('namespace isolation requires Linux. Set isolation = "process"')
    if not procfs.has_cap_sys_admin():
        raise SpawnError(NAMESPACE_NEEDS_ROOT)
    unshare = shutil.which("unshare")
    if unshare is None:
        raise SpawnError(
            'namespace isolation needs util-linux\'s "unshare" on PATH; '
            'install util-linux or set isolation = "process"'
        )
    return [
        unshare,
        "--pid",
        "--fork",
        "--mount",
        "--mount-proc",
        "--kill-child",
        "--",
        *inside,
        sys.executable,
        "-I",
        "-S",
        str(NAMESPACE_INIT),
        *argv,
    ]


def check_command(spec: ProcessSpec) -> None:
    """Fail now, with the exec error, when ``spec.argv[0]`` cannot be run (namespace mode).

    Process mode learns it from the exec itself; behind ``unshare`` the exec
    happens in the namespace's init, too late to raise.
    """
    program = spec.argv[0]
    if "/" in program:
        path = Path(spec.cwd or ".") / program
        if not path.exists():
            raise SpawnError(f"No such file or directory: {program!r}", command=program)
        if not os.access(path, os.X_OK) or path.is_dir():
            raise SpawnError(f"Permission denied: {program!r}", command=program)
    elif shutil.which(program, path=spec.env.get("PATH", os.defpath)) is None:
        raise SpawnError(f"No such file or directory: {program!r}", command=program)
