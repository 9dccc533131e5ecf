"""Host -> route table (reference §5.7 plus hostile input) and the weighted pick."""

from __future__ import annotations

import collections
import random

import attrs
import pytest

from tenement.proxy.routing import (
    BAD_HOST,
    FALLBACK,
    NOT_FOUND,
    Direct,
    Fallback,
    Rejected,
    Weighted,
    _cached_route,
    fallback_order,
    parse_host,
    route_for,
    strip_port,
    weighted_pick,
)

DOMAIN = "example.com"

CASES = [
    ("alice.notes.example.com", Direct("alice", "notes")),
    ("notes.example.com", Weighted("notes")),
    ("example.com", FALLBACK),
    ("127.0.0.1", FALLBACK),
    ("127.0.0.1:8080", FALLBACK),
    ("other.org", FALLBACK),
    ("notexample.com", FALLBACK),
    ("alice.notes.example.com:8080", Direct("alice", "notes")),
    ("notes.example.com:443", Weighted("notes")),
    ("example.com:8080", FALLBACK),
    ("a.b.c.example.com", NOT_FOUND),
    ("Alice.NOTES.Example.COM", Direct("alice", "notes")),
    ("alice.notes.example.com.", Direct("alice", "notes")),
    ("", FALLBACK),
    (None, FALLBACK),
    ("x..example.com", BAD_HOST),
    (".example.com", BAD_HOST),
    ("..example.com", BAD_HOST),
    ("a/b.example.com", BAD_HOST),
    ("al ice.notes.example.com", BAD_HOST),
    ("alice.no%tes.example.com", BAD_HOST),
    ("\x00.example.com", BAD_HOST),
    ("é.notes.example.com", BAD_HOST),
    ("x" * 300 + ".notes.example.com", BAD_HOST),
    ("x" * 64 + ".notes.example.com", NOT_FOUND),
    ("alice.notes.example.com:abc", FALLBACK),
    ("[::1]:8080", FALLBACK),
    ("[::1", FALLBACK),
    ("alice_1.my-app.example.com", Direct("alice_1", "my-app")),
]


@pytest.mark.parametrize(
    ("host", "route"),
    CASES,
    ids=[
        "direct",
        "weighted",
        "bare-domain",
        "ip",
        "ip-with-port",
        "other-domain",
        "suffix-without-dot",
        "direct-port-stripped",
        "weighted-port-stripped",
        "bare-domain-port-stripped",
        "a.b.c.domain",
        "uppercase",
        "trailing-dot",
        "empty",
        "missing",
        "empty-label",
        "only-dot",
        "two-dots",
        "slash",
        "space",
        "percent",
        "nul",
        "non-ascii",
        "very-long",
        "label-too-long-for-a-name",
        "bad-port",
        "ipv6",
        "ipv6-unclosed",
        "underscore-and-dash",
    ],
)
def test_parse_host(host: str | None, route: object) -> None:
    assert parse_host(host, DOMAIN) == route


def test_strip_port() -> None:
    assert strip_port("a.b:80") == "a.b"
    assert strip_port("a.b") == "a.b"
    assert strip_port("[::1]:80") == "[::1]"


@attrs.frozen
class T:
    name: str
    weight: int


def test_weighted_distribution_follows_weights() -> None:
    targets = [T("a", 10), T("b", 30), T("c", 60)]
    rng = random.Random(1234)
    counts = collections.Counter(weighted_pick(targets, rng).name for _ in range(10_000))
    # expected 1000 / 3000 / 6000; a seeded rng makes this exact and repeatable
    assert 900 < counts["a"] < 1100
    assert 2850 < counts["b"] < 3150
    assert 5850 < counts["c"] < 6150


def test_weighted_pick_is_repeatable_with_a_seed() -> None:
    targets = [T("a", 50), T("b", 50)]
    first = [weighted_pick(targets, random.Random(7)).name for _ in range(3)]
    rng1, rng2 = random.Random(99), random.Random(99)
    assert [weighted_pick(targets, rng1) for _ in range(50)] == [
        weighted_pick(targets, rng2) for _ in range(50)
    ]
    assert len(set(first)) == 1


def test_weight_zero_is_never_picked() -> None:
    targets = [T("zero", 0), T("one", 1), T("zero2", 0)]
    rng = random.Random(0)
    assert {weighted_pick(targets, rng).name for _ in range(1000)} == {"one"}


def test_no_positive_weight_picks_nothing() -> None:
    assert weighted_pick([T("a", 0), T("b", 0)], random.Random(0)) is None
    assert weighted_pick([], random.Random(0)) is None


def test_fallback_order_skips_the_pick_and_weight_zero() -> None:
    a, b, c, d = T("a", 100), T("b", 0), T("c", 5), T("d", 100)
    assert fallback_order([a, b, c, d], a) == [c, d]
    assert fallback_order([a, b], a) == []


def test_random_hosts_never_raise() -> None:
    """Any byte string a client may send as Host (decoded latin-1) yields a route."""
    rng = random.Random(2024)
    alphabet = "abz09-_.:[]%/ \t\x00\xff\u00e9ABZ"
    for _ in range(5000):
        label = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        host = rng.choice([label, label + "." + DOMAIN, label + "." + DOMAIN + ":80"])
        route = parse_host(host, DOMAIN)
        assert isinstance(route, Direct | Weighted | Fallback | Rejected)


def test_route_for_remembers_what_parse_host_says() -> None:
    hosts = [
        None,
        "",
        "a.notes.example.com",
        "A.Notes.example.com:80",
        "notes.example.com",
        "example.com",
        "x..example.com",
        "other.org",
    ]
    for host in hosts:
        assert route_for(host, "example.com") == parse_host(host, "example.com")
        assert route_for(host, "example.com") == parse_host(host, "example.com")  # cached
    before = _cached_route.cache_info().currsize
    long_host = "a" * 300 + ".notes.example.com"
    assert route_for(long_host, "example.com") == parse_host(long_host, "example.com")
    assert _cached_route.cache_info().currsize == before  # not kept
