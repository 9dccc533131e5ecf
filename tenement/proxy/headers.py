"""Which headers cross the proxy, and the X-Forwarded-* it adds. Pure functions.

Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are dropped both
ways: ``Connection`` and every header it names, ``Keep-Alive``, ``Proxy-*``, ``TE``,
``Trailer``, ``Transfer-Encoding``, ``Upgrade``. ``Expect`` is dropped too: the server in
front of us already answered ``100-continue``. ``Host`` passes unchanged, as in the
reference, so a tenant sees the name it was called by.

X-Forwarded-For gets the client address appended (a list built by every proxy on the
way). X-Forwarded-Proto and X-Forwarded-Host are set only when absent, so that a TLS
proxy in front of tenement (Caddy, as ``ten install --caddy`` sets up) keeps telling the
tenant the scheme and host the user really used.
"""

from __future__ import annotations

from collections.abc import Iterable

Headers = list[tuple[bytes, bytes]]

_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
        b"expect",
    }
)

#: headers that wsproto writes itself on the upgrade request
_WEBSOCKET_OWN = frozenset(
    {
        b"host",
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
    }
)


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Lowercased header names listed in every ``Connection`` header."""
    names: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            names.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return frozenset(names)


def _is_hop_by_hop(name: bytes, named: frozenset[bytes]) -> bool:
    return name in _HOP_BY_HOP or name.startswith(b"proxy-") or name in named


def request_headers(
    headers: Iterable[tuple[bytes, bytes]],
    *,
    client_host: str | None,
    scheme: str,
    websocket: bool = False,
) -> Headers:
    """The headers to send upstream for a request that arrived with ``headers``.

    Args:
        headers: the ASGI scope's headers (names lowercase, as ASGI servers give them).
        client_host: the peer's address from ``scope["client"]``, None when unknown
            (a Unix socket): then X-Forwarded-For is passed on unchanged.
        scheme: ``scope["scheme"]`` (``http``, ``https``, ``ws``, ``wss``).
        websocket: drop what the WebSocket client library writes itself (Host, the
            Sec-WebSocket-* handshake headers).

    Returns:
        A new list; ``headers`` is not modified.
    """
    headers = list(headers)
    named = _connection_tokens(headers)
    out: Headers = []
    forwarded_for: list[bytes] = []
    host = b""
    has_proto = has_host = False
    authority = b""
    for name, value in headers:
        name = name.lower()
        if name.startswith(b":"):  # HTTP/2 pseudo-headers: only :authority carries over
            if name == b":authority":
                authority = value
            continue
        if _is_hop_by_hop(name, named):
            continue
        if name == b"x-forwarded-for":
            forwarded_for.append(value.strip())
            continue
        if name == b"host":
            host = value
        elif name == b"x-forwarded-proto":
            has_proto = True
        elif name == b"x-forwarded-host":
            has_host = True
        if websocket and name in _WEBSOCKET_OWN:
            continue
        out.append((name, value))
    if not host and authority:
        host = authority
        if not websocket:
            out.insert(0, (b"host", host))
    if client_host:
        forwarded_for.append(client_host.encode("latin-1"))
    if forwarded_for:
        out.append((b"x-forwarded-for", b", ".join(v for v in forwarded_for if v)))
    if not has_proto:
        secure = scheme in ("https", "wss")
        out.append((b"x-forwarded-proto", b"https" if secure else b"http"))
    if not has_host and host:
        out.append((b"x-forwarded-host", host))
    return out


def response_headers(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """The upstream response's headers minus the hop-by-hop ones and ``Date``.

    The HTTP server in front of the proxy writes its own ``Date`` on every response;
    passing the tenant's on as well would send two.
    """
    headers = list(headers)
    named = _connection_tokens(headers)
    return [
        (n, v) for n, v in headers if not _is_hop_by_hop(n.lower(), named) and n.lower() != b"date"
    ]
