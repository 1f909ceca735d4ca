"""GET /api/models: every provider that can be chosen, and the configured one's models."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web

from localresearch.api.base import shape
from localresearch.api.status import Models
from localresearch.errors import LocalResearchError
from localresearch.server.keys import RUNTIME
from localresearch.server.requests import model_response
from localresearch.server.routes.chat import chat_service

if TYPE_CHECKING:
    from localresearch.providers.base import Provider

routes = web.RouteTableDef()

LIST_TIMEOUT = 10.0


@routes.get("/api/models")
async def models(request: web.Request) -> web.Response:
    from localresearch.providers.registry import available_providers, provider_class

    service = chat_service(request)
    configured = request.app[RUNTIME].config.llm.provider
    default: Provider | None = None
    default_error = ""
    try:
        default = service.provider()
    except LocalResearchError as exc:  # e.g. a key is missing: still list what can be chosen
        default_error = exc.message
    providers: list[dict[str, Any]] = []
    for name in available_providers():
        entry: dict[str, Any] = {"id": name, "configured": name == configured}
        try:
            cls = provider_class(name)
        except LocalResearchError as exc:
            entry.update(available=False, error=exc.message, models=[])
            providers.append(entry)
            continue
        entry.update(
            available=True,
            description=cls.description,
            needs_key=cls.needs_key,
            default_model=cls.default_model,
        )
        if name == configured and default is None:
            entry.update(models=[], error=default_error)
        elif name == configured and default is not None:
            try:
                entry["models"] = await asyncio.wait_for(default.list_models(), LIST_TIMEOUT)
            except (LocalResearchError, TimeoutError) as exc:
                entry["models"] = [default.model]
                entry["error"] = getattr(exc, "message", None) or "listing models timed out"
        else:
            entry["models"] = [cls.default_model] if cls.default_model else []
        providers.append(entry)
    label = f"{default.id}/{default.model}" if default is not None else None
    return model_response(shape({"default": label, "providers": providers}, Models))
