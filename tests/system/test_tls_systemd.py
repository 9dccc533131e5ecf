"""Built-in HTTPS under a real systemd (issue #20): certificates from a real ACME server,
and `systemctl restart tenement` and the two-binary switchover under an HTTPS load fail
no request, order nothing again and restart no tenant.

The session's container, set up as docs/operations.md ("Built-in TLS") tells a packaged
user: the shipped drop-in (``/usr/share/doc/tenement-py/examples/tls.conf``; a wheel
install takes the same file from ``tenement/_units/examples``) as
``tenement.socket.d/20-tls.conf`` with its ports set to ``[settings.tls]``'s, the
ACME CA's HTTPS trusted through ``REQUESTS_CA_BUNDLE`` in a service drop-in, then
``systemctl daemon-reload`` and ``systemctl restart tenement.socket tenement``.

The ACME server is Debian's ``pebble``, started by the test on the host's loopback (the
container shares the host's network namespace, so each reaches the other at 127.0.0.1);
its test DNS answers 127.0.0.1 for every name, so it validates ``tls-alpn-01`` on the
container's HTTPS port. The ports are free loopback ports, not 443 and 80: the drop-in
lists them as ``127.0.0.1:PORT`` so nothing opens on the host's other addresses. Only
the test's client trusts pebble's issuing root.

Runs after test_lifecycle.py and test_packaged_postgresql.py, and leaves tenement as it
found the configuration: plain HTTP, web:alice and web:bob.
"""

from __future__ import annotations

import socket
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import attrs
import pytest

from tests.pebble import MISSING, Pebble, client_context, running_pebble
from tests.system import deployment
from tests.system.deployment import CONFIG_TEXT, DATA_DIR, VENV, Tenement
from tests.system.load import Load
from tests.system.tls import (
    CA_BUNDLE,
    CA_DROPIN,
    DOMAIN,
    served_serial,
    tls_settings,
    trust_acme_ca,
    two_free_ports,
)

pytestmark = [
    pytest.mark.system,
    pytest.mark.timeout(900),
    pytest.mark.skipif(MISSING is not None, reason=MISSING or ""),
]

HOSTS = {f"alice.web.{DOMAIN}": "alice", f"bob.web.{DOMAIN}": "bob"}
RESTARTS = 5
#: where no ACME server answers (a test that must order nothing)
UNUSED_DIRECTORY = "https://127.0.0.1:9/dir"
SOCKET_DROPIN = "/etc/systemd/system/tenement.socket.d/20-tls.conf"
PACKAGED_EXAMPLE = "/usr/share/doc/tenement-py/examples/tls.conf"
WHEEL_EXAMPLE = f"{VENV}/lib/python3.11/site-packages/tenement/_units/examples/tls.conf"


@attrs.frozen
class Tls:
    tenement: Tenement
    pebble: Pebble
    https_port: int
    http_port: int
    client: ssl.SSLContext


def _say(message: str) -> None:
    print(f"[system] {message}", file=sys.stderr, flush=True)


def _restart_socket_and_service(tenement: Tenement) -> None:
    c = tenement.container
    c.run("systemctl daemon-reload")
    c.run("systemctl reset-failed tenement", check=False)
    c.run("systemctl restart tenement.socket tenement", timeout=150)
    tenement.wait_active()
    tenement.wait_instances({"web:alice", "web:bob"})


def test_tls_without_the_socket_dropin_says_what_to_do(tenement: Tenement) -> None:
    """[settings.tls] on, then only `systemctl restart tenement` (no drop-in): no socket
    holds the HTTPS port, and the journal says so with the fix, at priority err (the
    server used to serve no HTTPS without a word); plain HTTP and the tenants go on."""
    c = tenement.container
    c.run("systemctl start tenement", timeout=150)  # test_lifecycle.py may leave it stopped
    tenement.wait_active()
    tenement.wait_instances({"web:alice", "web:bob"})
    before = tenement.tenant_pids()
    https_port, http_port = two_free_ports()
    tenement.write_config(CONFIG_TEXT + tls_settings(https_port, http_port, UNUSED_DIRECTORY))
    try:
        c.run("systemctl restart tenement", timeout=120)
        pid = tenement.wait_active()
        said = c.wait_for(
            f"journalctl _PID={pid} -p err -o cat --no-pager | grep 'TLS is on'",
            what="the error about the missing HTTPS socket",
        )
        assert f"no listening socket is on https_port {https_port}" in said
        assert "systemctl restart tenement.socket tenement" in said
        assert tenement.tenant_pids() == before
    finally:
        tenement.write_config(CONFIG_TEXT)
        c.run("systemctl restart tenement", timeout=120)
        tenement.wait_active()


