"""HTTP load from the host against the container's port, counting every kind of failure.

Two kinds of clients run in threads until stopped (or until their bound of requests or
seconds): one-shot clients open a connection per request (``Connection: close``), and
keep-alive clients reuse one connection for as long as the server keeps it open.

A request counts as failed when the connection is refused or reset, the answer is
empty, truncated, not 200, or not from the expected tenant, or it takes longer than
``timeout``. The one exception is the case RFC 9112 section 9.3.1 lets a client retry: a
*reused* keep-alive connection that the server closed before a single byte of the answer
came back (the server closed an idle connection as the request went out). That request
is retried once on a new connection and counted in ``retried``; if the retry fails too,
it is a failure.

With ``tls`` (an :class:`ssl.SSLContext`), every connection is HTTPS with the host as
its SNI name (verified by the context): a one-shot client makes a new handshake per
request, and a keep-alive client keeps to one host, that of its connection.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections import Counter

import attrs

REQUEST = "GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tenement-system-test\r\n{extra}\r\n"


class _Failed(Exception):
    pass


class _ClosedBeforeAnswer(Exception):
    """The server closed a reused connection before any byte of the answer."""


@attrs.define
class LoadResult:
    sent: int = 0
    ok: int = 0
    retried: int = 0
    failures: Counter[str] = attrs.field(factory=Counter)
    #: the first few failures, as text, for the assertion message
    examples: list[str] = attrs.field(factory=list)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def summary(self) -> str:
        return (
            f"{self.sent} requests, {self.ok} ok, {self.failed} failed {dict(self.failures)},"
            f" {self.retried} retried (closed idle keep-alive)"
            + (f"; first failures: {self.examples}" if self.examples else "")
        )


def _read_response(sock: socket.socket, deadline: float) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response (status, lower-cased headers, body; Content-Length framed)."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError):
            # (a TLS connection closed without close_notify: the server process ended)
            if not buffer:
                raise _ClosedBeforeAnswer() from None
            raise
        if not chunk:
            if not buffer:
                raise _ClosedBeforeAnswer()
            raise _Failed("truncated headers")
        buffer += chunk
    head, _, body = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise _Failed(f"bad status line {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" not in headers:
        raise _Failed(f"no Content-Length (status {parts[1]})")
    length = int(headers["content-length"])
    while len(body) < length:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise _Failed("truncated body")
        body += chunk
    return int(parts[1]), headers, body[:length]


class Load:
    """Clients hammering ``127.0.0.1:port`` with requests for the given tenant hosts.

    Use as a context manager; :attr:`result` holds the counts once it exits.

    Args:
        port: the container's tenement port (loopback).
        hosts: ``{Host header: expected first word of the body}`` (the tenant's name).
        one_shot: number of one-request-per-connection clients.
        keep_alive: number of keep-alive clients.
        pause: seconds each client waits between requests (keeps the CPU for the server).
        max_seconds: the clients stop by themselves after this long (a bound, not a goal).
        max_requests: ... or after this many requests in all.
        timeout: a request taking longer than this is a failure.
        tls: connect over TLS with this context (SNI: the request's host).
    """

    def __init__(
        self,
        port: int,
        hosts: dict[str, str],
        *,
        one_shot: int = 4,
        keep_alive: int = 4,
        pause: float = 0.005,
        max_seconds: float = 240.0,
        max_requests: int = 2_000_000,
        timeout: float = 30.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.port = port
        self.hosts = list(hosts.items())
        self.one_shot = one_shot
        self.keep_alive = keep_alive
        self.pause = pause
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.timeout = timeout
        self.tls = tls
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = 0.0
        self.elapsed = 0.0

    def __enter__(self) -> Load:
        self._started = time.monotonic()
        for index in range(self.one_shot):
            self._spawn(self._one_shot_client, index)
        for index in range(self.keep_alive):
            self._spawn(self._keep_alive_client, index)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> LoadResult:
        """Stop the clients (each finishes its request in flight) and return the counts."""
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        self.elapsed = time.monotonic() - self._started
        return self.result

    def wait_for_requests(self, count: int, timeout: float = 30.0) -> None:
        """Block until ``count`` more requests succeeded (the load is really flowing)."""
        target = self.result.ok + count
        deadline = time.monotonic() + timeout
        while self.result.ok < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"load is not flowing: {self.result.summary()}")
            time.sleep(0.05)

    def _spawn(self, target, index: int) -> None:  # type: ignore[no-untyped-def]
        thread = threading.Thread(target=target, args=(index,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _running(self) -> bool:
        return (
            not self._stop.is_set()
            and time.monotonic() - self._started < self.max_seconds
            and self.result.sent < self.max_requests
        )

    def _count(self, outcome: str | None, detail: str = "", *, retried: bool = False) -> None:
        with self._lock:
            self.result.sent += 1
            if retried:
                self.result.retried += 1
            if outcome is None:
                self.result.ok += 1
            else:
                self.result.failures[outcome] += 1
                if len(self.result.examples) < 5:
                    self.result.examples.append(f"{outcome}: {detail}")

    def _check(self, status: int, body: bytes, expected: str) -> None:
        if status != 200:
            raise _Failed(f"status {status}: {body[:200]!r}")
        if not body.decode("utf-8", "replace").startswith(expected + " "):
            raise _Failed(f"answer from the wrong place: {body[:200]!r}")

    def _connect(self, deadline: float, host: str) -> socket.socket:
        sock = socket.create_connection(
            ("127.0.0.1", self.port), timeout=max(0.01, deadline - time.monotonic())
        )
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            try:
                # the handshake happens here, under the socket's timeout
                return self.tls.wrap_socket(sock, server_hostname=host)
            except BaseException:
                sock.close()
                raise
        return sock

    def _one_request(self, sock: socket.socket, host: str, expected: str, extra: str) -> bool:
        """Send one request on ``sock`` and check the answer; True when it may be reused."""
        deadline = time.monotonic() + self.timeout
        sock.sendall(REQUEST.format(host=host, extra=extra).encode())
        status, headers, body = _read_response(sock, deadline)
        self._check(status, body, expected)
        return headers.get("connection", "").lower() != "close"

    def _one_shot_client(self, index: int) -> None:
        turn = index
        while self._running():
            host, expected = self.hosts[turn % len(self.hosts)]
            turn += 1
            try:
                with self._connect(time.monotonic() + self.timeout, host) as sock:
                    self._one_request(sock, host, expected, "Connection: close\r\n")
            except _ClosedBeforeAnswer:
                self._count("empty reply", "connection closed before any answer")
            except Exception as error:  # every kind counts
                self._count(_kind(error), repr(error))
            else:
                self._count(None)
            time.sleep(self.pause)

    def _keep_alive_client(self, index: int) -> None:
        turn = index
        sock: socket.socket | None = None
        try:
            while self._running():
                # over TLS the connection's SNI name is its host: keep to it
                host, expected = self.hosts[(index if self.tls else turn) % len(self.hosts)]
                turn += 1
                reused = sock is not None
                retried = False
                try:
                    if sock is None:
                        sock = self._connect(time.monotonic() + self.timeout, host)
                    try:
                        reusable = self._one_request(sock, host, expected, "")
                    except (_ClosedBeforeAnswer, BrokenPipeError, ssl.SSLEOFError):
                        if not reused:
                            raise
                        # RFC 9112 9.3.1: the idle connection was closed under us; retry once
                        sock.close()
                        retried = True
                        sock = self._connect(time.monotonic() + self.timeout, host)
                        reusable = self._one_request(sock, host, expected, "")
                    if not reusable:
                        sock.close()
                        sock = None
                except _ClosedBeforeAnswer:
                    self._count(
                        "empty reply", "new connection closed before any answer", retried=retried
                    )
                    sock = _close(sock)
                except Exception as error:
                    self._count(_kind(error), repr(error), retried=retried)
                    sock = _close(sock)
                else:
                    self._count(None, retried=retried)
                time.sleep(self.pause)
        finally:
            _close(sock)


def _close(sock: socket.socket | None) -> None:
    if sock is not None:
        sock.close()


def _kind(error: Exception) -> str:
    if isinstance(error, _Failed):
        return str(error).split(":")[0]
    if isinstance(error, ConnectionRefusedError):
        return "refused"
    if isinstance(error, ConnectionResetError):
        return "reset"
    if isinstance(error, TimeoutError | socket.timeout):
        return "timeout"
    return type(error).__name__
