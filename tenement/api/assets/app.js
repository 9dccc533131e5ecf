// The tenement dashboard: plain JS modules, no build step, nothing from another origin.
//
// The token lives in sessionStorage (this tab, this origin only: tenant hosts are
// subdomains, another origin, and cannot read it) and goes out only as an
// Authorization header. The instance list is fetched conditionally (an unchanged list is
// a bodiless 304: see conditional()) when its stream says it changed, or polled (see
// POLL_MS) without one, only while the tab is visible; rows are kept by id and only
// changed cells are written.

const TOKEN_KEY = "tenement.token";
const POLL_MS = 2000;
const RETRY_MS = [500, 1000, 2000, 4000];
const LOG_LINES = 1000;
// Rows in the table at first: a table of 1,000 rows takes Chromium ~1 s to lay out.
const PAGE_ROWS = 100;
const HEALTHS = ["healthy", "degraded", "unhealthy", "failed", "unknown"];
const STATES = ["running", "starting", "failed"];
// In a fleet an instance of a down node may be orphaned (nothing runs it until it returns),
// and one being moved to another node is moving.
const FLEET_STATES = [...STATES, "orphaned", "moving"];
const NODE_STATES = ["up", "draining", "down"];

const $ = (id) => document.getElementById(id);

function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

// ---- the API -------------------------------------------------------------------------

class ApiFailure extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let session = null; // {token, admin, tenant}

// The API's answer to a request with the token; a refusal or an error is thrown as an
// ApiFailure with the API's message. A 304 is an answer (see conditional()).
async function send(method, path, body, token = session && session.token, extra = {}) {
  const headers = { ...extra, Authorization: "Bearer " + token };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiFailure(0, "The server is unreachable (" + error.message + ").");
  }
  if (response.status === 401) {
    throw new ApiFailure(401, "The token was refused: it is wrong, or it has been revoked.");
  }
  if (response.status === 429) {
    const wait = response.headers.get("retry-after") || "a few";
    throw new ApiFailure(429, `Too many refused tokens from this address: retry in ${wait} s.`);
  }
  if (!response.ok && response.status !== 304) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const data = await response.json();
      if (data && typeof data.error === "string") message = data.error;
    } catch {
      // no JSON body: the status says it
    }
    throw new ApiFailure(response.status, message);
  }
  return response;
}

async function call(method, path, body, token = session && session.token) {
  const response = await send(method, path, body, token);
  return response.status === 204 ? null : response.json();
}

// The last answer of each polled path, with its ETag and when it came (performance.now()).
const copies = new Map();

// GET `path` naming the copy we have: the server answers 304, without building the
// answer, when nothing in it changed but the clock (uptime and idle seconds: see
// since()). `authorized`: with the token (else a public path, null when it fails).
async function conditional(path, authorized) {
  const copy = copies.get(path);
  const extra = copy ? { "If-None-Match": copy.tag } : {};
  let response;
  if (authorized) {
    response = await send("GET", path, undefined, undefined, extra);
  } else {
    response = await fetch(path, { cache: "no-store", headers: extra }).catch(() => null);
    if (!response || !(response.ok || response.status === 304)) return null;
  }
  if (response.status === 304 && copy) return copy;
  const fresh = { tag: response.headers.get("etag"), data: await response.json(), at: performance.now() };
  if (fresh.tag) copies.set(path, fresh);
  else copies.delete(path);
  return fresh;
}

// Whole seconds since `copy` came: what a running instance's uptime and idle have grown.
function since(copy) {
  return Math.max(0, Math.floor((performance.now() - copy.at) / 1000));
}

// ---- messages, confirmation ---------------------------------------------------------

function showMessage(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = kind;
  box.hidden = false;
}

function clearMessage() {
  $("message").hidden = true;
}

function confirmAction(text) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  return new Promise((resolve) => {
    const done = (answer) => {
      $("confirm-ok").onclick = $("confirm-cancel").onclick = dialog.oncancel = null;
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    $("confirm-ok").onclick = () => done(true);
    $("confirm-cancel").onclick = () => done(false);
    dialog.oncancel = () => done(false);
    dialog.showModal();
    $("confirm-ok").focus();
  });
}

// Runs an action after confirmation; the API's error is shown verbatim.
async function act(question, action, success) {
  if (!(await confirmAction(question))) return;
  try {
    await action();
    showMessage(success, "ok");
    await refresh();
  } catch (error) {
    if (error.status === 401) return signOut(error.message);
    showMessage(error.message);
  }
}

// ---- the instance store, polled -----------------------------------------------------

const store = { instances: new Map(), loaded: false, listeners: new Set() };

// The fleet as GET /api/nodes says (admin only). Asked once at sign-in; a single host
// (fleet false) is never asked again, a fleet node only while the overview is shown, at
// the instance list's rhythm. The answer has no ETag: every node's silent_secs moves.
const fleet = { known: false, on: false, node: null, nodes: [], error: null, wanted: false };

function resetFleet() {
  Object.assign(fleet, { known: false, on: false, node: null, nodes: [], error: null });
}

