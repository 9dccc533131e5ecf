"""The server name (SNI) and ALPN protocols of a TLS ClientHello, read from its bytes.

The front reads them (with ``MSG_PEEK``, leaving the bytes for OpenSSL) before the
handshake, because two decisions must be taken before it starts and may need to wait:
which certificate to present (one issued on demand is ordered first) and whether the
client is an ACME server validating a ``tls-alpn-01`` challenge (RFC 8737: it offers only
``acme-tls/1``). Pure functions over bytes (RFC 8446 §4.1.2, RFC 6066 §3, RFC 7301 §3.1);
anything malformed yields no name, and OpenSSL then refuses the handshake itself.
"""

from __future__ import annotations

import attrs

#: a record header: content type, legacy version, length
RECORD_HEADER = 5
#: the largest record a ClientHello may come in (RFC 8446 §5.1)
MAX_RECORD = 5 + 2**14
_HANDSHAKE = 0x16
_CLIENT_HELLO = 0x01
_SERVER_NAME = 0x0000
_ALPN = 0x0010


@attrs.frozen
class ClientHello:
    """What the front needs of a ClientHello."""

    #: the host name asked for, lowercased, without a trailing dot; None when absent
    server_name: str | None
    alpn: tuple[bytes, ...]


class NotClientHello(ValueError):
    """The bytes are not a TLS handshake record with a ClientHello."""


def record_length(data: bytes) -> int | None:
    """How many bytes the first record takes (header included); None until its header is
    here.

    Raises:
        NotClientHello: the first byte is not a handshake record's, or the record is
            longer than TLS allows.
    """
    if data and data[0] != _HANDSHAKE:
        raise NotClientHello("not a TLS handshake record")
    if len(data) < RECORD_HEADER:
        return None
    length = RECORD_HEADER + int.from_bytes(data[3:5], "big")
    if length > MAX_RECORD:
        # no plaintext record is longer; waiting for the rest would never end
        raise NotClientHello(f"a record of {length} bytes")
    return length


def parse_client_hello(record: bytes) -> ClientHello:
    """The server name and ALPN list of the ClientHello in ``record`` (one whole record).

    A ClientHello longer than its record is read as far as it goes. Plain index
    arithmetic: it runs once per handshake.

    Raises:
        NotClientHello: not a handshake record holding a ClientHello.
    """
    length = record_length(record)
    if length is None or len(record) < length:
        raise NotClientHello("the record is not whole")
    if length < RECORD_HEADER + 4 or record[RECORD_HEADER] != _CLIENT_HELLO:
        raise NotClientHello("not a ClientHello")
    at = RECORD_HEADER + 4 + 2 + 32  # handshake header, legacy_version, random
    at = _skip(record, at, 1, length)  # legacy_session_id
    at = _skip(record, at, 2, length)  # cipher_suites
    at = _skip(record, at, 1, length)  # legacy_compression_methods
    if at + 2 > length:
        return ClientHello(None, ())
    end = min(length, at + 2 + int.from_bytes(record[at : at + 2], "big"))
    at += 2
    server_name: str | None = None
    alpn: tuple[bytes, ...] = ()
    while at + 4 <= end:
        kind = int.from_bytes(record[at : at + 2], "big")
        size = int.from_bytes(record[at + 2 : at + 4], "big")
        at += 4
        if at + size > end:
            break  # cut by the record's end
        if kind == _SERVER_NAME:
            server_name = _server_name(record[at : at + size])
        elif kind == _ALPN:
            alpn = _protocols(record[at : at + size])
        at += size
    return ClientHello(server_name, alpn)


def _skip(data: bytes, at: int, size: int, end: int) -> int:
    """Past a field of ``size``-byte length and its contents."""
    if at + size > end:
        raise NotClientHello("a field runs past the end of the ClientHello")
    after = at + size + int.from_bytes(data[at : at + size], "big")
    if after > end:
        raise NotClientHello("a field runs past the end of the ClientHello")
    return after


def _server_name(data: bytes) -> str | None:
    end = min(len(data), 2 + int.from_bytes(data[:2], "big"))
    at = 2
    while at + 3 <= end:
        kind = data[at]
        size = int.from_bytes(data[at + 1 : at + 3], "big")
        name = data[at + 3 : at + 3 + size]
        at += 3 + size
        if kind == 0:  # host_name
            try:
                text = name.decode("ascii")
            except UnicodeDecodeError:
                return None
            return text.lower().rstrip(".") or None
    return None


def _protocols(data: bytes) -> tuple[bytes, ...]:
    end = min(len(data), 2 + int.from_bytes(data[:2], "big"))
    at = 2
    found = []
    while at < end:
        size = data[at]
        found.append(data[at + 1 : at + 1 + size])
        at += 1 + size
    return tuple(found)
