"""The dashboard's numbers: first render and interactive with N instances, bytes on first
load, and the server CPU an idle dashboard costs.

Usage: ``python -m bench.dashboard [--instances 1000] [--idle-seconds 60] [--runs 5]
[--idle-rounds 3]``
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
- CPU per poll: the server's user+system CPU (from /proc, so the machine's other load
  does not count) for 50 polls back to back (``/api/instances`` and ``/api/telemetry``),
  in full as the page polled before, and conditional as it polls now (the ETags of the
  last answers in ``If-None-Match``), less what the idle server used meanwhile;
- idle CPU: the server's CPU over ``--idle-seconds`` with no dashboard; with the full
  polls every 2 s (from this script, the browser on no dashboard); with one visible
  dashboard on the instances tab (its stream of changes open); with that tab hidden;
  and with :data:`STREAMS` streams of changes open from this script (what as many idle
  visible dashboards cost, large enough to show). The five are measured in turn,
  ``--idle-rounds`` times, each round starting with the next, so that each meets the
  same load; each round's figure
  less the same round's "no dashboard" is the cost.

Prints a Markdown table (medians of ``--runs`` loads and of the rounds) and the load
average before and after. The machine may be shared.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
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


POLL_SECONDS = 2.0  # POLL_MS in app.js


class Poller:
    """What the page asks every poll: ``/api/instances`` (with the token) and
    ``/api/telemetry``, gzip as a browser accepts. ``conditional``: naming the ETags of
    the last answers, as the page does now; else in full, as it did before."""

    def __init__(self, url: str, token: str, *, conditional: bool) -> None:
        self.url = url
        self.token = token
        self.conditional = conditional
        self.tags: dict[str, str] = {}
        self.statuses: list[int] = []

    def poll(self) -> None:
        for path, auth in (("/api/instances", True), ("/api/telemetry", False)):
            req = urllib.request.Request(f"{self.url}{path}")
            req.add_header("Accept-Encoding", "gzip")
            if auth:
                req.add_header("Authorization", f"Bearer {self.token}")
            if self.conditional and path in self.tags:
                req.add_header("If-None-Match", self.tags[path])
            try:
                with urllib.request.urlopen(req, timeout=60) as response:
                    response.read()
                    status, tag = response.status, response.headers.get("etag")
            except urllib.error.HTTPError as exc:  # a 304 is one to urllib
                if exc.code != 304:
                    raise
                status, tag = exc.code, exc.headers.get("etag")
            self.statuses.append(status)
            if tag:
                self.tags[path] = tag


@contextlib.contextmanager
def polling(poller: Poller) -> Iterator[None]:
    """``poller`` polls every 2 s (from this script) while the ``with`` block runs."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            poller.poll()
            stop.wait(POLL_SECONDS)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=70)


def poll_cpu(pid: int, poller: Poller, polls: int) -> float:
    """Server CPU milliseconds per poll of ``poller``: ``polls`` back to back, less what
    the server used meanwhile when idle (measured just before, over 5 s)."""
    background = idle_cpu(pid, 5.0) / 1000
    poller.poll()  # its first answers are in full; the ETags are known from here on
    before = cpu_seconds(pid)
    began = time.monotonic()
    for _ in range(polls):
        poller.poll()
    used = cpu_seconds(pid) - before - background * (time.monotonic() - began)
    return used * 1000 / polls


SETTLED = """
const done = arguments[arguments.length - 1];
const wait = () => {
  const polls = performance.getEntriesByType("resource")
    .filter((e) => new URL(e.name).pathname === "/api/instances");
  if (polls.length && document.getElementById("link").dataset.stream === "open") {
    return done(true);
  }
  setTimeout(wait, 50);
};
wait();
"""

#: the streams of changes (GET /api/instances/stream) the "streams" condition holds open:
#: many, so that one's cost is above the rounds' noise
STREAMS = 50


@contextlib.contextmanager
def streams(url: str, token: str, count: int) -> Iterator[list[int]]:
    """``count`` open ``GET /api/instances/stream``s (as many idle visible dashboards
    would hold, without their browsers) while the ``with`` block runs; yields the count
    of event bytes read so far, per stream."""
    host, port = url.removeprefix("http://").split(":")
    connections = []
    read = [0] * count
    for _ in range(count):
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        connection.request(
            "GET", "/api/instances/stream", headers={"Authorization": f"Bearer {token}"}
        )
        response = connection.getresponse()
        assert response.status == 200, response.status
        connections.append((connection, response))

    def drain(n: int, response: Any) -> None:
        # the end: the socket shut down under the read, in any of http.client's ways
        with contextlib.suppress(OSError, ValueError, AttributeError, http.client.HTTPException):
            while chunk := response.read1(65536):
                read[n] += len(chunk)

    threads = [
        threading.Thread(target=drain, args=(n, response), daemon=True)
        for n, (_, response) in enumerate(connections)
    ]
    for thread in threads:
        thread.start()
    try:
        yield read
    finally:
        for connection, _ in connections:
            with contextlib.suppress(OSError, AttributeError):
                connection.sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=10)
        for connection, _ in connections:
            connection.close()