// Whether the instances come from a fleet: the node list says so (admin), or, for a
// tenant, its instances carry their node.
function inFleet() {
  if (fleet.on) return true;
  for (const item of store.instances.values()) if (typeof item.node === "string") return true;
  return false;
}

async function askNodes() {
  try {
    const answer = await call("GET", "/api/nodes");
    Object.assign(fleet, {
      known: true,
      on: answer.fleet === true,
      node: answer.node,
      nodes: Array.isArray(answer.nodes) ? answer.nodes : [],
      error: null,
    });
  } catch (error) {
    if (error.status === 401) throw error;
    // the instance list may still come: keep the last nodes, say why they are old
    fleet.error = error.message;
  }
}
let pollTimer = null;
let failures = 0;

function setLink(text, state) {
  const link = $("link");
  link.textContent = text;
  link.dataset.state = state;
}

// The last answers refresh() got, so that show() can count uptime on without asking.
let shown = null;

async function refresh() {
  const nodes = session.admin && (!fleet.known || (fleet.on && fleet.wanted));
  const [instances, telemetry] = await Promise.all([
    conditional("/api/instances", true),
    conditional("/api/telemetry", false),
    nodes ? askNodes() : null,
  ]);
  shown = { instances, telemetry };
  show();
}

// The store from the last answers (and the usage the stream patched into them), their
// uptime and idle counted on by the seconds since they came.
function show() {
  if (!shown) return;
  const { instances, telemetry } = shown;
  const traffic = new Map();
  for (const item of (telemetry && telemetry.data.instances) || []) traffic.set(item.id, item);
  const grown = since(instances);
  const next = new Map();
  for (const fetched of instances.data) {
    const item = { ...fetched };
    // as the server counts them: only while a process runs
    if (item.pid !== null && (item.state === "running" || item.state === "starting")) {
      item.uptime_secs += grown;
      item.idle_secs += grown;
    }
    const seen = traffic.get(item.id);
    item.requests_total = seen ? seen.requests_total : 0;
    item.p99_ms = seen ? seen.request_duration_p99_ms : 0;
    next.set(item.id, item);
  }
  store.instances = next;
  store.loaded = true;
  for (const listener of store.listeners) listener();
}

// Live updates. On a single host the page opens GET /api/instances/stream, which says
// when something changed ("changed": refresh, conditionally) and sends the memory and
// CPU that changed at each sample ("usage": patched into the copy, no refetch); while
// it is open the page asks only every CHECK_MS (in case an event was lost), and counts
// uptime on every POLL_MS by itself. An idle page so costs the server nothing but the
// stream's check of two counters. Without the stream (it broke, or a fleet, whose
// lists and nodes come from other nodes too) the page polls every POLL_MS.
const CHECK_MS = 30000;
let stream = null; // the EventSource, or "opening" while its ticket is asked for
let ticker = null;
let polling = false; // a refresh is under way
let again = false; // the stream said "changed" meanwhile: refresh once more after it

function streamable() {
  if (!session || document.hidden || !window.EventSource) return false;
  return session.admin ? fleet.known && !fleet.on : !inFleet();
}

function streamOpen() {
  return stream instanceof EventSource && stream.readyState === EventSource.OPEN;
}

async function openStream() {
  if (stream !== null || !streamable()) return;
  stream = "opening";
  let ticket;
  try {
    ({ ticket } = await call("POST", "/api/logs/stream/ticket"));
  } catch {
    stream = null; // the next poll tries again
    return;
  }
  if (stream !== "opening" || !streamable()) {
    if (stream === "opening") stream = null;
    return;
  }
  const source = new EventSource(`/api/instances/stream?ticket=${encodeURIComponent(ticket)}`);
  stream = source;
  source.onopen = () => {
    $("link").dataset.stream = "open";
    // the list may have changed before the stream saw it: look once, then wait for news
    changed();
    restartTimer();
  };
  source.addEventListener("changed", changed);
  source.addEventListener("usage", (event) => patchUsage(JSON.parse(event.data)));
  // A ticket is good once: on any error poll, and open a new stream after a good poll.
  source.onerror = () => {
    closeStream();
    restartTimer();
  };
}

function closeStream() {
  if (stream instanceof EventSource) stream.close();
  stream = null;
  delete $("link").dataset.stream;
}

function changed() {
  if (polling) {
    again = true;
    return;
  }
  clearTimeout(pollTimer);
  pollTimer = null;
  poll();
}

// The stream's memory and CPU of the instances that changed, written into the copy.
function patchUsage(delta) {
  if (!shown) return;
  for (const item of shown.instances.data) {
    const usage = delta[item.id];
    if (usage && typeof item.node !== "string") {
      item.memory_bytes = usage.memory_bytes;
      item.cpu_percent = usage.cpu_percent;
    }
  }
  show();
}

function restartTimer() {
  clearTimeout(pollTimer);
  pollTimer = null;
  schedule();
}

async function poll() {
  pollTimer = null;
  if (!session) return;
  polling = true;
  try {
    await refresh();
    failures = 0;
    setLink("live", "live");
    openStream();
  } catch (error) {
    polling = false;
    again = false;
    if (error.status === 401) return signOut(error.message);
    failures += 1;
    setLink("reconnecting…", "down");
  }
  polling = false;
  if (again) {
    again = false;
    return poll();
  }
  schedule();
}

