"""Built-in TLS: which certificate a handshake gets, ordering on demand, renewing.

- The bare domain's certificate is ordered at start when ``cache_dir`` has none.
- A tenant host (``alice.notes.example.com``) gets its own certificate the first time a
  client asks for it by SNI, but only when ``routes(host)`` says it routes to a known
  instance: any other name gets the default certificate (the bare domain's, which the
  client refuses) and never causes an order, so no client can make us hammer the CA.
  The first client waits for the order (at most :data:`ORDER_WAIT_SECONDS`).
- A failed order backs its host off (``backoff.py``: a minute, doubling up to an hour;
  longer when the CA rate limits), and one order runs at a time.
- Every certificate is renewed once two thirds of its lifetime have passed; the new one
  is presented from the next handshake on, without a restart.
- Every process of one server (workers, a standby, the next server during a restart)
  shares ``cache_dir``, and the listening sockets: an order holds a lock file for its
  host; a process that takes the lock after another finds the other's certificate (and
  loads it) or its back-off (and waits it out) instead of ordering again; the challenge
  answers are files there (``challenges.py``), since the CA's validation may reach any
  of the processes.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from tenement.config import TlsSettings
from tenement.tls.backoff import BACKOFF_SECONDS, Backoff, BackoffFile, next_backoff
from tenement.tls.certs import (
    Certificate,
    Certificates,
    is_host_name,
    lock_file,
    make_cache_dir,
)
from tenement.tls.challenges import ACME_TLS_ALPN, Challenges
from tenement.tls.checks import directory_url
from tenement.tls.clienthello import ClientHello
from tenement.tls.issuer import IssueError, Issuer

log = logging.getLogger(__name__)

#: how long the first client of a host without a certificate waits for its order
ORDER_WAIT_SECONDS = 60.0
#: the troubleshooting hint comes after this many failures in a row, the rate-limit one
#: after this many without any certificate (as 0.2.2's)
HINT_AFTER = 3
RATE_LIMIT_HINT_AFTER = 10
#: the renewal loop looks at cache_dir at least this often: what another process of this
#: server ordered or renewed is then served (and listed by the status) here too
RECHECK_SECONDS = 10.0


@attrs.frozen
class _Failed:
    """An order not placed, or failed: how long ``host`` waits; ``error`` when it was
    this process's order that failed (another's was logged where it ran)."""

    backoff: Backoff
    error: IssueError | None = None


class TlsManager:
    """Certificates for the HTTPS front. Run :meth:`run` in the server's nursery; the
    front calls :meth:`context_for` for each handshake.

    Args:
        tls: the resolved ``[settings.tls]`` (``enabled``, ``domain`` and
            ``acme_email`` set; :func:`~tenement.tls.checks.resolve_tls`).
        cache_dir: where keys and certificates live.
        routes: whether a host name routes to a known instance (the on-demand guard).
    """

    def __init__(self, tls: TlsSettings, cache_dir: Path, routes: Callable[[str], bool]) -> None:
        assert tls.domain is not None and tls.acme_email is not None
        self.tls = tls
        self.domain = tls.domain
        self.challenge = tls.challenge
        self.cache_dir = cache_dir
        self.certificates = Certificates(cache_dir)
        self.challenges = Challenges(cache_dir / "challenges")
        self.directory = directory_url(tls)
        account = hashlib.sha256(self.directory.encode()).hexdigest()[:16]
        self._issuer = Issuer(
            self.directory, tls.acme_email, cache_dir / "accounts" / account, self.challenges
        )
        self._routes = routes
        self._in_flight: dict[str, trio.Event] = {}
        self._backoff: dict[str, Backoff] = {}
        self._backoff_file = BackoffFile(cache_dir)
        self._one_order = trio.Lock()
        self._changed = trio.Event()
        self._failures_in_a_row = 0
        self._failures_without_certificate = 0
        self._nursery: trio.Nursery | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def load(self) -> list[str]:
        """Create ``cache_dir`` (0700) and load the certificates in it (call before
        serving: a restart serves at once)."""
        make_cache_dir(self.cache_dir)
        if self.tls.staging and self.tls.directory is None:
            log.warning("Using Let's Encrypt STAGING environment (certs not trusted by browsers)")
        now = time.time()
        self._backoff = {h: b for h, b in self._backoff_file.read().items() if b.until > now}
        for host, backoff in sorted(self._backoff.items()):
            log.info(
                "%s backs off: its last order failed (%s); next try in %ds",
                host,
                backoff.last_error,
                backoff.until - now,
            )
        self.challenges.remove_stale()
        hosts = self.certificates.load_cached()
        if hosts:
            log.info("TLS certificates loaded from %s: %s", self.cache_dir, ", ".join(hosts))
        return hosts

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Order the bare domain's certificate if missing, then renew until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await self._renew_forever()

    # -- handshakes ----------------------------------------------------------------------

    async def context_for(self, hello: ClientHello | None) -> ssl.SSLContext | None:
        """The context a handshake starts with; None means close the connection.

        Waits for an order when the host may have a certificate and has none yet.
        """
        host = (hello.server_name if hello is not None else None) or self.domain
        if hello is not None and ACME_TLS_ALPN.encode() in hello.alpn:
            # a CA validating tls-alpn-01: only a pending challenge's certificate will do,
            # placed by whichever process of this server ordered
            return await trio.to_thread.run_sync(self.challenges.alpn_context, host)
        certificate = self.certificates.get(host)
        if certificate is None and self._may_order(host):
            certificate = await self._obtain_waiting(host)
        if certificate is None:
            default = self.certificates.get(self.domain)
            return default.context if default is not None else None
        return certificate.context

    def _may_order(self, host: str) -> bool:
        if host == self.domain:
            return True
        return is_host_name(host) and host.endswith("." + self.domain) and self._routes(host)

    async def _obtain_waiting(self, host: str) -> Certificate | None:
        # another process may have ordered it already
        found = await trio.to_thread.run_sync(self.certificates.reload, host)
        if found is not None:
            return found
        obtained = None
        with trio.move_on_after(ORDER_WAIT_SECONDS):
            obtained = await self.obtain(host)
        return obtained

    # -- ordering ------------------------------------------------------------------------

    def backing_off(self, host: str) -> float | None:
        """Seconds until ``host`` may be ordered again; None when it may now."""
        backoff = self._backoff.get(host)
        if backoff is None:
            return None
        left = backoff.until - time.time()
        return left if left > 0 else None

    async def obtain(self, host: str) -> Certificate | None:
        """Order (or renew) ``host``'s certificate unless it backs off; one order per
        host at a time, whoever asks. Returns the certificate served afterwards.

        The order runs in the manager's nursery: a client giving up (or a drain cutting
        its connection) stops waiting, not the order.
        """
        event = self._in_flight.get(host)
        if event is None:
            if self.backing_off(host) is not None:
                return self.certificates.get(host)
            event = self._in_flight[host] = trio.Event()
            if self._nursery is not None:
                self._nursery.start_soon(self._order, host, event)
            else:
                await self._order(host, event)
        await event.wait()
        return self.certificates.get(host)

    async def _order(self, host: str, done: trio.Event) -> None:
        try:
            async with self._one_order:
                # abandoned at a stop: the thread's order finishes or not, and the next
                # server finds its certificate in cache_dir or orders again
                outcome = await trio.to_thread.run_sync(
                    self._order_locked, host, abandon_on_cancel=True
                )
            if isinstance(outcome, Certificate):
                self._backoff.pop(host, None)
                self._failures_in_a_row = 0
                self._failures_without_certificate = 0
            else:
                self._backoff[host] = outcome.backoff
                if outcome.error is not None:
                    self._failed(host, outcome.backoff, outcome.error)
                else:
                    log.info(
                        "%s backs off: another process of this server failed to order it "
                        "(%s); next try in %ds",
                        host,
                        outcome.backoff.last_error,
                        max(0.0, outcome.backoff.until - time.time()),
                    )
        finally:
            del self._in_flight[host]
            done.set()
            self._changed.set()

    def _order_locked(self, host: str) -> Certificate | _Failed:
        """In a thread: under ``host``'s lock file, order unless another process of
        this server has just done so, or has just failed to (then wait as it does).

        A failure's back-off is written to ``backoff.json`` before the lock is let go,
        so the process that takes it next finds it."""
        with lock_file(self.cache_dir / "certs" / f".{host}.lock"):
            current = self.certificates.reload(host)
            if current is not None and time.time() < current.renew_at():
                return current
            previous = self._backoff_file.read().get(host)
            if previous is not None and previous.until > time.time():
                return _Failed(previous)
            log.info(
                "ordering a certificate for %s from %s (%s)", host, self.directory, self.challenge
            )
            try:
                issued = self._issuer.issue(host, self.challenge)
            except IssueError as exc:
                backoff = next_backoff(previous or self._backoff.get(host), exc)
                self._backoff_file.write(host, backoff)
                return _Failed(backoff, exc)
            certificate = self.certificates.install(host, issued.key_pem, issued.chain_pem)
            if previous is not None:
                self._backoff_file.write(host, None)
        log.info(
            "certificate for %s installed, valid until %s",
            host,
            time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(certificate.not_after)),
        )
        return certificate

    def _failed(self, host: str, backoff: Backoff, exc: IssueError) -> None:
        """Log this process's failed order, with the hints when they are due."""
        self._failures_in_a_row += 1
        if not self.certificates.hosts():
            self._failures_without_certificate += 1
        log.error(
            "ACME error (attempt %d) for %s: %s; next try in %ds",
            backoff.failures,
            host,
            exc.message,
            max(0.0, backoff.until - time.time()),
        )
        if self._failures_in_a_row == HINT_AFTER:
            log.warning("%s", self._troubleshooting(host))
        if self._failures_without_certificate == RATE_LIMIT_HINT_AFTER:
            log.warning(
                "ACME has failed %d times without acquiring a certificate.\n"
                "Consider using --staging flag to avoid hitting Let's Encrypt rate limits.\n"
                "Rate limit: 5 failed validations per account per hostname per hour.",
                RATE_LIMIT_HINT_AFTER,
            )

    def _troubleshooting(self, host: str) -> str:
        port = (
            f"port {self.tls.http_port} (HTTP)"
            if self.challenge == "http-01"
            else f"port {self.tls.https_port} (HTTPS)"
        )
        return (
            "ACME certificate acquisition failing. Troubleshooting checklist:\n"
            f"- Verify DNS for {host} points to this server\n"
            f"- Ensure {port} is accessible from the internet\n"
            "- Check firewall allows inbound traffic on it\n"
            f"- Check that {self.directory} is reachable from this server"
        )

    def _adopt_backoff(self, shared: dict[str, Backoff]) -> None:
        """Take in ``backoff.json``: another process's failed order makes its host wait
        here too (and the status lists it); a host that process has since obtained a
        certificate for fails no more."""
        now = time.time()
        for host, backoff in shared.items():
            mine = self._backoff.get(host)
            if backoff.until > now and (mine is None or backoff.until > mine.until):
                self._backoff[host] = backoff
        for host in [host for host in self._backoff if host not in shared]:
            certificate = self.certificates.get(host)
            if certificate is not None and certificate.renew_at() > now:
                del self._backoff[host]

    # -- renewal -------------------------------------------------------------------------

    async def _renew_forever(self) -> None:
        while True:
            self._changed = trio.Event()
            next_check = await self._renew_due()
            with trio.move_on_at(next_check):
                await self._changed.wait()

    async def _renew_due(self) -> float:
        """Renew (or first order) what is due; returns when to look again (trio time)."""
        now = time.time()
        soonest = now + RECHECK_SECONDS
        # what another process ordered or renewed since the last look (a stat per file),
        # and the back-off of the orders that failed there
        await trio.to_thread.run_sync(self.certificates.load_cached)
        self._adopt_backoff(await trio.to_thread.run_sync(self._backoff_file.read))
        hosts = set(self.certificates.hosts()) | {self.domain}
        for host in sorted(hosts):
            certificate = self.certificates.get(host)
            due = certificate.renew_at() if certificate is not None else now
            waiting = self.backing_off(host)
            if waiting is not None:
                due = max(due, now + waiting)
            elif due <= now:
                # asked only when due: routing touches the instance's last activity,
                # and a look every few seconds would keep every tenant from idling
                if not self._may_order(host):
                    continue  # its tenant is gone: served until it expires, not renewed
                certificate = await self.obtain(host)
                if certificate is not None and certificate.renew_at() > now:
                    due = certificate.renew_at()
                else:
                    due = now + (self.backing_off(host) or BACKOFF_SECONDS)
            soonest = min(soonest, due)
        return trio.current_time() + max(0.5, soonest - time.time())

    # -- status --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The certificates served and the hosts backing off, for ``/api/tls/status``."""
        certificates = []
        for host in self.certificates.hosts():
            certificate = self.certificates.get(host)
            assert certificate is not None
            certificates.append(
                {
                    "host": host,
                    "not_after": _iso(certificate.not_after),
                    "renew_at": _iso(certificate.renew_at()),
                }
            )
        failing = [
            {"host": host, "failures": backoff.failures, "error": backoff.last_error}
            for host, backoff in sorted(self._backoff.items())
        ]
        return {"directory": self.directory, "certificates": certificates, "failing": failing}


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