CONDITIONS = ("none", "unconditional", "visible", "hidden", "streams")


def idle_rounds(
    driver: Any, url: str, token: str, pid: int, seconds: float, rounds: int
) -> dict[str, list[float]]:
    """Server CPU (ms/s) per condition (:data:`CONDITIONS`), one figure per round; each
    round starts with the next condition (the machine's load drifts)."""
    found: dict[str, list[float]] = {name: [] for name in CONDITIONS}
    driver.execute_cdp_cmd("Emulation.setFocusEmulationEnabled", {"enabled": False})
    dashboard = driver.current_window_handle

    def measure(name: str) -> None:
        driver.get(f"{url}/assets/favicon.svg")  # no dashboard
        if name == "none":
            found[name].append(idle_cpu(pid, seconds))
        elif name == "unconditional":
            with polling(Poller(url, token, conditional=False)):
                found[name].append(idle_cpu(pid, seconds))
        elif name == "streams":
            with streams(url, token, STREAMS):
                found[name].append(idle_cpu(pid, seconds))
        else:
            driver.get(f"{url}/#/instances")
            driver.execute_async_script(SETTLED)  # loaded, and polling with 304s
            if name == "hidden":
                driver.switch_to.new_window("tab")  # the dashboard's tab is hidden now
            found[name].append(idle_cpu(pid, seconds))
            if name == "hidden":
                driver.close()
                driver.switch_to.window(dashboard)

    for turn in range(rounds):
        for n in range(len(CONDITIONS)):
            measure(CONDITIONS[(turn + n) % len(CONDITIONS)])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle-rounds", type=int, default=3)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="tenement-bench-dashboard-") as work:
        server, url, token = start_server(Path(work), args.instances)
        driver = browser()
        try:
            loads = [load_once(driver, url, token) for _ in range(args.runs)]
            # the table shows its first page of rows (PAGE_ROWS in app.js)
            assert all(load["rows"] == min(args.instances, 100) for load in loads), loads
            latency = log_latency(driver, url, token, args.runs)
            per_poll: dict[bool, list[float]] = {False: [], True: []}
            pollers = {kind: Poller(url, token, conditional=kind) for kind in per_poll}
            for _ in range(args.runs):
                for kind, poller in pollers.items():
                    per_poll[kind].append(poll_cpu(server.pid, poller, 50))
            cpu = idle_rounds(driver, url, token, server.pid, args.idle_seconds, args.idle_rounds)
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
    for kind, label in ((False, "in full (before)"), (True, "conditional (now)")):
        figures = per_poll[kind]
        shown = ", ".join(f"{x:.2f}" for x in figures)
        statuses = sorted(set(pollers[kind].statuses))
        print(f"| server CPU per poll, {label}: both lists, statuses {statuses} "
              f"(ms; runs: {shown}) | {median(figures):.2f} |")  # fmt: skip
        print(f"| ... at one poll per {POLL_SECONDS:.0f} s (ms/s) | "
              f"{median(figures) / POLL_SECONDS:.2f} |")  # fmt: skip
    what = {
        "none": "no dashboard",
        "unconditional": "full polls every 2 s (the page before conditional polls)",
        "visible": "one visible idle dashboard (its stream of changes)",
        "hidden": "one hidden dashboard",
        "streams": f"{STREAMS} open streams of changes, no browser",
    }
    for name in CONDITIONS:
        figures = cpu[name]
        shown = ", ".join(f"{x:.1f}" for x in figures)
        print(f"| server CPU, {what[name]} (ms/s; rounds: {shown}) | {median(figures):.1f} |")
    for name in CONDITIONS[1:]:
        costs = [x - none for x, none in zip(cpu[name], cpu["none"], strict=True)]
        shown = ", ".join(f"{x:+.1f}" for x in costs)
        print(f"| ... {what[name]} less no dashboard (ms/s; rounds: {shown}) | "
              f"{median(costs):+.1f} |")  # fmt: skip
    costs = [(x - none) / STREAMS for x, none in zip(cpu["streams"], cpu["none"], strict=True)]
    print(f"| ... one stream of changes (ms/s; rounds: {', '.join(f'{x:+.2f}' for x in costs)}) "
          f"| {median(costs):+.2f} |")  # fmt: skip
    load_after = os.getloadavg()
    print(f"\nload average (1, 5, 15 min) before: {load_before}, after: {load_after}")


if __name__ == "__main__":
    main()
