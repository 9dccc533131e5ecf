"""What /proc says about a process: start time, process group, session, cgroup, sockets.

Tenants outlive the server, so a pid read back from the database must be checked
against the process start time (``/proc/<pid>/stat`` field 22, in clock ticks since
boot) before anything signals it: a pid number is reused once its process is gone.

All functions are sync and cheap (one small read each, except :func:`session_members`
and :func:`group_members`, which scan ``/proc``, and :func:`tenant_holds_listener`,
which may). :func:`tenant_holds_listener` tells whether a port's listener is really the
tenant's, not another program's that took the port first. A process that vanishes
while being read is reported as gone (``None``), never as an error.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import attrs

PROC = Path("/proc")

#: bit of CAP_SYS_ADMIN in the capability masks of /proc/<pid>/status
CAP_SYS_ADMIN_BIT = 21


@attrs.frozen
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` tenement uses.

    Attributes:
        pid: the process id (in the pid namespace of our /proc).
        comm: the command name (may contain spaces and parentheses).
        state: one letter, ``"Z"`` for a zombie (exited, not yet reaped).
        ppid: parent pid.
        pgrp: process group id.
        session: session id.
        start_ticks: start time after boot in clock ticks (field 22).
        cpu_ticks: user + system CPU time used, in clock ticks (fields 14 and 15).
        rss_pages: resident set size in pages (field 24).
    """

    pid: int
    comm: str
    state: str
    ppid: int
    pgrp: int
    session: int
    start_ticks: int
    cpu_ticks: int = 0
    rss_pages: int = 0

    @classmethod
    def parse(cls, text: str) -> ProcStat:
        """Parse the text of ``/proc/<pid>/stat``.

        The command name sits between the first ``(`` and the LAST ``)``, and may
        itself contain spaces and parentheses, so the numeric fields are split
        only after the last ``)``.

        Raises:
            ValueError: the text is not a stat line.
        """
        open_paren = text.index("(")
        close_paren = text.rindex(")")
        pid = int(text[:open_paren])
        comm = text[open_paren + 1 : close_paren]
        # rest[0] is field 3 (state), so field N is rest[N - 3]
        rest = text[close_paren + 1 :].split()
        return cls(
            pid=pid,
            comm=comm,
            state=rest[0],
            ppid=int(rest[1]),
            pgrp=int(rest[2]),
            session=int(rest[3]),
            start_ticks=int(rest[19]),
            cpu_ticks=int(rest[11]) + int(rest[12]),
            rss_pages=int(rest[21]),
        )

    @property
    def exited(self) -> bool:
        """True for a zombie or a dead task: it runs no more code."""
        return self.state in ("Z", "X", "x")


def _read_proc(path: str) -> str:
    """The text of a small /proc file (raw reads: 4-5x faster than pathlib).

    A read that does not fill the buffer got all of it (the kernel hands out a whole
    /proc text file at once when the buffer holds it), so a stat file costs one read,
    not two: a start adopting 1,000 tenants reads 1,000 of them.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        chunk = os.read(fd, _PROC_READ)
        if len(chunk) < _PROC_READ:
            return chunk.decode(errors="replace")
        chunks = [chunk]
        while chunk := os.read(fd, _PROC_READ):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode(errors="replace")


_PROC_READ = 4096


def read_stat(pid: int) -> ProcStat | None:
    """The stat of ``pid``, or None when there is no such process."""
    try:
        text = _read_proc(f"{PROC}/{pid}/stat")
    except (FileNotFoundError, ProcessLookupError):
        return None
    try:
        return ProcStat.parse(text)
    except (ValueError, IndexError):
        return None


def read_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks after boot (stat field 22), None if gone."""
    stat = read_stat(pid)
    return None if stat is None else stat.start_ticks


def _live_processes() -> Iterator[ProcStat]:
    """The stat of every live (non-zombie) process, in one scan of ``/proc``; one that
    vanishes meanwhile is left out."""
    with os.scandir(PROC) as entries:
        for entry in entries:
            if entry.name.isdigit():
                stat = read_stat(int(entry.name))
                if stat is not None and not stat.exited:
                    yield stat


def session_members(session: int, *, started_since: int = 0) -> list[ProcStat]:
    """Live (non-zombie) processes in ``session`` that started at or after ``started_since``.

    A tenant is started in its own session (its pid is its session id and process
    group id), so this finds the tenant and everything it forked that did not
    call ``setsid`` itself, even after the tenant's leader has exited.
    """
    return [
        stat
        for stat in _live_processes()
        if stat.session == session and stat.start_ticks >= started_since
    ]


def group_members(pgid: int) -> list[ProcStat]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    return [stat for stat in _live_processes() if stat.pgrp == pgid]


