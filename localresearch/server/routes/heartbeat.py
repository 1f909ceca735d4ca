"""Heartbeat and schedules over HTTP: status, run now, pause/resume; recurring tasks CRUD."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from localresearch.api.base import shape
from localresearch.api.heartbeat import (
    AddSchedule,
    HeartbeatResult,
    HeartbeatStatus,
    ScheduleList,
    Task,
)
from localresearch.errors import Unavailable
from localresearch.server.keys import RUNTIME
from localresearch.server.requests import body_model, model_response

if TYPE_CHECKING:
    from localresearch.heartbeat.service import HeartbeatService

routes = web.RouteTableDef()


def _heartbeat(request: web.Request) -> HeartbeatService:
    service = request.app[RUNTIME].heartbeat
    if service is None:
        raise Unavailable("The heartbeat is not running")
    return service


@routes.get("/api/heartbeat")
async def status(request: web.Request) -> web.Response:
    return model_response(HeartbeatStatus.of(await _heartbeat(request).status()))


@routes.post("/api/heartbeat/run")
async def run(request: web.Request) -> web.Response:
    result = await _heartbeat(request).run(trigger="manual")
    return model_response(shape(result, HeartbeatResult))


@routes.post("/api/heartbeat/pause")
async def pause(request: web.Request) -> web.Response:
    return model_response(HeartbeatStatus.of(await _heartbeat(request).set_paused(True)))


@routes.post("/api/heartbeat/resume")
async def resume(request: web.Request) -> web.Response:
    return model_response(HeartbeatStatus.of(await _heartbeat(request).set_paused(False)))


@routes.get("/api/schedules")
async def list_schedules(request: web.Request) -> web.Response:
    return model_response(ScheduleList.of(await _heartbeat(request).schedules()))


@routes.post("/api/schedules")
async def add_schedule(request: web.Request) -> web.Response:
    body = await body_model(request, AddSchedule)
    schedule = await _heartbeat(request).add_schedule(
        body.every, body.question, kind=body.kind, priority=body.priority
    )
    return model_response(Task.of(schedule), status=201)


@routes.delete("/api/schedules/{id}")
async def remove_schedule(request: web.Request) -> web.Response:
    await _heartbeat(request).remove_schedule(request.match_info["id"])
    return web.Response(status=204)
