"""Ordering one certificate from an ACME CA (RFC 8555), with the ``acme`` package.

``acme`` is the client library certbot is built on (the EFF's and Let's Encrypt's own,
released with certbot): it speaks RFC 8555 (JWS, nonces and their retries, orders,
polling, finalisation) and is kept up to date with the CA. It is blocking (``requests``),
so every call here runs in a worker thread (``trio.to_thread``), never on the event
loop. What it no longer ships is ``tls-alpn-01`` (RFC 8737): answering that challenge is
only the key authorization's digest in a certificate, made here (:func:`alpn_certificate`).

A challenge is published before it is answered and withdrawn afterwards through the
:class:`~tenement.tls.challenges.Challenges` every serving process reads: HTTP-01 tokens
on the HTTP port, TLS-ALPN-01 certificates on the HTTPS port.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import logging
import re
from pathlib import Path
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tenement._version import __version__
from tenement.errors import TenementError
from tenement.tls.certs import write_private
from tenement.tls.challenges import Challenges

log = logging.getLogger(__name__)

HTTP_01 = "http-01"
TLS_ALPN_01 = "tls-alpn-01"
CHALLENGES = (TLS_ALPN_01, HTTP_01)
#: the most one order may take, from new-order to the certificate
ORDER_SECONDS = 90
_ACME_IDENTIFIER = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")


class IssueError(TenementError):
    """An order failed; the message says what failed and what to check.

    Attributes:
        rate_limited: the CA answered ``rateLimited``.
        retry_at: when the CA said to try again (epoch seconds), if it said.
    """

    def __init__(
        self,
        host: str,
        message: str,
        *,
        rate_limited: bool = False,
        retry_at: float | None = None,
    ) -> None:
        super().__init__(message)
        self.host = host
        self.rate_limited = rate_limited
        self.retry_at = retry_at


#: how Let's Encrypt (Boulder) says when a rate limit lets go, in a problem's detail
_RETRY_AFTER = re.compile(r"retry after (\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})")


def retry_after(detail: str) -> float | None:
    """The time (epoch seconds, UTC) a rate-limit problem's ``detail`` names, if any."""
    found = _RETRY_AFTER.search(detail)
    if found is None:
        return None
    when = datetime.datetime.fromisoformat(f"{found[1]}T{found[2]}+00:00")
    return when.timestamp()


@attrs.frozen
class Issued:
    key_pem: bytes
    chain_pem: bytes


