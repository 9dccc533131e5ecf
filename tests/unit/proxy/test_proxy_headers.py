"""Hop-by-hop headers dropped both ways; X-Forwarded-* added."""

from __future__ import annotations

import random

import pytest

from tenement.proxy.headers import (
    _request_headers_in_full,
    _response_headers_in_full,
    request_headers,
    response_headers,
)


def names(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    return [n for n, _ in headers]


def test_hop_by_hop_request_headers_are_dropped() -> None:
    incoming = [
        (b"host", b"alice.notes.example.com"),
        (b"connection", b"keep-alive, X-Secret"),
        (b"x-secret", b"1"),
        (b"keep-alive", b"timeout=5"),
        (b"proxy-authorization", b"Basic xx"),
        (b"proxy-connection", b"keep-alive"),
        (b"te", b"trailers"),
        (b"trailer", b"x-t"),
        (b"transfer-encoding", b"chunked"),
        (b"upgrade", b"h2c"),
        (b"expect", b"100-continue"),
        (b"authorization", b"Bearer t"),
        (b"content-length", b"3"),
    ]
    out = request_headers(incoming, client_host="10.0.0.9", scheme="http")
    # Content-Length goes too: beside Transfer-Encoding it does not frame the body
    assert names(out) == [
        b"host",
        b"authorization",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
    ]
    assert dict(out)[b"host"] == b"alice.notes.example.com"
    assert dict(out)[b"x-forwarded-host"] == b"alice.notes.example.com"


def test_a_length_sent_beside_chunked_framing_never_reaches_the_tenant() -> None:
    # 0.CL smuggling: the tenant must not read a body of this length after the chunks
    incoming = [
        (b"host", b"a.web.example.com"),
        (b"content-length", b"5"),
        (b"transfer-encoding", b"chunked"),
    ]
    out = request_headers(incoming, client_host="10.0.0.9", scheme="http")
    assert b"content-length" not in names(out)
    alone = request_headers(incoming[:2], client_host="10.0.0.9", scheme="http")
    assert (b"content-length", b"5") in alone


@pytest.mark.parametrize("named", [b"host", b"Host", b"content-length", b"keep-alive, host"])
def test_connection_cannot_strip_host_or_length(named: bytes) -> None:
    incoming = [
        (b"host", b"a.web.example.com"),
        (b"connection", named),
        (b"content-length", b"2"),
    ]
    out = request_headers(incoming, client_host=None, scheme="http")
    assert (b"host", b"a.web.example.com") in out
    assert (b"content-length", b"2") in out
    back = response_headers([(b"connection", named), (b"content-length", b"2")])
    assert (b"content-length", b"2") in back


def test_forwarded_for_appends_the_client() -> None:
    out = dict(
        request_headers(
            [(b"host", b"h"), (b"x-forwarded-for", b"1.2.3.4"), (b"x-forwarded-for", b"5.6.7.8")],
            client_host="127.0.0.1",
            scheme="https",
        )
    )
    assert out[b"x-forwarded-for"] == b"1.2.3.4, 5.6.7.8, 127.0.0.1"
    assert out[b"x-forwarded-proto"] == b"https"


def test_forwarded_proto_and_host_from_a_front_proxy_are_kept() -> None:
    out = request_headers(
        [(b"host", b"h"), (b"x-forwarded-proto", b"https"), (b"x-forwarded-host", b"orig")],
        client_host=None,
        scheme="http",
    )
    assert out.count((b"x-forwarded-proto", b"https")) == 1
    assert dict(out)[b"x-forwarded-host"] == b"orig"
    assert b"x-forwarded-for" not in dict(out)


def test_websocket_upgrade_drops_handshake_headers() -> None:
    out = request_headers(
        [
            (b"host", b"h"),
            (b"upgrade", b"websocket"),
            (b"connection", b"Upgrade"),
            (b"sec-websocket-key", b"k"),
            (b"sec-websocket-version", b"13"),
            (b"sec-websocket-protocol", b"chat"),
            (b"cookie", b"a=b"),
        ],
        client_host="127.0.0.1",
        scheme="ws",
        websocket=True,
    )
    assert names(out) == [b"cookie", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"]


def test_hop_by_hop_response_headers_are_dropped() -> None:
    out = response_headers(
        [
            (b"content-type", b"text/plain"),
            (b"connection", b"close, X-Internal"),
            (b"x-internal", b"1"),
            (b"transfer-encoding", b"chunked"),
            (b"keep-alive", b"timeout=5"),
            (b"set-cookie", b"a=b"),
            (b"Date", b"Thu, 26 Nov 2026 18:00:00 GMT"),
        ]
    )
    # Date too: the HTTP server in front writes its own, and two would be sent
    assert out == [(b"content-type", b"text/plain"), (b"set-cookie", b"a=b")]


def test_http2_pseudo_headers_become_host() -> None:
    out = request_headers(
        [(b":method", b"GET"), (b":authority", b"alice.notes.example.com"), (b"accept", b"*/*")],
        client_host=None,
        scheme="https",
    )
    assert out[0] == (b"host", b"alice.notes.example.com")
    assert not any(name.startswith(b":") for name, _ in out)


_NAMES = [b"host", b"accept", b"user-agent", b"cookie", b"Accept", b"x-forwarded-for"]
_NAMES += [b"x-forwarded-proto", b"x-forwarded-host", b"connection", b"keep-alive", b"te"]
_NAMES += [b"proxy-authorization", b":authority", b"x-secret", b"date", b"Date", b"123"]
_VALUES = [b"a", b"x-secret", b"close, x-secret", b"https", b"1.2.3.4", b""]


@pytest.mark.parametrize("seed", range(3))
def test_the_quick_pass_gives_what_the_full_rules_give(seed: int) -> None:
    """Headers the proxy does not act on take one cheap pass; whatever the mix, the
    answer is the one the full rules give."""
    rng = random.Random(seed)
    for _ in range(2000):
        headers = [(rng.choice(_NAMES), rng.choice(_VALUES)) for _ in range(rng.randint(0, 5))]
        for client_host in ("10.0.0.9", None):
            for scheme in ("http", "https"):
                assert request_headers(
                    headers, client_host=client_host, scheme=scheme
                ) == _request_headers_in_full(headers, client_host, scheme, False), headers
        assert response_headers(headers) == _response_headers_in_full(headers), headers