function schedule() {
  if (!session || document.hidden || pollTimer !== null) return;
  let delay = streamOpen() ? CHECK_MS : POLL_MS;
  if (failures) delay = RETRY_MS[Math.min(failures, RETRY_MS.length) - 1];
  pollTimer = setTimeout(poll, delay);
  if (ticker === null) ticker = setInterval(() => streamOpen() && show(), POLL_MS);
}

function stopUpdates() {
  clearTimeout(pollTimer);
  pollTimer = null;
  clearInterval(ticker);
  ticker = null;
  closeStream();
}

document.addEventListener("visibilitychange", () => {
  // A hidden tab neither polls nor streams (an open log stream only gets its keep-alive).
  if (document.hidden) {
    stopUpdates();
  } else if (session) {
    poll();
  }
});

// ---- formatting ---------------------------------------------------------------------

function duration(secs) {
  if (secs < 60) return `${secs}s`;
  if (secs < 3600) return `${Math.floor(secs / 60)}m ${secs % 60}s`;
  if (secs < 86400) return `${Math.floor(secs / 3600)}h ${Math.floor((secs % 3600) / 60)}m`;
  return `${Math.floor(secs / 86400)}d ${Math.floor((secs % 86400) / 3600)}h`;
}

function bytes(value) {
  if (value === null || value === undefined) return "no quota";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = value;
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit += 1;
  }
  return `${unit ? n.toFixed(1) : n} ${units[unit]}`;
}

function storage(used, quota) {
  if (quota === null) return `${bytes(used)} (no quota)`;
  return `${bytes(used)} of ${bytes(quota)} (${quota ? Math.round((used * 100) / quota) : 0}%)`;
}

function healthBadge(health) {
  return h("span", { class: `health h-${health}` }, health);
}

function instanceLink(id) {
  return h("a", { href: `#/instance/${encodeURIComponent(id)}` }, id);
}

// ---- charts (inline SVG: no library, nothing the policy has to allow) ----------------

const SVG = "http://www.w3.org/2000/svg";
const HISTORY_MS = 10000;

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

// A line chart of `values` (oldest first), one point per `interval` seconds.
function chart(id, title, values, unit, digits) {
  const width = 600;
  const height = 120;
  const max = Math.max(...values, 0);
  const top = max > 0 ? max * 1.1 : 1;
  const span = Math.max(values.length - 1, 1);
  // one sample: a level line across, rather than a single invisible point
  const points = (values.length === 1 ? [values[0], values[0]] : values)
    .map((v, n) => `${((n / span) * width).toFixed(1)},${(height - (v / top) * height).toFixed(1)}`)
    .join(" ");
  const last = values.length ? values[values.length - 1] : null;
  const caption = last === null ? "no samples yet" : `now ${last.toFixed(digits)} ${unit}, peak ${max.toFixed(digits)} ${unit}`;
  const picture = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    preserveAspectRatio: "none",
    class: "chart",
    role: "img",
    "aria-label": `${title}: ${caption}`,
  });
  picture.append(svg("polyline", { points, class: "line", fill: "none" }));
  return h("figure", { id, class: "card chart-box" },
    h("figcaption", {}, h("strong", {}, title), " ", h("span", { class: "muted" }, `last hour · ${caption}`)),
    picture);
}

// Charts of a History answer (requests per interval -> per second).
function historyCharts(prefix, data) {
  const perSecond = data.requests.map((n) => n / data.interval_secs);
  return [
    chart(`${prefix}-rate`, "Requests per second", perSecond, "req/s", 2),
    chart(`${prefix}-p99`, "p99 latency", data.p99_ms, "ms", 0),
  ];
}

// Refreshes `box` with the charts of `path` every HISTORY_MS while the view is shown.
function liveCharts(box, prefix, path) {
  let timer = null;
  let stopped = false;
  const load = async () => {
    timer = null;
    if (stopped) return;
    let delay = HISTORY_MS;
    if (!document.hidden) {
      try {
        const data = await call("GET", path);
        box.replaceChildren(...historyCharts(prefix, data));
        // Ask again just after the server's next sample (clamped: the clocks may differ).
        if (data.end !== null) {
          const next = data.end + data.interval_secs * 1000 + 500 - Date.now();
          delay = Math.min(Math.max(next, 1000), HISTORY_MS);
        }
      } catch (error) {
        if (error.status === 401) return signOut(error.message);
      }
    }
    if (!stopped) timer = setTimeout(load, delay);
  };
  load();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

// ---- sign-in ------------------------------------------------------------------------

function showSignIn(note) {
  stopView();
  $("tabs").hidden = true;
  $("signout").hidden = true;
  $("who").textContent = "";
  setLink("", "");
  const input = h("input", {
    id: "token",
    type: "password",
    autocomplete: "off",
    required: true,
    "aria-describedby": "signin-note",
  });
  const error = h("p", { id: "signin-error", class: "error", role: "alert" });
  const form = h(
    "form",
    { id: "signin", class: "card" },
    h("h1", {}, "Sign in"),
    h(
      "p",
      { id: "signin-note" },
      "An admin token or a tenant token (ten token-gen). It is kept for this tab only."
    ),
    h("label", { for: "token" }, "Token"),
    input,
    h("button", { type: "submit", class: "primary" }, "Sign in"),
    error
  );
  if (note) error.textContent = note;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      await signIn(input.value.trim());
    } catch (failure) {
      error.textContent = failure.message;
    }
  });
  $("view").replaceChildren(form);
  input.focus();
}

