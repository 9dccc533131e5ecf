"""The dashboard in a real Chromium against a real `ten serve` with real tenants.

The tests share one server and one browser (see conftest) and run in file order: the
200 instances started by the list test stay for the rest, so every later page works
with a full table.
"""

from __future__ import annotations

import concurrent.futures
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.integration.dashboard.conftest import (
    DashboardServer,
    console_entries,
    emulate_phone_dark,
)

WAIT_SECONDS = 20
MANY = 200


def wait_for(driver: Any, condition: Any, what: str, timeout: float = WAIT_SECONDS) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: condition(d), message=f"waited {timeout} s for {what}"
    )


def text_of(driver: Any, element_id: str) -> str:
    """The element's rendered text, read in one script (views replace their elements)."""
    return driver.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.innerText.trim() : ''",
        element_id,
    )


def shown(driver: Any, element_id: str) -> bool:
    return driver.execute_script(
        "const e = document.getElementById(arguments[0]); return !!e && e.checkVisibility()",
        element_id,
    )


def sign_in(driver: Any, token: str) -> None:
    wait_for(driver, lambda d: d.find_elements(By.ID, "token"), "the sign-in form")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#signin button[type=submit]").click()


def signed_in_as(driver: Any, who: str) -> None:
    wait_for(driver, lambda d: text_of(d, "who") == who, f"signed in as {who!r}")


def confirm(driver: Any) -> None:
    wait_for(driver, lambda d: shown(d, "confirm"), "the dialog")
    driver.find_element(By.ID, "confirm-ok").click()


def row_ids(driver: Any) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#rows tr')].map(r => r.dataset.id)"
    )


def go(driver: Any, fragment: str) -> None:
    driver.execute_script("location.hash = arguments[0]", fragment)


def severe_console_entries(driver: Any, *, allow_network: bool = False) -> list[dict[str, Any]]:
    """Console errors since the last call; ``allow_network`` drops failed requests the
    test caused on purpose (a refused token, a server that is restarting)."""
    return [
        entry
        for entry in console_entries(driver)
        if entry["level"] == "SEVERE" and not (allow_network and entry.get("source") == "network")
    ]


def instances(server: DashboardServer, token: str | None = None) -> dict[str, Any]:
    with server.client(token) as client:
        return {item["id"]: item for item in client.get("/api/instances").json()}


def spawn(server: DashboardServer, service: str, tenant: str) -> None:
    body = {"process": service, "id": tenant}
    with server.client() as client:
        answer = client.post("/api/instances/spawn", json=body)
        if answer.status_code == 500:
            # Tenant ports are shared with whatever else runs on the machine (other test
            # runs take them: port_taken in serve.log); a spawn whose every try lost its
            # port is a 500. Once more, then fail.
            answer = client.post("/api/instances/spawn", json=body)
        assert answer.status_code == 200, f"spawn {service}:{tenant}: {answer.text}"


def test_a_wrong_token_is_refused_and_says_so(page: Any) -> None:
    sign_in(page, "not-a-token-0123456789")
    wait_for(page, lambda d: "refused" in text_of(d, "signin-error"), "the refusal")
    assert "wrong" in text_of(page, "signin-error")
    assert page.execute_script("return sessionStorage.length") == 0
    assert not shown(page, "tabs")
    assert severe_console_entries(page, allow_network=True) == []


def test_the_admin_sees_200_instances_sorts_and_filters(page: Any, server: DashboardServer) -> None:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: spawn(server, "tiny", f"t{n:03}"), range(MANY)))
    sign_in(page, server.admin_token)
    signed_in_as(page, "admin")
    # the token is in this tab's sessionStorage, not in the URL nor in a cookie
    assert server.admin_token not in page.current_url
    assert page.get_cookies() == []
    go(page, "#/instances")
    # the first hundred rows, then the rest on demand
    wait_for(page, lambda d: len(row_ids(d)) == 100, "the first 100 rows")
    assert text_of(page, "summary") == f"{MANY} of {MANY} instance(s), the first 100 shown"
    assert row_ids(page)[0] == "tiny:t000"
    page.find_element(By.ID, "show-more").click()
    wait_for(page, lambda d: len(row_ids(d)) == MANY, f"{MANY} rows")
    assert text_of(page, "summary") == f"{MANY} of {MANY} instance(s)"
    assert not shown(page, "show-more")
    page.find_element(By.CSS_SELECTOR, "th[data-key=id] button").click()
    wait_for(page, lambda d: row_ids(d)[0] == "tiny:t199", "descending order")
    page.find_element(By.ID, "filter-search").send_keys("tiny:t19")
    wait_for(page, lambda d: len(row_ids(d)) == 10, "the ten matches of tiny:t19")
    assert set(row_ids(page)) == {f"tiny:t19{n}" for n in range(10)}
    assert severe_console_entries(page) == []


