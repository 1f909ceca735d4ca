"""The access layer: the owner's user only by default, keys and roles, 401 vs 403, plugged-in
resolvers, rate limits with their headers, and secrets kept out of answers and logs."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from localresearch.access.local import credential_path
from localresearch.access.ratelimit import RateLimiter
from localresearch.access.roles import Principal
from localresearch.config import load_config
from localresearch.server.access import ACCESS

ADMIN_KEY = "admin-secret-0123456789abcdef"
USER_KEY = "user-secret-0123456789abcdef"
BEARER = "bearer-token-0123456789abcdef"


def _config(paths: Any, **env: str) -> Any:
    names = {f"LOCALRESEARCH_API__{k.upper()}": v for k, v in env.items()}
    return load_config(paths.config_file, env=names)


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_owner_without_keys_needs_no_credentials(make_client: Any, paths: Any) -> None:
    client = await make_client()
    response = await client.get("/api/status")
    assert response.status == 200  # the test's own uid: the peer check admits it
    token = credential_path(paths.state_dir)
    assert token.stat().st_mode & 0o777 == 0o600
    response = await client.get("/api/keys", headers=_bearer(token.read_text().strip()))
    assert response.status == 200
    wrong = await client.get("/api/status", headers=_bearer("not-a-key"))
    assert wrong.status == 403 and (await wrong.json())["error"]["code"] == "forbidden"
    assert (await client.get("/health")).status == 200


async def _as_nobody(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """GET `url` from a process running as uid/gid 65534 (another local user); in a thread,
    so the test's server keeps answering."""
    return await asyncio.to_thread(_run_as_nobody, url, headers)


def _run_as_nobody(url: str, headers: dict[str, str] | None) -> tuple[int, str]:
    script = (
        "import sys, json, urllib.request, urllib.error\n"
        "req = urllib.request.Request(sys.argv[1], headers=json.loads(sys.argv[2]))\n"
        "try:\n"
        "    r = urllib.request.urlopen(req, timeout=10)\n"
        "    print(r.status); print(r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code); print(e.read().decode())\n"
    )
    done = subprocess.run(
        [
            "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
            "/usr/bin/python3", "-c", script, url, json.dumps(headers or {}),
        ],
        capture_output=True, text=True, timeout=30, cwd="/",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    status, _, body = done.stdout.partition("\n")
    return int(status), body


needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None or not Path("/usr/bin/python3").exists()
    or not Path("/proc/net/tcp").exists(),
    reason="needs root, setpriv and /proc/net/tcp to act as another local user",
)  # fmt: skip


@needs_root
async def test_another_local_user_is_kept_out(make_client: Any, paths: Any) -> None:
    client = await make_client()
    url = str(client.make_url("/api/memory/sources"))
    status, body = await _as_nobody(url)
    assert status == 401, body
    assert json.loads(body)["error"]["code"] == "unauthorized"
    assert (await _as_nobody(str(client.make_url("/health"))))[0] == 200
    # The local credential is the owner's secret: whoever holds it is the owner.
    token = credential_path(paths.state_dir).read_text().strip()
    assert (await _as_nobody(url, _bearer(token)))[0] == 200


@needs_root
async def test_open_local_admits_other_users(make_client: Any, paths: Any) -> None:
    client = await make_client(_config(paths, open_local="true"))
    status, body = await _as_nobody(str(client.make_url("/api/status")))
    assert status == 200, body


async def test_keys_configured_401_403_and_precedence(make_client: Any, paths: Any) -> None:
    config = _config(
        paths,
        api_keys=json.dumps({"admin": ADMIN_KEY, "user": USER_KEY}),
        bearer_token=BEARER,
    )
    client = await make_client(config)
    assert (await client.get("/health")).status == 200
    missing = await client.get("/api/status")
    assert missing.status == 401 and (await missing.json())["error"]["code"] == "unauthorized"
    assert (await client.get("/api/status", headers={"X-API-Key": "nope"})).status == 403
    assert (await client.get("/api/status", headers=_bearer("nope"))).status == 403
    assert (await client.get("/api/status", headers={"X-API-Key": USER_KEY})).status == 200
    assert (await client.get("/api/status", headers=_bearer(USER_KEY))).status == 200
    # A valid bearer wins over a wrong X-API-Key.
    both = {**_bearer(BEARER), "X-API-Key": "wrong"}
    assert (await client.get("/api/status", headers=both)).status == 200
    # The bearer token is accepted only as a bearer.
    assert (await client.get("/api/status", headers={"X-API-Key": BEARER})).status == 403
    # Roles: user may chat and search, not manage keys; admin may.
    denied = await client.get("/api/keys", headers=_bearer(USER_KEY))
    assert denied.status == 403
    assert "'admin' permission" in (await denied.json())["error"]["message"]
    assert (await client.get("/api/keys", headers=_bearer(ADMIN_KEY))).status == 200
    assert (await client.get("/openapi.json", headers=_bearer(USER_KEY))).status == 200
    assert (await client.get("/openapi.json")).status == 401
    # The CLI's local credential still works, as the owner.
    token = credential_path(paths.state_dir).read_text().strip()
    assert (await client.get("/api/keys", headers=_bearer(token))).status == 200
    # No answer repeats a secret.
    for response in (missing, denied):
        text = await response.text()
        assert ADMIN_KEY not in text and USER_KEY not in text and BEARER not in text


