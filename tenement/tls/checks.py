"""Which TLS settings ``ten serve`` runs with, checked as tenement 0.2.2 checks them.

``--tls`` (with ``--email`` and ``--staging``) and ``[settings.tls] enabled`` both turn
built-in TLS on. The checks run in the reference's order, with its messages (a test
compares them with the 0.2.2 binary's): an email is given, it is not empty, it has the
shape ``local@domain.tld``, the domain is not ``localhost``, and the HTTP and HTTPS ports
differ. Two quirks are not kept (docs/compatibility.md): ``LOCALHOST`` is refused like
``localhost`` (0.2.2 started ordering a certificate for it), and with ``--tls`` a
``[settings.tls] domain`` is used when ``--domain`` is not given (0.2.2 ignored it and
refused ``localhost``).
"""

from __future__ import annotations

import attrs

from tenement.config import TlsSettings
from tenement.errors import TenementError

#: Let's Encrypt's ACME directories (RFC 8555 §7.1.1)
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"


class TlsConfigError(TenementError):
    """The TLS settings cannot work; the message says what to change."""


@attrs.frozen
class TlsFlags:
    """What ``ten serve`` was told about TLS on its command line."""

    tls: bool = False
    email: str | None = None
    staging: bool = False
    #: ``--domain``'s value, and whether it was given (its default is ``localhost``)
    domain: str = "localhost"
    domain_given: bool = False


def resolve_tls(tls: TlsSettings, flags: TlsFlags) -> TlsSettings:
    """The ``[settings.tls]`` the server runs with: the file's values, the command line's
    on top, ``enabled`` set when either turns TLS on, ``domain`` and ``acme_email`` filled.

    Raises:
        TlsConfigError: with the reference's message for the first check that fails.
    """
    if not flags.tls and not tls.enabled:
        return tls
    if flags.tls:
        email = flags.email if flags.email is not None else tls.acme_email
        if email is None:
            raise TlsConfigError(
                "TLS enabled but no email provided.\n"
                "Use --email <your@email.com> for Let's Encrypt registration."
            )
        domain_hint = "Provide a real domain with --domain <your-domain.com>"
        domain = flags.domain if flags.domain_given or tls.domain is None else tls.domain
    else:
        if tls.acme_email is None:
            raise TlsConfigError(
                "TLS enabled in config but acme_email not set.\n"
                "Add acme_email to [settings.tls] in tenement.toml"
            )
        email = tls.acme_email
        domain_hint = "Set domain in [settings.tls] in tenement.toml"
        domain = tls.domain or flags.domain
    check_email(email)
    if domain.lower().rstrip(".") == "localhost":
        raise TlsConfigError(f"TLS cannot be used with localhost.\n{domain_hint}")
    if tls.http_port == tls.https_port:
        raise TlsConfigError(
            f"HTTP port ({tls.http_port}) and HTTPS port ({tls.https_port}) cannot be the "
            "same.\nThe HTTP port is used for redirects to HTTPS."
        )
    return attrs.evolve(
        tls,
        enabled=True,
        acme_email=email,
        domain=domain.lower().rstrip("."),
        staging=tls.staging or flags.staging,
    )


def check_email(email: str) -> None:
    """The reference's shape check: not empty, one ``@``, a dot in the domain part.

    Raises:
        TlsConfigError: the reference's message for the failed check.
    """
    if not email:
        raise TlsConfigError(
            "ACME email cannot be empty.\nProvide a valid email for Let's Encrypt registration."
        )
    if "@" not in email:
        raise TlsConfigError(
            f"Invalid email format: '{email}'\n"
            "Email must contain '@' for Let's Encrypt registration."
        )
    parts = email.split("@")
    if len(parts) != 2 or "." not in parts[1]:
        raise TlsConfigError(
            f"Invalid email format: '{email}'\n"
            "Email must have a valid domain (e.g., user@example.com)."
        )


def directory_url(tls: TlsSettings) -> str:
    """The ACME directory to order from: ``directory``, else Let's Encrypt's (staging
    with ``staging``)."""
    if tls.directory is not None:
        return tls.directory
    return LETS_ENCRYPT_STAGING if tls.staging else LETS_ENCRYPT
