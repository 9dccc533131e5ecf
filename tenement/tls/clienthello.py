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

    A ClientHello longer than its record is read as far as it goes.

    Raises:
        NotClientHello: not a handshake record holding a ClientHello.
    """
    length = record_length(record)
    if length is None or len(record) < length:
        raise NotClientHello("the record is not whole")
    body = memoryview(record)[RECORD_HEADER:length]
    if len(body) < 4 or body[0] != _CLIENT_HELLO:
        raise NotClientHello("not a ClientHello")
    reader = _Reader(body[4:])
    reader.skip(2 + 32)  # legacy_version, random
    reader.skip(reader.number(1))  # legacy_session_id
    reader.skip(reader.number(2))  # cipher_suites
    reader.skip(reader.number(1))  # legacy_compression_methods
    server_name: str | None = None
    alpn: tuple[bytes, ...] = ()
    if reader.left() < 2:
        return ClientHello(None, ())
    extensions = _Reader(reader.take(min(reader.number(2), reader.left())))
    while extensions.left() >= 4:
        kind = extensions.number(2)
        size = extensions.number(2)
        if size > extensions.left():
            break  # cut by the record's end
        data = _Reader(extensions.take(size))
        if kind == _SERVER_NAME:
            server_name = _server_name(data)
        elif kind == _ALPN:
            alpn = _protocols(data)
    return ClientHello(server_name, alpn)


def _server_name(data: _Reader) -> str | None:
    names = _Reader(data.take(data.number(2)))
    while names.left() >= 3:
        kind = names.number(1)
        name = names.take(names.number(2))
        if kind == 0:  # host_name
            try:
                text = bytes(name).decode("ascii")
            except UnicodeDecodeError:
                return None
            return text.lower().rstrip(".") or None
    return None


def _protocols(data: _Reader) -> tuple[bytes, ...]:
    listed = _Reader(data.take(data.number(2)))
    found = []
    while listed.left() >= 1:
        found.append(bytes(listed.take(listed.number(1))))
    return tuple(found)


class _Reader:
    """Big-endian fields off a buffer; reading past its end is :class:`NotClientHello`."""

    __slots__ = ("_at", "_data")

    def __init__(self, data: memoryview) -> None:
        self._data = data
        self._at = 0

    def left(self) -> int:
        return len(self._data) - self._at

    def take(self, size: int) -> memoryview:
        if size > self.left():
            raise NotClientHello("a field runs past the end of the ClientHello")
        piece = self._data[self._at : self._at + size]
        self._at += size
        return piece

    def skip(self, size: int) -> None:
        self.take(size)

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")