async function signIn(token) {
  const who = await call("GET", "/api/whoami", undefined, token);
  session = { token, admin: who.admin, tenant: who.tenant };
  sessionStorage.setItem(TOKEN_KEY, token);
  clearMessage();
  failures = 0;
  await poll();
  if (!session) return; // refused meanwhile: the sign-in form is back
  $("tabs").hidden = false;
  $("signout").hidden = false;
  route();
  // last: the page is ready once it says who is signed in
  $("who").textContent = who.admin ? "admin" : `tenant ${who.tenant}`;
}

function signOut(note) {
  session = null;
  sessionStorage.removeItem(TOKEN_KEY);
  stopUpdates();
  shown = null;
  store.instances = new Map();
  store.loaded = false;
  resetFleet();
  copies.clear();
  clearMessage();
  showSignIn(note);
}

// ---- views --------------------------------------------------------------------------

let current = null; // {stop()} of the view on screen

function stopView() {
  if (current) current.stop();
  current = null;
}

function mount(view) {
  stopView();
  current = view;
  store.listeners.add(view.update);
  const stop = view.stop;
  view.stop = () => {
    store.listeners.delete(view.update);
    if (stop) stop();
  };
  view.update();
}

function route() {
  if (!session) return showSignIn();
  const [path, query] = (location.hash.slice(1) || "/overview").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  for (const tab of document.querySelectorAll("#tabs a")) {
    if (tab.dataset.tab === parts[0]) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  clearMessage();
  if (parts[0] === "instances") mount(instancesView(params));
  else if (parts[0] === "instance" && parts[1]) mount(detailView(decodeURIComponent(parts[1])));
  else mount(overviewView());
}

window.addEventListener("hashchange", route);

// Overview: counts by state and health, and what restarted or failed lately.
function overviewView() {
  const root = h("section", { id: "overview" });
  const charts = h("div", { class: "columns", id: "server-charts" });
  $("view").replaceChildren(h("h1", {}, "Overview"), charts, root);
  // The whole server's history is the admin's; a tenant sees its instance's in its detail.
  const stopCharts = session.admin ? liveCharts(charts, "server", "/api/history") : null;
  fleet.wanted = true;
  const stop = () => {
    fleet.wanted = false;
    if (stopCharts) stopCharts();
  };
  const update = () => {
    const all = [...store.instances.values()];
    const byState = new Map((inFleet() ? FLEET_STATES : STATES).map((s) => [s, 0]));
    const byHealth = new Map(HEALTHS.map((s) => [s, 0]));
    for (const item of all) {
      byState.set(item.state, (byState.get(item.state) || 0) + 1);
      byHealth.set(item.health, (byHealth.get(item.health) || 0) + 1);
    }
    const card = (label, count, href, cls) =>
      h("a", { class: `count ${cls || ""}`, href }, h("strong", {}, String(count)), label);
    const restarted = all
      .filter((i) => i.restarts > 0)
      .sort((a, b) => a.uptime_secs - b.uptime_secs)
      .slice(0, 10);
    const failing = all
      .filter((i) => i.state === "failed" || ["failed", "unhealthy", "degraded"].includes(i.health))
      .slice(0, 10);
    const list = (title, items, detail) =>
      h(
        "div",
        { class: "card" },
        h("h2", {}, title),
        items.length
          ? h("ul", {}, items.map((i) => h("li", {}, instanceLink(i.id), " ", detail(i))))
          : h("p", { class: "muted" }, "None.")
      );
    root.replaceChildren(
      session.admin && fleet.on ? nodesPanel() : null,
      h(
        "div",
        { class: "counts", id: "state-counts" },
        card("instances", all.length, "#/instances"),
        [...byState].map(([s, n]) => card(s, n, `#/instances?state=${s}`, `s-${s}`))
      ),
      h(
        "div",
        { class: "counts", id: "health-counts" },
        [...byHealth].map(([s, n]) => card(s, n, `#/instances?health=${s}`, `h-${s}`))
      ),
      h(
        "div",
        { class: "columns" },
        list("Most recently restarted", restarted, (i) =>
          h("span", { class: "muted" }, `${i.restarts} restart(s), up ${duration(i.uptime_secs)}`)
        ),
        list("Failing", failing, (i) => healthBadge(i.health))
      )
    );
  };
  return { update, stop };
}

// The fleet's nodes (admin, fleet only). Every text is the API's, written as text: names
// and addresses come from other hosts through the shared database.
function nodesPanel() {
  const head = ["Node", "Address", "State", "Last heartbeat", "Instances", "Memory available of total"];
  const rows = fleet.nodes.map((node) => {
    const state = String(node.state);
    const known = NODE_STATES.includes(state) ? state : "unknown";
    const heard = node.silent_secs === null ? "—" : `${duration(Math.floor(node.silent_secs))} ago`;
    const memory = `${bytes(node.memory_available_bytes)} of ${bytes(node.memory_total_bytes)}`;
    return h(
      "tr",
      { "data-node": String(node.name) },
      // (a long name is cut short on screen; its title holds it whole)
      h("td", { class: "clip", title: String(node.name) }, String(node.name),
        node.name === fleet.node ? h("span", { class: "muted" }, " (this node)") : null),
      h("td", { class: "clip", title: String(node.advertise) }, String(node.advertise)),
      h("td", {}, h("span", { class: `node n-${known}` }, state)),
      h("td", {}, heard),
      h("td", { class: "num" }, String(node.instances)),
      h("td", { class: "num" }, memory)
    );
  });
  return h(
    "div",
    { class: "card", id: "nodes" },
    h("h2", {}, "Nodes"),
    fleet.error ? h("p", { class: "error", id: "nodes-error" }, `Not refreshed: ${fleet.error}`) : null,
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        {},
        h("thead", {}, h("tr", {}, head.map((label) => h("th", { scope: "col" }, label)))),
        h("tbody", { id: "node-rows" }, rows)
      )
    )
  );
}