@attrs.frozen
class GroupUsage:
    """What the live processes of one process group use now."""

    cpu_ticks: int
    rss_bytes: int


def group_usage() -> dict[int, GroupUsage]:
    """CPU time and resident memory summed per process group, in one scan of /proc.

    A tenant leads its own process group, so its entry (by its pid) covers what it
    forked too (unless that left the group). Blocking: 20-40 us per process.
    """
    page = os.sysconf("SC_PAGE_SIZE")
    totals: dict[int, list[int]] = {}
    for stat in _live_processes():
        total = totals.setdefault(stat.pgrp, [0, 0])
        total[0] += stat.cpu_ticks
        total[1] += stat.rss_pages * page
    return {pgid: GroupUsage(cpu, rss) for pgid, (cpu, rss) in totals.items()}


def has_caps(*bits: int) -> bool:
    """Whether this process holds every capability numbered ``bits`` (CapEff)."""
    try:
        text = (PROC / "self" / "status").read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("CapEff:"):
            effective = int(line.split()[1], 16)
            return all(effective >> bit & 1 for bit in bits)
    return False


def has_cap_sys_admin() -> bool:
    """Whether this process holds CAP_SYS_ADMIN (needed for PID and mount namespaces)."""
    return has_caps(CAP_SYS_ADMIN_BIT)


def cgroup_of(pid: int | str = "self") -> str | None:
    """The cgroup v2 path of a process (``"/system.slice/tenement.service"``).

    Returns:
        The path from the ``0::`` line of ``/proc/<pid>/cgroup``, or None when the
        process is gone or is in no cgroup v2 hierarchy.
    """
    try:
        text = _read_proc(f"{PROC}/{pid}/cgroup")
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in text.splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None


#: the state column of /proc/net/tcp for a listening socket (TCP_LISTEN)
_TCP_LISTEN = "0A"


def listening_sockets(port: int) -> dict[int, int] | None:
    """The TCP sockets listening on ``port`` (any address, IPv4 or IPv6): inode -> the
    uid that owns the socket.

    Asks the kernel through a sock_diag netlink socket for the listening sockets only
    (about 0.2 ms); where that is not available, reads ``/proc/net/tcp`` and
    ``/proc/net/tcp6`` (which costs milliseconds on a host with many connections).

    Returns:
        The sockets (empty when nobody listens), or None when the kernel cannot be asked
        (not Linux): the caller cannot tell who listens.
    """
    try:
        return _diag_listening_sockets(port)
    except (OSError, AttributeError):  # AttributeError: no AF_NETLINK off Linux
        return _table_listening_sockets(port)


def listening_inodes(port: int) -> frozenset[int] | None:
    """The inodes of :func:`listening_sockets`."""
    sockets = listening_sockets(port)
    return None if sockets is None else frozenset(sockets)


#: netlink constants (linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h)
_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST_DUMP = 0x301
_NLMSG_ERROR = 2
_NLMSG_DONE = 3
_TCPF_LISTEN = 1 << 10
_IPPROTO_TCP = 6
_NLMSG_HEADER = struct.Struct("=IHHII")
#: inet_diag_req_v2 without its socket id (48 zero bytes follow: no filter)
_DIAG_REQUEST = struct.Struct("=BBBBI")
#: offsets in an inet_diag_msg: idiag_sport (big-endian), idiag_uid, idiag_inode
_SPORT_OFFSET = 4
_UID_OFFSET = 64
_INODE_OFFSET = 68


def _diag_listening_sockets(port: int) -> dict[int, int]:
    found = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_SOCK_DIAG) as link:
        for family in (socket.AF_INET, socket.AF_INET6):
            request = _DIAG_REQUEST.pack(family, _IPPROTO_TCP, 0, 0, _TCPF_LISTEN) + bytes(48)
            size = _NLMSG_HEADER.size + len(request)
            header = _NLMSG_HEADER.pack(size, _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST_DUMP, 1, 0)
            link.send(header + request)
            done = False
            while not done:
                data = link.recv(65536)
                offset = 0
                while offset + _NLMSG_HEADER.size <= len(data):
                    length, kind = struct.unpack_from("=IH", data, offset)
                    body = offset + _NLMSG_HEADER.size
                    if kind == _NLMSG_DONE or length == 0:
                        done = True
                        break
                    if kind == _NLMSG_ERROR:
                        code = -struct.unpack_from("=i", data, body)[0]
                        raise OSError(code, os.strerror(code))
                    if struct.unpack_from("!H", data, body + _SPORT_OFFSET)[0] == port:
                        uid, inode = struct.unpack_from("=II", data, body + _UID_OFFSET)
                        found[inode] = uid
                    offset += (length + 3) & ~3
    return found