@pytest.fixture(scope="module")
def tls(tenement: Tenement, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tls]:
    """tenement serving HTTPS from the packaged drop-in, ordering from a fresh pebble."""
    c = tenement.container
    https_port, http_port = two_free_ports()
    with running_pebble(
        tmp_path_factory.mktemp("pebble"), http_port=http_port, tls_port=https_port
    ) as pebble:
        example = PACKAGED_EXAMPLE if tenement.how == "deb" else WHEEL_EXAMPLE
        shipped = c.path(example).read_text()
        for default, port in (("443", https_port), ("80", http_port)):
            assert f"ListenStream={default}\n" in shipped, shipped
            shipped = shipped.replace(
                f"ListenStream={default}\n", f"ListenStream=127.0.0.1:{port}\n"
            )
        c.write(SOCKET_DROPIN, shipped)
        trust_acme_ca(c, pebble.ca_path.read_text())
        tenement.write_config(CONFIG_TEXT + tls_settings(https_port, http_port, pebble.directory))
        try:
            _restart_socket_and_service(tenement)
            _say(f"HTTPS on 127.0.0.1:{https_port}, redirect on {http_port}, {pebble.directory}")
            yield Tls(
                tenement, pebble, https_port, http_port, client_context(pebble.root_pem_now())
            )
        finally:
            c.run(f"rm -f {SOCKET_DROPIN} {CA_DROPIN} {CA_BUNDLE}")
            tenement.write_config(CONFIG_TEXT)
            _restart_socket_and_service(tenement)


def _certificate(tls: Tls, host: str) -> int:
    return served_serial(tls.tenement.container, tls.https_port, host, tls.client)


def _certificates(tls: Tls) -> dict[str, int]:
    return {host: _certificate(tls, host) for host in (DOMAIN, *HOSTS)}


def test_certificates_for_the_domain_and_tenants_on_demand(tls: Tls) -> None:
    """The bare domain's certificate is ordered at start; each tenant host's the first
    time a client asks for it by SNI; the HTTP port redirects."""
    serials = _certificates(tls)
    assert len(set(serials.values())) == 3, serials
    assert tls.pebble.orders() == 3
    for host, tenant in HOSTS.items():
        with (
            socket.create_connection(("127.0.0.1", tls.https_port), timeout=30) as raw,
            tls.client.wrap_socket(raw, server_hostname=host) as conn,
        ):
            conn.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert answer.partition(b"\r\n\r\n")[2].split()[0].decode() == tenant
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
    request = urllib.request.Request(
        f"http://127.0.0.1:{tls.http_port}/path?q=1", headers={"Host": DOMAIN}
    )
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(request, timeout=30)
    assert redirect.value.code == 308
    assert redirect.value.headers["Location"] == f"https://{DOMAIN}:{tls.https_port}/path?q=1"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def test_restart_over_https_loses_nothing(tls: Tls) -> None:
    """`systemctl restart tenement` under new handshakes and keep-alive requests: 0
    failed, the same certificates served from the cache, no new order, tenants kept."""
    tenement = tls.tenement
    before = tenement.tenant_pids()
    serials = _certificates(tls)
    orders = tls.pebble.orders()
    servers = {tenement.main_pid()}
    with Load(tls.https_port, HOSTS, tls=tls.client) as load:
        load.wait_for_requests(50)
        for _ in range(RESTARTS):
            tenement.container.run("systemctl restart tenement", timeout=120)
            servers.add(tenement.wait_active())
            load.wait_for_requests(20)
    _say(f"restart over HTTPS: {load.result.summary()} in {load.elapsed:.1f} s")
    assert len(servers) == RESTARTS + 1, f"the server pid did not change each time: {servers}"
    assert load.result.failed == 0, f"{load.result.summary()}\n{tenement.journal_problems()}"
    assert _certificates(tls) == serials
    assert tls.pebble.orders() == orders, "a restart ordered a certificate again"
    assert tenement.tenant_pids() == before


