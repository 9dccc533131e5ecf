"""API tokens: generation, Argon2id hashes, and their rows.

Tokens are 32 random bytes in unpadded base64url (43 characters), as the reference
makes them. Hashes are Argon2id PHC strings with the reference's parameters
(m=19456 KiB, t=2, p=1), so hashes made by either side verify on the other. The admin
token's hash is the single ``config.api_token_hash`` row; tenant tokens are rows of
``tenant_tokens``, found by their first 8 characters before the (slow) verify.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from tenement.store import _time
from tenement.store._base import StoreBase, upsert

if TYPE_CHECKING:  # at run time argon2 is imported by the functions that hash
    from argon2 import PasswordHasher

#: key of the admin token's hash in the ``config`` table
ADMIN_HASH_KEY = "api_token_hash"
#: the fleet secret's hash (``ten token-gen --fleet``); a fleet node checks its file against it
FLEET_HASH_KEY = "fleet_secret_hash"

#: how many leading plaintext characters index a tenant token
PREFIX_LENGTH = 8

_SELECT = (
    "SELECT id, tenant_id, token_prefix, description, created_at, token_hash FROM tenant_tokens"
)


def generate_token() -> str:
    """A new token: 32 random bytes, base64url without padding (43 characters)."""
    return secrets.token_urlsafe(32)


def token_prefix(token: str) -> str:
    """The first :data:`PREFIX_LENGTH` characters, stored in clear to find the row."""
    return token[:PREFIX_LENGTH]


def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher, Type

    return PasswordHasher(
        time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
    )


def hash_token(token: str) -> str:
    """The Argon2id PHC string of ``token`` (random salt; about 20-40 ms)."""
    return _hasher().hash(token)


def verify_token(token: str, token_hash: str) -> bool:
    """True if ``token`` matches ``token_hash``; False for a mismatch or a malformed hash."""
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher().verify(token_hash, token)
    except (VerificationError, InvalidHashError):
        return False


@attrs.frozen
class TenantTokenRow:
    """One tenant token. The hash is left out of ``repr`` so it never lands in a log."""

    id: int
    tenant: str
    prefix: str
    description: str | None
    created_at: datetime
    token_hash: str = attrs.field(repr=False)

    @classmethod
    def from_row(cls, row: Any) -> TenantTokenRow:
        return cls(
            id=row["id"],
            tenant=row["tenant_id"],
            prefix=row["token_prefix"],
            description=row["description"],
            created_at=_time.parse_rfc3339(row["created_at"]),
            token_hash=row["token_hash"],
        )


class TokenQueries(StoreBase):
    """The token part of :class:`~tenement.store.Store`."""

    def set_admin_token_hash(self, token_hash: str) -> None:
        """Replace the admin token's hash; the old admin token stops working at once."""
        with self._write() as conn:
            upsert(conn, "config", ("key",), [{"key": ADMIN_HASH_KEY, "value": token_hash}])

    def set_fleet_secret_hash(self, secret_hash: str) -> None:
        """Replace the fleet secret's hash; nodes check their secret file against it at start."""
        with self._write() as conn:
            upsert(conn, "config", ("key",), [{"key": FLEET_HASH_KEY, "value": secret_hash}])

    def fleet_secret_hash(self) -> str | None:
        """The fleet secret's hash, or None when ``ten token-gen --fleet`` never ran."""
        with self._read() as conn:
            secret_hash: str | None = conn.execute(
                "SELECT value FROM config WHERE key = :key", {"key": FLEET_HASH_KEY}
            ).scalar()
            return secret_hash

    def admin_token_hash(self) -> str | None:
        """The admin token's hash, or None when no admin token was generated."""
        with self._read() as conn:
            token_hash: str | None = conn.execute(
                "SELECT value FROM config WHERE key = :key", {"key": ADMIN_HASH_KEY}
            ).scalar()
            return token_hash

    def add_tenant_token(
        self, tenant: str, token_hash: str, prefix: str, description: str | None = None
    ) -> int:
        """Store a tenant token's hash; returns its id (for ``ten token-revoke``)."""
        with self._write() as conn:
            token_id = conn.execute(
                "INSERT INTO tenant_tokens"
                " (token_hash, token_prefix, tenant_id, description, created_at)"
                " VALUES (:hash, :prefix, :tenant, :description, :created_at) RETURNING id",
                {
                    "hash": token_hash,
                    "prefix": prefix,
                    "tenant": tenant,
                    "description": description,
                    "created_at": _time.utc_now_rfc3339(),
                },
            ).scalar()
            return int(token_id)

    def tenant_tokens_with_prefix(self, prefix: str) -> list[TenantTokenRow]:
        """The tenant tokens whose first 8 characters are ``prefix`` (usually 0 or 1)."""
        if len(prefix) < PREFIX_LENGTH:
            return []
        with self._read() as conn:
            rows = conn.execute(
                f"{_SELECT} WHERE token_prefix = :prefix ORDER BY id",
                {"prefix": prefix[:PREFIX_LENGTH]},
            ).rows
            return [TenantTokenRow.from_row(row) for row in rows]

    def list_tenant_tokens(self) -> list[TenantTokenRow]:
        """Every tenant token, oldest first."""
        with self._read() as conn:
            rows = conn.execute(f"{_SELECT} ORDER BY id").rows
            return [TenantTokenRow.from_row(row) for row in rows]

    def revoke_tenant_token(self, token_id: int) -> bool:
        """Delete a tenant token; False if there was none with that id."""
        with self._write() as conn:
            result = conn.execute("DELETE FROM tenant_tokens WHERE id = :id", {"id": token_id})
            return result.rowcount > 0

    def find_tenant_token(self, token: str) -> TenantTokenRow | None:
        """The tenant token row ``token`` belongs to, or None (tokens under 8 chars never match)."""
        for row in self.tenant_tokens_with_prefix(token_prefix(token)):
            if verify_token(token, row.token_hash):
                return row
        return None
