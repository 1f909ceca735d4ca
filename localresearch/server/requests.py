"""Reading request input: JSON bodies and query parameters, with errors in the envelope."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web

from localresearch.errors import InvalidRequest
from localresearch.server.errors import APIError

T = TypeVar("T")


async def json_body(request: web.Request, *, required: bool = True) -> dict[str, Any]:
    """The body as a JSON object; 415 for another content type, 400 for malformed JSON."""
    if not request.can_read_body:
        if required:
            raise APIError("invalid_request", "Request body required (a JSON object)")
        return {}
    if request.content_type != "application/json":
        raise APIError(
            "unsupported_media_type",
            f"Content-Type must be application/json (got {request.content_type or 'none'})",
        )
    raw = await request.read()
    if not raw.strip() and not required:
        return {}
    try:
        return parse_json_object(raw, what="body")
    except InvalidRequest as exc:
        raise APIError("invalid_request", exc.message) from None


def parse_json_object(raw: bytes | str, *, what: str = "message") -> dict[str, Any]:
    """Parse untrusted JSON into an object, refusing what would break later: nesting deep
    enough to exhaust the stack, unpaired surrogates (not storable as UTF-8) and NUL characters
    (not valid in paths)."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"Malformed JSON {what}: {exc}") from None
    except RecursionError:
        raise InvalidRequest(f"JSON {what} is nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"JSON {what} must be an object")
    # Only \u escapes can smuggle these in: raw bytes were already checked as UTF-8.
    escaped = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    if b"\\u" in escaped:
        _check_strings(data, what)
    return data


def _check_strings(data: Any, what: str) -> None:
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                raise InvalidRequest(f"JSON {what} must not contain NUL characters")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidRequest(
                    f"JSON {what} contains an unpaired UTF-16 surrogate (invalid text)"
                ) from None


def field(
    data: dict[str, Any],
    name: str,
    kind: type | tuple[type, ...],
    *,
    required: bool = False,
    default: Any = None,
) -> Any:
    """One typed field of a JSON body."""
    if name not in data or data[name] is None:
        if required:
            raise APIError("invalid_request", f"Missing required parameter: {name}")
        return default
    value = data[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise APIError("invalid_request", f"Parameter {name} must be {_names(kinds)}")
    if not isinstance(value, kinds):
        raise APIError("invalid_request", f"Parameter {name} must be {_names(kinds)}")
    return value


def _names(kinds: tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        bool: "a boolean",
        float: "a number",
        list: "a list",
        dict: "an object",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def int_param(
    request: web.Request, name: str, default: int, *, low: int = 1, high: int = 1000
) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise APIError(
            "invalid_request", f"Parameter {name} must be an integer (got {raw!r})"
        ) from None
    if not low <= value <= high:
        raise APIError("invalid_request", f"Parameter {name} must be between {low} and {high}")
    return value


async def body_model(request: web.Request, model: type[T], *, required: bool = True) -> T:
    """The body as `model`: read and checked by json_body (one place for the byte-level
    checks), then validated; a bad field is 400 naming it."""
    from localresearch.api.base import convert

    return convert(await json_body(request, required=required), model)


def query_model(request: web.Request, model: type[T]) -> T:
    """The query string as `model` ("10" is an integer there); an empty optional value counts
    as absent."""
    from localresearch.api.base import convert, optional_fields

    optional = optional_fields(model)
    values = {k: v for k, v in request.query.items() if v != "" or k not in optional}
    return convert(values, model, strict=False)


def model_response(value: Any, *, status: int = 200) -> web.Response:
    """A model (or builtins) encoded as the JSON body."""
    from localresearch.api.base import encode

    return web.Response(body=encode(value), status=status, content_type="application/json")
