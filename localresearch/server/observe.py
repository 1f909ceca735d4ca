"""The server's part of metrics and live configuration: every response counted by route
family and status, streams tracked while open, and the access layer rebuilt on a new config."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from localresearch.server.access import ACCESS, Access, add_rate_headers
from localresearch.server.keys import RUNTIME

if TYPE_CHECKING:
    from localresearch.config import Config


async def observe_response(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: count the request; track an SSE stream until its handler ends."""
    metrics = request.app[RUNTIME].metrics
    access = request.app[ACCESS]
    if access.limiter is not None:
        await add_rate_headers(request, response)  # also when a limit was enabled live
    if metrics is None:
        return
    op = access.policies.get(request.match_info.route)
    family = op.permission if op is not None else "none"
    metrics.http_requests.labels(family, str(response.status)).inc()
    if response.status == 429:
        metrics.rate_limited.labels(family).inc()
    if response.content_type == "text/event-stream":
        gauge = metrics.open_streams.labels("sse")
        gauge.inc()
        task = asyncio.current_task()  # this request's own task (request.task is the
        if task is not None:  # connection's, which outlives the stream on keep-alive)
            task.add_done_callback(lambda _t: gauge.dec())
        else:
            gauge.dec()


def reconfigure_access(app: web.Application, old: Config, config: Config) -> None:
    """Keys, roles, role permissions and rate limits from the new config, at once. The rate
    limits keep their counts: a client at its limit stays there until its window ends, and a
    lowered limit applies to the requests already counted."""
    if old.api == config.api:
        return
    access = app[ACCESS]
    fresh = Access(config, app[RUNTIME].paths, access.keys, counts=access.rate_counts)
    fresh.policies = access.policies
    fresh.public_routes = access.public_routes
    fresh.resolvers = access.resolvers
    vars(access).update(vars(fresh))
