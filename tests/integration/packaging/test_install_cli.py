"""`ten install --dry-run` / `ten uninstall --dry-run`, and the packaging files' consistency.

The real install, upgrade and removal run against a booted systemd in tests/system;
these tests build nothing.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tenement._version import __version__
from tenement.cli import install as install_mod
from tenement.cli import ten
from tenement.errors import TenementError

ROOT = Path(__file__).resolve().parents[3]
UNITS = ROOT / "units"
DEBIAN = ROOT / "packaging" / "debian"
SPEC = ROOT / "packaging" / "rpm" / "tenement.spec"


def _versions():  # packaging/versions.py is a script, not part of the package
    spec = importlib.util.spec_from_file_location("versions", ROOT / "packaging" / "versions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENEMENT_")}
    return subprocess.run(
        [sys.executable, "-m", "tenement", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_dry_run_prints_the_real_unit_files(tmp_path: Path) -> None:
    result = _run("install", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for name in ("tenement.service", "tenement.socket"):
        assert f"--- /etc/systemd/system/{name}\n" in out
        assert (UNITS / name).read_text().rstrip("\n") in out
    assert (UNITS / "sysusers.d" / "tenement.conf").read_text().rstrip("\n") in out
    assert "run: systemctl enable --now tenement.socket" in out
    assert out.index("enable --now tenement.socket") < out.index("enable --now tenement.service")


def test_dry_run_copies_the_default_config_when_there_is_none(tmp_path: Path) -> None:
    out = _run("install", "--dry-run", cwd=tmp_path).stdout
    if Path("/etc/tenement/tenement.toml").exists():
        assert "/etc/tenement/tenement.toml exists: kept" in out
    else:
        assert (UNITS / "tenement.toml").read_text().rstrip("\n") in out


def test_dry_run_copies_the_given_config(tmp_path: Path) -> None:
    config = tmp_path / "mine.toml"
    config.write_text('[service.web]\ncommand = "python3 app.py"\n')
    out = _run("install", "--dry-run", "-c", str(config), cwd=tmp_path).stdout
    if not Path("/etc/tenement/tenement.toml").exists():
        assert '[service.web]\ncommand = "python3 app.py"' in out


def test_missing_config_is_an_error(tmp_path: Path) -> None:
    result = _run("install", "--dry-run", "-c", str(tmp_path / "nope.toml"), cwd=tmp_path)
    assert result.returncode == 1
    assert "config file not found" in result.stderr


def test_domain_and_port_go_into_dropins(tmp_path: Path) -> None:
    result = _run("install", "--dry-run", "-d", "example.com", "-p", "9090", cwd=tmp_path)
    out = result.stdout
    service_dropin = out.split("--- /etc/systemd/system/tenement.service.d/10-install.conf\n")[1]
    assert "ExecStart=\nExecStart=" in service_dropin
    exec_start = re.search(r"^ExecStart=(\S.*)$", service_dropin, re.M).group(1)
    assert exec_start.endswith(" --domain example.com")
    assert "serve --config /etc/tenement/tenement.toml --data-dir /var/lib/tenement" in exec_start
    socket_dropin = out.split("--- /etc/systemd/system/tenement.socket.d/10-install.conf\n")[1]
    assert "ListenStream=\nListenStream=9090\nListenStream=/run/tenement/tenement.sock" in (
        socket_dropin
    )


def test_the_unit_as_is_needs_no_dropin() -> None:
    service = (UNITS / "tenement.service").read_text()
    socket = (UNITS / "tenement.socket").read_text()
    assert install_mod.service_dropin(service, ten_path="/usr/bin/ten", domain=None) is None
    assert install_mod.socket_dropin(socket, port=None) is None
    assert install_mod.socket_dropin(socket, port=8080) is None


def test_caddy_needs_a_domain(tmp_path: Path) -> None:
    result = CliRunner().invoke(ten, ["install", "--dry-run", "--caddy"])
    assert result.exit_code == 2
    assert "--caddy needs --domain" in result.output


def test_root_is_required_with_a_clear_message() -> None:
    with pytest.raises(TenementError) as info:
        install_mod.require_root(1000, "install")
    assert "needs root" in str(info.value)
    assert "sudo ten install" in str(info.value)
    assert "--dry-run" in str(info.value)
    install_mod.require_root(0, "install")  # root passes


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run as another user")
def test_non_root_user_gets_the_message(tmp_path: Path) -> None:
    try:
        probe = subprocess.run(
            [sys.executable, "-c", "import tenement"], user=65534, capture_output=True, cwd="/"
        )
    except PermissionError:
        probe = None
    if probe is None or probe.returncode != 0:
        pytest.skip("this python is not readable by nobody (e.g. under /root)")
    for command in ("install", "uninstall"):
        result = subprocess.run(
            [sys.executable, "-m", "tenement", command],
            user=65534,
            capture_output=True,
            text=True,
            cwd="/",
        )
        assert result.returncode == 1
        assert f"`ten {command}` needs root" in result.stderr


def test_uninstall_dry_run_keeps_config_and_data() -> None:
    result = CliRunner().invoke(ten, ["uninstall", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "run: systemctl disable --now tenement.service" in result.output
    assert "remove: /etc/systemd/system/tenement.socket" in result.output
    assert "Kept: /etc/tenement (config), /var/lib/tenement (data)" in result.output


def test_units_are_found() -> None:
    found = install_mod.units_dir()
    assert (found / "tenement.service").read_text() == (UNITS / "tenement.service").read_text()


def test_default_config_is_accepted(tmp_path: Path) -> None:
    result = _run("config", "--check", "--config", str(UNITS / "tenement.toml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "OK (0 services)" in result.stdout


# --- packaging files -------------------------------------------------------------


@pytest.mark.parametrize(
    ("pep440", "package"),
    [
        ("0.3.0.dev0", "0.3.0~dev0"),
        ("0.3.0rc1", "0.3.0~rc1"),
        ("0.3.0", "0.3.0"),
        ("0.3.0.post1", "0.3.0+post1"),
    ],
)
def test_version_derivation_round_trips(pep440: str, package: str) -> None:
    versions = _versions()
    assert versions.package_version(pep440) == package
    assert versions.pep440_version(package) == pep440


def test_prereleases_sort_before_the_release() -> None:
    versions = _versions()
    ordered = ["0.3.0~dev0", "0.3.0~rc1", "0.3.0", "0.3.0+post1", "0.3.1~test1"]
    for older, newer in itertools.pairwise(ordered):
        check = subprocess.run(["dpkg", "--compare-versions", older, "lt", newer])
        if check.returncode not in (0, 1):
            pytest.skip("dpkg not available")
        assert check.returncode == 0, f"{older} should sort before {newer}"
    assert versions.pep440_version("0.3.1~test1") == "0.3.1+test1"


def test_debian_changelog_matches_the_project_version() -> None:
    top = (DEBIAN / "changelog").read_text().splitlines()[0]
    assert top.startswith(f"tenement-py ({_versions().package_version(__version__)}) ")


def test_rpm_spec_takes_its_version_from_the_build() -> None:
    spec = SPEC.read_text()
    assert re.search(r"^Version:\s+%\{pkg_version\}$", spec, re.M)
    assert re.search(r"^Name:\s+tenement-py$", spec, re.M)
    # the socket is never restarted on upgrade, the service is
    assert "%systemd_postun_with_restart tenement.service" in spec
    assert "%systemd_postun tenement.socket" in spec
    assert not re.search(r"%systemd_postun_with_restart .*tenement\.socket", spec)


def test_debian_upgrade_restarts_only_the_service() -> None:
    rules = (DEBIAN / "rules").read_text()
    assert "dh_installsystemd --no-stop-on-upgrade tenement.socket" in rules
    assert "dh_installsystemd --restart-after-upgrade tenement.service" in rules
    assert "--python /usr/bin/python3" in rules


def test_every_packaged_unit_file_exists() -> None:
    for line in (DEBIAN / "tenement-py.install").read_text().splitlines():
        source = line.split()[0]
        assert (ROOT / source).is_file(), source


@pytest.mark.parametrize(
    "domain",
    ["example.com\nExecStartPre=/bin/touch /tmp/owned", "a.com --data-dir /tmp/x", "%h", "$HOME"],
)
def test_a_domain_cannot_add_a_directive_or_an_option(tmp_path: Path, domain: str) -> None:
    result = _run("install", "--dry-run", "-d", domain, cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert "expected a domain name" in result.stderr
    assert "ExecStartPre" not in result.stdout


def test_our_words_on_exec_start_are_quoted_and_a_newline_refused() -> None:
    service = (UNITS / "tenement.service").read_text()
    text = install_mod.service_dropin(
        service,
        ten_path="/opt/my venv/50%/bin/ten",
        domain=None,
        serve_args=("--tls", "--email", 'ops"$USER"@example.com'),
    )
    assert text is not None
    (line,) = [line for line in text.splitlines() if line.startswith("ExecStart=") and line[10:]]
    assert line.startswith('ExecStart="/opt/my venv/50%%/bin/ten" serve --config ')
    assert line.endswith(' --tls --email "ops\\"$$USER\\"@example.com"')
    with pytest.raises(TenementError, match="control character"):
        install_mod.service_dropin(
            service, ten_path="/usr/bin/ten", domain=None, serve_args=("--email", "a@b\nX=1")
        )


def test_a_unit_file_written_over_a_symlink_replaces_the_link(tmp_path: Path) -> None:
    # a link planted at one of our names must not have its target overwritten or chmod'ed
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secret\n")
    secret.chmod(0o600)
    dropins = tmp_path / "tenement.service.d"
    dropins.mkdir()
    link = dropins / "10-install.conf"
    link.symlink_to(secret)
    install_mod.write_unit_file(link, "[Service]\n")
    assert secret.read_text() == "root:$6$secret\n"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert not link.is_symlink()
    assert link.read_text() == "[Service]\n"
    assert link.stat().st_mode & 0o777 == 0o644
    assert sorted(path.name for path in dropins.iterdir()) == ["10-install.conf"]


def test_uninstall_removes_only_the_dropins_install_wrote(tmp_path: Path) -> None:
    service_d = tmp_path / "tenement.service.d"
    socket_d = tmp_path / "tenement.socket.d"
    service_d.mkdir()
    socket_d.mkdir()
    ours = service_d / "10-install.conf"
    ours.write_text(
        install_mod.service_dropin(
            (UNITS / "tenement.service").read_text(), ten_path="/opt/ten", domain=None
        )
        or ""
    )
    # copied by hand from the example, and a link to a file of the user's
    by_hand = socket_d / "20-tls.conf"
    by_hand.write_text((UNITS / "examples" / "tls.conf").read_text())
    link = socket_d / "10-install.conf"
    link.symlink_to(tmp_path / "elsewhere.conf")
    paths, kept = install_mod.uninstall_paths(tmp_path)
    assert ours in paths
    assert tmp_path / "tenement.service" in paths
    assert sorted(kept) == sorted([by_hand, link])
    assert not set(kept) & set(paths)


def test_the_installed_config_is_not_world_readable(tmp_path: Path) -> None:
    # it may hold a database_url's password and services' env (other tenants' secrets)
    config = tmp_path / "tenement.toml"
    config.write_text('[settings]\ndatabase_url = "postgresql://u:secret@db/t"\n')
    plan = install_mod.make_plan(
        units=UNITS,
        config_source=config,
        ten_path="/usr/bin/ten",
        domain=None,
        port=None,
        config_present=False,
    )
    (planned,) = [f for f in plan.files if f.path == install_mod.CONFIG_FILE]
    assert planned.mode == 0o640
    chgrp = ("chgrp", "tenement", str(install_mod.CONFIG_FILE))
    assert (
        plan.commands.index(chgrp)
        == plan.commands.index(("systemd-sysusers", str(install_mod.SYSUSERS_FILE))) + 1
    )
    written = tmp_path / "etc" / "tenement.toml"
    written.parent.mkdir()
    install_mod.write_unit_file(written, planned.text, planned.mode)
    assert written.stat().st_mode & 0o777 == 0o640
    kept = install_mod.make_plan(
        units=UNITS,
        config_source=config,
        ten_path="/usr/bin/ten",
        domain=None,
        port=None,
        config_present=True,
    )
    assert chgrp not in kept.commands
