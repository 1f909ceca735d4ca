"""The query API's /metrics, /capabilities and /config: translations to the runtime's parts."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING, Any

from aiohttp import web

from localresearch import __version__
from localresearch.api.query import VERSIONS
from localresearch.errors import Unavailable
from localresearch.server.keys import RUNTIME, WEBSOCKETS
from localresearch.server.query_errors import envelope
from localresearch.server.requests import json_body, model_response

if TYPE_CHECKING:
    from localresearch.config import Config
    from localresearch.runtime import Runtime

routes = web.RouteTableDef()


def _runtime(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


@routes.get("/metrics")
@envelope
async def metrics(request: web.Request) -> web.Response:
    from localresearch.metrics import CONTENT_TYPE

    runtime = _runtime(request)
    if runtime.metrics is None:
        raise Unavailable("Metrics are not collected yet")
    states = await runtime.db.read(_job_states)
    for state in ("queued", "running", "complete", "error", "cancelled"):
        runtime.metrics.jobs.labels(state).set(states.get(state, 0))
    sockets = [ws for ws in request.app[WEBSOCKETS] if not ws.closed]
    runtime.metrics.open_streams.labels("websocket").set(len(sockets))
    body = runtime.metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def _job_states(conn: sqlite3.Connection) -> dict[str, int]:
    rows = conn.execute("SELECT status, count(*) FROM research_jobs GROUP BY status").fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


@routes.get("/capabilities")
@envelope
async def capabilities(request: web.Request) -> web.Response:
    from localresearch.config.live import BACKEND_ALIASES
    from localresearch.providers.registry import available_providers

    config = _runtime(request).config
    names = sorted({*available_providers(), *BACKEND_ALIASES})
    status = {name: _backend(BACKEND_ALIASES.get(name, name), config) for name in names}
    return model_response(
        {
            "version": __version__,
            "api_versions": dict(VERSIONS),
            "llm_backends": names,
            "llm_backend_status": status,
            "reasoning_modes": ["ask", "research"],
            "current_config": {
                "reasoning_mode": "research",
                "loops": config.research.max_rounds,
                "llm_backend": config.llm.provider,
                "model": config.llm.model,
                "dimensions": config.research.dimensions,
                "web_search": config.research.web_search,
            },
        }
    )


def _backend(name: str, config: Config) -> dict[str, Any]:
    """Is a provider usable now (configured, with what it needs), and if not, why."""
    import os

    llm = config.llm
    if name == "builtin":
        return {"usable": True, "reason": "offline, always available (`mock` names it too)"}
    if name != llm.provider:
        return {"usable": False, "reason": f"not configured (set llm.provider = {name!r})"}
    if name == "llamacpp" and not llm.model_path:
        return {"usable": False, "reason": "llm.model_path is not set"}
    if name in ("openai", "anthropic") and llm.api_key_env and not os.environ.get(llm.api_key_env):
        return {"usable": False, "reason": f"the variable {llm.api_key_env} is not set"}
    return {"usable": True, "reason": "the configured provider"}


# -- /config -------------------------------------------------------------------------------


def _view(config: Config, **extra: list[str]) -> dict[str, Any]:
    from localresearch.config.live import view

    return {**view(config), **extra}


@routes.get("/config")
@envelope
async def get_config(request: web.Request) -> web.Response:
    return model_response(_view(_runtime(request).config))


@routes.put("/config")
@envelope
async def put_config(request: web.Request) -> web.Response:
    return await _change(request, replace=False)


@routes.post("/config")
@envelope
async def post_config(request: web.Request) -> web.Response:
    return await _change(request, replace=True)


@routes.delete("/config")
@envelope
async def reload_config(request: web.Request) -> web.Response:
    from localresearch.config.loader import load_checked_config

    runtime = _runtime(request)
    config = await asyncio.to_thread(load_checked_config, runtime.paths.config_file)
    restart = runtime.apply_config(config)
    return model_response(_view(config, restart_required=restart))


async def _change(request: web.Request, *, replace: bool) -> web.Response:
    from localresearch.config.live import checked, flatten, overridden, write
    from localresearch.config.loader import load_checked_config

    runtime = _runtime(request)
    values = checked(flatten(await json_body(request)))
    values = _keep_secrets(values, runtime.config)
    config_file = runtime.paths.config_file

    def save() -> Config:
        write(config_file, values, replace=replace)
        return load_checked_config(config_file)

    lock = runtime.extras.setdefault("config_writer", asyncio.Lock())  # one writer at a time
    async with lock:
        config = await asyncio.to_thread(save)
        if runtime.config_watcher is not None:
            runtime.config_watcher.mark_written()
        restart = runtime.apply_config(config)
    return model_response(
        _view(config, restart_required=restart, overridden_by_environment=overridden(list(values)))
    )


def _keep_secrets(values: dict[str, Any], current: Config) -> dict[str, Any]:
    """A credential posted back as GET showed it ("(set)", a webhook with ***) keeps its value."""
    from localresearch.config.loader import SECRET_SETTINGS, get_value

    kept = dict(values)
    for key, value in values.items():
        if key in SECRET_SETTINGS:
            existing = get_value(current, key)
            if value == "(set)":
                kept[key] = existing
            elif isinstance(value, dict) and isinstance(existing, dict):
                kept[key] = {k: existing.get(k, v) if v == "(set)" else v for k, v in value.items()}
        elif key == "api.webhooks" and any("***" in url for url in value):
            from localresearch.query.webhooks import shown

            by_shown = {shown(url): url for url in current.api.webhooks}
            kept[key] = [by_shown.get(url, url) for url in value]
    return kept