#: how often the page polls the instance list (POLL_MS in app.js; docs/operations.md)
POLL_SECONDS = 2
#: what a loaded machine may add to a poll before the page shows it
SLACK_SECONDS = 5


#: wraps the page's fetch so that the status of each instance list is recorded before the
#: page sees the answer (a resource timing entry may come after the page drew it)
WATCH_POLLS = """
window.polls = [];
const fetched = window.fetch;
window.fetch = async (...args) => {
  const response = await fetched(...args);
  if (new URL(response.url).pathname === "/api/instances") window.polls.push(response.status);
  return response;
};
"""


#: "open" while the page hears of changes from GET /api/instances/stream (else it polls)
STREAM_STATE = "return document.getElementById('link').dataset.stream"


def cell(driver: Any, iid: str, key: str) -> str:
    return driver.execute_script(
        "const row = [...document.querySelectorAll('#rows tr')].find((r) => r.dataset.id === "
        "arguments[0]); if (!row) return ''; const keys = [...document.querySelectorAll("
        "'thead th')].map((th) => th.dataset.key); return row.children[keys.indexOf("
        "arguments[1])].textContent",
        iid,
        key,
    )


def test_an_idle_page_waits_on_its_stream_and_shows_a_change(
    page: Any, server: DashboardServer
) -> None:
    sign_in(page, server.admin_token)
    signed_in_as(page, "admin")
    go(page, "#/instances")
    wait_for(page, lambda d: len(row_ids(d)) == 100, "the first 100 rows")
    page.execute_script(WATCH_POLLS)
    # a single host: the page opens GET /api/instances/stream and stops polling
    wait_for(
        page,
        lambda d: d.execute_script(STREAM_STATE) == "open",
        "the open stream of changes",
    )
    # ... and the uptime the page shows still grows: it counts the seconds itself. Read
    # with the count of full answers in one script, so that no answer comes in between.
    look = (
        "const row = [...document.querySelectorAll('#rows tr')]"
        ".find((r) => r.dataset.id === 'tiny:t000');"
        "return [row.children[4].textContent, window.polls.filter((s) => s === 200).length]"
    )
    assert page.execute_script("return document.querySelectorAll('thead th')[4].dataset.key") == (
        "uptime_secs"
    )
    full_answers = -1
    texts: set[str] = set()

    def grew_by_itself(driver: Any) -> bool:
        # twice: the answer that came just before the first look may show once
        nonlocal full_answers, texts
        text, count = driver.execute_script(look)
        if count != full_answers:  # a full answer came (a usage sample): look again
            full_answers, texts = count, set()
        texts.add(text)
        return len(texts) >= 3

    wait_for(page, grew_by_itself, "the uptime growing without full answers")
    # a change shows: the stream says so and the page asks (and what a loaded machine adds)
    with server.client() as client:
        client.put("/api/instances/tiny:t001/weight", json={"weight": 42}).raise_for_status()
    try:
        wait_for(
            page,
            lambda d: cell(d, "tiny:t001", "weight") == "42",
            "the new weight in the table",
            timeout=POLL_SECONDS + SLACK_SECONDS,
        )
        # told by the stream, which is still the page's way to hear of changes
        assert page.execute_script(STREAM_STATE) == "open"
    finally:
        with server.client() as client:
            client.put("/api/instances/tiny:t001/weight", json={"weight": 100}).raise_for_status()
    assert severe_console_entries(page) == []


def focused(driver: Any) -> str:
    return driver.execute_script("return document.activeElement.id")


#: how many times the page has asked for ``path`` (resource timing: this page load's)
REQUESTS_OF = """
return performance.getEntriesByType("resource")
  .filter((e) => new URL(e.name).pathname === arguments[0]).length
"""


