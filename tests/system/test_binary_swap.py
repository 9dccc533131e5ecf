"""The seed's rollback in its binary form: `ten install`'s unit, and `mv ten.bak ten`.

A container of its own (the session's has the package installed): two venvs, this
tree's release and a newer one (tests/newer_release.py, built as a wheel), with
``/usr/local/bin/ten`` the newer and ``/usr/local/bin/ten.bak`` the older, as a user
who upgraded by hand keeps them. ``ten install`` writes the units that run
``/usr/local/bin/ten``. The rollback is the upgrade guide's three commands. Then, on
the same running install, `ten install --tls` turns built-in HTTPS on, and `ten install`
without it off.
"""

from __future__ import annotations

import re
import shutil
import socket
import sys
from collections.abc import Iterator

import pytest

from tenement._version import __version__
from tenement.store.window import release
from tests.newer_release import EXTRA_COLUMN, EXTRA_DEFAULT, EXTRA_REVISION, newer_source_tree
from tests.pebble import MISSING, client_context, running_pebble
from tests.system import deployment, nspawn
from tests.system.deployment import CONFIG, DATA_DIR, Tenement
from tests.system.load import Load
from tests.system.tls import DOMAIN, served_serial, trust_acme_ca, two_free_ports

pytestmark = [pytest.mark.system, pytest.mark.timeout(900)]

HOSTS = {"alice.web.localhost": "alice", "bob.web.localhost": "bob"}
THIS_RELEASE = ".".join(str(part) for part in release(__version__))
NEWER_VERSION = "{}.{}.{}".format(*release(__version__)[:2], release(__version__)[2] + 1)
TEN = "/usr/local/bin/ten"
TLS_DROPIN = "/etc/systemd/system/tenement.socket.d/20-tls.conf"


def _say(message: str) -> None:
    print(f"[system] {message}", file=sys.stderr, flush=True)


def _venv(container: nspawn.Container, where: str, version: str) -> None:
    container.run(
        f"python3 -m venv {where} && {where}/bin/pip install -q --no-index"
        f" --find-links /opt/tenement-wheels tenement-py=={version}",
        timeout=300,
    )


@pytest.fixture(scope="module")
def swapped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenement]:
    """The newer release running from /usr/local/bin/ten, installed by `ten install`."""
    try:
        nspawn.check_host()
        root = nspawn.ensure_root(log=_say)
        wheels = tmp_path_factory.mktemp("swap-wheels")
        deployment.build_wheelhouse(wheels)
        newer = newer_source_tree(
            tmp_path_factory.mktemp("swap-newer"),
            NEWER_VERSION,
            oldest_release=THIS_RELEASE,
            project=True,
        )
        deployment.build_wheelhouse(wheels, tree=newer, deps=False)
    except nspawn.Unavailable as why:
        pytest.skip(f"cannot run the system tests here: {why}")
    with nspawn.booted(root, log=_say) as container:
        installed = Tenement(container, deployment.free_port(), "binary")
        installed.prepare()
        shutil.copytree(wheels, container.path("/opt/tenement-wheels"))
        _venv(container, "/opt/ten-older", __version__)
        _venv(container, "/opt/ten-newer", NEWER_VERSION)
        container.run(
            f"ln -s /opt/ten-newer/bin/ten {TEN} && ln -s /opt/ten-older/bin/ten {TEN}.bak"
        )
        container.run([TEN, "install", "--port", str(installed.port)], timeout=150)
        installed.wait_active()
        container.run(
            f"runuser -u tenement -- {TEN} --config {CONFIG} --data-dir {DATA_DIR} token-gen"
        )
        installed.wait_instances({"web:alice", "web:bob"})
        yield installed


def _command_line(tenement: Tenement) -> str:
    """The server's command line: its venv's python (the shebang), then the script."""
    return tenement.container.out(f"tr '\\0' ' ' < /proc/{tenement.main_pid()}/cmdline")


