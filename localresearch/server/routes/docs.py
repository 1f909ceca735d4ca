"""GET /openapi.json and GET /docs: the API's own description, built once from the models."""

from __future__ import annotations

from aiohttp import web

from localresearch import __version__

routes = web.RouteTableDef()

_CACHE: dict[str, bytes] = {}  # the same for every app of the process: built from the code


def document() -> bytes:
    """The OpenAPI document as JSON bytes."""
    cached = _CACHE.get("openapi")
    if cached is None:
        from localresearch.api.base import encode
        from localresearch.api.openapi import build

        cached = _CACHE["openapi"] = encode(build(__version__))
    return cached


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=document(), content_type="application/json")


@routes.get("/docs")
async def docs(request: web.Request) -> web.Response:
    page = _CACHE.get("docs")
    if page is None:
        import json

        from localresearch.api.docs_page import render

        page = _CACHE["docs"] = render(json.loads(document())).encode()
    return web.Response(body=page, content_type="text/html", charset="utf-8")
