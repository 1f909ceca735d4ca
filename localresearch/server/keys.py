"""Typed application state shared by the routes."""

from __future__ import annotations

import asyncio
import weakref

from aiohttp import web

from localresearch.runtime import Runtime

RUNTIME = web.AppKey("runtime", Runtime)
SHUTDOWN = web.AppKey("shutdown", asyncio.Event)
WEBSOCKETS: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("websockets")
MAX_BODY = web.AppKey("max_body_bytes", int)
BODY_TIMEOUT = web.AppKey("body_timeout", float)
