"""Load generators: wrk for throughput and latency, a Python client for restarts.

wrk runs with a Lua script that sets the Host header and prints one JSON summary line.
The restart client opens a new connection per request (no keep-alive to hide behind), so
every refused or reset connection counts as a failed request.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import attrs

_LUA = """
wrk.headers["Host"] = "%(host)s"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nBENCHJSON {"requests": %%d, "seconds": %%f, "p50_us": %%d, "p99_us": %%d, "mean_us": %%f,'
    .. ' "max_us": %%d, "errors": %%d, "non2xx": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    latency.mean, latency.max, e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@attrs.frozen
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    errors: int


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk")
    return path


def run_wrk(
    port: int,
    host: str,
    *,
    connections: int,
    seconds: float,
    work: Path,
    cpus: str | None = None,
    scheme: str = "http",
    close: bool = False,
    address: str = "127.0.0.1",
) -> WrkResult:
    """One wrk run against ``address``:port with ``Host: host``; on the CPUs ``cpus``
    (a ``taskset -c`` list) when given, else wherever the kernel puts it; ``scheme``
    ``https`` for TLS (wrk does not verify the certificate; its SNI is ``address``),
    ``close`` for a new connection (and TLS handshake) per request."""
    script = work / f"wrk-{host}{'-close' if close else ''}.lua"
    lua = _LUA % {"host": host}
    if close:
        lua = 'wrk.headers["Connection"] = "close"\n' + lua
    script.write_text(lua)
    threads = min(connections, 2)
    pin = ["taskset", "-c", cpus] if cpus else []
    out = subprocess.run(
        [
            *pin,
            wrk_path(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"{scheme}://{address}:{port}/",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    return wrk_result(out)


@attrs.define
class LoadStats:
    ok: int = 0
    failed: int = 0
    longest: float = 0.0
    errors: dict[str, int] = attrs.Factory(dict)


def one_request(
    port: int, host: str, timeout: float, answer: list[bytes] | None = None
) -> str | None:
    """A GET over a new connection; None when it got a 200, else what went wrong.

    The whole answer is appended to ``answer`` when given.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        return type(exc).__name__
    if answer is not None:
        answer.append(data)
    if not data.startswith(b"HTTP/1.1 200"):
        return data.split(b"\r\n", 1)[0].decode(errors="replace") or "empty answer"
    return None


class Load:
    """``clients`` threads sending requests back to back until :meth:`finish`."""

    def __init__(self, port: int, host: str, clients: int = 4, timeout: float = 30) -> None:
        self.port, self.host, self.timeout = port, host, timeout
        self.stats = LoadStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            error = one_request(self.port, self.host, self.timeout)
            took = time.monotonic() - began
            with self._lock:
                self.stats.longest = max(self.stats.longest, took)
                if error is None:
                    self.stats.ok += 1
                else:
                    self.stats.failed += 1
                    self.stats.errors[error] = self.stats.errors.get(error, 0) + 1
                    time.sleep(0.001)  # a refused connect returns at once; don't spin

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)


def wrk_result(out: str) -> WrkResult:
    """The figures our wrk script prints on its ``BENCHJSON`` line."""
    line = next(line for line in out.splitlines() if line.startswith("BENCHJSON "))
    data = json.loads(line.removeprefix("BENCHJSON "))
    return WrkResult(
        rps=data["requests"] / data["seconds"],
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        mean_ms=data["mean_us"] / 1000,
        errors=data["errors"] + data["non2xx"],
    )
