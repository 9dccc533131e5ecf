"""A real `ten serve` with real tenants, and raw-socket clients, for the adversary tests.

:class:`LiveServe` runs ``python -m tenement serve`` in a project directory whose
tenement.toml has three services, each with one instance started at boot:

- ``rec`` (``a.rec.localhost``): recording_tenant.py, request_timeout 3 s; every byte it
  reads is in :attr:`LiveServe.rec_record`;
- ``patient`` (``a.patient.localhost``): the same tenant with the default 30 s;
- ``hostile`` (``a.hostile.localhost``): hostile_tenant.py, request_timeout 2 s.

Clients here write bytes, not requests: what they send is exactly what is in the test.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import attrs
import httpx
import trio

HERE = Path(__file__).parent
REC_HOST = "a.rec.localhost"
PATIENT_HOST = "a.patient.localhost"
HOSTILE_HOST = "a.hostile.localhost"
START_SECONDS = 30
#: the front's keep-alive time (hypercorn's default, which h1.py uses too)
KEEP_ALIVE_SECONDS = 5
#: the rec service's request_timeout
REC_TIMEOUT_SECONDS = 3
#: [settings] body_timeout of the server: the most a request body may pause, and the
#: grace before it must keep 1 KiB/s (test_6's body takes 6 s at a few bytes a second)
BODY_TIMEOUT_SECONDS = 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Record:
    """What a recording tenant wrote down (its JSON lines file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def events(self) -> list[dict]:
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.endswith("}")]

    def raw(self) -> str:
        """Every byte any connection read, in order (latin-1)."""
        return "".join(e["raw"] for e in self.events() if e["event"] == "data")

    def requests(self) -> list[dict]:
        return [e for e in self.events() if e["event"] == "request"]

    def requests_to(self, path: str) -> list[dict]:
        """The requests whose target is ``path`` (lines of any shape: a misframed request
        may have left garbage in the record)."""
        return [r for r in self.requests() if r["line"].split(" ")[1:2] == [path]]

    def open_connections(self) -> int:
        events = self.events()
        accepted = sum(1 for e in events if e["event"] == "accept")
        return accepted - sum(1 for e in events if e["event"] == "close")


def _config(project: Path) -> str:
    python = sys.executable
    return textwrap.dedent(
        f"""
        [settings]
        data_dir = "data"
        # the tenants run from this checkout and the test's temporary directories, which
        # a tenant of its own uid cannot read: run them as the server's user
        tenant_users = false
        # no health probes: the tenants' records hold the proxy's connections only
        health_check_interval = 3600
        body_timeout = {BODY_TIMEOUT_SECONDS}

        [service.rec]
        command = "{python} {HERE / "recording_tenant.py"}"
        isolation = "process"
        request_timeout = {REC_TIMEOUT_SECONDS}
        env = {{ RECORD = "{project / "rec.jsonl"}" }}

        [service.patient]
        command = "{python} {HERE / "recording_tenant.py"}"
        isolation = "process"
        env = {{ RECORD = "{project / "patient.jsonl"}" }}

        [service.hostile]
        command = "{python} {HERE / "hostile_tenant.py"}"
        isolation = "process"
        request_timeout = 2

        [instances]
        rec = ["a"]
        patient = ["a"]
        hostile = ["a"]
        """
    )


@attrs.define
class LiveServe:
    """One `ten serve` process (see the module doc)."""

    project: Path
    port: int
    proc: subprocess.Popen[bytes]

    @classmethod
    async def start(cls, project: Path) -> LiveServe:
        project.mkdir(parents=True, exist_ok=True)
        (project / "tenement.toml").write_text(_config(project))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENEMENT_")}
        with (project / "serve.log").open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tenement", "serve", "--port", str(port)],
                cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        server = cls(project, port, proc)
        try:
            with trio.fail_after(START_SECONDS):
                for host in (REC_HOST, PATIENT_HOST, HOSTILE_HOST):
                    while await server.status_of(host, "/fine") != 200:
                        if not server.alive():
                            raise AssertionError(f"ten serve exited:\n{server.log()}")
                        await trio.sleep(0.05)
        except BaseException:
            server.stop()
            raise
        return server

    @property
    def rec_record(self) -> Record:
        return Record(self.project / "rec.jsonl")

    @property
    def patient_record(self) -> Record:
        return Record(self.project / "patient.jsonl")

    def log(self) -> str:
        return (self.project / "serve.log").read_text(errors="replace")[-4000:]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def control_socket(self) -> Path | None:
        """The server's control socket (a Unix socket under data/run/), if it has one."""
        found = sorted((self.project / "data" / "run").glob("*.sock"))
        return found[0] if found else None

    async def status_of(self, host: str, path: str) -> int | None:
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.get(
                    f"http://127.0.0.1:{self.port}{path}", headers={"host": host}
                )
        except httpx.TransportError:
            return None
        return response.status_code

    async def assert_serving(self) -> None:
        """The server is alive, and a well-formed client (a fresh connection) is served
        200 by the tenant, and by the API."""
        assert self.alive(), f"ten serve exited with {self.proc.returncode}:\n{self.log()}"
        url = f"http://127.0.0.1:{self.port}"
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.get(f"{url}/fine", headers={"host": REC_HOST})
                health = await client.get(f"{url}/health")
        except httpx.TransportError as exc:
            raise AssertionError(f"a client was not served: {exc!r}\n{self.log()}") from exc
        assert response.status_code == 200, (response, response.text, self.log())
        assert response.json()["line"] == "GET /fine HTTP/1.1"
        assert health.status_code == 200, (health, health.text)

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # tenants of a server that died without stopping them
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in _tenant_pids(self.project):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def _tenant_pids(project: Path) -> list[int]:
    import sqlite3

    database = project / "data" / "tenement.db"
    if not database.exists():
        return []
    with contextlib.closing(sqlite3.connect(database)) as db:
        return [pid for (pid,) in db.execute("SELECT pid FROM instances WHERE pid IS NOT NULL")]