def alpn_certificate(host: str, key_authorization: str) -> tuple[bytes, bytes]:
    """The self-signed ``tls-alpn-01`` certificate for ``host`` (RFC 8737 §3): its
    critical acmeIdentifier extension holds SHA-256 of the key authorization. Returns
    (key PEM, certificate PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    digest = hashlib.sha256(key_authorization.encode("ascii")).digest()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        # DER of an OCTET STRING holding the 32-byte digest
        .add_extension(
            x509.UnrecognizedExtension(_ACME_IDENTIFIER, b"\x04\x20" + digest), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    return _key_pem(key), certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class Issuer:
    """One ACME account at one directory; :meth:`issue` orders a certificate.

    Blocking: call from a worker thread. Not for concurrent use (the caller runs one
    order at a time).
    """

    def __init__(
        self, directory: str, email: str, account_dir: Path, challenges: Challenges
    ) -> None:
        self.directory = directory
        self.email = email
        self.account_dir = account_dir
        self.challenges = challenges
        self._client: Any = None

    def _connect(self) -> Any:
        """The ACME client, with the account registered (or found again by its key)."""
        if self._client is not None:
            return self._client
        from acme import client, errors, messages
        from josepy.jwa import ES256
        from josepy.jwk import JWKEC

        key = self._account_key()
        network = client.ClientNetwork(
            JWKEC(key=key), alg=ES256, user_agent=f"tenement/{__version__}"
        )
        directory = client.ClientV2.get_directory(self.directory, network)
        acme = client.ClientV2(directory, network)
        registration = messages.NewRegistration.from_data(
            email=self.email, terms_of_service_agreed=True
        )
        try:
            acme.new_account(registration)
        except errors.ConflictError as exists:
            # the key has an account already (a restart): use it
            network.account = messages.RegistrationResource(
                body=messages.Registration(), uri=exists.location
            )
        self._client = acme
        return acme

    def _account_key(self) -> ec.EllipticCurvePrivateKey:
        path = self.account_dir / "account.key"
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except FileNotFoundError:
            key = ec.generate_private_key(ec.SECP256R1())
            # another serving process may be making the account at the same moment: the
            # first key written is everyone's
            if write_private(path, _key_pem(key), replace=False):
                return key
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TenementError(f"{path} is not an EC key; remove it to make a new account")
        return key

    def issue(self, host: str, challenge: str) -> Issued:
        """Order a certificate for ``host``, answering ``challenge``.

        Raises:
            IssueError: the order failed (the message names the step and what to check).
        """
        from acme import crypto_util

        try:
            acme = self._connect()
            key = ec.generate_private_key(ec.SECP256R1())
            key_pem = _key_pem(key)
            csr = crypto_util.make_csr(key_pem, [host])
            order = acme.new_order(csr)
            published: list[tuple[str, str]] = []
            try:
                for authorization in order.authorizations:
                    if authorization.body.status.name == "valid":
                        continue
                    self._answer(acme, host, authorization, challenge, published)
                deadline = datetime.datetime.now() + datetime.timedelta(seconds=ORDER_SECONDS)
                order = acme.poll_and_finalize(order, deadline)
            finally:
                for kind, name in published:
                    if kind == HTTP_01:
                        self.challenges.withdraw_http(name)
                    else:
                        self.challenges.withdraw_alpn(name)
        except IssueError:
            raise
        except Exception as exc:
            raise _issue_error(host, challenge, self.directory, exc) from exc
        return Issued(key_pem, order.fullchain_pem.encode())

    def _answer(
        self,
        acme: Any,
        host: str,
        authorization: Any,
        challenge: str,
        published: list[tuple[str, str]],
    ) -> None:
        """Publish the answer (added to ``published``, withdrawn by the caller), then
        tell the CA to validate it."""
        from josepy.b64 import b64encode

        for body in authorization.body.challenges:
            if body.chall.to_partial_json().get("type") == challenge:
                break
        else:
            offered = [b.chall.to_partial_json().get("type") for b in authorization.body.challenges]
            raise IssueError(
                host,
                f"The ACME server offers no {challenge} challenge for {host} "
                f"(it offers {', '.join(map(str, offered))}); set [settings.tls] challenge "
                "to one it offers",
            )
        token = body.chall.to_partial_json()["token"]
        thumbprint = b64encode(acme.net.key.thumbprint(hash_function=hashes.SHA256))
        key_authorization = f"{token}.{thumbprint.decode()}"
        if challenge == HTTP_01:
            published.append((HTTP_01, token))
            self.challenges.publish_http(token, key_authorization)
        else:
            published.append((TLS_ALPN_01, host))
            self.challenges.publish_alpn(host, *alpn_certificate(host, key_authorization))
        from acme import errors

        try:
            acme.answer_challenge(body, _ready(key_authorization))
        except errors.ClientError as exc:
            # The answer was posted and taken; acme checks the reply's "up" link after
            # that, which some CAs (pebble 2.4) leave out. The authorization's polling
            # says whether the challenge passed.
            if "up" not in str(exc):
                raise


@functools.cache
def _ready_class() -> type:
    from acme import challenges

    class Ready(challenges.KeyAuthorizationChallengeResponse):
        """The empty JSON object that tells the CA a challenge is ready (RFC 8555
        §7.5.1): the same for every challenge type, so one class answers them all. It
        holds the key authorization (left out of the JSON) because acme sends an object
        without fields as an empty body, which a CA reads as a POST-as-GET."""

        typ = "ready"

    return Ready


def _ready(key_authorization: str) -> Any:
    return _ready_class()(key_authorization=key_authorization)


def _issue_error(host: str, challenge: str, directory: str, exc: Exception) -> IssueError:
    """What failed, in words, with what to check."""
    import requests
    from acme import errors, messages

    if challenge == HTTP_01:
        reach = f"the HTTP port of this server is reachable from the internet for {host}"
    else:
        reach = f"the HTTPS port of this server is reachable from the internet for {host}"
    checks = f"Check that DNS for {host} points to this server and that {reach}."
    if isinstance(exc, errors.ValidationError):
        problems = []
        for failed in exc.failed_authzrs:
            for body in failed.body.challenges:
                if body.error is not None:
                    problems.append(str(body.error.detail or body.error.typ))
        detail = "; ".join(problems) or "no detail given"
        return IssueError(
            host, f"The CA could not validate {host} ({challenge}): {detail}. {checks}"
        )
    if isinstance(exc, messages.Error):
        limited = exc.code == "rateLimited"
        text = f"The ACME server refused the order for {host}: {exc.detail or exc.typ}."
        if limited:
            text += " It is rate limiting this account: tenement waits before trying again."
        return IssueError(
            host,
            f"{text} {checks}",
            rate_limited=limited,
            retry_at=retry_after(exc.detail or "") if limited else None,
        )
    if isinstance(exc, errors.TimeoutError):
        return IssueError(
            host, f"The order for {host} was not valid after {ORDER_SECONDS}s. {checks}"
        )
    if isinstance(exc, requests.RequestException):
        return IssueError(
            host,
            f"Cannot reach the ACME directory {directory}: {exc}. Check the server's network "
            "access and [settings.tls] directory.",
        )
    return IssueError(host, f"Ordering a certificate for {host} failed: {exc!r}. {checks}")
