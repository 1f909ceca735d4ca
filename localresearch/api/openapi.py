"""The OpenAPI 3.1 document of the whole daemon, generated from the models and OPERATIONS."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from localresearch.api.operations import Operation, all_operations

REF = "#/components/schemas/{name}"
_PATH_PARAM = re.compile(r"\{([^}]+)\}")

# Statuses any operation may answer besides its own (all in the surface's envelope).
_ERRORS = {
    "400": "Bad input: the message names the field",
    "401": "No credentials (keys configured, or another local user)",
    "403": "Wrong credentials, a role without the permission, a foreign Host or Origin",
    "404": "No such resource",
    "409": "The resource's state forbids the action",
    "413": "Body too large",
    "415": "Body is not application/json",
    "429": "Over the rate limit (Retry-After says when to retry)",
    "500": "A bug in the daemon (the message carries a request id)",
    "502": "The model or search provider failed",
    "503": "A part of the daemon is not running",
}


_RATE_HEADERS = {
    "Retry-After": "Seconds until the window resets",
    "X-RateLimit-Limit": "Requests allowed in the window",
    "X-RateLimit-Remaining": "Requests left in the window",
    "X-RateLimit-Reset": "Unix time the window resets",
}


def build(version: str, operations: list[Operation] | None = None) -> dict[str, Any]:
    """The document: every operation with its parameters, body, responses and permission."""
    operations = all_operations() if operations is None else operations
    models: set[type] = set()
    for op in operations:
        for model in (op.body, op.query, op.response, op.surface.error):
            if model is not None:
                models.add(model)
    ordered = sorted(models, key=lambda m: (m.__module__, m.__qualname__))
    schemas, components = msgspec.json.schema_components(ordered, ref_template=REF)
    by_model = dict(zip(ordered, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, by_model, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "localresearch daemon API",
            "version": version,
            "description": "A local research assistant's daemon. Errors share one envelope; "
            "with keys configured, send Authorization: Bearer <key> or X-API-Key: <key>.",
            "x-query-api-versions": _query_versions(),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}, {}],
    }


def _query_versions() -> list[dict[str, Any]]:
    """The query API's versions, deprecated ones marked (its clients look for them here)."""
    from localresearch.api.query import versions_document

    return versions_document()


def _operation(
    op: Operation, by_model: dict[type, Any], components: dict[str, Any]
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "operationId": _operation_id(op),
        "summary": op.summary,
        "tags": [op.tag],
        "x-permission": op.permission,
    }
    if op.rate_class:
        result["x-rate-class"] = op.rate_class
    if op.public:
        result["security"] = [{}]
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(op.path)
    ]
    if op.query is not None:
        parameters.extend(_query_parameters(op.query, components))
    if parameters:
        result["parameters"] = parameters
    if op.body is not None:
        bodies = {"application/json": {"schema": by_model[op.body]}}
        if op.surface.plain_text_body:
            bodies["text/plain"] = {
                "schema": by_model[op.body],
                "x-description": "the same JSON object as text/plain;charset=UTF-8, as a "
                "browser's fetch sends a string body (not from a cross-site form)",
            }
        result["requestBody"] = {"required": op.body_required, "content": bodies}
    responses: dict[str, Any] = {}
    ok: dict[str, Any] = {"description": op.summary}
    content: dict[str, Any] = {}
    if op.response is not None:
        content["application/json"] = {"schema": by_model[op.response]}
    for media, what in op.content.items():
        # A stream's events are described in words (docs/api.md), not as one string.
        schema = {} if media == "text/event-stream" else {"schema": {"type": "string"}}
        content[media] = {**schema, "x-description": what}
    if content and op.status != 204:
        ok["content"] = content
    responses[str(op.status)] = ok
    error = {"application/json": {"schema": by_model[op.surface.error]}}
    for code, description in _ERRORS.items():
        if code in op.surface.omitted_statuses:
            continue
        responses.setdefault(code, {"description": description, "content": error})
    responses["429"]["headers"] = {
        name: {"description": what, "schema": {"type": "string"}}
        for name, what in _RATE_HEADERS.items()
    }
    result["responses"] = responses
    return result


def _query_parameters(model: type, components: dict[str, Any]) -> list[dict[str, Any]]:
    name = model.__name__
    schema = components.get(name) or msgspec.json.schema(model)
    required = set(schema.get("required", []))
    return [
        {"name": key, "in": "query", "required": key in required, "schema": prop}
        for key, prop in schema.get("properties", {}).items()
    ]


def _operation_id(op: Operation) -> str:
    words = re.sub(r"[{}]", "", op.path).strip("/").replace("/", "_").replace(".", "_")
    return f"{op.method.lower()}_{words or 'root'}"