def test_a_single_host_shows_no_nodes(page: Any, server: DashboardServer) -> None:
    sign_in(page, server.admin_token)
    signed_in_as(page, "admin")
    wait_for(page, lambda d: shown(d, "state-counts"), "the overview's counts")
    # several refreshes later the node list was asked once: its answer said fleet false
    # (a single host's page opens its stream, and asks again when told of a change)
    wait_for(page, lambda d: d.execute_script(STREAM_STATE) == "open", "the open stream")
    asked = page.execute_script(REQUESTS_OF, "/api/instances")
    with server.client() as client:
        for weight in (43, 100):
            client.put("/api/instances/tiny:t002/weight", json={"weight": weight})
            wait_for(
                page,
                lambda d, before=asked: d.execute_script(REQUESTS_OF, "/api/instances") > before,
                "the instance list asked again after a change",
                timeout=WAIT_SECONDS + 3 * POLL_SECONDS,
            )
            asked = page.execute_script(REQUESTS_OF, "/api/instances")
    assert asked >= 3
    assert page.execute_script(REQUESTS_OF, "/api/nodes") == 1
    assert page.find_elements(By.ID, "nodes") == []
    assert "orphaned" not in text_of(page, "state-counts")
    go(page, "#/instances")
    wait_for(page, lambda d: "instance(s)" in text_of(d, "summary"), "the table")
    keys = page.execute_script(
        "return [...document.querySelectorAll('thead th')].map((th) => th.dataset.key)"
    )
    assert "node" not in keys
    assert severe_console_entries(page) == []


def test_spawn_from_the_page_and_see_it_appear(page: Any, server: DashboardServer) -> None:
    # with the keyboard only: the token field has the focus, Enter signs in; Tab moves
    # through the form, Enter submits it, and the dialog's Confirm has the focus
    wait_for(page, lambda d: focused(d) == "token", "the focus in the token field")
    page.switch_to.active_element.send_keys(server.admin_token + Keys.ENTER)
    signed_in_as(page, "admin")
    go(page, "#/instances")
    wait_for(page, lambda d: shown(d, "spawn"), "the instances tab")
    page.find_element(By.ID, "spawn-service").send_keys("api" + Keys.TAB)
    wait_for(page, lambda d: focused(d) == "spawn-tenant", "Tab to the tenant field")
    page.switch_to.active_element.send_keys("alice" + Keys.ENTER)
    wait_for(page, lambda d: focused(d) == "confirm-ok", "the focus on Confirm")
    page.switch_to.active_element.send_keys(Keys.ENTER)
    wait_for(page, lambda d: "api:alice" in row_ids(d), "api:alice in the table")
    assert "api:alice" in instances(server)
    assert text_of(page, "message") == "Spawned api:alice."
    # an error of the API is shown as it is
    page.find_element(By.ID, "spawn-service").clear()
    page.find_element(By.ID, "spawn-service").send_keys("nosuch")
    page.find_element(By.CSS_SELECTOR, "#spawn button[type=submit]").click()
    confirm(page)
    wait_for(page, lambda d: "nosuch" in text_of(d, "message"), "the API's error")
    with server.client() as client:
        answer = client.post("/api/instances/spawn", json={"process": "nosuch", "id": "alice"})
    assert text_of(page, "message") == answer.json()["error"]
    assert severe_console_entries(page, allow_network=True) == []


def test_a_log_line_appears_live_in_the_detail(page: Any, server: DashboardServer) -> None:
    spawn(server, "api", "alice")
    sign_in(page, server.admin_token)
    signed_in_as(page, "admin")
    go(page, "#/instance/api:alice")
    # open well before the stream's first keep-alive (15 s): Firefox's EventSource opens
    # only once some of the body has come
    wait_for(page, lambda d: text_of(d, "log-state") == "live", "the live log", 8)
    marker = uuid.uuid4().hex
    response = httpx.get(f"{server.url}/{marker}", headers={"host": "alice.api.localhost"})
    assert response.status_code == 200
    wait_for(page, lambda d: marker in text_of(d, "log"), "the tenant's log line")
    # the same words through the full-text search
    page.find_element(By.ID, "log-search").send_keys(marker)
    page.find_element(By.CSS_SELECTOR, "#log-form button[type=submit]").click()
    # the app logs each request twice (stdout and stderr: tests/apps.py)
    wait_for(page, lambda d: text_of(d, "log-state") == "2 match(es)", "two matches")
    assert severe_console_entries(page) == []


def test_the_charts_show_the_last_hours_requests(page: Any, server: DashboardServer) -> None:
    spawn(server, "api", "alice")
    response = httpx.get(f"{server.url}/chart", headers={"host": "alice.api.localhost"})
    assert response.status_code == 200
    sign_in(page, server.admin_token)
    signed_in_as(page, "admin")
    # the server samples every 10 s; the page asks again just after each sample
    wait_for(page, lambda d: peak(text_of(d, "server-rate")) > 0, "server rate", 40)
    assert peak(text_of(page, "server-p99")) > 0
    go(page, "#/instance/api:alice")
    wait_for(page, lambda d: peak(text_of(d, "instance-rate")) > 0, "its rate", 40)
    # the same sampler reads its process group's memory and CPU
    wait_for(page, lambda d: re.search(r"Memory\n[0-9.]+ MiB", text_of(d, "facts")), "memory")
    wait_for(page, lambda d: re.search(r"CPU\n[0-9.]+ %", text_of(d, "facts")), "CPU", 40)
    assert severe_console_entries(page) == []


