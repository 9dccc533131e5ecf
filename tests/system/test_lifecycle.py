"""tenement under a real systemd (Debian 12 in systemd-nspawn): restarts, reloads,
package upgrades and rollbacks lose no request and restart no tenant.

One container serves the whole module (see conftest.py); the tests run in file order,
each leaving tenement running with web:alice and web:bob, except the last ones, which
stop or kill things on purpose (kill -9, then stop).

Load comes from the host: one-shot and keep-alive clients against the container's
loopback port, every failure counted (tests/system/load.py).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.newer_release import EXTRA_COLUMN, EXTRA_DEFAULT, EXTRA_REVISION, EXTRA_TABLE
from tests.system import deployment
from tests.system.debs import Debs
from tests.system.deployment import CONFIG_TEXT, DATA_DIR, SERVICE, Tenement
from tests.system.load import Load

pytestmark = [pytest.mark.system, pytest.mark.timeout(900)]

HOSTS = {"alice.web.localhost": "alice", "bob.web.localhost": "bob"}
RESTARTS = 10


def _report(name: str, load: Load, extra: str = "") -> None:
    print(
        f"[system] {name}: {load.result.summary()} in {load.elapsed:.1f} s {extra}",
        file=sys.stderr,
    )


def _get(port: int, host: str, path: str = "/") -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _web_pids(tenement: Tenement) -> dict[str, int]:
    pids = tenement.tenant_pids()
    assert {"web:alice", "web:bob"} <= set(pids), pids
    return pids


def test_journal_has_structured_fields(tenement: Tenement) -> None:
    """`journalctl -u tenement -o json`: a spawn record carries INSTANCE= and friends."""
    lines = tenement.container.out("journalctl -u tenement -o json --no-pager").splitlines()
    records = [json.loads(line) for line in lines]
    spawns = [r for r in records if r.get("INSTANCE") == "web:alice" and r.get("EVENT") == "spawn"]
    assert spawns, "no spawn record with INSTANCE=web:alice in the journal"
    record = spawns[0]
    assert record["SYSLOG_IDENTIFIER"] == "tenement"
    assert record.get("SERVICE") == "web" and record.get("TENANT") == "alice"
    assert "web:alice" in record["MESSAGE"]
    # the field can be filtered on, as docs/operations.md says
    matched = tenement.container.out("journalctl -u tenement INSTANCE=web:bob -o cat --no-pager")
    assert "web:bob" in matched and "web:alice" not in matched


def test_the_server_raises_its_open_files_limit(tenement: Tenement) -> None:
    """systemd gives a service a soft limit of 1,024 open files (~500 tenants' worth);
    the server raises its own, and its tenants inherit it."""
    main = tenement.main_pid()
    limits = tenement.container.out(f"grep 'Max open files' /proc/{main}/limits").split()
    soft, hard = int(limits[3]), int(limits[4])
    assert soft == min(65536, hard) > 1024, limits
    tenant = tenement.tenant_pids()["web:alice"]
    assert tenement.container.out(f"grep 'Max open files' /proc/{tenant}/limits").split() == limits


def test_restart_loses_nothing(tenement: Tenement) -> None:
    """10 x `systemctl restart tenement` under load: 0 failed, tenant pids unchanged."""
    before = _web_pids(tenement)
    servers = {tenement.main_pid()}
    with Load(tenement.port, HOSTS) as load:
        load.wait_for_requests(50)
        took = []
        for _ in range(RESTARTS):
            started = time.monotonic()
            tenement.container.run("systemctl restart tenement", timeout=120)
            took.append(time.monotonic() - started)
            servers.add(tenement.wait_active())
            load.wait_for_requests(20)
    _report("restart", load, f"({RESTARTS} restarts, each {min(took):.1f}-{max(took):.1f} s)")
    assert len(servers) == RESTARTS + 1, f"the server pid did not change each time: {servers}"
    assert load.result.failed == 0, load.result.summary()
    assert _web_pids(tenement) == before
    # the tenants' /tmp survived their first server (PrivateTmp= would delete it)
    for host, tenant in HOSTS.items():
        status, body = _get(tenement.port, host, "/tmpfile")
        assert status == 200, f"{tenant} after {RESTARTS} restarts: {body}"


def _serving_processes(tenement: Tenement) -> set[int]:
    """The unit's `ten serve` processes: the main one and its workers (not the tenants)."""
    out = tenement.container.out("pgrep -f '[t]en serve --config' || true")
    return {int(pid) for pid in out.split()}


def test_restart_with_workers_loses_nothing(tenement: Tenement) -> None:
    """`workers = 2`: restarts under load still lose nothing, and leave no old worker."""
    before = _web_pids(tenement)
    tenement.write_config(CONFIG_TEXT.replace("[settings]\n", "[settings]\nworkers = 2\n", 1))
    try:
        with Load(tenement.port, HOSTS) as load:
            load.wait_for_requests(50)
            for _ in range(3):
                tenement.container.run("systemctl restart tenement", timeout=120)
                tenement.wait_active()
                load.wait_for_requests(20)
                serving = _serving_processes(tenement)
                assert len(serving) == 2, f"not one main process and one worker: {serving}"
        _report("restart with workers", load, "(3 restarts, workers = 2)")
        assert load.result.failed == 0, load.result.summary()
        assert _web_pids(tenement) == before
    finally:
        tenement.write_config(CONFIG_TEXT)
        tenement.container.run("systemctl restart tenement", timeout=120)
        tenement.wait_active()
    assert len(_serving_processes(tenement)) == 1


def test_reload_adds_a_service(tenement: Tenement) -> None:
    """`systemctl reload tenement` after adding a service: 0 failed, it can be spawned."""
    before = _web_pids(tenement)
    server = tenement.main_pid()
    with Load(tenement.port, HOSTS) as load:
        load.wait_for_requests(50)
        tenement.write_config(CONFIG_TEXT + SERVICE.format(name="extra"))
        tenement.container.run("systemctl reload tenement")
        tenement.ten("spawn", "extra:carol")
        status, body = _get(tenement.port, "carol.extra.localhost")
        load.wait_for_requests(50)
    _report("reload", load)
    assert (status, body.split()[0]) == (200, "carol")
    assert load.result.failed == 0, load.result.summary()
    assert tenement.main_pid() == server, "reload restarted the server"
    after = _web_pids(tenement)
    assert {iid: after[iid] for iid in before} == before
    # leave the module's state as it found it: only web's instances
    tenement.ten("stop", "extra:carol")


def test_two_binary_switchover(tenement: Tenement) -> None:
    """A second `ten serve` on the same config and data dir takes over when the first is TERMed.

    The design's switchover: start the new server on another port, move the traffic,
    TERM the old one; it hands its tenants over instead of stopping them.
    """
    c = tenement.container
    second_port = deployment.free_port()
    before = _web_pids(tenement)
    c.run(
        "systemd-run --unit=tenement-second -p User=tenement -p Group=tenement"
        " -p WorkingDirectory=/var/lib/tenement"
        f" /usr/bin/ten serve --config {deployment.CONFIG} --data-dir {DATA_DIR}"
        f" --bind 127.0.0.1:{second_port}"
    )
    try:
        with Load(tenement.port, HOSTS) as load:
            load.wait_for_requests(20)
            # ready (its /health), or gone (its last log lines): either ends the wait
            state = c.wait_for(
                f"curl -sf http://127.0.0.1:{second_port}/health && exit 0;"
                " systemctl is-active -q tenement-second || { journalctl -u tenement-second"
                " -o cat --no-pager | tail -3; exit 0; }; exit 2",
                timeout=30,
                what="the second server ready",
            )
            assert "ok" in state, f"the second server did not start: {state}"
        _report("switchover, old port", load)
        assert load.result.failed == 0, load.result.summary()
        old = tenement.main_pid()
        with Load(second_port, HOSTS) as load:
            load.wait_for_requests(20)
            c.run("systemctl kill --kill-who=main -s SIGTERM tenement")
            c.wait_for(f"! test -e /proc/{old}", timeout=60, what="the old server gone")
            load.wait_for_requests(50)
        _report("switchover, new port", load)
        assert load.result.failed == 0, load.result.summary()
        for iid, pid in before.items():
            assert c.pid_alive(pid), f"{iid} (pid {pid}) was stopped by the switchover"
    finally:
        # give the tenants back to tenement.service: the second server leaves them running
        c.run("systemctl kill -s SIGUSR2 tenement-second", check=False)
        c.wait_for("! systemctl is-active -q tenement-second", timeout=30)
        c.run("systemctl reset-failed tenement-second", check=False)
        c.run("systemctl start tenement")
        tenement.wait_instances({"web:alice", "web:bob"})


def _db_revision(tenement: Tenement) -> str:
    return tenement.ten_as_service_user("db", "current")


def _require_debs(tenement: Tenement, debs: Debs) -> None:
    if debs.old is None or debs.new is None:
        if os.environ.get("CI") and "failed" in (debs.why_not or ""):
            # on a machine that can build packages, a build that breaks is a regression
            pytest.fail(f"no .deb to upgrade with: {debs.why_not}")
        pytest.skip(f"no .deb to upgrade with: {debs.why_not}")
    if tenement.how != "deb":
        pytest.skip("tenement was not installed from the .deb in this session")


def _upgrade_under_load(tenement: Tenement, debs: Debs, name: str) -> Load:
    """Install the newer package while clients talk to the tenants; their results."""
    assert debs.new is not None
    with Load(tenement.port, HOSTS) as load:
        load.wait_for_requests(50)
        deployment.install_deb(tenement.container, debs.new)
        tenement.wait_active()
        load.wait_for_requests(50)
    _report(name, load, f"({debs.old_version} -> {debs.new_version})")
    return load


def test_package_upgrade_loses_nothing(tenement: Tenement, debs: Debs) -> None:
    """`apt-get install ./newer.deb` under load: 0 failed, schema at the new head, a
    backup made, tenant pids unchanged."""
    _require_debs(tenement, debs)
    c = tenement.container
    before = _web_pids(tenement)
    backups_before = c.out(f"ls {DATA_DIR}/backups 2>/dev/null || true").split()
    load = _upgrade_under_load(tenement, debs, "package upgrade")
    assert load.result.failed == 0, load.result.summary()
    version = c.out("dpkg-query -W -f '${Version}' tenement-py")
    assert version == debs.new_version
    assert _web_pids(tenement) == before
    check = c.run(
        [
            *("runuser", "-u", "tenement", "--", "ten", "--config", deployment.CONFIG),
            *("--data-dir", DATA_DIR, "db", "check"),
        ],
        check=False,
    )
    assert check.returncode == 0, f"database not at head after the upgrade: {check.stdout}"
    if debs.new_has_migration:
        assert EXTRA_REVISION in _db_revision(tenement)
        backups = c.out(f"ls {DATA_DIR}/backups").split()
        assert set(backups) - set(backups_before), "no backup was made before migrating"
        marker = c.out(
            f"python3 -c \"import sqlite3; print(sqlite3.connect('{DATA_DIR}/tenement.db')"
            f".execute('select count(*) from {EXTRA_TABLE}').fetchone()[0])\""
        )
        assert marker == "1"


def test_the_seeds_rollback_puts_the_older_package_back(tenement: Tenement, debs: Debs) -> None:
    """The upgrade guide's rollback as written: stop, install the older package, start.

    No `ten db downgrade`: the older release runs on the schema the newer one left (its
    compatibility window), with no failed request and no row lost; the tenants are as
    the stop leaves them in any release (`[instances]` started again, API-spawned ones
    stopped). Then the newer package again, under load: it adopts the older release's
    tenant, whose row has the newer column at its default.
    (tests/integration/server/test_rollback.py keeps the tenants across both swaps.)"""
    _require_debs(tenement, debs)
    if not debs.new_has_migration:
        pytest.skip("the newer package adds no migration: no schema to roll back over")
    c = tenement.container
    if c.out("dpkg-query -W -f '${Version}' tenement-py") != debs.new_version:
        pytest.skip("the upgrade test did not leave the newer package installed")
    token = c.out(f"cat {DATA_DIR}/api_token")
    tenement.ten("spawn", "web:carol")  # a tenant of the newer release's time
    counts = tenement.row_counts()
    c.run("systemctl stop tenement", timeout=120)
    deployment.install_deb(c, debs.old)
    with Load(tenement.port, HOSTS) as load:
        c.run("systemctl start tenement", timeout=150)
        tenement.wait_active()
        load.wait_for_requests(50)
    problems = tenement.journal_problems()
    _report("rollback", load, f"({debs.new_version} -> {debs.old_version}, no downgrade)")
    assert c.out("dpkg-query -W -f '${Version}' tenement-py") == debs.old_version
    assert load.result.failed == 0, f"{load.result.summary()}\n{problems}"
    # a stop stops API-spawned tenants, in every release; [instances] start again
    assert set(tenement.instances()) == {"web:alice", "web:bob"}
    tenement.wait_instances({"web:alice", "web:bob"})
    assert c.out(f"cat {DATA_DIR}/api_token") == token
    assert f"revision {EXTRA_REVISION}, ahead of" in _db_revision(tenement)
    journal = c.out("journalctl -u tenement -o cat --no-pager")
    assert f"database is at revision {EXTRA_REVISION}, ahead of this tenement's" in journal
    tenement.ten("spawn", "web:dave")  # the older release writes rows of its own
    after = tenement.row_counts()
    assert all(after[t] >= counts[t] for t in deployment.KEPT_TABLES), (counts, after)
    dave = tenement.tenant_pids()["web:dave"]

    # and forward again, under load, as any package upgrade (tenants kept)
    load = _upgrade_under_load(tenement, debs, "upgrade after the rollback")
    assert load.result.failed == 0, load.result.summary()
    assert tenement.tenant_pids()["web:dave"] == dave
    column = tenement.sql(f"SELECT {EXTRA_COLUMN} FROM instances WHERE instance_id = 'web:dave'")
    assert column == EXTRA_DEFAULT
    assert tenement.ten_as_service_user("db", "check", check=False).startswith(
        f"revision {EXTRA_REVISION} (head)"
    )


def test_kill_9_restarts_and_adopts(tenement: Tenement) -> None:
    """`kill -9` of the server: systemd restarts it (Restart=on-failure), tenants adopted."""
    before = _web_pids(tenement)
    old = tenement.main_pid()
    with Load(tenement.port, HOSTS) as load:
        load.wait_for_requests(50)
        tenement.container.run(f"kill -9 {old}")
        tenement.container.wait_for(
            f'test "$(systemctl show -p MainPID --value tenement)" != {old}'
            ' && test "$(systemctl show -p ActiveState --value tenement)" = active'
            ' && test "$(systemctl show -p MainPID --value tenement)" != 0',
            timeout=60,
            what="systemd restarting tenement",
        )
        load.wait_for_requests(50)
    _report("kill -9", load)
    restarts = tenement.container.out("systemctl show -p NRestarts --value tenement")
    assert int(restarts) >= 1
    assert _web_pids(tenement) == before
    # Requests in flight when the server died are lost (nothing can answer them); the
    # ones queued in systemd's socket while it was down are answered by the next one.
    assert load.result.failed <= load.one_shot + load.keep_alive, load.result.summary()


def test_stop_stops_the_tenants(tenement: Tenement) -> None:
    """`systemctl stop tenement`: every tenant stopped (pids gone), a clean stop.

    (No `ten ps` afterwards: a connection to the socket would start the service again.)
    """
    before = _web_pids(tenement)
    tenement.container.run("systemctl stop tenement", timeout=120)
    assert tenement.container.out("systemctl show -p ActiveState --value tenement") in (
        "inactive",
        "failed",
    )
    alive = {iid: pid for iid, pid in before.items() if tenement.container.pid_alive(pid)}
    assert not alive, f"tenants still running after stop: {alive}"
    result = tenement.container.out("systemctl show -p Result --value tenement")
    assert result == "success", f"the stop was not clean: Result={result}"
