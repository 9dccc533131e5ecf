"""A real ACME server for tests: Let's Encrypt's ``pebble`` (Debian package ``pebble``)
with ``pebble-challtestsrv`` as its DNS, both on loopback only.

Every name resolves to 127.0.0.1 through the test DNS, and pebble validates challenges on
the ports the test gives it (``http_port`` for http-01, ``tls_port`` for tls-alpn-01), so
validation reaches the server under test and nothing leaves the machine. pebble's own
HTTPS certificate comes from a CA made per test; the client under test trusts it through
``REQUESTS_CA_BUNDLE`` (:attr:`Pebble.environ`), and certificates pebble issues chain to
its root (:meth:`Pebble.root_pem`), which only the test's client trusts.

Usage (inside a trio test)::

    async with open_pebble(tmp_path, http_port=..., tls_port=...) as pebble:
        pebble.directory        # https://127.0.0.1:PORT/dir
        pebble.environ          # {"REQUESTS_CA_BUNDLE": ..., "NO_PROXY": ...}
        await pebble.root_pem() # the issuing root, for a client to trust
        pebble.orders()         # new-order requests pebble logged so far
"""

from __future__ import annotations

import datetime
import json
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import attrs
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PEBBLE = shutil.which("pebble")
CHALLTESTSRV = shutil.which("pebble-challtestsrv")
MISSING = (
    None
    if PEBBLE and CHALLTESTSRV
    else "pebble is not installed (Debian package `pebble`: `apt-get install pebble`)"
)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for 127.0.0.1/localhost signed by it: (CA, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tenement test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@attrs.define
class Pebble:
    directory: str
    management: str
    ca_path: Path
    log_path: Path
    environ: Mapping[str, str]

    async def root_pem(self) -> bytes:
        """pebble's issuing root (made anew at each pebble start)."""
        return await trio.to_thread.run_sync(self._get, "/roots/0")

    def root_pem_now(self) -> bytes:
        """:meth:`root_pem`, blocking (for synchronous tests)."""
        return self._get("/roots/0")

    def _get(self, path: str) -> bytes:
        import urllib.request

        context = ssl.create_default_context(cafile=str(self.ca_path))
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
        with opener.open(self.management + path, timeout=10) as answer:
            data: bytes = answer.read()
            return data

    def orders(self) -> int:
        """New orders pebble has logged (its log line per order)."""
        return self.log_path.read_text(errors="replace").count("Added order")


@attrs.frozen
class _Plan:
    """The two processes' command lines and environment, and the handle to yield."""

    dns: list[str]
    pebble: list[str]
    env: dict[str, str]
    handle: Pebble


def _plan(
    directory: Path,
    *,
    http_port: int,
    tls_port: int,
    validity_seconds: int | None,
    always_valid: bool,
) -> _Plan:
    assert PEBBLE and CHALLTESTSRV, MISSING
    directory.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = make_ca(directory)
    dns_port = free_port(socket.SOCK_DGRAM)
    acme_port, management_port = free_port(), free_port()
    config: dict[str, object] = {
        "listenAddress": f"127.0.0.1:{acme_port}",
        "managementListenAddress": f"127.0.0.1:{management_port}",
        "certificate": str(cert_path),
        "privateKey": str(key_path),
        "httpPort": http_port,
        "tlsPort": tls_port,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
    }
    if validity_seconds is not None:
        config["certificateValidityPeriod"] = validity_seconds
    config_path = directory / "pebble-config.json"
    config_path.write_text(json.dumps({"pebble": config}))
    env = {
        "PATH": "/usr/bin:/bin",
        "PEBBLE_VA_NOSLEEP": "1",
        # a bad-nonce answer is retried once by the client; two in a row would make a
        # test fail by chance
        "PEBBLE_WFE_NONCEREJECT": "0",
        "PEBBLE_AUTHZREUSE": "0",
    }
    if always_valid:
        env["PEBBLE_VA_ALWAYS_VALID"] = "1"
    dns = [
        *(CHALLTESTSRV, "-dns01", f"127.0.0.1:{dns_port}"),
        *("-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""),
        *("-http01", "", "-https01", "", "-tlsalpn01", ""),
        *("-management", f"127.0.0.1:{free_port()}"),
    ]
    pebble = [PEBBLE, "-config", str(config_path), "-dnsserver", f"127.0.0.1:{dns_port}"]
    handle = Pebble(
        directory=f"https://127.0.0.1:{acme_port}/dir",
        management=f"https://127.0.0.1:{management_port}",
        ca_path=ca_path,
        log_path=directory / "pebble.log",
        environ={
            "REQUESTS_CA_BUNDLE": str(ca_path),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        },
    )
    return _Plan(dns, pebble, env, handle)


@asynccontextmanager
async def open_pebble(
    directory: Path,
    *,
    http_port: int,
    tls_port: int,
    validity_seconds: int | None = None,
    always_valid: bool = False,
) -> AsyncIterator[Pebble]:
    """Start the test DNS and pebble; stop both on exit.

    Args:
        http_port, tls_port: where pebble validates http-01 and tls-alpn-01.
        validity_seconds: the lifetime of the certificates pebble issues.
        always_valid: PEBBLE_VA_ALWAYS_VALID (only where a test is not about validation).
    """
    plan = _plan(
        directory,
        http_port=http_port,
        tls_port=tls_port,
        validity_seconds=validity_seconds,
        always_valid=always_valid,
    )
    handle, log_path = plan.handle, plan.handle.log_path
    with open(directory / "dns.log", "wb") as dns_log, open(log_path, "wb") as pebble_log:
        dns = await trio.lowlevel.open_process(
            plan.dns, stdout=dns_log, stderr=dns_log, env=plan.env
        )
        pebble = await trio.lowlevel.open_process(
            plan.pebble, stdout=pebble_log, stderr=pebble_log, env=plan.env
        )
        try:
            with trio.fail_after(20):
                while True:
                    try:
                        await handle.root_pem()
                        break
                    except OSError:
                        if pebble.poll() is not None:
                            raise AssertionError(
                                f"pebble exited: {log_path.read_text(errors='replace')}"
                            ) from None
                        await trio.sleep(0.05)
            yield handle
        finally:
            for process in (pebble, dns):
                if process.returncode is None:
                    process.kill()
                with trio.CancelScope(shield=True):
                    await process.wait()


@contextmanager
def running_pebble(
    directory: Path, *, http_port: int, tls_port: int, always_valid: bool = False
) -> Iterator[Pebble]:
    """:func:`open_pebble` for a synchronous test (tests/system): the same two processes,
    waited for by polling under a deadline."""
    plan = _plan(
        directory,
        http_port=http_port,
        tls_port=tls_port,
        validity_seconds=None,
        always_valid=always_valid,
    )
    handle, log_path = plan.handle, plan.handle.log_path
    with open(directory / "dns.log", "wb") as dns_log, open(log_path, "wb") as pebble_log:
        processes = [
            subprocess.Popen(plan.dns, stdout=dns_log, stderr=dns_log, env=plan.env),
            subprocess.Popen(plan.pebble, stdout=pebble_log, stderr=pebble_log, env=plan.env),
        ]
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    handle.root_pem_now()
                    break
                except OSError:
                    if processes[1].poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(
                            f"pebble did not start: {log_path.read_text(errors='replace')}"
                        ) from None
                    time.sleep(0.05)
            yield handle
        finally:
            for process in processes:
                process.kill()
                process.wait()


def client_context(root_pem: bytes) -> ssl.SSLContext:
    """A client context trusting only ``root_pem``."""
    context = ssl.create_default_context(cadata=root_pem.decode())
    context.set_alpn_protocols(["http/1.1"])
    return context
