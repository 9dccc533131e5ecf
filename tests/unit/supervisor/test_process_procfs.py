"""procfs: /proc/<pid>/stat parsing (start time against pid reuse), sessions, cgroups."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tenement.supervisor import procfs


@pytest.mark.parametrize(
    ("comm", "line"),
    [
        ("python3", "123 (python3) S 1 123 123 0 -1 4194560 " + "0 " * 12 + "98765 0 0"),
        (
            "a) (b c) x",
            "123 (a) (b c) x) S 1 123 123 0 -1 4194560 " + "0 " * 12 + "98765 0 0",
        ),
    ],
    ids=["plain", "parens-and-spaces-in-comm"],
)
def test_stat_is_parsed_after_the_last_paren(comm: str, line: str) -> None:
    stat = procfs.ProcStat.parse(line)
    assert stat == procfs.ProcStat(
        pid=123, comm=comm, state="S", ppid=1, pgrp=123, session=123, start_ticks=98765
    )
    assert not stat.exited


def test_own_stat_matches_the_os() -> None:
    stat = procfs.read_stat(os.getpid())
    assert stat is not None
    assert (stat.pid, stat.ppid, stat.pgrp, stat.session) == (
        os.getpid(),
        os.getppid(),
        os.getpgrp(),
        os.getsid(0),
    )
    assert procfs.read_start_ticks(os.getpid()) == stat.start_ticks > 0
    assert os.getpid() in {m.pid for m in procfs.group_members(os.getpgrp())}


def test_a_missing_pid_reads_as_none() -> None:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    assert procfs.read_stat(pid_max + 1) is None
    assert procfs.read_start_ticks(pid_max + 1) is None
    assert procfs.cgroup_of(pid_max + 1) is None


def test_capability_check_agrees_with_being_root() -> None:
    # CAP_SYS_ADMIN: root has it in a normal container; an ordinary user does not
    if os.geteuid() != 0:
        assert not procfs.has_cap_sys_admin()
    else:
        assert isinstance(procfs.has_cap_sys_admin(), bool)
