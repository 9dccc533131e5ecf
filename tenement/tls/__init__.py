"""Built-in TLS: HTTPS from certificates an ACME CA issues (``ten serve --tls``).

Layout:

- ``checks``: the TLS settings ``ten serve`` runs with, checked as 0.2.2 checks them;
- ``clienthello``: SNI and ALPN read from a ClientHello's bytes (pure);
- ``certs``: certificates in ``cache_dir`` and the contexts presenting them;
- ``issuer``: ordering one certificate (the ``acme`` package, in a thread);
- ``challenges``: the answers to the challenges being validated, shared by the processes;
- ``backoff``: the hosts whose last order failed, shared by the processes;
- ``manager``: which certificate a handshake gets, orders on demand, renewal;
- ``handshake``: the handshake of an accepted connection; ``stream``: a trio stream over
  it (for hypercorn);
- ``redirect``: the HTTP port (``308`` to HTTPS, ``http-01`` answers).

Layering: config <- tls <- server. The server wires it to the proxy's routing.

The names below are loaded on first use: the front imports ``handshake`` and ``stream``
at every start, and only a server with TLS on should pay for ``cryptography`` and
``acme`` (``manager``, ``issuer``, ``certs``).
"""

from __future__ import annotations

#: typing itself costs a few ms at start; type checkers treat this name as True
TYPE_CHECKING = False
if TYPE_CHECKING:
    from tenement.tls.checks import TlsConfigError, TlsFlags, directory_url, resolve_tls
    from tenement.tls.manager import TlsManager

__all__ = ["TlsConfigError", "TlsFlags", "TlsManager", "directory_url", "resolve_tls"]


def __getattr__(name: str) -> object:
    if name == "TlsManager":
        from tenement.tls.manager import TlsManager

        return TlsManager
    if name in ("TlsConfigError", "TlsFlags", "directory_url", "resolve_tls"):
        from tenement.tls import checks

        return getattr(checks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
