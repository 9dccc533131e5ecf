"""tenement.systemd against real sockets, real signals and real child processes."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from tenement.systemd import (
    Lifecycle,
    Notifier,
    SystemdError,
    adopt_listen_socket,
    configure_logging,
    listen_fds_from_environ,
    serve_watchdog,
    under_journal,
    watchdog_interval,
)
from tests.fdholder import open_fd_holder

# --- LISTEN_FDS parsing ---------------------------------------------------------------


def test_listen_fds_are_numbered_from_3_with_their_names() -> None:
    environ = {"LISTEN_PID": "42", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "http:unix", "PATH": "/x"}
    assert listen_fds_from_environ(environ, 42) == [(3, "http"), (4, "unix")]
    assert environ == {"PATH": "/x"}, "the LISTEN_* variables are consumed"


def test_listen_fds_without_names_are_unknown() -> None:
    assert listen_fds_from_environ({"LISTEN_PID": "7", "LISTEN_FDS": "1"}, 7) == [(3, "unknown")]


def test_listen_fds_for_another_pid_are_ignored_and_consumed() -> None:
    environ = {"LISTEN_PID": "1", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "http"}
    assert listen_fds_from_environ(environ, 42) == []
    assert environ == {}


def test_no_listen_fds() -> None:
    assert listen_fds_from_environ({}, 42) == []


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"LISTEN_PID": "42", "LISTEN_FDS": "two"}, "LISTEN_FDS='two' are not numbers"),
        ({"LISTEN_PID": "me", "LISTEN_FDS": "1"}, "LISTEN_PID='me'"),
        (
            {"LISTEN_PID": "42", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "http"},
            "LISTEN_FDNAMES names 1 fds ('http') but LISTEN_FDS=2",
        ),
        ({"LISTEN_PID": "42", "LISTEN_FDS": "-1"}, "LISTEN_FDS=-1 is negative"),
    ],
    ids=["count", "pid", "names", "negative"],
)
def test_malformed_listen_variables_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SystemdError) as caught:
        listen_fds_from_environ(environ, 42)
    assert message in str(caught.value)


# --- adopting one fd ------------------------------------------------------------------


def test_a_listening_tcp_socket_is_adopted() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        fd = os.dup(held.fileno())
        adopted = adopt_listen_socket(fd, "http")
        with adopted:
            assert adopted.fileno() == fd
            assert adopted.getsockname() == held.getsockname()
            assert not adopted.get_inheritable()


def test_a_datagram_socket_is_refused_with_what_to_fix() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagram:
        with pytest.raises(SystemdError) as caught:
            adopt_listen_socket(datagram.fileno(), "tenement.sock")
        assert str(caught.value) == (
            f"fd {datagram.fileno()} (tenement.sock) is a datagram socket;"
            " tenement.socket must use ListenStream="
        )
        datagram.getsockname()  # the fd was left open


def test_a_stream_socket_that_is_not_listening_is_refused() -> None:
    not_listening = pytest.raises(SystemdError, match=r"is not listening .* Accept=no")
    with socket.socket() as unbound, not_listening:
        adopt_listen_socket(unbound.fileno(), "http")


def test_a_file_is_refused(tmp_path: Path) -> None:
    not_a_socket = pytest.raises(SystemdError, match=r"\(http\) is not a socket")
    with open(tmp_path / "f", "w") as file, not_a_socket:
        adopt_listen_socket(file.fileno(), "http")


def test_a_closed_fd_is_refused() -> None:
    fd = os.dup(0)
    os.close(fd)
    with pytest.raises(SystemdError, match=f"fd {fd} .* not open"):
        adopt_listen_socket(fd, "http")


LISTENER = """\
import os, sys
from tenement.systemd import listen_sockets
found = listen_sockets(os.environ)
leaked = sorted(name for name in os.environ if name.startswith("LISTEN_"))
with open(sys.argv[1], "w") as out:
    out.write("\\n".join([*(s.describe() for s in found), f"leaked {leaked}"]))