const NODE_COLUMN = { key: "node", label: "Node", show: (v) => (typeof v === "string" ? v : "—") };

const COLUMNS = [
  { key: "id", label: "Instance" },
  { key: "service", label: "Service" },
  { key: "state", label: "State" },
  { key: "health", label: "Health" },
  { key: "uptime_secs", label: "Uptime", num: true, show: duration },
  { key: "idle_secs", label: "Idle", num: true, show: duration },
  { key: "restarts", label: "Restarts", num: true },
  { key: "weight", label: "Weight", num: true },
  { key: "requests_total", label: "Requests", num: true },
  { key: "p99_ms", label: "p99 ms", num: true, show: (v) => v.toFixed(1) },
  { key: "memory_bytes", label: "Memory", num: true, show: (v) => (v === null ? "—" : bytes(v)) },
  { key: "cpu_percent", label: "CPU %", num: true, show: (v) => (v === null ? "—" : v.toFixed(1)) },
];

// Instances: a keyed table; a poll rewrites only the cells whose text changed.
function instancesView(params) {
  const filters = {
    search: params.get("search") || "",
    service: params.get("service") || "",
    health: params.get("health") || "",
    state: params.get("state") || "",
  };
  // a Node column only in a fleet (known before the first view: sign-in awaits a poll)
  const columns = inFleet() ? [...COLUMNS.slice(0, 2), NODE_COLUMN, ...COLUMNS.slice(2)] : COLUMNS;
  const healthAt = columns.findIndex((col) => col.key === "health");
  let sort = { key: "id", dir: 1 };
  let limit = PAGE_ROWS;
  const rows = new Map(); // id -> {tr, cells, values}
  let order = [];

  const select = (name, values) =>
    h(
      "select",
      { id: `filter-${name}`, "aria-label": `Filter by ${name}`, onchange: (e) => {
        filters[name] = e.target.value;
        limit = PAGE_ROWS;
        update();
      } },
      h("option", { value: "" }, `any ${name}`),
      values.map((v) => h("option", { value: v, selected: filters[name] === v }, v))
    );
  const serviceSelect = select("service", []);
  const search = h("input", {
    id: "filter-search",
    type: "search",
    placeholder: "Search by id",
    "aria-label": "Search by id",
    value: filters.search,
    oninput: (e) => {
      filters.search = e.target.value.trim();
      limit = PAGE_ROWS;
      update();
    },
  });
  const headRow = h(
    "tr",
    {},
    columns.map((col) =>
      h(
        "th",
        { scope: "col", "data-key": col.key, class: col.num ? "num" : "" },
        h(
          "button",
          { type: "button", onclick: () => {
            sort = { key: col.key, dir: sort.key === col.key ? -sort.dir : 1 };
            update();
          } },
          col.label
        )
      )
    )
  );
  const tbody = h("tbody", { id: "rows" });
  const summary = h("p", { id: "summary", class: "muted", "aria-live": "polite" });
  const more = h("button", { type: "button", id: "show-more", hidden: true, onclick: () => {
    limit += PAGE_ROWS;
    update();
  } });
  const root = h(
    "section",
    { id: "instances" },
    h("h1", {}, "Instances"),
    spawnForm(),
    session.admin ? deployForms() : null,
    h(
      "div",
      { class: "filters" },
      search,
      serviceSelect,
      select("health", HEALTHS),
      select("state", inFleet() ? FLEET_STATES : STATES)
    ),
    summary,
    h("div", { class: "scroll" }, h("table", {}, h("thead", {}, headRow), tbody)),
    more
  );
  $("view").replaceChildren(root);

  function makeRow(item) {
    const cells = columns.map((col) => h("td", { class: col.num ? "num" : "" }));
    const tr = h("tr", { "data-id": item.id }, cells);
    cells[0].append(instanceLink(item.id));
    const badge = h("span", { class: "health" });
    cells[healthAt].append(badge);
    return { tr, cells, badge, values: new Array(columns.length) };
  }

  function fill(row, item) {
    columns.forEach((col, index) => {
      if (index === 0) return;
      const value = item[col.key];
      if (row.values[index] === value) return;
      row.values[index] = value;
      const text = col.show ? col.show(value) : String(value);
      if (col.key === "health") {
        row.badge.className = `health h-${value}`;
        row.badge.textContent = text;
      } else {
        row.cells[index].textContent = text;
        // (the state's colour: orphaned stands out)
        if (col.key === "state") row.cells[index].dataset.state = text;
      }
    });
  }

  function update() {
    const all = [...store.instances.values()];
    const services = [...new Set(all.map((i) => i.service))].sort();
    if (serviceSelect.options.length - 1 !== services.length) {
      serviceSelect.replaceChildren(
        h("option", { value: "" }, "any service"),
        services.map((v) => h("option", { value: v, selected: filters.service === v }, v))
      );
    }
    const needle = filters.search.toLowerCase();
    const shown = all.filter(
      (i) =>
        (!needle || i.id.toLowerCase().includes(needle)) &&
        (!filters.service || i.service === filters.service) &&
        (!filters.health || i.health === filters.health) &&
        (!filters.state || i.state === filters.state)
    );
    const { key, dir } = sort;
    shown.sort((a, b) => {
      const x = a[key] ?? -1;
      const y = b[key] ?? -1;
      if (x === y) return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
      return (x < y ? -1 : 1) * dir;
    });
    for (const [id, row] of rows) {
      if (!store.instances.has(id)) {
        row.tr.remove();
        rows.delete(id);
      }
    }
    const visible = shown.slice(0, limit);
    const trs = visible.map((item) => {
      let row = rows.get(item.id);
      if (!row) rows.set(item.id, (row = makeRow(item)));
      fill(row, item);
      return row.tr;
    });
    const ids = visible.map((i) => i.id);
    if (ids.length !== order.length || ids.some((id, n) => id !== order[n])) {
      tbody.replaceChildren(...trs);
      order = ids;
    }
    for (const th of headRow.children) {
      th.setAttribute(
        "aria-sort",
        th.dataset.key === key ? (dir > 0 ? "ascending" : "descending") : "none"
      );
    }
    summary.textContent = store.loaded
      ? `${shown.length} of ${all.length} instance(s)` +
        (visible.length < shown.length ? `, the first ${visible.length} shown` : "")
      : "Loading…";
    more.hidden = visible.length >= shown.length;
    more.textContent = `Show ${Math.min(PAGE_ROWS, shown.length - visible.length)} more`;
    // for bench/dashboard.py: when the table first showed the server's instances
    if (store.loaded && !performance.getEntriesByName("tenement:table").length) {
      performance.mark("tenement:table");
    }
  }
  return { update };
}

