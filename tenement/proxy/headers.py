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

_NONE: frozenset[bytes] = frozenset()
#: what never crosses back: the server in front writes its own Date (see response_headers)
_HOP_BY_HOP_AND_DATE = _HOP_BY_HOP | {b"date"}

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


#: what ``Connection`` may not name for dropping: a request without its Host, or a
#: message without the length that frames it, would reach the other side as another
#: message than the one sent (a client could strip Host, or reframe a body)
_NEVER_NAMED = frozenset({b"host", b"content-length"})


def _connection_tokens(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Lowercased header names listed in every ``Connection`` header, less the ones
    that must pass (:data:`_NEVER_NAMED`)."""
    names: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            names.update(t.strip().lower() for t in value.split(b",") if t.strip())
    names -= _NEVER_NAMED
    return frozenset(names) if names else _NONE


def _dropped(headers: list[tuple[bytes, bytes]], always: frozenset[bytes]) -> frozenset[bytes]:
    """The names of the headers to drop (besides ``Proxy-*``): ``always``, and those
    ``Connection`` names."""
    named = _connection_tokens(headers)
    return always | named if named else always


#: request headers the proxy acts on besides Host (dropped, or added to): in a request
#: without any (nor a name below, nor one that is not lowercase), every header passes
_NOTABLE_IN_REQUESTS = _HOP_BY_HOP | {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"}
#: HTTP/2 pseudo-headers, and the Proxy-* ones (hop-by-hop)
_NOTABLE_PREFIXES = (b":", b"proxy-")


def request_headers(
    headers: Iterable[tuple[bytes, bytes]],
    *,
    client_host: str | None,
    scheme: str,
    websocket: bool = False,
) -> Headers:
    """The headers to send upstream for a request that arrived with ``headers``.

    Most requests carry none of the headers the proxy drops or extends: they are passed
    on in one cheap pass (this runs for every proxied request), the others through
    :func:`_request_headers_in_full`, with the same result.

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
    headers = headers if isinstance(headers, list) else list(headers)
    if websocket:
        return _request_headers_in_full(headers, client_host, scheme, websocket)
    out: Headers = []
    host = b""
    for field in headers:
        name = field[0]
        if name == b"host":
            host = field[1]
        elif (
            name in _NOTABLE_IN_REQUESTS or name.startswith(_NOTABLE_PREFIXES) or not name.islower()
        ):
            return _request_headers_in_full(headers, client_host, scheme, websocket)
        out.append(field)
    if client_host:
        out.append((b"x-forwarded-for", client_host.encode("latin-1")))
    out.append((b"x-forwarded-proto", b"https" if scheme in _SECURE else b"http"))
    if host:
        out.append((b"x-forwarded-host", host))
    return out


_SECURE = frozenset({"https", "wss"})


def _request_headers_in_full(
    headers: Headers, client_host: str | None, scheme: str, websocket: bool
) -> Headers:
    """:func:`request_headers` for any request."""
    dropped = _dropped(headers, _HOP_BY_HOP)
    if any(name.lower() == b"transfer-encoding" for name, _ in headers):
        # a chunked body's length is the chunks', never a Content-Length sent beside them
        # (RFC 9112 §6.3): the proxy frames the body again for the tenant
        dropped |= {b"content-length"}
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
        if name in dropped or name.startswith(b"proxy-"):
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
    if len(forwarded_for) == 1:  # the usual case: the client's address alone
        out.append((b"x-forwarded-for", forwarded_for[0]))
    elif forwarded_for:
        out.append((b"x-forwarded-for", b", ".join([v for v in forwarded_for if v])))
    if not has_proto:
        out.append((b"x-forwarded-proto", b"https" if scheme in _SECURE else b"http"))
    if not has_host and host:
        out.append((b"x-forwarded-host", host))
    return out


def response_headers(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """The upstream response's headers minus the hop-by-hop ones and ``Date``.

    The HTTP server in front of the proxy writes its own ``Date`` on every response;
    passing the tenant's on as well would send two.
    """
    headers = headers if isinstance(headers, list) else list(headers)
    out: Headers = []
    for field in headers:  # one cheap pass for an answer with nothing hop-by-hop
        name = field[0]
        if name == b"date":
            continue
        if name in _HOP_BY_HOP or name.startswith(b"proxy-") or not name.islower():
            return _response_headers_in_full(headers)
        out.append(field)
    return out


def _response_headers_in_full(headers: Headers) -> Headers:
    """:func:`response_headers` for any answer."""
    dropped = _dropped(headers, _HOP_BY_HOP_AND_DATE)
    return [
        (n, v)
        for n, v in headers
        if n.lower() not in dropped and not n.lower().startswith(b"proxy-")
    ]
