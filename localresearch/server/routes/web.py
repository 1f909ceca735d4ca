"""The browser page: its static files with strict security headers, and `research web` sign-in."""

from __future__ import annotations

import functools
import hashlib
import re
from importlib import resources

from aiohttp import web

from localresearch.api.access import SigninLink
from localresearch.server.errors import APIError
from localresearch.server.requests import model_response
from localresearch.server.websession import SESSION_SECONDS, TOKEN_SECONDS, WEB_SESSIONS

routes = web.RouteTableDef()

# No inline script or style, nothing from another origin, never inside a frame.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(?:html|js|css|svg|png)$")


@functools.cache
def _asset(name: str) -> bytes | None:
    """A file of localresearch/web/static, read once (names are checked before they get here)."""
    node = resources.files("localresearch.web").joinpath("static", name)
    return node.read_bytes() if node.is_file() else None


@functools.cache
def bundle_version() -> str:
    """A hash of every page file: the page asks for /static/<hash>/…, which browsers may keep
    for good (a new version of a file is a new URL), so a page shown again paints sooner."""
    folder = resources.files("localresearch.web").joinpath("static")
    digest = hashlib.sha256()
    for name in sorted(node.name for node in folder.iterdir()):
        digest.update(name.encode() + b"\0" + folder.joinpath(name).read_bytes())
    return digest.hexdigest()[:12]


@functools.cache
def _index() -> bytes:
    page = _asset("index.html") or b""
    return page.replace(b"/static/__VERSION__/", f"/static/{bundle_version()}/".encode())


def _page_response(name: str, *, cache: str = "no-cache") -> web.Response:
    body = _asset(name) if _NAME.match(name) else None
    if body is None:
        raise APIError("not_found", f"No such page file: {name}")
    suffix = name[name.rfind(".") :]
    headers = {**PAGE_HEADERS, "Content-Type": CONTENT_TYPES[suffix], "Cache-Control": cache}
    return web.Response(body=_index() if name == "index.html" else body, headers=headers)


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    return _page_response("index.html")


@routes.get("/static/{name}")
async def static(request: web.Request) -> web.Response:
    return _page_response(request.match_info["name"])


@routes.get("/static/{version}/{name}")
async def static_versioned(request: web.Request) -> web.Response:
    """This version's files are kept by the browser; another (a page open across an upgrade)
    gets today's files, checked each time."""
    current = request.match_info["version"] == bundle_version()
    cache = "public, max-age=31536000, immutable" if current else "no-cache"
    return _page_response(request.match_info["name"], cache=cache)


@routes.post("/api/web/token")
async def issue_token(request: web.Request) -> web.Response:
    """A one-time sign-in link for `research web` (the caller already passed the guard)."""
    token = request.app[WEB_SESSIONS].issue()
    url = f"{request.scheme}://{request.host}/web/signin?token={token}"
    return model_response(SigninLink(url=url, expires_in=int(TOKEN_SECONDS)), status=201)


@routes.get("/web/signin")
async def signin(request: web.Request) -> web.Response:
    """Exchange a one-time token for the session cookie, then show the page without it."""
    sessions = request.app[WEB_SESSIONS]
    value = sessions.redeem(request.query.get("token", ""))
    target = "/" if value is not None else "/?signin=expired"
    response = web.Response(
        status=303, headers={**PAGE_HEADERS, "Location": target, "Cache-Control": "no-store"}
    )
    if value is not None:
        response.set_cookie(
            sessions.cookie,
            value,
            httponly=True,
            samesite="Strict",
            path="/",
            max_age=SESSION_SECONDS,
        )
    return response
