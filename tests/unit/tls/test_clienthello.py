"""tenement.tls.clienthello: SNI and ALPN from the bytes OpenSSL's clients really send."""

from __future__ import annotations

import ssl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenement.tls.clienthello import (
    ClientHello,
    NotClientHello,
    parse_client_hello,
    record_length,
)


def client_hello(server_name: str | None, alpn: list[str] | None) -> bytes:
    """The first flight of a real OpenSSL client."""
    context = ssl.create_default_context()
    if server_name is None:
        context.check_hostname = False
    if alpn:
        context.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize(
    ("server_name", "alpn", "expected"),
    [
        (
            "Alice.Notes.Example.COM",
            ["acme-tls/1"],
            ClientHello("alice.notes.example.com", (b"acme-tls/1",)),
        ),
        ("example.com", ["h2", "http/1.1"], ClientHello("example.com", (b"h2", b"http/1.1"))),
        ("example.com", None, ClientHello("example.com", ())),
        (None, None, ClientHello(None, ())),
    ],
    ids=["acme-tls", "browser", "no-alpn", "no-sni"],
)
def test_reads_what_openssl_sends(
    server_name: str | None, alpn: list[str] | None, expected: ClientHello
) -> None:
    data = client_hello(server_name, alpn)
    assert record_length(data) == len(data)
    assert parse_client_hello(data) == expected


def test_a_record_cut_short_is_not_whole() -> None:
    data = client_hello("example.com", ["http/1.1"])
    assert record_length(data[:3]) is None
    with pytest.raises(NotClientHello):
        parse_client_hello(data[:-1])


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x00\x04\x02\x00\x00\x00",
        b"\x16\x03\x01\x00\x05\x01\x00\x00\xff\x03",
    ],
    ids=["plain-http", "not-a-client-hello", "fields-past-the-end"],
)
def test_anything_else_is_refused(data: bytes) -> None:
    with pytest.raises(NotClientHello):
        length = record_length(data)
        assert length is not None
        parse_client_hello(data[:length])


def test_a_record_longer_than_tls_allows_is_refused_from_its_header() -> None:
    """The front waits for a whole record: one that claims more than 2^14 bytes would
    have it wait (and spin on the bytes already there) until the handshake deadline."""
    with pytest.raises(NotClientHello):
        record_length(b"\x16\x03\x01\xff\xff")
    assert record_length(b"\x16\x03\x01\x40\x00") == 5 + 2**14


@given(st.binary(max_size=600), st.integers(min_value=0, max_value=600))
def test_any_bytes_give_a_client_hello_or_not_client_hello(body: bytes, cut: int) -> None:
    """Whatever a client sends, the reader answers or refuses; it never fails otherwise
    (a real ClientHello cut anywhere, and random bytes behind a handshake header)."""
    real = client_hello("example.com", ["h2", "http/1.1"])
    for data in (real[:cut], b"\x16\x03\x01" + len(body).to_bytes(2, "big") + body):
        try:
            length = record_length(data)
            if length is not None:
                parse_client_hello(data[:length])
        except NotClientHello:
            pass