async def test_role_permissions_are_configurable(make_client: Any, paths: Any) -> None:
    roles = {"reader": ["docs", "health"]}
    config = _config(
        paths, api_keys=json.dumps({"reader": USER_KEY}), role_permissions=json.dumps(roles)
    )
    client = await make_client(config)
    assert (await client.get("/api/status", headers=_bearer(USER_KEY))).status == 200
    assert (await client.get("/docs", headers=_bearer(USER_KEY))).status == 200
    search = await client.get("/api/memory/search?q=x", headers=_bearer(USER_KEY))
    assert search.status == 403


async def test_keys_are_made_stored_as_hashes_and_revoked(make_client: Any, paths: Any) -> None:
    client = await make_client(_config(paths, api_key=ADMIN_KEY))
    admin = _bearer(ADMIN_KEY)
    made = await client.post(
        "/api/keys", json={"role": "user", "name": "script", "prefix": "dr_"}, headers=admin
    )
    assert made.status == 201
    created = await made.json()
    secret = created["key"]
    assert secret.startswith("dr_") and len(secret) == 3 + 32 and secret.isascii()
    assert created["hint"] == f"dr_…{secret[-4:]}" and created["role"] == "user"
    assert (await client.get("/api/status", headers=_bearer(secret))).status == 200
    assert (await client.get("/api/keys", headers=_bearer(secret))).status == 403
    listed = await (await client.get("/api/keys", headers=admin)).json()
    assert [k["id"] for k in listed["keys"]] == [created["id"]]
    assert secret not in json.dumps(listed)
    bad_role = await client.post("/api/keys", json={"role": "root"}, headers=admin)
    assert bad_role.status == 400 and "role" in (await bad_role.json())["error"]["message"]
    # Only a hash is stored.
    with sqlite3.connect(paths.database) as conn:
        stored = conn.execute("SELECT hash FROM api_keys").fetchall()
    assert stored and all(secret not in row[0] for row in stored)
    for name in os.listdir(paths.data_dir):
        if name.startswith("localresearch.db"):
            assert secret.encode() not in (paths.data_dir / name).read_bytes()
    revoked = await client.delete(f"/api/keys/{created['id']}", headers=admin)
    assert revoked.status == 200 and (await revoked.json())["revoked_at"]
    assert (await client.get("/api/status", headers=_bearer(secret))).status == 403
    assert (await client.delete(f"/api/keys/{created['id']}", headers=admin)).status == 404


async def test_plugged_in_resolver_is_consulted(make_client: Any, paths: Any) -> None:
    """Another credential source (e.g. a web page's session cookie) plugs in as a resolver."""
    client = await make_client(_config(paths, api_key=ADMIN_KEY))
    visitor = Principal("cookie:abc", "user", frozenset({"health", "chat"}), "cookie")

    def cookie(request: Any) -> Principal | None:
        return visitor if request.cookies.get("lr_session") == "abc" else None

    client.server.app[ACCESS].resolvers.append(cookie)
    assert (await client.get("/api/status", cookies={"lr_session": "abc"})).status == 200
    assert (await client.get("/api/status", cookies={"lr_session": "zzz"})).status == 401
    memory = await client.get("/api/memory/stats", cookies={"lr_session": "abc"})
    assert memory.status == 403


