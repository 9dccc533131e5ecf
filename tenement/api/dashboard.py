"""``GET /`` and ``/assets/*``: the dashboard, plain JS modules shipped inside the package.

No build step and nothing from another origin: the files in ``tenement/api/assets/``
are served as they are. The page names each asset with a hash of its content
(``?v=``), so the assets may be cached for a day (as the reference) and an upgrade is
still seen at once. Every answer carries a Content-Security-Policy that allows only
this origin, and no inline script or style.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import attrs

from tenement.api import http
from tenement.api.app import ApiContext, Request, not_found
from tenement.types import Send

ASSETS = Path(__file__).with_name("assets")

CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
}

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


@attrs.frozen
class Asset:
    body: bytes
    content_type: str


@functools.cache
def assets() -> dict[str, Asset]:
    """The served files by name, and ``index.html`` with each asset's content hash."""
    found = {
        path.name: Asset(path.read_bytes(), CONTENT_TYPES[path.suffix])
        for path in sorted(ASSETS.iterdir())
        if path.suffix in CONTENT_TYPES
    }
    page = found.pop("index.html").body
    for name, asset in found.items():
        digest = hashlib.sha256(asset.body).hexdigest()[:12]
        page = page.replace(b"{{" + name.encode() + b"}}", digest.encode())
    found["index.html"] = Asset(page, CONTENT_TYPES[".html"])
    return found


def _page() -> http.Response:
    return http.Response(
        200,
        assets()["index.html"].body,
        CONTENT_TYPES[".html"],
        ((b"cache-control", b"public, max-age=0, must-revalidate"), *SECURITY_HEADERS),
    )


async def index(api: ApiContext, request: Request, send: Send) -> http.Response:
    return _page()


async def asset(api: ApiContext, request: Request, send: Send) -> http.Response:
    """One asset, cached for a day (the page names it by content); the page for any
    other name, as the reference's SPA fallback does."""
    found = assets().get(request.params.get("path", ""))
    if found is None or request.params["path"] == "index.html":
        return _page()
    return http.Response(
        200,
        found.body,
        found.content_type,
        ((b"cache-control", b"public, max-age=86400"), *SECURITY_HEADERS),
    )


async def asset_fallback(api: ApiContext, request: Request, send: Send) -> http.Response:
    """The API's default handler: the reference's SPA fallback answers an unknown asset
    path (any method, any depth under ``/assets/``) with the dashboard page; any other
    unknown path is 404."""
    if request.scope["path"].startswith("/assets/"):
        return _page()
    return await not_found(api, request, send)
