"""Built-in HTTPS in the containers: the [settings.tls] the tests add, and what a client
sees (the serial number of the certificate served for a name, verified)."""

from __future__ import annotations

import socket
import ssl
import time

from tests.system import deployment
from tests.system.nspawn import Container

DOMAIN = "example.test"
#: the ACME CA's HTTPS certificate (pebble's), for the service's REQUESTS_CA_BUNDLE
CA_BUNDLE = "/etc/tenement/acme-ca.pem"
#: how a user trusts a private ACME CA's HTTPS: a service drop-in
CA_DROPIN = "/etc/systemd/system/tenement.service.d/20-acme-ca.conf"


def two_free_ports() -> tuple[int, int]:
    """(https_port, http_port): free loopback ports, different."""
    https_port = deployment.free_port()
    http_port = deployment.free_port()
    while http_port == https_port:
        http_port = deployment.free_port()
    return https_port, http_port


def tls_settings(https_port: int, http_port: int, directory: str) -> str:
    """The [settings.tls] table (TOML), to append to a config."""
    return f"""
[settings.tls]
enabled = true
acme_email = "ops@{DOMAIN}"
domain = "{DOMAIN}"
https_port = {https_port}
http_port = {http_port}
directory = "{directory}"
"""


def trust_acme_ca(container: Container, ca_pem: str) -> None:
    """The ACME server's HTTPS trusted by the service (and nothing else in the container)."""
    container.write(CA_BUNDLE, ca_pem)
    container.write(CA_DROPIN, f"[Service]\nEnvironment=REQUESTS_CA_BUNDLE={CA_BUNDLE}\n")


def served_serial(
    container: Container, port: int, host: str, client: ssl.SSLContext, *, timeout: float = 30.0
) -> int:
    """The serial number of the certificate 127.0.0.1:``port`` serves for SNI ``host``
    (verified by ``client``), once there is one: an on-demand order makes the handshake
    wait, and the one at start may not be done yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=70) as raw,
                client.wrap_socket(raw, server_hostname=host) as conn,
            ):
                peer = conn.getpeercert()
                assert peer is not None
                return int(peer["serialNumber"], 16)
        except (ssl.SSLError, OSError) as error:
            if time.monotonic() > deadline:
                journal = container.out(
                    "journalctl -u tenement -o cat --no-pager | tail -n 30", check=False
                )
                raise AssertionError(f"no certificate for {host}: {error!r}\n{journal}") from None
            time.sleep(0.2)