def peak(caption: str) -> float:
    """The peak a chart's caption states (0 before the first sample)."""
    found = re.search(r"peak ([0-9.]+)", caption)
    return float(found.group(1)) if found else 0.0


def test_a_weight_change_shows_the_split(page: Any, server: DashboardServer) -> None:
    spawn(server, "api", "alice")
    spawn(server, "api", "bob")
    sign_in(page, server.admin_token)
    signed_in_as(page, "admin")
    go(page, "#/instance/api:alice")
    wait_for(page, lambda d: "api:bob" in text_of(d, "split"), "the split of service api")
    slider = page.find_element(By.ID, "weight")
    page.execute_script(
        "arguments[0].value = 25; arguments[0].dispatchEvent(new Event('input'))", slider
    )
    wait_for(page, lambda d: "api:alice: 20%" in text_of(d, "split"), "25 of 125")
    assert "api:bob: 80%" in text_of(page, "split")
    page.find_element(By.ID, "apply-weight").click()
    confirm(page)
    wait_for(page, lambda d: instances(server)["api:alice"]["weight"] == 25, "the weight applied")
    wait_for(page, lambda d: "Weight\n25" in text_of(d, "facts"), "the new weight on the page")
    assert re.search(r"Storage\n[0-9.]+ (B|KiB|MiB) \(no quota\)", text_of(page, "facts"))
    with server.client() as client:
        client.put("/api/instances/api:alice/weight", json={"weight": 100}).raise_for_status()
    assert severe_console_entries(page) == []


def test_deploy_with_its_health_wait_then_route(page: Any, server: DashboardServer) -> None:
    spawn(server, "api", "alice")
    sign_in(page, server.admin_token)
    signed_in_as(page, "admin")
    go(page, "#/instances")
    wait_for(page, lambda d: shown(d, "deploy-box"), "the deploy form")
    page.find_element(By.CSS_SELECTOR, "#deploy-box summary").click()
    for field, value in (("service", "api"), ("version", "v2"), ("weight", "50")):
        element = page.find_element(By.ID, f"deploy-{field}")
        element.clear()
        element.send_keys(value)
    page.find_element(By.CSS_SELECTOR, "#deploy button[type=submit]").click()
    confirm(page)
    wait_for(page, lambda d: text_of(d, "message") == "Deployed api:v2: healthy.", "the deploy")
    assert instances(server)["api:v2"]["weight"] == 50
    for field, value in (("service", "api"), ("from", "alice"), ("to", "v2")):
        page.find_element(By.ID, f"route-{field}").send_keys(value)
    page.find_element(By.CSS_SELECTOR, "#route button[type=submit]").click()
    confirm(page)
    wait_for(page, lambda d: text_of(d, "message").startswith("Routed api"), "the route")
    after = instances(server)
    assert (after["api:alice"]["weight"], after["api:v2"]["weight"]) == (0, 100)
    assert severe_console_entries(page) == []
    with server.client() as client:
        client.delete("/api/instances/api:v2").raise_for_status()
        client.put("/api/instances/api:alice/weight", json={"weight": 100}).raise_for_status()


def test_a_tenant_sees_and_acts_on_its_own_only(page: Any, server: DashboardServer) -> None:
    spawn(server, "api", "alice")
    spawn(server, "api", "bob")
    sign_in(page, server.tenant_tokens["alice"])
    signed_in_as(page, "tenant alice")
    go(page, "#/instances")
    wait_for(page, lambda d: row_ids(d) == ["api:alice"], "alice's instance only")
    assert page.find_element(By.ID, "spawn-tenant").get_attribute("readonly") is not None
    assert page.find_element(By.ID, "spawn-tenant").get_attribute("value") == "alice"
    go(page, "#/instance/api:alice")
    wait_for(page, lambda d: text_of(d, "log-state") == "live", "its own live log")
    assert shown(page, "restart")
    go(page, "#/instance/api:bob")
    wait_for(page, lambda d: shown(d, "not-yours"), "no bob")
    assert not shown(page, "restart")
    assert not shown(page, "stop")
    assert not shown(page, "log")  # (the API would have answered with alice's own lines)
    go(page, "#/instances")
    wait_for(page, lambda d: shown(d, "spawn"), "the instances tab")
    assert not shown(page, "deploy-box")  # admin only
    assert severe_console_entries(page, allow_network=True) == []