def _table_listening_sockets(port: int) -> dict[int, int] | None:
    """:func:`listening_sockets` from /proc/net; the kernel lists listeners first."""
    wanted = f":{port:04X}"
    found: dict[int, int] = {}
    readable = False
    for table in ("tcp", "tcp6"):
        try:
            with open(PROC / "net" / table) as rows:
                readable = True
                next(rows, None)  # the header
                for row in rows:
                    fields = row.split()
                    if len(fields) < 10 or fields[3] != _TCP_LISTEN:
                        break
                    if fields[1].endswith(wanted):
                        found[int(fields[9])] = int(fields[7])
        except OSError:
            continue
    return found if readable else None


def _table_listening_inodes(port: int) -> frozenset[int] | None:
    """The inodes of :func:`_table_listening_sockets` (the fallback, for its tests)."""
    sockets = _table_listening_sockets(port)
    return None if sockets is None else frozenset(sockets)


def process_uid(pid: int) -> int | None:
    """The effective uid of ``pid`` (``/proc/<pid>/status``, readable by anyone), None
    when it is gone."""
    try:
        text = _read_proc(f"{PROC}/{pid}/status")
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in text.splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[2])
    return None


def holds_socket(pid: int, inodes: frozenset[int]) -> bool | None:
    """Whether ``pid`` has a file descriptor on one of the socket ``inodes``.

    Returns:
        True or False; None when its descriptors cannot be read (another user's
        process, without CAP_SYS_PTRACE: root confined by the unit, or a server that
        runs its tenants as their own uid). A process that is gone holds nothing.
    """
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except (FileNotFoundError, ProcessLookupError):
        return False
    except PermissionError:
        return None
    for fd in fds:
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except PermissionError:
            # the fd directory lists for CAP_DAC_READ_SEARCH, but its links are behind
            # the ptrace check
            return None
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:[") and int(target[8:-1]) in inodes:
            return True
    return False


def children_of(pid: int) -> list[int]:
    """The pids of the children of every thread of ``pid`` (empty when it is gone)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"{PROC}/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            text = _read_proc(f"{PROC}/{pid}/task/{tid}/children")
        except OSError:
            continue
        found.extend(int(child) for child in text.split())
    return found


def _tenant_pids(leader: int) -> list[int]:
    """``leader`` and its descendants that stayed in its process group or session."""
    found, todo = [], [leader]
    while todo:
        pid = todo.pop()
        stat = read_stat(pid)
        if stat is None or stat.exited or leader not in (stat.pgrp, stat.session):
            continue
        found.append(pid)
        todo.extend(children_of(pid))
    return found


def _scan_members(leader: int) -> set[int]:
    """Every live process whose process group or session is ``leader`` (one /proc scan)."""
    return {stat.pid for stat in _live_processes() if leader in (stat.pgrp, stat.session)}


def tenant_holds_listener(leader: int, port: int) -> bool | None:
    """Whether a process of the tenant led by ``leader`` listens on TCP ``port``.

    Returns:
        True when one of its processes holds a listening socket on ``port``; False when
        only other programs do; None when it cannot be told (no /proc, nobody listens,
        or a member's descriptors are unreadable).
    """
    inodes = listening_inodes(port)
    if not inodes:
        return None
    return tenant_holds_any(leader, inodes)


def tenant_holds_any(leader: int, inodes: frozenset[int], *, scan: bool = True) -> bool | None:
    """Whether a process of the tenant led by ``leader`` holds one of the socket ``inodes``.

    A tenant leads its own session and process group (``leader`` is its pid; under
    namespace isolation that of ``unshare``, whose descendants stay in the group). Its
    processes are looked up first by walking down from ``leader`` (cheap: a few small
    reads), and only when that finds no holder, by scanning ``/proc`` for every member
    of its group or session (a member whose parent exited is no longer below it; this
    scan costs some 30 us per process on the host).

    Args:
        leader: the tenant's pid, process group and session id.
        inodes: the socket inodes looked for.
        scan: False skips the /proc scan: False then means "not found below ``leader``".

    Returns:
        True or False; None when it cannot be told (a member's descriptors are unreadable).
    """
    checked: set[int] = set()
    unknown = False
    for pid in _tenant_pids(leader):
        checked.add(pid)
        held = holds_socket(pid, inodes)
        if held:
            return True
        unknown = unknown or held is None
    if not scan:
        return None if unknown else False
    for pid in _scan_members(leader) - checked:
        held = holds_socket(pid, inodes)
        if held:
            return True
        unknown = unknown or held is None
    return None if unknown else False
