"""A Debian 12 with systemd, booted in systemd-nspawn, for the system tests.

The root is made once by debootstrap and cached in ``/var/cache/tenement-test/``; every
session boots a throwaway overlay of it (the cache is never written), shares the host's
network namespace (so only loopback ports, chosen free, are used), runs commands inside
with ``nsenter`` and tears everything down at the end: the container's init (and with
it every process of the container), the overlay mount and its directory.

Everything raises :class:`Unavailable` with a sentence for the skip message when this
machine cannot do it (not root, no systemd-nspawn, debootstrap failing).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

CACHE = Path(os.environ.get("TENEMENT_TEST_CACHE", "/var/cache/tenement-test"))
ROOT = CACHE / "bookworm-root"
#: what debootstrap puts in the root (the packages the tests and the .deb need)
INCLUDE = "systemd,systemd-sysv,dbus,python3,python3-venv,curl,iproute2,procps"
SUITE = "bookworm"
BOOT_TIMEOUT = 60.0
#: files that prove a cached root is complete (debootstrap ran to the end)
ROOT_MARKERS = ("usr/lib/systemd/systemd", "usr/bin/python3", "usr/bin/apt-get")


class Unavailable(Exception):
    """This machine cannot run the system tests; the message says why (the skip reason)."""


def check_host() -> None:
    """Raise :class:`Unavailable` unless we are root with nspawn, nsenter and overlayfs."""
    if os.geteuid() != 0:
        raise Unavailable("system tests need root (systemd-nspawn, mount)")
    for tool, package in (
        ("systemd-nspawn", "systemd-container"),
        ("nsenter", "util-linux"),
        ("debootstrap", "debootstrap"),
    ):
        if shutil.which(tool) is None:
            raise Unavailable(f"{tool} is not installed (apt-get install {package})")
    if "overlay" not in Path("/proc/filesystems").read_text():
        raise Unavailable("the kernel has no overlayfs (modprobe overlay)")


def root_is_complete(root: Path = ROOT) -> bool:
    return all((root / marker).exists() for marker in ROOT_MARKERS)


def ensure_root(root: Path = ROOT, *, log=print) -> Path:  # type: ignore[no-untyped-def]
    """The cached Debian 12 root; made with debootstrap (about a minute) when missing.

    Concurrent sessions wait for each other on a lock file; a half-made root (an
    interrupted debootstrap) is made again in a fresh directory, never used.

    Raises:
        Unavailable: debootstrap failed (its last output lines are in the message).
    """
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if root_is_complete(root):
            return root
        partial = root.with_name(root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        log(f"building {root} with debootstrap (once; cached for later runs)")
        done = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={INCLUDE}", SUITE, str(partial)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if done.returncode != 0 or not root_is_complete(partial):
            tail = "\n".join(done.stdout.splitlines()[-5:])
            shutil.rmtree(partial, ignore_errors=True)
            raise Unavailable(f"debootstrap {SUITE} failed (exit {done.returncode}):\n{tail}")
        shutil.rmtree(root, ignore_errors=True)
        partial.rename(root)
        return root


class CommandFailed(AssertionError):
    pass


class Container:
    """One booted container: an overlay of the cached root, its nspawn and its init.

    Attributes:
        merged: the container's ``/`` as seen from the host (write files there).
        init_pid: the container's systemd, as a host pid (``nsenter -t`` target).
    """

    def __init__(self, workdir: Path, nspawn: subprocess.Popen[bytes], init_pid: int) -> None:
        self.workdir = workdir
        self.merged = workdir / "merged"
        self.nspawn = nspawn
        self.init_pid = init_pid

    def path(self, inside: str) -> Path:
        """The host path of the container's file ``inside`` (an absolute path)."""
        return self.merged / inside.lstrip("/")

    def write(self, inside: str, text: str, mode: int = 0o644) -> None:
        path = self.path(inside)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)

    def run(
        self,
        command: str | Sequence[str],
        *,
        check: bool = True,
        timeout: float = 120.0,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` (a shell line, or argv) in every namespace of the container.

        Raises:
            CommandFailed: with ``check``, when it exits non-zero (output in the message).
        """
        argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
        done = subprocess.run(
            ["nsenter", "-t", str(self.init_pid), "-a", "--", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            # root's PATH on Debian: /usr/local/bin holds a `ten` installed by hand
            env={
                "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "LANG": "C.UTF-8",
            },
        )
        if check and done.returncode != 0:
            shown = command if isinstance(command, str) else shlex.join(command)
            raise CommandFailed(
                f"in the container: {shown}\nexit {done.returncode}\n"
                f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
            )
        return done

    def out(self, command: str | Sequence[str], **kwargs) -> str:  # type: ignore[no-untyped-def]
        """The stripped stdout of :meth:`run`."""
        return self.run(command, **kwargs).stdout.strip()

    def wait_for(self, command: str, *, timeout: float = 30.0, what: str = "") -> str:
        """Poll ``command`` until it exits 0; its stdout. Raises AssertionError at timeout."""
        deadline = time.monotonic() + timeout
        while True:
            done = self.run(command, check=False)
            if done.returncode == 0:
                return done.stdout.strip()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:g} s waiting for {what or command}:\n"
                    f"{done.stdout[-2000:]}{done.stderr[-2000:]}"
                )
            time.sleep(0.2)

    def pid_alive(self, pid: int) -> bool:
        """True when ``pid`` (a container pid) is a live, non-zombie process."""
        done = self.run(f"cat /proc/{int(pid)}/stat", check=False)
        if done.returncode != 0:
            return False
        state = done.stdout.rpartition(")")[2].split()[0]
        return state != "Z"


def _init_pid_of(nspawn_pid: int) -> int | None:
    children = Path(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children")
    try:
        pids = children.read_text().split()
    except OSError:
        return None
    return int(pids[0]) if pids else None


@contextlib.contextmanager
def booted(root: Path = ROOT, *, log=print) -> Iterator[Container]:  # type: ignore[no-untyped-def]
    """Boot an overlay of ``root``; yield the running :class:`Container`; tear it all down.

    Raises:
        Unavailable: the overlay cannot be mounted or the container does not boot.
    """
    workdir = Path(tempfile.mkdtemp(prefix="tenement-system-", dir="/var/tmp"))
    merged = workdir / "merged"
    for name in ("upper", "work", "merged"):
        (workdir / name).mkdir()
    mounted = False
    nspawn = None
    init_pid = None
    # a SIGTERM (a CI timeout) must still tear the container down: make it an exception
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        options = f"lowerdir={root},upperdir={workdir / 'upper'},workdir={workdir / 'work'}"
        done = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options, str(merged)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise Unavailable(f"cannot mount an overlay of {root}: {done.stderr.strip()}")
        mounted = True
        machine = f"tenement-test-{uuid.uuid4().hex[:8]}"
        with open(workdir / "console.log", "wb") as console:
            nspawn = subprocess.Popen(
                [
                    *("systemd-nspawn", "-q", "-D", str(merged), "--boot", "--register=no"),
                    *("--keep-unit", f"--machine={machine}"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "0"},
            )
        deadline = time.monotonic() + BOOT_TIMEOUT
        container = None
        state = ""
        while time.monotonic() < deadline:
            if nspawn.poll() is not None:
                break
            init_pid = init_pid or _init_pid_of(nspawn.pid)
            if init_pid is not None:
                container = Container(workdir, nspawn, init_pid)
                state = container.run("systemctl is-system-running", check=False).stdout.strip()
                if state in ("running", "degraded"):
                    break
            time.sleep(0.25)
        else:
            container = None
        if container is None or state not in ("running", "degraded"):
            console_tail = (workdir / "console.log").read_text(errors="replace")[-2000:]
            raise Unavailable(
                f"the container did not boot within {BOOT_TIMEOUT:g} s (state {state!r},"
                f" nspawn exit {nspawn.poll()}):\n{console_tail}"
            )
        log(f"booted {machine} (init pid {init_pid}) on {merged}")
        yield container
    finally:
        _teardown(nspawn, init_pid)
        if mounted:
            subprocess.run(["umount", str(merged)], check=False, capture_output=True)
            if os.path.ismount(merged):
                subprocess.run(["umount", "-l", str(merged)], check=False, capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(f"terminated by signal {signum}")


def _teardown(nspawn: subprocess.Popen[bytes] | None, init_pid: int | None) -> None:
    """Stop the container: poweroff (nspawn's SIGTERM), then SIGKILL its init and nspawn.

    Killing the init of a pid namespace kills every process in it, so nothing the tests
    started inside survives.
    """
    if nspawn is None:
        return
    if nspawn.poll() is None:
        nspawn.send_signal(signal.SIGTERM)  # nspawn asks the container's systemd to power off
        with contextlib.suppress(subprocess.TimeoutExpired):
            nspawn.wait(timeout=15)
    if nspawn.poll() is None:
        # nspawn still waits for its init, so the pid is still the container's init
        if init_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(init_pid, signal.SIGKILL)
        nspawn.kill()
    nspawn.wait(timeout=15)
