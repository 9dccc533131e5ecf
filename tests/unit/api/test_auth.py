"""Bearer parsing, the per-client rate limiter, and the verification cache."""

from __future__ import annotations

import hashlib
from pathlib import Path

import attrs
import pytest
import trio

from tenement.api.auth import (
    Authenticator,
    Identity,
    RateLimited,
    RateLimiter,
    Unauthorized,
    bearer_token,
)
from tenement.store import (
    generate_token,
    hash_token,
    migrate_to_head,
    open_store,
    token_prefix,
    verify_token,
)

ADMIN = "admin-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
TENANT = "tenant-token-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"


def fake_hash(token: str) -> str:
    """A stand-in for an Argon2 PHC string: anything the fake verify can check."""
    return "h$" + hashlib.sha256(token.encode()).hexdigest()


@attrs.frozen
class Row:
    tenant: str
    prefix: str
    token_hash: str


@attrs.define
class TokenTable:
    """The two token reads the authenticator makes, over plain attributes."""

    admin: str | None = None
    rows: list[Row] = attrs.Factory(list)

    def admin_token_hash(self) -> str | None:
        return self.admin

    def tenant_tokens_with_prefix(self, prefix: str) -> list[Row]:
        return [row for row in self.rows if row.prefix == prefix]


@attrs.define
class CountingVerify:
    calls: int = 0

    def __call__(self, token: str, token_hash: str) -> bool:
        self.calls += 1
        return fake_hash(token) == token_hash


