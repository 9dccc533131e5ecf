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
"""

from __future__ import annotations

import hashlib
import logging
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

    @property
    def is_admin(self) -> bool:
        return self.tenant is None


class Unauthorized(Exception):
    """401: no token, a malformed header, or a token that matches nothing."""


class RateLimited(Exception):
    """429: this client failed too often recently."""


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


class RateLimiter:
    """Per-client sliding window of failed token checks.

    A client with :data:`MAX_FAILURES` failures in the last
    :data:`FAILURE_WINDOW_SECONDS` (counting checks still in progress, so a burst cannot
    start a thousand Argon2 runs) is refused until its oldest failure leaves the window.
    A valid token clears the client's failures. Other clients are never affected.
    Times are ``trio.current_time()`` values passed in by the caller.
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

    def begin(self, key: str, now: float) -> bool:
        """Start a check for client ``key``; False (and nothing started) if it is blocked."""
        client = self._client(key, now)
        if len(client.failures) + client.pending >= self.max_failures:
            return False
        client.pending += 1
        return True

    def end(self, key: str, now: float, *, ok: bool) -> None:
        """Finish a check begun with :meth:`begin`."""
        client = self._client(key, now)
        client.pending = max(0, client.pending - 1)
        if ok:
            client.failures.clear()
        else:
            client.failures.append(now)
        if client.pending == 0 and not client.failures:
            del self._clients[key]


def _default_verify(token: str, token_hash: str) -> bool:
    from tenement.store import verify_token

    return verify_token(token, token_hash)


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
        if not self.limiter.begin(client, trio.current_time()):
            raise RateLimited
        identity = None
        try:
            identity = await self._identify(token)
        finally:
            self.limiter.end(client, trio.current_time(), ok=identity is not None)
        if identity is None:
            log.info("invalid API token from %s", client)
            raise Unauthorized
        return identity

    async def _identify(self, token: str) -> Identity | None:
        digest = hashlib.sha256(token.encode()).digest()
        # Re-read on every request: a new admin token must replace the old one at once.
        admin_hash = await trio.to_thread.run_sync(self._store.admin_token_hash)
        # Cached successes first, so a cached token costs one read and no Argon2.
        if admin_hash is not None and (digest, admin_hash) in self._cache:
            return self._cache[(digest, admin_hash)]
        tenant_rows = []
        if len(token) >= PREFIX_LENGTH:
            tenant_rows = await trio.to_thread.run_sync(
                self._store.tenant_tokens_with_prefix, token[:PREFIX_LENGTH]
            )
        for row in tenant_rows:
            cached = self._cache.get((digest, row.token_hash))
            if cached is not None and cached.tenant == row.tenant:
                return cached
        if admin_hash is not None and await self._verify_in_thread(token, admin_hash):
            return self._remember(digest, admin_hash, Identity())
        for row in tenant_rows:
            if await self._verify_in_thread(token, row.token_hash):
                return self._remember(digest, row.token_hash, Identity(row.tenant))
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
