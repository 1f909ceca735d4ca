"""API keys over HTTP (admin permission): create (the secret is in that answer only), list,
revoke."""

from __future__ import annotations

from aiohttp import web

from localresearch.api.access import CreateKey, KeyCreated, KeyInfo, KeyList, KeyListQuery
from localresearch.errors import InvalidRequest
from localresearch.server.access import ACCESS
from localresearch.server.requests import body_model, model_response, query_model

routes = web.RouteTableDef()


@routes.post("/api/keys")
async def create_key(request: web.Request) -> web.Response:
    body = await body_model(request, CreateKey)
    access = request.app[ACCESS]
    roles = sorted({"admin", *access.role_permissions})
    if body.role not in roles:
        raise InvalidRequest(f"Parameter role must be one of {', '.join(roles)}")
    options = {"name": body.name or "", **({"prefix": body.prefix} if body.prefix else {})}
    record, secret = await access.keys.create(body.role, **options)
    info = KeyInfo.of(record)
    return model_response(KeyCreated(**info.to_dict(), key=secret), status=201)


@routes.get("/api/keys")
async def list_keys(request: web.Request) -> web.Response:
    revoked = query_model(request, KeyListQuery).revoked
    records = await request.app[ACCESS].keys.list(revoked=revoked)
    return model_response(KeyList(keys=[KeyInfo.of(r) for r in records]))


@routes.delete("/api/keys/{id}")
async def revoke_key(request: web.Request) -> web.Response:
    record = await request.app[ACCESS].keys.revoke(request.match_info["id"])
    return model_response(KeyInfo.of(record))