// Deploy (with the health wait's progress) and route: admin only, as the API says.
function deployForms() {
  const field = (id, label, props = {}) => [
    h("label", { for: id }, label),
    h("input", { id, required: true, ...props }),
  ];
  const progress = h("p", { id: "deploy-progress", class: "muted", "aria-live": "polite" });
  const deploy = h(
    "form",
    { id: "deploy", class: "inline" },
    field("deploy-service", "Service", { placeholder: "service" }),
    field("deploy-version", "Version", { placeholder: "v2" }),
    field("deploy-weight", "Weight", { type: "number", min: "0", max: "100", value: "100" }),
    field("deploy-timeout", "Timeout (s)", { type: "number", min: "1", value: "30" }),
    h("button", { type: "submit" }, "Deploy")
  );
  deploy.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = (id) => $(id).value.trim();
    const body = {
      process: value("deploy-service"),
      version: value("deploy-version"),
      weight: Number(value("deploy-weight")),
      timeout: Number(value("deploy-timeout")),
    };
    const id = `${body.process}:${body.version}`;
    const began = Date.now();
    // While the API waits for health, show the new instance as the list sees it.
    const tick = () => {
      const item = store.instances.get(id);
      const seen = item ? `${item.state}, ${item.health}` : "not started yet";
      progress.textContent = `Deploying ${id}: waiting for health, ${Math.round(
        (Date.now() - began) / 1000
      )} s of ${body.timeout} s (${seen})`;
    };
    let timer = null;
    await act(
      `Deploy ${id} with weight ${body.weight}?`,
      () => {
        tick();
        timer = setInterval(tick, 500);
        return call("POST", "/api/deploy", body);
      },
      `Deployed ${id}: healthy.`
    );
    clearInterval(timer);
    progress.textContent = "";
  });
  const route = h(
    "form",
    { id: "route", class: "inline" },
    field("route-service", "Service", { placeholder: "service" }),
    field("route-from", "From", { placeholder: "v1" }),
    field("route-to", "To", { placeholder: "v2" }),
    h("button", { type: "submit" }, "Route")
  );
  route.addEventListener("submit", (event) => {
    event.preventDefault();
    const [process, from, to] = ["route-service", "route-from", "route-to"].map((id) =>
      $(id).value.trim()
    );
    act(
      `Move all traffic of ${process} from ${from} to ${to}?`,
      () => call("POST", "/api/route", { process, from, to }),
      `Routed ${process} from ${from} to ${to}.`
    );
  });
  return h(
    "details",
    { class: "card", id: "deploy-box" },
    h("summary", {}, "Deploy a version, route traffic"),
    deploy,
    progress,
    route
  );
}

