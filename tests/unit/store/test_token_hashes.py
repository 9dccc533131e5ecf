import re

import pytest

from tenement.store import (
    Store,
    generate_token,
    hash_token,
    token_prefix,
    verify_token,
)

#: made by the reference binary (`ten token-gen`, bench.refbin): its token and its hash
REFERENCE_TOKEN = "t45jfeGTF2VDGhnlVnzH_Zc0O4u6QbxvI8s0BdMEcIQ"
REFERENCE_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$wsl64AazyF5RX+vFKnyiFQ$"
    "rSga0ut4d8SUIzUSHMEZP1CMG/ldcGdQF0zadVOZ12M"
)


def test_tokens_are_43_urlsafe_chars_and_distinct() -> None:
    tokens = {generate_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)


def test_hash_is_argon2id_with_the_reference_parameters() -> None:
    token_hash = hash_token("secret-token-value")
    assert token_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_token("secret-token-value", token_hash)
    assert not verify_token("secret-token-valuf", token_hash)


def test_a_hash_made_by_the_reference_verifies() -> None:
    assert verify_token(REFERENCE_TOKEN, REFERENCE_HASH)
    assert not verify_token(REFERENCE_TOKEN[:-1] + "A", REFERENCE_HASH)


@pytest.mark.parametrize("bad_hash", ["", "plain", "$argon2id$v=19$broken", "$2b$12$abc"])
def test_a_malformed_hash_never_verifies(bad_hash: str) -> None:
    assert not verify_token("anything", bad_hash)


def test_prefix_is_the_first_8_chars() -> None:
    assert token_prefix("abcdefghijkl") == "abcdefgh"


def test_admin_hash_is_replaced_not_added(store: Store) -> None:
    assert store.admin_token_hash() is None
    first, second = generate_token(), generate_token()
    store.set_admin_token_hash(hash_token(first))
    store.set_admin_token_hash(hash_token(second))
    current = store.admin_token_hash()
    assert current is not None
    assert verify_token(second, current)
    assert not verify_token(first, current)


def test_tenant_tokens_by_prefix_list_and_revoke(store: Store) -> None:
    alice, bob = generate_token(), generate_token()
    alice_id = store.add_tenant_token("alice", hash_token(alice), token_prefix(alice), "ci")
    bob_id = store.add_tenant_token("bob", hash_token(bob), token_prefix(bob), None)
    assert alice_id != bob_id

    found = store.tenant_tokens_with_prefix(token_prefix(alice))
    assert [row.tenant for row in found] == ["alice"]
    assert store.tenant_tokens_with_prefix("short") == []
    assert store.find_tenant_token(alice).tenant == "alice"  # type: ignore[union-attr]
    assert store.find_tenant_token(alice[:8] + "x" * 35) is None

    listed = store.list_tenant_tokens()
    assert [(r.id, r.tenant, r.description) for r in listed] == [
        (alice_id, "alice", "ci"),
        (bob_id, "bob", None),
    ]
    assert "token_hash" not in repr(listed[0])

    assert store.revoke_tenant_token(alice_id) is True
    assert store.revoke_tenant_token(alice_id) is False
    assert store.find_tenant_token(alice) is None
    assert store.find_tenant_token(bob) is not None
