"""tenement.server.run: what ``ten serve`` does to its own process before serving."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_python(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter (a process table of its own); its output lines."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.split()


def test_reserve_descriptors_grows_the_table_and_leaves_nothing_open() -> None:
    fd_size, grown, open_before, open_after = run_python(
        """
        import os, resource
        from tenement.server.run import reserve_descriptors

        resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))

        def fd_size():
            for line in open("/proc/self/status"):
                if line.startswith("FDSize:"):
                    return int(line.split()[1])

        print(fd_size())
        before = len(os.listdir("/proc/self/fd"))
        reserve_descriptors(4096)
        print(fd_size(), before, len(os.listdir("/proc/self/fd")))
        """
    )
    assert int(fd_size) < 4096 <= int(grown)
    assert open_before == open_after


def test_reserve_descriptors_never_takes_a_descriptor_in_use_or_passes_the_limit() -> None:
    same, grown = run_python(
        """
        import os, resource
        from tenement.server.run import reserve_descriptors

        resource.setrlimit(resource.RLIMIT_NOFILE, (2048, 8192))
        fd, _ = os.pipe()
        os.dup2(fd, 2047)  # the highest allowed: in use (a pipe, not /dev/null)
        reserve_descriptors(100_000)  # more than the limit allows: up to it, not past
        print(os.path.samestat(os.fstat(2047), os.fstat(fd)))
        print(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("FDSize:")))
        """
    )
    assert same == "True"
    assert int(grown) == 2048


def limits_after(soft: int, hard: int, wanted: int) -> list[str]:
    """(soft, hard) after raise_descriptor_limit(wanted) in a process started at soft/hard."""
    return run_python(
        f"""
        import resource
        from tenement.server.run import raise_descriptor_limit

        resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}))
        raise_descriptor_limit({wanted})
        print(*resource.getrlimit(resource.RLIMIT_NOFILE))
        """
    )


def test_the_open_files_limit_is_raised_to_what_is_wanted() -> None:
    # systemd's default for a service is 1,024 soft: ~500 tenants' worth
    assert limits_after(1024, 8192, 4096) == ["4096", "8192"]


def test_the_open_files_limit_is_raised_at_most_to_the_hard_limit() -> None:
    assert limits_after(1024, 2048, 65536) == ["2048", "2048"]


def test_a_higher_open_files_limit_is_left_alone() -> None:
    assert limits_after(8000, 8192, 4096) == ["8000", "8192"]
