"""Bearer tokens: who is calling, and a per-client brake on guessing.

Reference behaviour kept (§5.11): the scheme is matched case-insensitively, the token
is everything after ``"bearer "`` verbatim, the admin token is one Argon2 hash in the
store (re-read on every request, so ``ten token-gen`` takes effect at once), tenant
tokens are found by their first 8 characters, and a refused request gets an empty body.

Ours:

* Argon2 runs in a worker thread (about 20-50 ms each), never on the event loop, and
  at most :data:`VERIFY_THREADS` at a time.
* A successful verification is cached under ``(sha256(token), stored hash)``: never
  the plaintext, and a rotated admin hash or a revoked tenant row misses the cache.
* The rate limit is per client address instead of one global lock-out, so an attack
  from one address does not lock out every other client (see :class:`RateLimiter`).
* Refusing a token costs the same Argon2 work whether or not its first 8 characters
  match a tenant token's: without a match, one verification runs against a decoy hash
  (same parameters). Otherwise a wrong token sharing a real token's prefix took twice
  as long to refuse, which told a guesser the prefix was right.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import secrets
from collections import deque

import attrs
import trio

log = logging.getLogger(__name__)

#: failures from one client within :data:`FAILURE_WINDOW_SECONDS` that block it
MAX_FAILURES = 10
FAILURE_WINDOW_SECONDS = 5.0
#: Argon2 verifications running at once (each takes ~19 MiB and a core for ~30 ms)
VERIFY_THREADS = 4
#: cached successful verifications kept (cleared when full)
CACHE_SIZE = 1024
#: leading plaintext characters that index a tenant token (reference)
PREFIX_LENGTH = 8
#: clients tracked by the rate limiter before idle ones are dropped
MAX_TRACKED_CLIENTS = 10_000


@attrs.frozen
class Identity:
    """Who a valid token belongs to: the admin (``tenant`` None) or one tenant."""

    tenant: str | None = None


class Unauthorized(Exception):
    """401: no token, a malformed header, or a token that matches nothing."""


class RateLimited(Exception):
    """429: this client failed too often recently.

    Attributes:
        retry_after: whole seconds until the client's oldest failure leaves the window
            (at least 1), for the response's ``Retry-After``.
    """

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None.

    The scheme is case-insensitive; the rest is taken verbatim (an extra space is part
    of the token and fails), as the reference does.
    """
    if authorization is None or authorization[:7].lower() != "bearer ":
        return None
    return authorization[7:]


@attrs.define
class _Client:
    failures: deque[float] = attrs.Factory(deque)
    pending: int = 0
    #: set (and replaced) whenever a check ends, for the checks waiting for a slot
    changed: trio.Event = attrs.Factory(trio.Event)


