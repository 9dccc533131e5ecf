"""Which user a tenant runs as: never the server's, where the server can change uid.

A tenant is code we run but did not write. Running as the server's user it could read
the database, the API token and ``/proc/<server>/environ``, and signal the server. So
where the server holds CAP_SETUID and CAP_SETGID (root, or the packaged unit's
capabilities), every service runs as a user of its own: its ``user``, or else a uid
allotted from ``[settings] tenant_uids`` and recorded in the store (the same service
gets the same uid after a restart; no two services share one), with a group of the
same number, as systemd's ``DynamicUser=`` does. Tenants of one service share its user.

The switch is made by util-linux ``setpriv`` between fork and the tenant's exec (the
recorded pid stays the tenant's): real, effective and saved ids, no supplementary
groups, and no inheritable or ambient capabilities, so capabilities the unit gave the
server (``AmbientCapabilities=``) do not reach the tenant. Under namespace isolation
it runs inside the new namespaces, after ``unshare`` (which needs the server's
CAP_SYS_ADMIN) and before the namespace's init.

Where the server cannot change uid (``ten serve`` run by a developer), or
``[settings] tenant_users = false``, tenants run as the server's user;
:func:`shared_user_warning` says so once at start.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
from pathlib import Path

from tenement.config import Service
from tenement.supervisor import procfs
from tenement.supervisor.spec import SpawnError, TenantUser

CAP_SETGID = 6
CAP_SETUID = 7
#: the instance directory is its tenant's alone
INSTANCE_DIR_MODE = 0o700
#: a socket directory shared by services of different users: each may create its socket
#: there, none may list the others' or remove them (sticky), as in /tmp
SHARED_SOCKET_DIR_MODE = 0o1733


def can_change_uid() -> bool:
    """Whether this process may run tenants as other users (CAP_SETUID and CAP_SETGID)."""
    return procfs.has_caps(CAP_SETUID, CAP_SETGID)


def shared_user_warning(tenant_users: bool) -> str | None:
    """The start-up warning for a server whose tenants run as its own user, or None.

    Args:
        tenant_users: ``settings.tenant_users``.
    """
    if not tenant_users:
        return (
            f"tenant_users = false: tenants run as this server's user (uid {os.geteuid()}) "
            "and can read its files (database, api_token, logs); remove the setting to run "
            "each service as a user of its own"
        )
    if can_change_uid():
        return None
    return (
        f"tenants run as this server's user (uid {os.geteuid()}) and can read its files "
        "(database, api_token, logs) and its environment; run `ten serve` as root, or give "
        "it CAP_SETUID and CAP_SETGID (the packaged unit does), to run each service as a "
        "user of its own"
    )


def uid_taken(uid: int) -> bool:
    """Whether ``uid`` names a user or group of this host (not ours to allot)."""
    try:
        pwd.getpwuid(uid)
    except KeyError:
        pass
    else:
        return True
    try:
        grp.getgrgid(uid)
    except KeyError:
        return False
    return True


def named_user(service: Service) -> TenantUser:
    """The configured ``user`` of ``service``, as it is in /etc/passwd now.

    Raises:
        SpawnError: the user no longer exists (it did when the config was loaded).
    """
    assert service.user is not None
    try:
        entry = pwd.getpwnam(service.user)
    except KeyError:
        raise SpawnError(
            f'[service.{service.name}] user = "{service.user}": no such user on this host '
            "(any more); create it or remove the key"
        ) from None
    return TenantUser(uid=entry.pw_uid, gid=entry.pw_gid, name=service.user)


def allotted_user(service: str, uid: int) -> TenantUser:
    """The user of a service that runs as the uid ``uid`` allotted to it."""
    return TenantUser(uid=uid, gid=uid, name=f"tenement-{service}")


def setpriv_argv(user: TenantUser) -> list[str]:
    """The command prefix that runs what follows it as ``user`` (see the module docstring).

    Raises:
        SpawnError: util-linux ``setpriv`` is not on PATH.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise SpawnError(
            f"running tenants as {user.name} (uid {user.uid}) needs util-linux's "
            '"setpriv" on PATH; install util-linux'
        )
    return [
        setpriv,
        f"--reuid={user.uid}",
        f"--regid={user.gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--ambient-caps=-all",
        "--",
    ]


def claim_dir(path: Path, user: TenantUser) -> None:
    """Make ``path`` (created if missing) ``user``'s alone: owner, group, mode 0700.

    What it holds is given to ``user`` too when the directory was someone else's (a
    service whose user changed, or data from before tenants had users of their own).
    Symlinks are changed themselves, never followed.
    """
    path.mkdir(mode=INSTANCE_DIR_MODE, parents=True, exist_ok=True)
    status = os.lstat(path)
    if (status.st_uid, status.st_gid) != (user.uid, user.gid):
        for root, dirs, files in os.walk(path):
            for name in (*dirs, *files):
                os.chown(os.path.join(root, name), user.uid, user.gid, follow_symlinks=False)
        os.chown(path, user.uid, user.gid, follow_symlinks=False)
    if status.st_mode & 0o7777 != INSTANCE_DIR_MODE:
        os.chmod(path, INSTANCE_DIR_MODE)


def share_socket_dir(path: Path) -> None:
    """Let tenants of every user create their sockets in ``path``, a directory of ours.

    A directory someone else owns (an operator's choice) is left as it is.
    """
    status = os.stat(path)
    if status.st_uid == os.geteuid() and status.st_mode & 0o7777 != SHARED_SOCKET_DIR_MODE:
        os.chmod(path, SHARED_SOCKET_DIR_MODE)
