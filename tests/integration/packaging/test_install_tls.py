"""`ten install --tls`: the socket drop-in holding the HTTPS and HTTP ports, `--tls` for
`ten serve`, and the TLS checks made before anything is installed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "units" / "examples" / "tls.conf"
SERVICE_DROPIN = "--- /etc/systemd/system/tenement.service.d/10-install.conf\n"
TLS_DROPIN = "--- /etc/systemd/system/tenement.socket.d/20-tls.conf\n"

pytestmark = pytest.mark.skipif(
    Path("/etc/tenement/tenement.toml").exists(),
    reason="/etc/tenement/tenement.toml exists: `ten install` would check that one",
)


def _install(tmp_path: Path, config: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "tenement.toml").write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENEMENT_")}
    return subprocess.run(
        [sys.executable, "-m", "tenement", "install", "--dry-run", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _section(out: str, header: str) -> str:
    return out.split(header)[1].split("\n--- ")[0]


def test_tls_adds_the_socket_dropin_and_the_serve_options(tmp_path: Path) -> None:
    result = _install(tmp_path, "", "--tls", "--email", "ops@example.com", "-d", "example.com")
    assert result.returncode == 0, result.stderr
    dropin = _section(result.stdout, TLS_DROPIN)
    assert "[Socket]\nListenStream=443\nListenStream=80\n" in dropin
    assert dropin.rstrip("\n").endswith(EXAMPLE.read_text().rstrip("\n"))
    exec_start = re.search(
        r"^ExecStart=(\S.*)$", _section(result.stdout, SERVICE_DROPIN), re.M
    ).group(1)
    assert exec_start.endswith("--domain example.com --tls --email ops@example.com")


def test_the_configs_ports_go_into_the_dropin(tmp_path: Path) -> None:
    config = (
        '[settings.tls]\nenabled = true\nacme_email = "ops@example.com"\n'
        'domain = "example.com"\nhttps_port = 8443\nhttp_port = 8080\n'
    )
    result = _install(tmp_path, config, "--tls")
    assert result.returncode == 0, result.stderr
    assert "ListenStream=8443\nListenStream=8080\n" in _section(result.stdout, TLS_DROPIN)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls", "-d", "example.com"], "TLS enabled but no email provided."),
        (["--tls", "--email", "bad", "-d", "example.com"], "Invalid email format: 'bad'"),
        (["--tls", "--email", "a@b.com"], "TLS cannot be used with localhost."),
    ],
    ids=["no-email", "bad-email", "localhost"],
)
def test_tls_is_checked_before_installing(tmp_path: Path, args: list[str], message: str) -> None:
    result = _install(tmp_path, "", *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Installation plan" not in result.stdout


def test_email_needs_tls(tmp_path: Path) -> None:
    result = _install(tmp_path, "", "--email", "ops@example.com")
    assert result.returncode == 2
    assert "--email requires --tls" in result.stderr


def test_the_packages_ship_the_dropin_disabled() -> None:
    debian = (ROOT / "packaging" / "debian" / "tenement-py.install").read_text()
    assert "units/examples/tls.conf usr/share/doc/tenement-py/examples/" in debian
    spec = (ROOT / "packaging" / "rpm" / "tenement.spec").read_text()
    assert "units/examples/tls.conf %{buildroot}%{_docdir}/%{name}/examples/tls.conf" in spec


def test_the_plan_restarts_running_units_whose_files_change(tmp_path: Path) -> None:
    """A second `ten install --tls` on a running install must restart the socket (it opens
    new ports only at its start) and the service (a new ExecStart=); the plan says so
    (tests/system/test_binary_swap.py shows it on a real systemd)."""
    result = _install(tmp_path, "", "--tls", "--email", "ops@example.com", "-d", "example.com")
    assert result.returncode == 0, result.stderr
    steps = result.stdout.split("\n\n")[1]
    assert "run: systemctl daemon-reload\n" in steps
    reload_at = steps.index("run: systemctl daemon-reload")
    restart_at = steps.index("run: systemctl try-restart UNITS (the running units whose files")
    enable_at = steps.index("run: systemctl enable --now tenement.socket")
    assert reload_at < restart_at < enable_at


def test_an_earlier_tls_dropin_is_removed_when_tls_is_off(tmp_path: Path) -> None:
    """`ten install` without --tls, TLS not enabled in the config, after an earlier
    `ten install --tls`: its socket drop-in goes (the socket would hold the HTTPS port
    and the server answer plain HTTP there); with --tls it stays."""
    from tenement.cli.install import make_plan, units_dir

    config = tmp_path / "tenement.toml"
    config.write_text("")
    common = {
        "units": units_dir(),
        "config_source": config,
        "ten_path": "/usr/bin/ten",
        "domain": None,
        "port": None,
        "config_present": True,
    }
    plan = make_plan(**common, stale_tls_dropin=True)
    assert [path.name for path in plan.removals] == ["20-tls.conf"]
    assert any("built-in TLS is off" in note for note in plan.notes)
    assert make_plan(**common).removals == ()