def test_two_binary_switchover_over_https(tls: Tls) -> None:
    """The switchover of test_lifecycle.py over HTTPS: a second `ten serve` (its own
    HTTPS port, same data directory) serves the certificates the first one ordered, from
    the shared cache, and takes the tenants over when the first is TERMed: no HTTPS
    request fails, nothing is ordered, no tenant restarts."""
    tenement = tls.tenement
    c = tenement.container
    before = tenement.tenant_pids()
    orders = tls.pebble.orders()
    plain, https_port, http_port = deployment.free_port(), *two_free_ports()
    second = "/etc/tenement/second.toml"
    c.write(second, CONFIG_TEXT + tls_settings(https_port, http_port, tls.pebble.directory))
    binds = " ".join(f"--bind 127.0.0.1:{port}" for port in (plain, https_port, http_port))
    c.run(
        "systemd-run --unit=tenement-second -p User=tenement -p Group=tenement"
        f" -p WorkingDirectory={DATA_DIR} -p Environment=REQUESTS_CA_BUNDLE={CA_BUNDLE}"
        f" /usr/bin/ten serve --config {second} --data-dir {DATA_DIR} {binds}"
    )
    try:
        with Load(tls.https_port, HOSTS, tls=tls.client) as load:
            load.wait_for_requests(20)
            state = c.wait_for(
                f"curl -sf http://127.0.0.1:{plain}/health && exit 0;"
                " systemctl is-active -q tenement-second || { journalctl -u tenement-second"
                " -o cat --no-pager | tail -3; exit 0; }; exit 2",
                timeout=30,
                what="the second server ready",
            )
            assert "ok" in state, f"the second server did not start: {state}"
        _say(f"switchover over HTTPS, old port: {load.result.summary()}")
        assert load.result.failed == 0, load.result.summary()
        second_serials = {
            host: served_serial(c, https_port, host, tls.client) for host in (DOMAIN, *HOSTS)
        }
        assert second_serials == _certificates(tls), "the second server ordered its own"
        old = tenement.main_pid()
        with Load(https_port, HOSTS, tls=tls.client) as load:
            load.wait_for_requests(20)
            c.run("systemctl kill --kill-who=main -s SIGTERM tenement")
            c.wait_for(f"! test -e /proc/{old}", timeout=60, what="the old server gone")
            load.wait_for_requests(50)
        _say(f"switchover over HTTPS, new port: {load.result.summary()}")
        assert load.result.failed == 0, load.result.summary()
        for iid, pid in before.items():
            assert c.pid_alive(pid), f"{iid} (pid {pid}) was stopped by the switchover"
        assert tls.pebble.orders() == orders, "the switchover ordered a certificate"
    finally:
        # the tenants back to tenement.service: the second server leaves them running
        c.run("systemctl kill -s SIGUSR2 tenement-second", check=False)
        c.wait_for("! systemctl is-active -q tenement-second", timeout=30)
        c.run("systemctl reset-failed tenement-second", check=False)
        c.run(f"rm -f {second}")
        c.run("systemctl start tenement", timeout=150)
        tenement.wait_instances({"web:alice", "web:bob"})
    assert tenement.tenant_pids() == before


def test_an_unwritable_cache_dir_fails_clearly_and_stops_no_tenant(tls: Tls) -> None:
    """`cache_dir` where the unit cannot write (/etc: ProtectSystem=strict), then `systemctl
    restart tenement`: the server refuses to start with a message saying what to do, and
    leaves the tenants running for the next server. (It crashed with a traceback after
    adopting them, stopping every tenant, and systemd restarted it into the same crash.)"""
    tenement = tls.tenement
    c = tenement.container
    before = tenement.tenant_pids()
    config = CONFIG_TEXT + tls_settings(tls.https_port, tls.http_port, tls.pebble.directory)
    tenement.write_config(config + 'cache_dir = "/etc/tenement/acme"\n')
    try:
        c.run("systemctl restart tenement", check=False, timeout=120)
        said = c.wait_for(
            "journalctl -u tenement -o cat --no-pager | grep 'cannot use \\[settings.tls\\]'",
            what="the refusal of the cache_dir",
        )
        assert "cache_dir /etc/tenement/acme: Read-only file system" in said, said
        assert "ReadWritePaths=/etc/tenement/acme" in said
        for iid, pid in before.items():
            assert c.pid_alive(pid), f"{iid} (pid {pid}) was stopped by the failed start"
    finally:
        tenement.write_config(config)
        c.run("systemctl reset-failed tenement", check=False)
        c.run("systemctl restart tenement", timeout=150)
        tenement.wait_active()
    assert tenement.tenant_pids() == before
