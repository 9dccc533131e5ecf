"""Certificates in ``cache_dir``, and the TLS contexts that present them.

Layout of ``cache_dir`` (0700; files 0600, written whole then renamed into place):

- ``certs/<host>.pem``: the certificate's private key, then its chain (leaf first);
- ``accounts/<directory hash>/account.key``: the ACME account key for one directory.

Every certificate found there is loaded at start, so a restart serves at once, without
the CA. A renewed certificate replaces its host's context: handshakes that start after
the swap present the new one, those already under way finish with the old one.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
from cryptography import x509

log = logging.getLogger(__name__)

#: what the front serves over TLS: HTTP/1.1 only (h2 is not offered while it is not
#: served over TLS)
ALPN_PROTOCOLS = ("http/1.1",)
#: a certificate is renewed once this share of its lifetime has passed
RENEW_AT = 2 / 3
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")


def is_host_name(name: str) -> bool:
    """A lowercase DNS name of two labels or more (a file name we may build from it)."""
    return len(name) <= 253 and _HOST.match(name) is not None


def server_context(alpn: tuple[str, ...] = ALPN_PROTOCOLS) -> ssl.SSLContext:
    """A server context with our defaults: TLS 1.2+, no renegotiation, ``alpn``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
    context.set_alpn_protocols(list(alpn))
    return context


@attrs.frozen
class Certificate:
    """One host's certificate as served."""

    host: str
    path: Path
    context: ssl.SSLContext
    not_before: float
    not_after: float
    #: the file's modification time when loaded (a newer file is reloaded)
    mtime_ns: int

    def renew_at(self) -> float:
        """When to renew (epoch seconds): two thirds into its lifetime."""
        return self.not_before + RENEW_AT * (self.not_after - self.not_before)


def write_private(path: Path, data: bytes, *, replace: bool = True) -> bool:
    """Write ``data`` to ``path`` (mode 0600) so that a reader sees the old or the new
    file, never part of one. With ``replace=False`` an existing file is kept (another
    process wrote it first) and False returned."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # the thread too: two orders of one process may write at once
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if replace:
        os.replace(temporary, path)
        return True
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(temporary)
    return True


@contextmanager
def lock_file(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created 0600) against the other processes of
    this server; blocking."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def make_cache_dir(path: Path) -> None:
    """Create ``cache_dir`` (and its parents) and make it 0700 whatever the umask: it
    holds private keys."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


class Certificates:
    """The certificates of ``cache_dir``, by host name."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self._by_host: dict[str, Certificate] = {}
        #: files that could not be loaded (host -> mtime): said once, not at every look
        self._unloadable: dict[str, int] = {}

    def path_for(self, host: str) -> Path:
        return self.cache_dir / "certs" / f"{host}.pem"

    def get(self, host: str) -> Certificate | None:
        return self._by_host.get(host)

    def hosts(self) -> list[str]:
        return sorted(self._by_host)

    def load_cached(self) -> list[str]:
        """Load every certificate in ``cache_dir/certs``; returns the hosts loaded.

        A file that cannot be loaded is logged and skipped (its host is ordered anew).
        """
        loaded = []
        for path in sorted((self.cache_dir / "certs").glob("*.pem")):
            host = path.name.removesuffix(".pem")
            if not is_host_name(host):
                continue
            if self.reload(host) is not None:
                loaded.append(host)
        return loaded

    def reload(self, host: str) -> Certificate | None:
        """(Re)load ``host``'s file when it changed since it was loaded (another process of
        this server may have renewed it); returns the certificate served."""
        path = self.path_for(host)
        current = self._by_host.get(host)
        try:
            modified = path.stat().st_mtime_ns
        except FileNotFoundError:
            return current
        if current is not None and current.mtime_ns == modified:
            return current
        if self._unloadable.get(host) == modified:
            return current
        try:
            certificate = _load(host, path, modified)
        except (OSError, ssl.SSLError, ValueError) as exc:
            self._unloadable[host] = modified
            log.warning("cannot load the certificate for %s from %s: %s", host, path, exc)
            return current
        self._unloadable.pop(host, None)
        if time.time() >= certificate.not_after:
            log.warning("the certificate for %s in %s has expired", host, path)
        self._by_host[host] = certificate
        return certificate

    def install(self, host: str, key_pem: bytes, chain_pem: bytes) -> Certificate:
        """Store a newly issued certificate and serve it from the next handshake on."""
        path = self.path_for(host)
        write_private(path, key_pem + chain_pem)
        certificate = _load(host, path, path.stat().st_mtime_ns)
        self._by_host[host] = certificate
        return certificate


def _load(host: str, path: Path, mtime_ns: int) -> Certificate:
    context = server_context()
    context.load_cert_chain(path)
    data = path.read_bytes()
    start = data.find(b"-----BEGIN CERTIFICATE-----")
    if start < 0:
        raise ValueError(f"{path} holds no certificate")
    leaf = x509.load_pem_x509_certificate(data[start:])
    return Certificate(
        host=host,
        path=path,
        context=context,
        not_before=leaf.not_valid_before_utc.timestamp(),
        not_after=leaf.not_valid_after_utc.timestamp(),
        mtime_ns=mtime_ns,
    )