# ---- raw clients ----------------------------------------------------------------------------


@attrs.frozen
class Exchange:
    """What came back on one connection: the bytes, and whether the server closed it."""

    data: bytes
    closed: bool

    @property
    def responses(self) -> list[Response]:
        return parse_responses(self.data)

    @property
    def statuses(self) -> list[int]:
        return [r.status for r in self.responses]


@attrs.frozen
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    #: the connection ended before the body announced was all there
    truncated: bool = False

    def header(self, name: bytes) -> bytes | None:
        for n, v in self.headers:
            if n == name:
                return v
        return None


_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})[^\r\n]*\r\n")


def parse_responses(data: bytes) -> list[Response]:
    """Responses one after another, framed by Content-Length or chunked (a server's own,
    so strictly formed); a body cut short is returned ``truncated``."""
    out: list[Response] = []
    while data:
        status = _STATUS.match(data)
        end = data.find(b"\r\n\r\n")
        if status is None or end < 0:
            raise AssertionError(f"not an HTTP/1.1 response: {data[:200]!r}")
        headers = []
        for line in data[status.end() : end].split(b"\r\n"):
            if line:
                name, _, value = line.partition(b":")
                headers.append((name.strip().lower(), value.strip()))
        code = int(status[1])
        data = data[end + 4 :]
        fields = dict(headers)
        if 100 <= code < 200 or code in (204, 304):
            out.append(Response(code, headers, b""))
            continue
        if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
            body = b""
            while True:
                line_end = data.find(b"\r\n")
                if line_end < 0:
                    return [*out, Response(code, headers, body, truncated=True)]
                size = int(data[:line_end].split(b";")[0], 16)
                if len(data) < line_end + 2 + size + 2:
                    return [*out, Response(code, headers, body, truncated=True)]
                body += data[line_end + 2 : line_end + 2 + size]
                data = data[line_end + 2 + size + 2 :]
                if size == 0:
                    break
        elif b"content-length" in fields:
            length = int(fields[b"content-length"])
            body, data = data[:length], data[length:]
            if len(body) < length:
                return [*out, Response(code, headers, body, truncated=True)]
        else:
            body, data = data, b""
        out.append(Response(code, headers, body))
    return out


async def exchange(
    port: int | str,
    data: bytes,
    *,
    seconds: float = 10,
    responses: int | None = None,
    settle: float | None = None,
) -> Exchange:
    """Send ``data`` on a new connection (TCP port on 127.0.0.1, or a Unix socket path)
    and read until the server closes it, ``responses`` whole responses came, or
    ``seconds`` pass (then ``closed`` is False). With ``settle``, reading also stops once
    what came is whole responses and nothing more came for ``settle`` seconds (a server
    keeping the connection alive for the next request: only the time spent depends on it,
    never what a test may conclude, as what might still come is not waited for)."""
    stream = await _connect(port)
    received = b""
    closed = False
    async with stream:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(data)
        with trio.move_on_after(seconds):
            while True:
                quiet = settle if settle is not None and _whole(received, 1) else math.inf
                with trio.move_on_after(quiet) as waiting:
                    try:
                        chunk = await stream.receive_some(65536)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        chunk = b""  # a reset: closed too
                if waiting.cancelled_caught:
                    break
                if not chunk:
                    closed = True
                    break
                received += chunk
                if responses is not None and _whole(received, responses):
                    break
    return Exchange(received, closed)


def _whole(data: bytes, count: int) -> bool:
    try:
        found = parse_responses(data)
    except (AssertionError, ValueError):
        return False
    return len(found) >= count and not found[-1].truncated


async def _connect(port: int | str) -> trio.SocketStream:
    if isinstance(port, int):
        return await trio.open_tcp_stream("127.0.0.1", port)
    return await trio.open_unix_socket(port)
