"""The answers to the ACME challenges being validated, shared by every serving process.

The processes of one server (workers, a standby, the next server during a restart) accept
from the same listening sockets, so the CA's validation connection (``tls-alpn-01`` on
the HTTPS port) or request (``http-01`` on the HTTP port) reaches any of them, not only
the one that placed the order. The answers therefore live in ``cache_dir/challenges``,
where every process finds them:

- ``http/<token>``: the key authorization answered at ``/.well-known/acme-challenge/<token>``;
- ``alpn/<host>.pem``: the key and self-signed certificate presented to a handshake for
  ``host`` that offers only ``acme-tls/1``.

A file is written whole (then renamed into place) before the CA is told to validate, and
removed once the order is settled. The readers run in a thread (they touch the disk): they
are called only for a validation, or for a client pretending to be one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import ssl
import stat
import time
from pathlib import Path

from tenement.tls.certs import is_host_name, server_context, write_private

log = logging.getLogger(__name__)

#: the ALPN protocol of a tls-alpn-01 validation (RFC 8737 §6.2)
ACME_TLS_ALPN = "acme-tls/1"
#: an answer left behind (by a process killed mid-order) is removed at the next start
#: once this old: no order takes that long
STALE_SECONDS = 3600.0
#: a key authorization is a token, ".", and a 43-character thumbprint: a file any
#: larger is none of ours
MAX_ANSWER_BYTES = 512
#: an ACME token is base64url (RFC 8555 §8.3); anything else names no file of ours
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class Challenges:
    """The challenge answers in ``directory`` (``cache_dir/challenges``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _http_path(self, token: str) -> Path | None:
        return self.directory / "http" / token if _TOKEN.match(token) else None

    def _alpn_path(self, host: str) -> Path | None:
        return self.directory / "alpn" / f"{host}.pem" if is_host_name(host) else None

    # -- the ordering process ------------------------------------------------------------

    def publish_http(self, token: str, key_authorization: str) -> None:
        path = self._http_path(token)
        if path is None:
            raise ValueError(f"the CA sent a token that is not base64url: {token!r}")
        write_private(path, key_authorization.encode("ascii"))

    def withdraw_http(self, token: str) -> None:
        path = self._http_path(token)
        if path is not None:
            path.unlink(missing_ok=True)

    def publish_alpn(self, host: str, key_pem: bytes, cert_pem: bytes) -> None:
        path = self._alpn_path(host)
        if path is None:
            raise ValueError(f"not a host name: {host!r}")
        write_private(path, key_pem + cert_pem)

    def withdraw_alpn(self, host: str) -> None:
        path = self._alpn_path(host)
        if path is not None:
            path.unlink(missing_ok=True)

    def remove_stale(self) -> None:
        """Remove answers older than :data:`STALE_SECONDS` (left by a killed process)."""
        oldest = time.time() - STALE_SECONDS
        for kind in ("http", "alpn"):
            with contextlib.suppress(FileNotFoundError):
                for path in (self.directory / kind).iterdir():
                    with contextlib.suppress(FileNotFoundError):
                        if path.stat().st_mtime < oldest:
                            path.unlink()

    # -- every serving process (blocking: call in a thread) ------------------------------

    def http_answer(self, token: str) -> str | None:
        """The key authorization for ``token``, if a challenge for it is pending."""
        path = self._http_path(token)
        if path is None:
            return None
        # only a regular file we wrote: not through a symlink (its target would go to
        # whoever asks), not a FIFO (the read would hold a thread for good), not a
        # directory, and only as much as an answer can be
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                log.warning("ignored %s: not a regular file (not one of our answers)", path)
                return None
            data = os.read(fd, MAX_ANSWER_BYTES + 1)
        finally:
            os.close(fd)
        if len(data) > MAX_ANSWER_BYTES or not data.isascii():
            log.warning("ignored %s: not a key authorization (not one of our answers)", path)
            return None
        return data.decode("ascii")

    def alpn_context(self, host: str) -> ssl.SSLContext | None:
        """A context presenting ``host``'s challenge certificate, if one is pending."""
        path = self._alpn_path(host)
        if path is None:
            return None
        # a name with no pending order (any client may offer acme-tls/1) costs one stat,
        # not a context; and only a regular file of ours is presented
        try:
            if not stat.S_ISREG(path.lstat().st_mode):
                log.warning("ignored %s: not a regular file (not one of our answers)", path)
                return None
        except OSError:
            return None
        context = server_context((ACME_TLS_ALPN,))
        try:
            context.load_cert_chain(path)
        except FileNotFoundError:
            return None
        except (OSError, ssl.SSLError) as exc:
            log.warning("cannot load the tls-alpn-01 answer for %s: %s", host, exc)
            return None
        return context