class RateLimiter:
    """Per-client sliding window of failed token checks.

    A client with :data:`MAX_FAILURES` failures in the last
    :data:`FAILURE_WINDOW_SECONDS` is refused until its oldest failure leaves the window.
    A valid token clears the client's failures. Other clients are never affected.

    Checks that need Argon2 take one of the client's slots: at most ``max_failures`` minus
    its recent failures run at once, and the others wait for a slot (not refused), so a
    burst of bad tokens starts at most ``max_failures`` verifications while a client with
    many valid requests in flight is only queued. Times are ``trio.current_time()`` values.
    """

    def __init__(
        self, *, max_failures: int = MAX_FAILURES, window_seconds: float = FAILURE_WINDOW_SECONDS
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._clients: dict[str, _Client] = {}

    def _client(self, key: str, now: float) -> _Client:
        client = self._clients.get(key)
        if client is None:
            if len(self._clients) >= MAX_TRACKED_CLIENTS:
                self._forget_idle(now)
            client = self._clients[key] = _Client()
        while client.failures and client.failures[0] <= now - self.window_seconds:
            client.failures.popleft()
        return client

    def _forget_idle(self, now: float) -> None:
        for key, client in list(self._clients.items()):
            if client.pending == 0 and (
                not client.failures or client.failures[-1] <= now - self.window_seconds
            ):
                del self._clients[key]

    def blocked(self, key: str, now: float) -> bool:
        """Whether client ``key`` has used up its failures in the window."""
        if key not in self._clients:
            return False
        return len(self._client(key, now).failures) >= self.max_failures

    def retry_after(self, key: str, now: float) -> int:
        """Whole seconds (at least 1) until client ``key`` has a failure to spare."""
        client = self._clients.get(key)
        if client is None or not client.failures:
            return 1
        return max(1, math.ceil(client.failures[0] + self.window_seconds - now))

    def begin(self, key: str, now: float) -> bool:
        """Take a check slot for client ``key`` if one is free; False (nothing taken) if
        it is blocked or all its slots are in use."""
        client = self._client(key, now)
        if len(client.failures) + client.pending >= self.max_failures:
            return False
        client.pending += 1
        return True

    async def acquire(self, key: str) -> None:
        """Take a check slot for client ``key``, waiting while all of them are in use.

        Raises:
            RateLimited: the client is blocked (now, or once the checks it waited for failed).
        """
        while not self.begin(key, trio.current_time()):
            client = self._client(key, trio.current_time())
            if len(client.failures) >= self.max_failures:
                raise RateLimited(self.retry_after(key, trio.current_time()))
            await client.changed.wait()

    def end(self, key: str, now: float, *, ok: bool) -> None:
        """Give back a slot taken with :meth:`begin` or :meth:`acquire`, with the outcome."""
        client = self._client(key, now)
        client.pending = max(0, client.pending - 1)
        if ok:
            client.failures.clear()
        else:
            client.failures.append(now)
        client.changed.set()
        client.changed = trio.Event()
        if client.pending == 0 and not client.failures:
            del self._clients[key]

    def succeeded(self, key: str) -> None:
        """A check that needed no slot (a cached token) passed: clear the failures."""
        client = self._clients.get(key)
        if client is not None:
            client.failures.clear()


def _default_verify(token: str, token_hash: str) -> bool:
    from tenement.store import verify_token

    return verify_token(token, token_hash)


@functools.cache
def decoy_hash() -> str:
    """An Argon2 hash of a random token nobody knows, made once (blocking, ~30 ms).

    It has the parameters of every real hash, so verifying against it costs what a
    real tenant token's verification costs, and it never matches.
    """
    from tenement.store import hash_token

    return hash_token(secrets.token_urlsafe(32))


class Authenticator:
    """Turns an ``Authorization`` header into an :class:`Identity`.

    Args:
        store: the :class:`~tenement.store.Store` (``admin_token_hash()``,
            ``tenant_tokens_with_prefix(prefix)``), read from a worker thread.
        verify: ``verify(token, phc_hash) -> bool`` (Argon2; blocking).
        limiter: the per-client :class:`RateLimiter`.
    """

    def __init__(self, store, *, verify=None, limiter: RateLimiter | None = None) -> None:  # type: ignore[no-untyped-def]
        self._store = store
        self._verify = verify or _default_verify
        self.limiter = limiter or RateLimiter()
        self._cache: dict[tuple[bytes, str], Identity] = {}
        self._verify_limiter = trio.CapacityLimiter(VERIFY_THREADS)

    async def authenticate(self, authorization: str | None, client: str) -> Identity:
        """The caller's identity.

        Raises:
            Unauthorized: no usable header (not counted as a failure), or no match.
            RateLimited: ``client`` failed :data:`MAX_FAILURES` times in the window.
        """
        token = bearer_token(authorization)
        if token is None:
            raise Unauthorized
        if self.limiter.blocked(client, trio.current_time()):
            raise RateLimited(self.limiter.retry_after(client, trio.current_time()))
        digest = hashlib.sha256(token.encode()).digest()
        # Re-read on every request: a new admin token must replace the old one at once.
        admin_hash = await trio.to_thread.run_sync(self._store.admin_token_hash)
        tenant_rows = []
        if len(token) >= PREFIX_LENGTH:
            tenant_rows = await trio.to_thread.run_sync(
                self._store.tenant_tokens_with_prefix, token[:PREFIX_LENGTH]
            )
        identity = self._cached(digest, admin_hash, tenant_rows)
        if identity is not None:
            self.limiter.succeeded(client)
            return identity
        await self.limiter.acquire(client)
        try:
            identity = await self._check_hashes(token, digest, admin_hash, tenant_rows)
        finally:
            self.limiter.end(client, trio.current_time(), ok=identity is not None)
        if identity is None:
            log.info("invalid API token from %s", client)
            raise Unauthorized
        return identity

    def _cached(self, digest: bytes, admin_hash: str | None, tenant_rows: list) -> Identity | None:  # type: ignore[type-arg]
        """A success remembered for this token and a hash that is still current."""
        if admin_hash is not None and (digest, admin_hash) in self._cache:
            return self._cache[(digest, admin_hash)]
        for row in tenant_rows:
            cached = self._cache.get((digest, row.token_hash))
            if cached is not None and cached.tenant == row.tenant:
                return cached
        return None

    async def _check_hashes(
        self,
        token: str,
        digest: bytes,
        admin_hash: str | None,
        tenant_rows: list,  # type: ignore[type-arg]
    ) -> Identity | None:
        """Argon2 against the admin hash, then each tenant token with the same prefix, or
        the decoy when none has it (see the module docstring)."""
        if admin_hash is not None and await self._verify_in_thread(token, admin_hash):
            return self._remember(digest, admin_hash, Identity())
        for row in tenant_rows:
            if await self._verify_in_thread(token, row.token_hash):
                return self._remember(digest, row.token_hash, Identity(row.tenant))
        if not tenant_rows:
            decoy = await trio.to_thread.run_sync(decoy_hash, limiter=self._verify_limiter)
            await self._verify_in_thread(token, decoy)
        return None

    async def _verify_in_thread(self, token: str, token_hash: str) -> bool:
        return await trio.to_thread.run_sync(
            self._verify, token, token_hash, limiter=self._verify_limiter
        )

    def _remember(self, digest: bytes, token_hash: str, identity: Identity) -> Identity:
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[(digest, token_hash)] = identity
        return identity


#: how long a stream ticket may wait for its stream
TICKET_SECONDS = 30.0
#: unused tickets kept at most; the oldest go first (each is ~200 bytes)
MAX_TICKETS = 10_000
#: unused tickets kept at most for one token: its own oldest go first, so that no one
#: token holder can push out the others' tickets
MAX_TICKETS_EACH = 100


class StreamTickets:
    """Single-use, short-lived stand-ins for a token, for the event streams
    (``GET /api/logs/stream`` and ``GET /api/instances/stream``).

    A browser's EventSource cannot send an ``Authorization`` header, and the token must
    never go into a URL (it would land in logs and history). So an authenticated
    ``POST /api/logs/stream/ticket`` issues a random ticket bound to the caller's
    :class:`Identity`; the stream accepts it once, within :data:`TICKET_SECONDS`. Tickets
    live in memory only: a restarted server has none, and the page asks for a new one.
    """

    def __init__(self, *, lifetime: float = TICKET_SECONDS, capacity: int = MAX_TICKETS) -> None:
        self.lifetime = lifetime
        self.capacity = capacity
        #: ticket -> (identity, expiry, token), in issue order (so the oldest is first)
        self._tickets: dict[str, tuple[Identity, float, str | None]] = {}

    def issue(self, identity: Identity, now: float, *, token: str | None = None) -> str:
        """A new ticket for ``identity``; ``token`` (the caller's ``Authorization``) is
        kept with it on a fleet node, which relays a stream of another node's instance
        with it: that node authenticates the caller itself."""
        self._expire(now)
        own = [ticket for ticket, (holder, *_) in self._tickets.items() if holder == identity]
        for ticket in own[: max(len(own) - MAX_TICKETS_EACH + 1, 0)]:
            del self._tickets[ticket]
        while len(self._tickets) >= self.capacity:
            del self._tickets[next(iter(self._tickets))]
        ticket = secrets.token_urlsafe(32)
        self._tickets[ticket] = (identity, now + self.lifetime, token)
        return ticket

    def redeem(self, ticket: str, now: float) -> Identity | None:
        """The identity of a valid ticket, which is used up; None if unknown or expired."""
        redeemed = self.redeem_with_token(ticket, now)
        return redeemed[0] if redeemed is not None else None

    def redeem_with_token(self, ticket: str, now: float) -> tuple[Identity, str | None] | None:
        """:meth:`redeem`, with the token kept by :meth:`issue`."""
        found = self._tickets.pop(ticket, None)
        if found is None or found[1] <= now:
            return None
        return found[0], found[2]

    def _expire(self, now: float) -> None:
        for ticket, (_, expiry, _token) in list(self._tickets.items()):
            if expiry > now:
                break
            del self._tickets[ticket]