def make(table: TokenTable, **kwargs):  # type: ignore[no-untyped-def]
    verify = CountingVerify()
    return Authenticator(table, verify=verify, **kwargs), verify


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("", None),
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("Bearer  abc", " abc"),
        ("Bearer abc ", "abc "),
        ("Basic abc", None),
        ("Bearerabc", None),
    ],
)
def test_bearer_token_is_taken_verbatim(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


async def test_admin_and_tenant_tokens_identify_their_owner() -> None:
    table = TokenTable(fake_hash(ADMIN), [Row("alice", TENANT[:8], fake_hash(TENANT))])
    auth, _ = make(table)
    assert await auth.authenticate(f"Bearer {ADMIN}", "c") == Identity(None)
    assert await auth.authenticate(f"Bearer {TENANT}", "c") == Identity("alice")
    with pytest.raises(Unauthorized):
        await auth.authenticate("Bearer nope-nope-nope", "c")
    with pytest.raises(Unauthorized):
        await auth.authenticate(None, "c")


async def test_successes_are_cached_and_a_tenant_never_pays_for_the_admin_check() -> None:
    table = TokenTable(fake_hash(ADMIN), [Row("alice", TENANT[:8], fake_hash(TENANT))])
    auth, verify = make(table)
    await auth.authenticate(f"Bearer {ADMIN}", "c")
    await auth.authenticate(f"Bearer {TENANT}", "c")
    first = verify.calls
    for _ in range(5):
        await auth.authenticate(f"Bearer {ADMIN}", "c")
        await auth.authenticate(f"Bearer {TENANT}", "c")
    assert verify.calls == first


async def test_rotating_the_admin_token_takes_effect_at_once_despite_the_cache() -> None:
    table = TokenTable(fake_hash(ADMIN))
    auth, _ = make(table)
    await auth.authenticate(f"Bearer {ADMIN}", "c")
    table.admin = fake_hash("the-new-admin-token")
    with pytest.raises(Unauthorized):
        await auth.authenticate(f"Bearer {ADMIN}", "c")
    assert await auth.authenticate("Bearer the-new-admin-token", "c") == Identity(None)


async def test_a_revoked_tenant_token_fails_despite_the_cache() -> None:
    table = TokenTable(None, [Row("alice", TENANT[:8], fake_hash(TENANT))])
    auth, _ = make(table)
    await auth.authenticate(f"Bearer {TENANT}", "c")
    table.rows.clear()
    with pytest.raises(Unauthorized):
        await auth.authenticate(f"Bearer {TENANT}", "c")


def test_cache_keys_hold_no_plaintext() -> None:
    table = TokenTable(fake_hash(ADMIN))
    auth, _ = make(table)
    trio.run(auth.authenticate, f"Bearer {ADMIN}", "c")
    assert all(ADMIN not in repr(key) for key in auth._cache)


async def test_ten_failures_block_only_that_client_until_the_window_passes(
    autojump_clock: trio.abc.Clock,
) -> None:
    table = TokenTable(fake_hash(ADMIN))
    auth, _ = make(table)
    for _ in range(10):
        with pytest.raises(Unauthorized):
            await auth.authenticate("Bearer wrong", "attacker")
    with pytest.raises(RateLimited):
        await auth.authenticate(f"Bearer {ADMIN}", "attacker")
    assert await auth.authenticate(f"Bearer {ADMIN}", "someone-else") == Identity(None)
    await trio.sleep(5.01)
    assert await auth.authenticate(f"Bearer {ADMIN}", "attacker") == Identity(None)


async def test_a_missing_header_is_not_counted_as_a_failure() -> None:
    auth, _ = make(TokenTable(fake_hash(ADMIN)))
    for _ in range(50):
        with pytest.raises(Unauthorized):
            await auth.authenticate("Basic x", "c")
    assert await auth.authenticate(f"Bearer {ADMIN}", "c") == Identity(None)


async def test_a_valid_token_clears_the_clients_failures() -> None:
    auth, _ = make(TokenTable(fake_hash(ADMIN)))
    for _ in range(2):
        for _ in range(9):
            with pytest.raises(Unauthorized):
                await auth.authenticate("Bearer wrong", "c")
        await auth.authenticate(f"Bearer {ADMIN}", "c")


async def test_a_burst_of_bad_tokens_starts_at_most_ten_verifications() -> None:
    auth, verify = make(TokenTable(fake_hash(ADMIN)))
    outcomes: list[str] = []

    async def attempt() -> None:
        try:
            await auth.authenticate("Bearer wrong-token", "attacker")
        except Unauthorized:
            outcomes.append("401")
        except RateLimited:
            outcomes.append("429")

    async with trio.open_nursery() as nursery:
        for _ in range(1000):
            nursery.start_soon(attempt)
    assert outcomes.count("401") == 10
    assert outcomes.count("429") == 990
    # each refused check is two verifications: the admin hash and one tenant-sized (decoy)
    assert verify.calls == 20


def test_rate_limiter_window_slides() -> None:
    limiter = RateLimiter(max_failures=3, window_seconds=5.0)
    for now in (0.0, 1.0, 2.0):
        assert limiter.begin("c", now)
        limiter.end("c", now, ok=False)
    assert not limiter.begin("c", 4.9)
    assert limiter.begin("c", 5.1)  # the failure at 0.0 left the window


async def test_many_valid_requests_in_flight_from_one_client_are_queued_not_refused() -> None:
    """Thirty concurrent first uses of a valid token from one address: slots for
    Argon2 are limited per client, but a valid token waits for one, it is never a 429."""
    auth, _ = make(TokenTable(fake_hash(ADMIN)))
    identities: list[Identity] = []

    async def attempt() -> None:
        identities.append(await auth.authenticate(f"Bearer {ADMIN}", "busy-client"))

    async with trio.open_nursery() as nursery:
        for _ in range(30):
            nursery.start_soon(attempt)
    assert identities == [Identity()] * 30


@attrs.define
class RecordingArgon2:
    """The real Argon2 verification, recording which hash each call was against."""

    hashes: list[str] = attrs.Factory(list)

    def __call__(self, token: str, token_hash: str) -> bool:
        self.hashes.append(token_hash)
        return verify_token(token, token_hash)


async def test_refusing_a_token_costs_the_same_whether_or_not_its_prefix_is_a_tenants(
    tmp_path: Path,
) -> None:
    """A wrong token sharing a real tenant token's first 8 characters was verified twice
    (admin, then that tenant's hash), any other wrong token once: twice the time to
    refuse told a guesser the prefix was right."""
    real = generate_token()
    with open_store(f"sqlite:///{tmp_path}/tenement.db") as store:
        migrate_to_head(store, backup_dir=None)
        store.set_admin_token_hash(hash_token(generate_token()))
        store.add_tenant_token("alice", hash_token(real), token_prefix(real))
        verify = RecordingArgon2()
        auth = Authenticator(store, verify=verify)
        work = {}
        for name, wrong in {
            "same-prefix": real[:8] + "x" * 35,
            "other-prefix": "y" * 43,
            "short": "z",
        }.items():
            verify.hashes.clear()
            with pytest.raises(Unauthorized):
                await auth.authenticate(f"Bearer {wrong}", name)
            # Argon2 cost is set by the hash's parameters: same count, same parameters
            work[name] = sorted(h.split("$")[3] for h in verify.hashes)
        assert work["same-prefix"] == work["other-prefix"] == work["short"]
        assert work["same-prefix"] == ["m=19456,t=2,p=1"] * 2
        assert await auth.authenticate(f"Bearer {real}", "c") == Identity("alice")
