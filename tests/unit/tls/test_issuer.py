"""tenement.tls.issuer's pure parts: when a rate limit lets go; the tls-alpn-01 certificate."""

from __future__ import annotations

import datetime
import hashlib

from cryptography import x509

from tenement.tls.issuer import alpn_certificate, retry_after


def test_the_cas_retry_after_is_read_from_the_problem() -> None:
    detail = (
        "too many certificates (5) already issued for this exact set of domains in the "
        "last 168h0m0s, retry after 2026-12-08 10:20:30 UTC: see "
        "https://letsencrypt.org/docs/rate-limits/"
    )
    expected = datetime.datetime(2026, 12, 8, 10, 20, 30, tzinfo=datetime.UTC).timestamp()
    assert retry_after(detail) == expected
    assert retry_after("too many new orders recently") is None


def test_the_alpn_certificate_carries_the_key_authorizations_digest() -> None:
    """RFC 8737 §3: SAN the host, a critical acmeIdentifier with SHA-256 of the key
    authorization as an OCTET STRING."""
    _, pem = alpn_certificate("alice.notes.example.com", "token.thumbprint")
    certificate = x509.load_pem_x509_certificate(pem)
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == ["alice.notes.example.com"]
    identifier = certificate.extensions.get_extension_for_oid(
        x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")
    )
    assert identifier.critical
    digest = hashlib.sha256(b"token.thumbprint").digest()
    assert identifier.value.value == b"\x04\x20" + digest