function spawnForm() {
  const service = h("input", { id: "spawn-service", required: true, placeholder: "service" });
  const tenant = h("input", {
    id: "spawn-tenant",
    required: true,
    placeholder: "tenant",
    value: session.tenant || "",
    readonly: session.tenant !== null,
  });
  const form = h(
    "form",
    { id: "spawn", class: "inline" },
    h("label", { for: "spawn-service" }, "Service"),
    service,
    h("label", { for: "spawn-tenant" }, "Tenant"),
    tenant,
    h("button", { type: "submit" }, "Spawn")
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = `${service.value.trim()}:${tenant.value.trim()}`;
    act(
      `Spawn ${id}?`,
      () => call("POST", "/api/instances/spawn", { process: service.value.trim(), id: tenant.value.trim() }),
      `Spawned ${id}.`
    );
  });
  return form;
}

// Instance detail: its numbers, actions, and its log, live.
function detailView(id) {
  const [service, tenant] = id.split(":");
  if (!session.admin && tenant !== session.tenant) {
    // The API refuses it anyway; say why rather than show empty panels.
    $("view").replaceChildren(
      h("h1", {}, id),
      h("p", { id: "not-yours" }, `A tenant token reaches only its own instances (${session.tenant}).`)
    );
    return { update: () => {} };
  }
  const facts = h("dl", { id: "facts", class: "facts" });
  const badge = h("span", { class: "health", id: "detail-health" });
  const slider = h("input", {
    id: "weight",
    type: "range",
    min: "0",
    max: "100",
    step: "1",
    "aria-label": "Weight",
  });
  const weightValue = h("output", { id: "weight-value", for: "weight" });
  const split = h("ul", { id: "split", class: "split" });
  let sliderTouched = false;
  slider.addEventListener("input", () => {
    sliderTouched = true;
    showSplit();
  });
  const actions = h(
    "div",
    { class: "actions" },
    h("button", { type: "button", id: "restart", onclick: () =>
      act(`Restart ${id}?`, () => call("POST", `/api/instances/${id}/restart`), `Restarted ${id}.`) },
      "Restart"),
    h("button", { type: "button", id: "stop", class: "danger", onclick: () =>
      act(`Stop ${id}?`, () => call("DELETE", `/api/instances/${id}`), `Stopped ${id}.`) },
      "Stop")
  );
  const weightBox = h(
    "div",
    { class: "card" },
    h("h2", {}, "Weight"),
    h("div", { class: "inline" }, slider, weightValue,
      h("button", { type: "button", id: "apply-weight", onclick: () => {
        const weight = Number(slider.value);
        act(`Set the weight of ${id} to ${weight}?`,
          () => call("PUT", `/api/instances/${id}/weight`, { weight }),
          `Weight of ${id} set to ${weight}.`).then(() => { sliderTouched = false; });
      } }, "Apply")),
    h("p", { class: "muted" }, `Traffic split of ${service} with this weight:`),
    split
  );
  const logs = logPanel(service, tenant);
  const events = h("ol", { id: "events", class: "events" });
  let eventsKey = null;
  // The audit rows change with what the list shows: read them again when that changes.
  const loadEvents = async (key) => {
    if (key === eventsKey) return;
    eventsKey = key;
    try {
      const rows = await call("GET", `/api/instances/${id}/events?limit=20`);
      events.replaceChildren(
        ...rows.map((row) =>
          h("li", { class: row.success ? "" : "failure" },
            h("time", {}, new Date(row.timestamp).toLocaleString()), " ",
            h("strong", {}, row.action), row.success ? "" : " (failed)",
            row.details ? ` ${row.details}` : "")
        )
      );
      if (!rows.length) events.replaceChildren(h("li", { class: "muted" }, "No events."));
    } catch (error) {
      if (error.status === 401) return signOut(error.message);
      eventsKey = null;
    }
  };
  const charts = h("div", { class: "columns", id: "instance-charts" });
  const stopCharts = liveCharts(charts, "instance", `/api/instances/${id}/history`);
  const root = h(
    "section",
    { id: "detail" },
    h("h1", {}, id, " ", badge),
    h("div", { id: "running" }, facts, actions, charts, weightBox),
    h("p", { id: "not-running", hidden: true }, "This instance is not running."),
    h("div", { class: "card" }, h("h2", {}, "Events"), events),
    logs.node
  );
  $("view").replaceChildren(root);

  function showSplit() {
    const mine = Number(slider.value);
    weightValue.textContent = String(mine);
    const peers = [...store.instances.values()].filter((i) => i.service === service);
    const weights = peers.map((i) => (i.id === id ? mine : i.weight));
    const total = weights.reduce((a, b) => a + b, 0);
    split.replaceChildren(
      ...peers.map((i, n) =>
        h("li", { "data-id": i.id }, `${i.id}: ${total ? Math.round((weights[n] * 100) / total) : 0}%`)
      )
    );
  }

  function update() {
    const item = store.instances.get(id);
    if (store.loaded) {
      loadEvents(item ? `${item.state} ${item.restarts} ${item.weight} ${item.pid}` : "gone");
    }
    $("running").hidden = !item;
    $("not-running").hidden = !store.loaded || !!item;
    if (!item) {
      badge.className = "health";
      badge.textContent = store.loaded ? "not running" : "";
      return;
    }
    badge.className = `health h-${item.health}`;
    badge.textContent = item.health;
    const rows = [
      ["State", item.state],
      ["Uptime", duration(item.uptime_secs)],
      ["Idle", duration(item.idle_secs)],
      ["Restarts", item.restarts],
      ["Weight", item.weight],
      ["Requests", item.requests_total],
      ["p99", `${item.p99_ms.toFixed(1)} ms`],
      ["Memory", item.memory_bytes === null ? "— (sampled every 10 s)" : bytes(item.memory_bytes)],
      ["CPU", item.cpu_percent === null ? "— (sampled every 10 s)" : `${item.cpu_percent.toFixed(1)} %`],
      ["Storage", storage(item.storage_used_bytes, item.storage_quota_bytes)],
      ["Listens on", item.socket],
      ["pid", item.pid === null ? "—" : item.pid],
    ];
    facts.replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]));
    if (!sliderTouched) slider.value = String(item.weight);
    showSplit();
  }
  return {
    update,
    stop: () => {
      logs.stop();
      stopCharts();
    },
  };
}

