"""The HTTP foundation: status, the error envelope for every error class, Host/Origin guards."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web

from localresearch import __version__
from localresearch.config import load_config
from localresearch.errors import NotFound
from localresearch.server.app import make_app
from localresearch.server.requests import field, int_param, json_body


async def _echo(request: web.Request) -> web.Response:
    data = await json_body(request)
    return web.json_response({"message": field(data, "message", str, required=True)})


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("secret internal detail")


async def _missing(request: web.Request) -> web.Response:
    raise NotFound("No such thing: 42")


async def _limit(request: web.Request) -> web.Response:
    return web.json_response({"limit": int_param(request, "limit", 10, high=100)})


@pytest.fixture
async def client(aiohttp_client, paths):  # type: ignore[no-untyped-def]
    config = load_config(paths.config_file, env={"LOCALRESEARCH_SERVER__MAX_BODY_BYTES": "2048"})
    app = make_app(config, paths)
    app.router.add_post("/test/echo", _echo)
    app.router.add_get("/test/boom", _boom)
    app.router.add_get("/test/missing", _missing)
    app.router.add_get("/test/limit", _limit)
    return await aiohttp_client(app)


def _envelope(body: dict, code: str) -> str:  # type: ignore[type-arg]
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return str(body["error"]["message"])


async def test_status_fields(client) -> None:  # type: ignore[no-untyped-def]
    r = await client.get("/api/status")
    assert r.status == 200
    body = await r.json()
    assert body["version"] == __version__
    assert isinstance(body["uptime_seconds"], int) and body["uptime_seconds"] >= 0
    assert body["model"] == "builtin"
    assert {"memory", "heartbeat"} <= set(body)


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("GET", "/nope", {}, 404, "not_found"),
        ("DELETE", "/health", {}, 405, "method_not_allowed"),
        (
            "POST",
            "/test/echo",
            {"data": "{not json", "headers": {"Content-Type": "application/json"}},
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/test/echo",
            {"data": "[1, 2]", "headers": {"Content-Type": "application/json"}},
            400,
            "invalid_request",
        ),
        ("POST", "/test/echo", {"json": {}}, 400, "invalid_request"),
        ("POST", "/test/echo", {"json": {"message": 3}}, 400, "invalid_request"),
        (
            "POST",
            "/test/echo",
            {"data": "message=hi", "headers": {"Content-Type": "text/plain"}},
            415,
            "unsupported_media_type",
        ),
        ("POST", "/test/echo", {"json": {"message": "x" * 5000}}, 413, "payload_too_large"),
        ("GET", "/test/missing", {}, 404, "not_found"),
        ("GET", "/test/limit?limit=abc", {}, 400, "invalid_request"),
        ("GET", "/test/limit?limit=1000", {}, 400, "invalid_request"),
    ],
)
async def test_error_envelope(client, method, path, kwargs, status, code) -> None:  # type: ignore[no-untyped-def]
    r = await client.request(method, path, **kwargs)
    assert r.status == status
    assert r.content_type == "application/json"
    _envelope(await r.json(), code)


async def test_valid_requests_still_work(client) -> None:  # type: ignore[no-untyped-def]
    r = await client.post("/test/echo", json={"message": "hi"})
    assert (r.status, await r.json()) == (200, {"message": "hi"})
    r = await client.get("/test/limit?limit=7")
    assert await r.json() == {"limit": 7}


async def test_unexpected_exception_is_500_with_request_id_and_no_detail(  # type: ignore[no-untyped-def]
    client, caplog
) -> None:
    with caplog.at_level(logging.ERROR):
        r = await client.get("/test/boom")
    assert r.status == 500
    message = _envelope(await r.json(), "internal_error")
    assert "secret internal detail" not in message
    request_id = r.headers["X-Request-Id"]
    assert request_id in message
    assert any(request_id in rec.getMessage() for rec in caplog.records)


@pytest.mark.parametrize(
    "host", ["evil.example.com", "attacker.test:31327", "192.168.1.5", "localhost.evil.com"]
)
async def test_foreign_host_is_refused(client, host) -> None:  # type: ignore[no-untyped-def]
    r = await client.get("/health", headers={"Host": host})
    assert r.status == 403
    _envelope(await r.json(), "forbidden")


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:31327", "127.0.0.1:9", "[::1]:31327", "app.localhost"]
)
async def test_loopback_hosts_are_accepted(client, host) -> None:  # type: ignore[no-untyped-def]
    r = await client.get("/health", headers={"Host": host})
    assert r.status == 200


async def test_allowed_hosts_setting(aiohttp_client, paths) -> None:  # type: ignore[no-untyped-def]
    config = load_config(
        paths.config_file, env={"LOCALRESEARCH_SERVER__ALLOWED_HOSTS": "research.lan"}
    )
    c = await aiohttp_client(make_app(config, paths))
    assert (await c.get("/health", headers={"Host": "research.lan:31327"})).status == 200
    assert (await c.get("/health", headers={"Host": "other.lan"})).status == 403


async def test_cross_site_writes_are_refused(client) -> None:  # type: ignore[no-untyped-def]
    port = 31327
    r = await client.post(
        "/test/echo", json={"message": "x"}, headers={"Origin": "https://evil.example.com"}
    )
    assert r.status == 403
    _envelope(await r.json(), "forbidden")
    r = await client.post("/test/echo", json={"message": "x"}, headers={"Origin": "null"})
    assert r.status == 403
    r = await client.post(
        "/test/echo", json={"message": "x"}, headers={"Origin": "http://localhost:1"}
    )
    assert r.status == 403  # another local app's page is not this daemon
    r = await client.post(
        "/test/echo", json={"message": "x"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert r.status == 403
    # Safe methods are allowed from any origin; the daemon's own origin may write.
    r = await client.get("/health", headers={"Origin": "https://evil.example.com"})
    assert r.status == 200
    r = await client.post(
        "/test/echo", json={"message": "x"}, headers={"Origin": f"http://127.0.0.1:{port}"}
    )
    assert r.status == 200


async def test_cross_site_websocket_upgrade_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    r = await client.get(
        "/health",
        headers={
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Origin": "https://evil.example.com",
        },
    )
    assert r.status == 403


async def test_api_key_when_configured(aiohttp_client, paths, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MY_RESEARCH_KEY", "s3cret-value")
    config = load_config(paths.config_file, env={"LOCALRESEARCH_API__KEY_ENV": "MY_RESEARCH_KEY"})
    c = await aiohttp_client(make_app(config, paths))
    assert (await c.get("/health")).status == 200  # liveness stays open
    r = await c.get("/api/status")
    assert r.status == 401
    assert "s3cret" not in await r.text()
    assert (await c.get("/api/status", headers={"Authorization": "Bearer wrong"})).status == 403
    assert (
        await c.get("/api/status", headers={"Authorization": "Bearer s3cret-value"})
    ).status == 200
    assert (await c.get("/api/status", headers={"X-API-Key": "s3cret-value"})).status == 200


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ('{"message": "\\ud800"}', "surrogate"),
        ('{"message": "a\\u0000b"}', "NUL"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"message": "' + "[" * 50 + '"}', None),  # brackets inside a string are just text
    ],
)
async def test_hostile_json_is_a_400_not_a_500(client, raw, fragment) -> None:  # type: ignore[no-untyped-def]
    r = await client.post("/test/echo", data=raw, headers={"Content-Type": "application/json"})
    if fragment is None:
        assert r.status == 200
        return
    assert r.status in (400, 413)
    message = _envelope(
        await r.json(), "invalid_request" if r.status == 400 else "payload_too_large"
    )
    if r.status == 400:
        assert fragment in message


async def test_nested_json_within_size_limit_is_refused(aiohttp_client, paths) -> None:  # type: ignore[no-untyped-def]
    c = await aiohttp_client(make_app(load_config(paths.config_file), paths))
    r = await c.post(
        "/api/chat",
        data="[" * 100_000 + "]" * 100_000,
        headers={"Content-Type": "application/json"},
    )
    assert r.status == 400
    assert "nested too deeply" in _envelope(await r.json(), "invalid_request")


async def test_nul_in_query_string_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    r = await client.get("/test/limit?limit=%00")
    assert r.status == 400
    _envelope(await r.json(), "invalid_request")
