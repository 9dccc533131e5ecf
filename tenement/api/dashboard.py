"""``GET /``: a small self-contained status page that polls ``/api/telemetry``."""

from __future__ import annotations

from tenement.api import http
from tenement.api.app import ApiContext, Request, not_found
from tenement.types import Send

PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tenement dashboard</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}
td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}</style></head>
<body><h1>tenement</h1><p id="summary">loading&hellip;</p>
<table><thead><tr><th>instance</th><th>health</th><th>uptime</th><th>idle</th>
<th>restarts</th><th>weight</th><th>requests</th><th>p99 ms</th></tr></thead>
<tbody id="rows"></tbody></table>
<script>
function cell(row, value) { row.insertCell().textContent = value; }
async function refresh() {
  try {
    const data = await (await fetch("/api/telemetry")).json();
    const s = data.summary;
    document.getElementById("summary").textContent =
      s.total_instances + " instance(s), " + s.healthy_instances + " healthy, " +
      s.total_requests + " request(s)";
    const rows = document.getElementById("rows");
    rows.replaceChildren();
    for (const i of data.instances) {
      const row = rows.insertRow();
      [i.id, i.health, i.uptime_secs + "s", i.idle_secs + "s", i.restarts, i.weight,
       i.requests_total, i.request_duration_p99_ms.toFixed(1)].forEach(v => cell(row, v));
    }
  } catch (e) {
    document.getElementById("summary").textContent = "server unreachable: " + e;
  }
}
refresh(); setInterval(refresh, 5000);
</script></body></html>
"""


async def index(api: ApiContext, request: Request, send: Send) -> http.Response:
    return http.Response(
        200,
        PAGE,
        "text/html; charset=utf-8",
        ((b"cache-control", b"public, max-age=0, must-revalidate"),),
    )


async def asset_fallback(api: ApiContext, request: Request, send: Send) -> http.Response:
    """The API's default handler: the reference's SPA fallback answers an unknown asset
    path (any method, any depth under ``/assets/``) with the dashboard page; any other
    unknown path is 404."""
    if request.scope["path"].startswith("/assets/"):
        return await index(api, request, send)
    return await not_found(api, request, send)