// The log of one instance: live over SSE (with a single-use ticket), or an FTS search.
function logPanel(service, tenant) {
  const lines = h("ol", { id: "log", class: "log", "aria-live": "off" });
  const state = h("span", { id: "log-state", class: "muted" });
  const level = h(
    "select",
    { id: "log-level", "aria-label": "Level" },
    h("option", { value: "" }, "all levels"),
    h("option", { value: "stdout" }, "stdout"),
    h("option", { value: "stderr" }, "stderr")
  );
  const search = h("input", {
    id: "log-search",
    type: "search",
    placeholder: "Search (full text)",
    "aria-label": "Search the log",
  });
  const form = h("form", { class: "inline", id: "log-form" }, level, search,
    h("button", { type: "submit" }, "Search"), state);
  let source = null;
  let stopped = false;
  let retry = null;
  let attempt = 0;

  const add = (entry) => {
    const time = new Date(entry.timestamp).toLocaleTimeString();
    lines.append(h("li", { class: entry.level }, h("time", {}, time), " ", entry.message));
    while (lines.childElementCount > LOG_LINES) lines.firstElementChild.remove();
    lines.scrollTop = lines.scrollHeight;
  };

  const close = () => {
    if (source) source.close();
    source = null;
    clearTimeout(retry);
  };

  const query = () => {
    const params = new URLSearchParams({ process: service, id: tenant });
    if (level.value) params.set("level", level.value);
    return params;
  };

  async function live(backlog) {
    close();
    if (stopped) return;
    try {
      const { ticket } = await call("POST", "/api/logs/stream/ticket");
      if (stopped || search.value.trim()) return;
      const params = query();
      params.set("backlog", String(backlog));
      params.set("ticket", ticket);
      source = new EventSource(`/api/logs/stream?${params}`);
      source.onopen = () => {
        attempt = 0;
        state.textContent = "live";
      };
      source.onmessage = (event) => add(JSON.parse(event.data));
      // A ticket is good once: on any error open a new stream with a new one.
      source.onerror = () => {
        close();
        reconnect();
      };
    } catch (error) {
      if (error.status === 401) return signOut(error.message);
      reconnect();
    }
  }

  function reconnect() {
    if (stopped) return;
    state.textContent = "reconnecting…";
    attempt += 1;
    retry = setTimeout(() => live(0), RETRY_MS[Math.min(attempt, RETRY_MS.length) - 1]);
  }

  async function find(words) {
    close();
    const params = query();
    params.set("search", words);
    params.set("limit", "500");
    state.textContent = "searching…";
    try {
      const entries = await call("GET", `/api/logs?${params}`);
      lines.replaceChildren();
      entries.forEach(add);
      state.textContent = `${entries.length} match(es)`;
    } catch (error) {
      state.textContent = "";
      showMessage(error.message);
    }
  }

  const restart = () => {
    lines.replaceChildren();
    const words = search.value.trim();
    if (words) find(words);
    else live(200);
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    restart();
  });
  level.addEventListener("change", restart);
  search.addEventListener("search", restart);
  restart();

  const node = h("div", { class: "card" }, h("h2", {}, "Log"), form, lines);
  return {
    node,
    stop: () => {
      stopped = true;
      close();
    },
  };
}

// ---- start --------------------------------------------------------------------------

$("signout").addEventListener("click", () => signOut());

// A reload keeps the tab's token; while the server restarts, keep trying it.
function resume(token, attempt = 0) {
  signIn(token).catch((error) => {
    if (error.status !== 0) return signOut(error.message);
    $("view").replaceChildren(h("p", { id: "waiting" }, `${error.message} Retrying…`));
    setTimeout(() => resume(token, attempt + 1), RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)]);
  });
}

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) resume(saved);
else showSignIn();