def test_stop_from_the_page(page: Any, server: DashboardServer) -> None:
    spawn(server, "api", "bob")
    sign_in(page, server.admin_token)
    signed_in_as(page, "admin")
    go(page, "#/instance/api:bob")
    wait_for(page, lambda d: shown(d, "stop"), "the stop button")
    page.find_element(By.ID, "stop").click()
    confirm(page)
    wait_for(page, lambda d: shown(d, "not-running"), "stopped")
    assert "api:bob" not in instances(server)
    # its history, from the audit rows, says so
    wait_for(page, lambda d: text_of(d, "events").split("\n")[0].endswith("stop"), "the stop")
    assert severe_console_entries(page) == []


def test_the_page_only_loads_from_its_own_origin(page: Any, server: DashboardServer) -> None:
    answer = httpx.get(server.url + "/")
    policy = dict(
        (part.split()[0], part.split()[1:])
        for part in answer.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == ["'none'"]
    assert all(set(sources) <= {"'self'", "'none'"} for sources in policy.values()), policy
    for asset in ("app.js", "style.css"):
        assert "content-security-policy" in httpx.get(f"{server.url}/assets/{asset}").headers
    # and the browser enforces it: a request to another origin is refused
    other = server.url.replace("127.0.0.1", "127.0.0.2")
    outcome = page.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(() => done('fetched'), (e) => done('refused'))",
        other + "/health",
    )
    assert outcome == "refused"
    # Chromium says "Content Security Policy", Firefox "Content-Security-Policy"
    wait_for(
        page,
        lambda d: any(
            re.search("Content.Security.Policy", e["message"]) for e in console_entries(d)
        ),
        "the refusal in the console",
    )


def test_dark_and_phone_sized(page: Any, server: DashboardServer, tmp_path: Path) -> None:
    sign_in(page, server.admin_token)
    signed_in_as(page, "admin")
    go(page, "#/instances")
    wait_for(page, lambda d: len(row_ids(d)) == 100, "the table")
    background = "return getComputedStyle(document.body).backgroundColor"
    assert page.execute_script(background) == "rgb(255, 255, 255)"
    emulate_phone_dark(page, True)
    try:
        wait_for(page, lambda d: d.execute_script(background) == "rgb(13, 17, 23)", "dark")
        # the page fits the phone's width; only the table scrolls sideways, in its box
        widths = "return [document.documentElement.scrollWidth, window.innerWidth]"
        wait_for(page, lambda d: d.execute_script(widths)[0] <= d.execute_script(widths)[1], "fit")
        page.save_screenshot(str(tmp_path / "phone-dark.png"))
    finally:
        emulate_phone_dark(page, False)
    assert severe_console_entries(page) == []


def test_the_page_reconnects_after_a_sigusr2_restart(page: Any, server: DashboardServer) -> None:
    spawn(server, "api", "alice")
    sign_in(page, server.admin_token)
    signed_in_as(page, "admin")
    go(page, "#/instances")
    wait_for(page, lambda d: text_of(d, "link") == "live", "the live list")
    server.stop_for_restart()
    wait_for(page, lambda d: text_of(d, "link") == "reconnecting…", "the lost server")
    server.start()
    server.wait_ready()
    wait_for(page, lambda d: text_of(d, "link") == "live", "the page back by itself")
    with server.client() as client:
        client.delete("/api/instances/tiny:t000").raise_for_status()
    wait_for(page, lambda d: "tiny:t000" not in row_ids(d), "updates from the new server")
    assert "api:alice" in row_ids(page)
    assert severe_console_entries(page, allow_network=True) == []


def test_too_many_wrong_tokens_say_when_to_retry(page: Any) -> None:
    """Last: it blocks this address's tokens for a few seconds (the limit is per client)."""
    wait_for(page, lambda d: focused(d) == "token", "the sign-in form")
    field = page.find_element(By.ID, "token")
    for attempt in range(11):
        field.clear()
        field.send_keys(f"wrong-token-{attempt:02}-0123456789" + Keys.ENTER)
        wait_for(page, lambda d: text_of(d, "signin-error") != "", f"answer {attempt}")
        if "retry in" in text_of(page, "signin-error"):
            break
    assert re.fullmatch(
        r"Too many refused tokens from this address: retry in [1-5] s\.",
        text_of(page, "signin-error"),
    ), text_of(page, "signin-error")
    assert severe_console_entries(page, allow_network=True) == []