"""


async def test_listen_sockets_adopts_what_a_socket_unit_passes(tmp_path: Path) -> None:
    report = tmp_path / "report"
    names = ("tenement", "tenement")  # as units/tenement.socket names them
    async with open_fd_holder(tmp_path, unix=True, names=names) as holder:
        await holder.start([sys.executable, "-c", LISTENER, str(report)])
        with trio.fail_after(20):
            assert await holder.process.wait() == 0
    assert report.read_text().splitlines() == [
        f"fd 3 (tenement) tcp 127.0.0.1:{holder.port}",
        f"fd 4 (tenement) unix {holder.unix_path}",
        "leaked []",
    ]


# --- sd_notify ------------------------------------------------------------------------


@pytest.fixture
def notify_socket(tmp_path: Path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify"))
        sock.settimeout(5)
        yield sock


def test_notifier_sends_each_message(notify_socket: socket.socket) -> None:
    environ = {"NOTIFY_SOCKET": notify_socket.getsockname()}
    notifier = Notifier(environ)
    assert environ == {}, "NOTIFY_SOCKET is not left for children"
    assert notifier.enabled
    notifier.status("migrating\nthe database")
    notifier.ready()
    notifier.ready("serving")
    notifier.extend_timeout(90)
    notifier.watchdog()
    notifier.stopping()
    received = [notify_socket.recv(4096).decode() for _ in range(6)]
    assert received == [
        "STATUS=migrating the database",
        "READY=1",
        "READY=1\nSTATUS=serving",
        "EXTEND_TIMEOUT_USEC=90000000",
        "WATCHDOG=1",
        "STOPPING=1",
    ]


def test_reloading_carries_the_monotonic_clock(notify_socket: socket.socket) -> None:
    import time

    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    Notifier({"NOTIFY_SOCKET": notify_socket.getsockname()}).reloading()
    first, second = notify_socket.recv(4096).decode().split("\n")
    assert first == "RELOADING=1"
    key, _, usec = second.partition("=")
    assert key == "MONOTONIC_USEC"
    assert int(usec) >= before


def test_notifier_reaches_an_abstract_socket() -> None:
    name = f"tenement-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert sock.recv(4096) == b"READY=1"


def test_notifier_without_systemd_does_nothing() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    notifier.ready()
    notifier.stopping()


def test_notifier_whose_socket_is_gone_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}).ready()
    assert "could not notify systemd (READY=1)" in caplog.text


# --- watchdog -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "20000000"}, 10.0),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "OURS"}, 1.5),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
    ],
    ids=["unset", "no-pid", "our-pid", "other-pid", "zero"],
)
def test_watchdog_interval_is_half_of_watchdog_usec(
    environ: dict[str, str], interval: float | None
) -> None:
    if environ.get("WATCHDOG_PID") == "OURS":
        environ["WATCHDOG_PID"] = str(os.getpid())
    assert watchdog_interval(environ) == interval
    assert environ == {}


def test_malformed_watchdog_usec_is_refused() -> None:
    with pytest.raises(SystemdError, match="WATCHDOG_USEC='soon'"):
        watchdog_interval({"WATCHDOG_USEC": "soon"})


async def test_serve_watchdog_pings_every_interval(
    notify_socket: socket.socket, nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": notify_socket.getsockname()})
    await nursery.start(serve_watchdog, notifier, 10.0)
    await trio.sleep(25)
    nursery.cancel_scope.cancel()
    notify_socket.settimeout(0)
    pings = [notify_socket.recv(4096) for _ in range(3)]
    assert pings == [b"WATCHDOG=1"] * 3  # at 0, 10 and 20 s
    with pytest.raises(BlockingIOError):
        notify_socket.recv(4096)


# --- lifecycle signals ----------------------------------------------------------------

SIGNALLED = """\
import trio
from tenement.systemd import open_lifecycle_signals, Lifecycle

async def main():
    async with open_lifecycle_signals() as commands:
        print("listening", flush=True)
        async for command in commands:
            print(command.value, flush=True)
            if command is Lifecycle.STOP:
                break

trio.run(main)
"""


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
async def test_signals_become_lifecycle_commands(stop_signal: signal.Signals) -> None:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", SIGNALLED], stdout=subprocess.PIPE
    )
    lines: list[str] = []
    buffer = b""

    async def next_line() -> str:
        nonlocal buffer
        while b"\n" not in buffer:
            chunk = await process.stdout.receive_some()
            assert chunk, f"child ended early, said {lines}"
            buffer += chunk
        line, _, buffer = buffer.partition(b"\n")
        lines.append(line.decode())
        return lines[-1]

    try:
        with trio.fail_after(20):
            assert await next_line() == "listening"
            for signum, expected in [
                (signal.SIGHUP, Lifecycle.RELOAD),
                (signal.SIGUSR2, Lifecycle.RESTART),
                (stop_signal, Lifecycle.STOP),
            ]:
                process.send_signal(signum)
                assert await next_line() == expected.value
            assert await process.wait() == 0
    finally:
        process.kill()
        await process.wait()


# --- logging --------------------------------------------------------------------------


def test_under_journal_matches_the_stream_device_and_inode(tmp_path: Path) -> None:
    with open(tmp_path / "stream", "w") as stream:
        info = os.fstat(stream.fileno())
        assert under_journal({"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}, stream.fileno())
        assert not under_journal({"JOURNAL_STREAM": f"{info.st_dev}:1"}, stream.fileno())
        assert not under_journal({"JOURNAL_STREAM": "garbage"}, stream.fileno())
        assert not under_journal({}, stream.fileno())


@pytest.fixture
def root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_logging_goes_to_stderr_outside_systemd(root_logger: logging.Logger) -> None:
    handler = configure_logging({}, logging.DEBUG)
    assert type(handler) is logging.StreamHandler
    assert handler.stream is sys.stderr
    assert handler in root_logger.handlers
    assert root_logger.level == logging.DEBUG


def test_logging_goes_to_the_journal_when_stderr_is_the_journal_stream(
    root_logger: logging.Logger,
) -> None:
    from systemd.journal import JournalHandler

    info = os.fstat(2)
    environ = {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}
    handler = configure_logging(environ)
    assert isinstance(handler, JournalHandler)
    assert environ == {}, "JOURNAL_STREAM is not left for children"


def test_uppercase_extras_become_journal_fields() -> None:
    from systemd.journal import JournalHandler

    sent: list[dict[str, object]] = []
    handler = JournalHandler(sender_function=lambda *message, **fields: sent.append(fields))
    logger = logging.getLogger("tenement.test_systemd")
    logger.addHandler(handler)
    try:
        logger.warning("instance exited", extra={"INSTANCE": "notes:alice", "EXIT_CODE": 3})
    finally:
        logger.removeHandler(handler)
    [fields] = sent
    assert fields["INSTANCE"] == "notes:alice"
    assert fields["EXIT_CODE"] == 3
