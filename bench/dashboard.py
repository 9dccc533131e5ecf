"""The dashboard's numbers: first render and interactive with N instances, bytes on first
load, and the server CPU an idle dashboard costs.

Usage: ``python -m bench.dashboard [--instances 1000] [--idle-seconds 60] [--runs 5]``
(needs Debian's chromium and chromium-driver, and selenium). Starts ``ten serve`` in a
temp directory on loopback with N tiny tenants (bench/apps/tiny.py), then loads the
instances tab in headless Chromium with the admin token already in the tab's session:

- first render: navigation start to the ``tenement:table`` performance mark (the table
  first shows the server's instances: its first page of 100 rows, sorted and counted
  over all N);
- interactive: navigation start to the first idle callback after that mark;
- bytes: ``transferSize`` (headers included) on a cold load (cache disabled), of the
  page and its assets, and of the API answers fetched until the table showed;
- log latency: from a request to a tenant until the line it prints is in the page's
  live log;
- idle CPU: the server's user+system CPU over ``--idle-seconds`` with no dashboard,
  with one visible dashboard on the instances tab, and with that tab hidden.

Prints a Markdown table (medians of ``--runs`` loads). The machine may be shared.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.servers import free_port

TINY = Path(__file__).parent / "apps" / "tiny.py"
SAY = Path(__file__).parent / "apps" / "say.py"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def request(url: str, token: str, method: str = "GET", body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=60) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(directory: Path, instances: int) -> tuple[subprocess.Popen[bytes], str, str]:
    (directory / "tenement.toml").write_text(
        "[settings]\n"
        'data_dir = "data"\n'
        "tenant_users = false\n\n"
        "[service.tiny]\n"
        f'command = "{sys.executable} -S {TINY}"\n'
        'isolation = "process"\n\n'
        "[service.say]\n"
        f'command = "{sys.executable} {SAY}"\n'
        'isolation = "process"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENEMENT_")}
    subprocess.run(
        [sys.executable, "-m", "tenement", "token-gen"],
        cwd=directory, env=env, check=True, capture_output=True,
    )  # fmt: skip
    token = (directory / "data" / "api_token").read_text().strip()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (directory / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "tenement", "serve", "--port", str(port)],
        cwd=directory, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(
                    f"ten serve did not start: see {directory / 'serve.log'}"
                ) from None
            time.sleep(0.05)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda n: request(
                    f"{url}/api/instances/spawn", token, "POST", {"process": "tiny", "id": f"n{n}"}
                ),
                range(instances),
            )
        )
    return server, url, token


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--disable-gpu", "--no-first-run"):  # fmt: skip
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


TIMINGS = """
const done = arguments[arguments.length - 1];
const wait = () => {
  const mark = performance.getEntriesByName("tenement:table")[0];
  if (!mark) return setTimeout(wait, 10);
  requestIdleCallback(() => {
    const nav = performance.getEntriesByType("navigation")[0];
    const resources = performance.getEntriesByType("resource");
    done({
      render: mark.startTime,
      interactive: performance.now(),
      assets: nav.transferSize + resources
        .filter((r) => r.initiatorType !== "fetch")
        .reduce((sum, r) => sum + r.transferSize, 0),
      data: resources
        .filter((r) => r.initiatorType === "fetch")
        .reduce((sum, r) => sum + r.transferSize, 0),
      rows: document.querySelectorAll("#rows tr").length,
    });
  });
};
wait();
"""


def load_once(driver: Any, url: str, token: str) -> dict[str, float]:
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    driver.get(f"{url}/assets/favicon.svg")
    driver.execute_script("sessionStorage.setItem('tenement.token', arguments[0])", token)
    driver.get(f"{url}/#/instances")
    driver.set_script_timeout(120)
    return dict(driver.execute_async_script(TIMINGS))


SEEN = """
const [marker, done] = [arguments[0], arguments[arguments.length - 1]];
const log = document.getElementById("log");
const look = () => log.textContent.includes(marker);
if (look()) return done(Date.now());
new MutationObserver((_, observer) => {
  if (look()) {
    observer.disconnect();
    done(Date.now());
  }
}).observe(log, { childList: true, subtree: true });
"""


def log_latency(driver: Any, url: str, token: str, runs: int) -> list[float]:
    """Milliseconds from a request to the tenant until the line it prints shows in the
    page's live log (the detail of say:one)."""
    request(f"{url}/api/instances/spawn", token, "POST", {"process": "say", "id": "one"})
    driver.get(f"{url}/#/instance/say:one")
    deadline = time.monotonic() + 60
    while (
        driver.execute_script("return document.getElementById('log-state')?.textContent") != "live"
    ):
        if time.monotonic() > deadline:
            raise SystemExit("the live log did not start")
        time.sleep(0.05)
    times = []
    for n in range(runs):
        marker = f"/latency-{n}-{time.monotonic_ns()}"
        began = time.time() * 1000
        proxied = urllib.request.Request(f"{url}{marker}", headers={"Host": "one.say.localhost"})
        with urllib.request.urlopen(proxied, timeout=30) as response:
            response.read()
        times.append(driver.execute_async_script(SEEN, marker) - began)
    return times


def idle_cpu(pid: int, seconds: float) -> float:
    """Server CPU milliseconds per second over ``seconds``."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) * 1000 / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tenement-bench-dashboard-") as work:
        server, url, token = start_server(Path(work), args.instances)
        driver = browser()
        try:
            loads = [load_once(driver, url, token) for _ in range(args.runs)]
            # the table shows its first page of rows (PAGE_ROWS in app.js)
            assert all(load["rows"] == min(args.instances, 100) for load in loads), loads
            latency = log_latency(driver, url, token, args.runs)
            driver.get(f"{url}/assets/favicon.svg")  # no dashboard
            cpu_none = idle_cpu(server.pid, args.idle_seconds)
            driver.get(f"{url}/#/instances")
            cpu_visible = idle_cpu(server.pid, args.idle_seconds)
            driver.execute_cdp_cmd("Emulation.setFocusEmulationEnabled", {"enabled": False})
            driver.switch_to.new_window("tab")  # the dashboard's tab is hidden now
            cpu_hidden = idle_cpu(server.pid, args.idle_seconds)
        finally:
            driver.quit()
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=120)
    median = statistics.median
    print(f"| measure ({args.instances} instances, median of {args.runs}) | value |")
    print("|---|---:|")
    render = median(x["render"] for x in loads)
    print(f"| first render: the table's first 100 rows (ms) | {render:.0f} |")
    print(f"| interactive (ms) | {median(x['interactive'] for x in loads):.0f} |")
    assets = median(x["assets"] for x in loads) / 1000
    data = median(x["data"] for x in loads) / 1000
    print(f"| bytes on first load: page and assets (KB) | {assets:.1f} |")
    print(f"| bytes on first load: instance data, until the table shows (KB) | {data:.1f} |")
    print(f"| a tenant's log line to the page's live log (ms) | {median(latency):.0f} |")
    print(f"| server CPU, no dashboard (ms/s) | {cpu_none:.2f} |")
    print(f"| server CPU, one visible idle dashboard (ms/s) | {cpu_visible:.2f} |")
    print(f"| server CPU, one hidden dashboard (ms/s) | {cpu_hidden:.2f} |")


if __name__ == "__main__":
    main()