async def test_rate_limit_per_minute_with_headers(make_client: Any, paths: Any) -> None:
    client = await make_client(_config(paths, api_key=ADMIN_KEY, rate_limit="3"))
    for left in (2, 1, 0):
        ok = await client.get("/api/status", headers=_bearer(ADMIN_KEY))
        assert ok.status == 200
        assert ok.headers["X-RateLimit-Limit"] == "3"
        assert ok.headers["X-RateLimit-Remaining"] == str(left)
        assert int(ok.headers["X-RateLimit-Reset"]) % 60 == 0
    refused = await client.get("/api/status", headers=_bearer(ADMIN_KEY))
    assert refused.status == 429
    assert (await refused.json())["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    # The owner's own credential is not limited.
    token = credential_path(paths.state_dir).read_text().strip()
    for _ in range(5):
        assert (await client.get("/api/status", headers=_bearer(token))).status == 200


async def test_hourly_limit_per_endpoint_class(make_client: Any, paths: Any) -> None:
    """An operation with a rate class counts per key per hour ([api.rate_limits])."""
    limits = json.dumps({"sessions:create": 2, "other": 100})
    client = await make_client(_config(paths, api_key=ADMIN_KEY, rate_limits=limits))
    access = client.server.app[ACCESS]
    for route, op in list(access.policies.items()):
        if op.key == ("POST", "/api/sessions"):
            access.policies[route] = dataclasses.replace(op, rate_class="sessions:create")
    headers = _bearer(ADMIN_KEY)
    for left in (1, 0):
        made = await client.post("/api/sessions", json={}, headers=headers)
        assert made.status == 201 and made.headers["X-RateLimit-Remaining"] == str(left)
        assert int(made.headers["X-RateLimit-Reset"]) % 3600 == 0
    refused = await client.post("/api/sessions", json={}, headers=headers)
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    listed = await client.get("/api/sessions", headers=headers)  # another operation: unaffected
    assert listed.status == 200 and "X-RateLimit-Limit" not in listed.headers


def test_rate_limiter_windows_reset_with_the_clock() -> None:
    now = [7200.0]
    limiter = RateLimiter(2, {"sessions:get": 3, "other": 1}, clock=lambda: now[0])
    assert [limiter.check("k", None).allowed for _ in range(3)] == [True, True, False]  # type: ignore[union-attr]
    now[0] += 60
    assert limiter.check("k", None).allowed  # type: ignore[union-attr]
    assert limiter.check("other-key", None).allowed  # type: ignore[union-attr]
    hourly = [limiter.check("k2", "sessions:get") for _ in range(2)]
    assert all(v is not None and v.allowed for v in hourly)
    # A class not in the table falls back to "other" (1/h).
    assert limiter.check("k3", "sessions:execute").allowed  # type: ignore[union-attr]
    now[0] += 61
    verdict = limiter.check("k3", "sessions:execute")
    assert verdict is not None and not verdict.allowed and verdict.limit == 1
    assert RateLimiter(0, {}).check("k", None) is None


def test_config_never_shows_secrets(daemon_env: Any) -> None:
    env = daemon_env.env
    env["LOCALRESEARCH_API__API_KEY"] = ADMIN_KEY
    env["LOCALRESEARCH_API__API_KEYS"] = json.dumps({"user": USER_KEY})
    for args in (("config", "show"), ("config", "show", "--json"), ("config", "get", "api")):
        out = daemon_env.cli(*args)
        assert out.returncode == 0, out.stderr
        assert ADMIN_KEY not in out.stdout and USER_KEY not in out.stdout
    assert daemon_env.cli("config", "get", "api.api_key").stdout.strip() == "(set)"


@pytest.mark.slow
def test_cli_and_logs_with_keys_configured(daemon_env: Any) -> None:
    """Every CLI command works with keys set (the local credential); no secret is logged."""
    daemon_env.env["LOCALRESEARCH_API__API_KEY"] = ADMIN_KEY
    daemon_env.env["LOCALRESEARCH_SERVER__LOG_LEVEL"] = "debug"
    daemon_env.start()
    try:
        status = daemon_env.cli("daemon", "status", "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["responding"] is True
        made = daemon_env.cli("keys", "create", "--role", "user", "--name", "ci", "--json")
        assert made.returncode == 0, made.stderr
        secret = json.loads(made.stdout)["key"]
        listed = daemon_env.cli("keys", "list")
        assert listed.returncode == 0 and "ci" in listed.stdout and secret not in listed.stdout
        import urllib.error
        import urllib.request

        def get(path: str, headers: dict[str, str]) -> int:
            req = urllib.request.Request(daemon_env.url + path, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return int(r.status)
            except urllib.error.HTTPError as exc:
                return exc.code

        assert get("/api/status", _bearer(secret)) == 200
        assert get("/api/status", {"X-API-Key": ADMIN_KEY}) == 200
        wrong = secret[:-1] + ("x" if secret[-1] != "x" else "y")
        assert get("/api/status", _bearer(wrong)) == 403
        assert get("/api/status", {}) == 401
        key_id = json.loads(made.stdout)["id"]
        assert daemon_env.cli("keys", "revoke", key_id).returncode == 0
        assert get("/api/status", _bearer(secret)) == 403
        search = daemon_env.cli("memory", "search", "anything")
        assert search.returncode == 0, search.stderr
    finally:
        daemon_env.stop()
    token = credential_path(daemon_env.home / "state").read_text().strip()
    logged = b"".join(p.read_bytes() for p in (daemon_env.home / "state").glob("daemon.log*"))
    assert logged  # debug logging (access log included) wrote something
    for material in (ADMIN_KEY, secret, token, secret[-8:]):
        assert material.encode() not in logged


@needs_root
@pytest.mark.parametrize("lookup", ["peer_uid", "_proc_uid"])
def test_peer_uid_names_the_connecting_user(lookup: str) -> None:
    """Both ways of finding a loopback peer's owner name the other user's uid."""
    import socket

    from localresearch.access import local

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        script = (
            "import socket, sys, time\n"
            f"s = socket.create_connection(('127.0.0.1', {port}))\n"
            "sys.stdin.read()\n"
        )
        child = subprocess.Popen(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "/usr/bin/python3", "-c", script],
            stdin=subprocess.PIPE, cwd="/",
        )  # fmt: skip
        try:
            server.settimeout(20)
            conn, _ = server.accept()
            with conn:
                found = getattr(local, lookup)(conn.getpeername(), conn.getsockname())
            assert found == 65534
        finally:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=20)


async def test_refusals_follow_the_operations_surface_envelope(
    make_client: Any, paths: Any
) -> None:
    """A surface with its own envelope (e.g. the research-sessions API's {"success": false,
    "error": …}) gets its 401/403/429 in that envelope; the daemon's own keep theirs."""
    from localresearch.api.operations import ErrorEnvelope, Surface

    def sessions_envelope(code: str, message: str) -> dict[str, Any]:
        return {"success": False, "error": {"code": code, "message": message}}

    surface = Surface("sessions", ErrorEnvelope, "test surface", envelope=sessions_envelope)
    config = _config(paths, api_keys=json.dumps({"user": USER_KEY}), rate_limit="1")
    client = await make_client(config)
    access = client.server.app[ACCESS]
    for route, op in list(access.policies.items()):
        if op.key == ("GET", "/api/sessions"):
            access.policies[route] = dataclasses.replace(op, surface=surface)
    missing = await client.get("/api/sessions")
    assert missing.status == 401
    body = await missing.json()
    assert body["success"] is False and body["error"]["code"] == "unauthorized"
    assert (await client.get("/api/sessions", headers=_bearer(USER_KEY))).status == 200
    limited = await client.get("/api/sessions", headers=_bearer(USER_KEY))
    assert limited.status == 429 and (await limited.json())["success"] is False
    assert "Retry-After" in limited.headers
    plain = await client.get("/api/status")
    assert plain.status == 401 and set(await plain.json()) == {"error"}


async def test_rate_limit_counts_survive_a_config_change(
    make_client: Any, paths: Any, write_config: Any
) -> None:
    """A config change (PUT /config here) changes the limits, not what was counted: a client
    at its limit stays there, and a new limit applies to the requests already made."""
    import time

    write_config(
        f'[api]\napi_keys = {{user = "{USER_KEY}"}}\nrate_limit = 3\nconfig_watch_interval = 0\n'
    )
    if time.time() % 60 > 50:  # the minute window must not end during the test
        await asyncio.sleep(60.5 - time.time() % 60)
    client = await make_client()
    owner = _bearer(credential_path(paths.state_dir).read_text().strip())  # never limited
    user = _bearer(USER_KEY)

    async def put(settings: dict[str, Any]) -> None:
        changed = await client.put("/config", json=settings, headers=owner)
        assert changed.status == 200, await changed.text()

    for _ in range(3):
        assert (await client.get("/api/status", headers=user)).status == 200
    assert (await client.get("/api/status", headers=user)).status == 429
    await put({"api.webhook_timeout": 11})  # another api.* setting: the count stays
    refused = await client.get("/api/status", headers=user)
    assert refused.status == 429, refused.headers
    assert refused.headers["X-RateLimit-Remaining"] == "0" and "Retry-After" in refused.headers
    await put({"api.rate_limit": 5})  # raised: two more in this window
    for left in (1, 0):
        ok = await client.get("/api/status", headers=user)
        assert ok.status == 200 and ok.headers["X-RateLimit-Remaining"] == str(left)
        assert ok.headers["X-RateLimit-Limit"] == "5"
    await put({"api.rate_limit": 2})  # lowered below the 5 made: refused, never negative
    lowered = await client.get("/api/status", headers=user)
    assert lowered.status == 429
    assert lowered.headers["X-RateLimit-Limit"] == "2"
    assert lowered.headers["X-RateLimit-Remaining"] == "0"