def test_put_the_old_binary_back_and_start_it(swapped: Tenement) -> None:
    """stop, `mv ten.bak ten`, start: the older release serves on the newer schema with
    no failed request and no row lost; the newer binary again adopts its tenant."""
    c = swapped.container
    assert c.out([TEN, "--version"]) == f"tenement {NEWER_VERSION}"
    token = c.out(f"cat {DATA_DIR}/api_token")
    counts = swapped.row_counts()

    c.run("systemctl stop tenement", timeout=120)
    c.run(f"mv {TEN}.bak {TEN}")
    with Load(swapped.port, HOSTS) as load:
        c.run("systemctl start tenement", timeout=150)
        swapped.wait_active()
        load.wait_for_requests(50)
    problems = swapped.journal_problems()
    print(f"[system] binary rollback: {load.result.summary()}", file=sys.stderr)
    assert load.result.failed == 0, f"{load.result.summary()}\n{problems}"
    assert "/opt/ten-older/" in _command_line(swapped)
    swapped.wait_instances({"web:alice", "web:bob"})
    assert c.out(f"cat {DATA_DIR}/api_token") == token
    current = c.out(
        f"runuser -u tenement -- {TEN} --config {CONFIG} --data-dir {DATA_DIR} db current"
    )
    assert f"revision {EXTRA_REVISION}, ahead of" in current
    swapped.ten("spawn", "web:dave")
    after = swapped.row_counts()
    assert all(after[t] >= counts[t] for t in deployment.KEPT_TABLES), (counts, after)
    dave = swapped.tenant_pids()["web:dave"]

    # the newer binary again: a restart, under load
    with Load(swapped.port, HOSTS) as load:
        load.wait_for_requests(50)
        c.run(f"ln -sfn /opt/ten-newer/bin/ten {TEN} && systemctl restart tenement", timeout=150)
        swapped.wait_active()
        load.wait_for_requests(50)
    assert load.result.failed == 0, load.result.summary()
    assert "/opt/ten-newer/" in _command_line(swapped)
    assert swapped.tenant_pids()["web:dave"] == dave
    column = swapped.sql(f"SELECT {EXTRA_COLUMN} FROM instances WHERE instance_id = 'web:dave'")
    assert column == EXTRA_DEFAULT


@pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
def test_ten_install_tls_on_a_running_install(
    swapped: Tenement, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`ten install --tls --email ...` again on the running install, as the docs say to
    turn built-in HTTPS on: the socket holds the HTTPS port, the server runs with --tls
    and gets its certificate, the tenants are kept. (`enable --now` left both running as
    they were, and `ten install` reported success.)

    The drop-in `ten install --tls` writes lists the ports without an address: while this
    test runs they are open on the host's every address (free high ports, no traffic)."""
    c = swapped.container
    https_port, http_port = two_free_ports()
    before = swapped.tenant_pids()
    server = swapped.main_pid()
    with running_pebble(
        tmp_path_factory.mktemp("pebble"), http_port=http_port, tls_port=https_port
    ) as pebble:
        trust_acme_ca(c, pebble.ca_path.read_text())
        c.write(
            CONFIG,
            c.path(CONFIG).read_text()
            + f"\n[settings.tls]\nhttps_port = {https_port}\nhttp_port = {http_port}\n"
            + f'directory = "{pebble.directory}"\n',
        )
        c.run(
            [TEN, "install", "--tls", "--email", f"ops@{DOMAIN}", "-d", DOMAIN],
            timeout=150,
        )
        swapped.wait_active()
        client = client_context(pebble.root_pem_now())
        served_serial(c, https_port, DOMAIN, client, timeout=60)
        assert pebble.orders() == 1
    assert swapped.main_pid() != server, "the server was not restarted with --tls"
    assert "--tls --email" in _command_line(swapped)
    assert swapped.tenant_pids() == before


def test_ten_install_without_tls_turns_it_off(swapped: Tenement) -> None:
    """Then `ten install` without --tls ([settings.tls] not enabled): the socket no longer
    holds the HTTPS port and the server runs without --tls; tenants kept. (The drop-in
    stayed: the socket went on holding the port and the server answered plain HTTP on
    it.)"""
    c = swapped.container
    if not c.path(TLS_DROPIN).exists():
        pytest.skip("the `ten install --tls` test did not run")
    match = re.search(r"^https_port = (\d+)$", c.path(CONFIG).read_text(), re.M)
    assert match is not None
    https_port = int(match.group(1))
    before = swapped.tenant_pids()
    c.run([TEN, "install", "-d", DOMAIN], timeout=150)
    swapped.wait_active()
    assert not c.path(TLS_DROPIN).exists()
    assert "--tls" not in _command_line(swapped)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", https_port), timeout=10).close()
    assert swapped.tenant_pids() == before
