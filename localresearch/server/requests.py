"""Reading request input: JSON bodies and query parameters, with errors in the envelope."""

from __future__ import annotations

import asyncio
import json
from typing import Any, TypeVar

from aiohttp import web

from localresearch.errors import InvalidRequest
from localresearch.server.errors import APIError
from localresearch.server.keys import BODY_TIMEOUT

MAX_DEPTH = 64  # nesting of arrays and objects in a body (no endpoint needs more than 4)
MAX_INT_DIGITS = 20  # a signed 64-bit integer has at most 19 digits
INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # what SQLite stores; ids and counts beyond are errors
MAX_QUERY_VALUE = 8192  # characters in one query parameter value

T = TypeVar("T")


async def json_body(
    request: web.Request, *, required: bool = True, plain_text: bool = False
) -> dict[str, Any]:
    """The body as a JSON object; 415 for another content type or charset, 400 for malformed
    JSON, text that is not UTF-8, and what `parse_json_object` refuses. With `plain_text`, a
    `text/plain` body (what a browser's fetch sends for a string body) is read the same way
    when the request shows it is not a cross-site form (see `_plain_text_allowed`)."""
    if not request.can_read_body:
        if required:
            raise APIError("invalid_request", "Request body required (a JSON object)")
        return {}
    if request.content_type != "application/json" and not (
        plain_text and request.content_type == "text/plain" and _plain_text_allowed(request)
    ):
        also = " or text/plain holding JSON" if plain_text else ""
        raise APIError(
            "unsupported_media_type",
            f"Content-Type must be application/json{also} (got {request.content_type or 'none'})",
        )
    charset = (request.charset or "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise APIError(
            "unsupported_media_type", f"JSON bodies must be UTF-8 (got charset={charset[:40]})"
        )
    raw = await _read_body(request)
    if not raw.strip() and not required:
        return {}
    try:
        return parse_json_object(raw, what="body")
    except InvalidRequest as exc:
        raise APIError("invalid_request", exc.message) from None


def _plain_text_allowed(request: web.Request) -> bool:
    """A text/plain body is what an HTML form can send from another site without asking. It is
    read as JSON only from a request a form cannot make: one with a key header, or with an
    Origin (the guard already refused a foreign one) or `Sec-Fetch-Site: same-origin`."""
    headers = request.headers
    return bool(
        headers.get("Authorization")
        or headers.get("X-API-Key")
        or headers.get("Origin")
        or headers.get("Sec-Fetch-Site") == "same-origin"
    )


async def _read_body(request: web.Request) -> bytes:
    """The whole body, within server.body_timeout (a client trickling bytes gets a 408)."""
    timeout = request.app.get(BODY_TIMEOUT, 30.0)
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except TimeoutError:
        raise APIError(
            "request_timeout",
            f"Request body not received within {timeout:g} s (server.body_timeout)",
        ) from None


def decode_utf8(raw: bytes, *, what: str = "message") -> str:
    """Bytes as strict UTF-8: other encodings (UTF-16, Latin-1), byte-order marks and encoded
    surrogates are refused, so nothing is guessed and nothing unstorable gets in."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raise InvalidRequest(f"JSON {what} must be UTF-8 without a byte-order mark")
    if b"\x00" in raw:  # never valid in JSON text; the mark of UTF-16 or UTF-32
        raise InvalidRequest(f"JSON {what} contains NUL bytes; send UTF-8, not UTF-16 or UTF-32")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            f"JSON {what} is not valid UTF-8 (byte {exc.start}: {exc.reason}); "
            "send UTF-8 text without NUL characters"
        ) from None


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise InvalidRequest(f"a JSON integer has {digits} digits; integers are limited to 64 bits")
    return int(text)


def _no_constant(name: str) -> Any:
    raise InvalidRequest(f"{name} is not valid JSON")


def parse_json_object(raw: bytes | str, *, what: str = "message") -> dict[str, Any]:
    """Parse untrusted JSON into an object, refusing what would break later: text that is not
    UTF-8, integers too long to store, nesting deep enough to exhaust the stack, unpaired
    surrogates (not storable as UTF-8) and NUL characters (not valid in paths or files)."""
    text = decode_utf8(raw, what=what) if isinstance(raw, bytes) else raw
    try:
        data = json.loads(text, parse_int=_bounded_int, parse_constant=_no_constant)
    except InvalidRequest as exc:
        raise InvalidRequest(f"JSON {what} refused: {exc.message}") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"Malformed JSON {what}: {exc}") from None
    except RecursionError:
        raise InvalidRequest(f"JSON {what} is nested too deeply") from None
    except ValueError as exc:  # anything else the decoder refuses
        raise InvalidRequest(f"Malformed JSON {what}: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"JSON {what} must be an object")
    deep = text.count("[") + text.count("{") > MAX_DEPTH
    # Only \u escapes can smuggle NUL or surrogates in: the text itself was checked above.
    if deep or "\\u" in text or "\x00" in text:
        _check_values(data, what)
    return data


def _check_values(data: Any, what: str) -> None:
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > MAX_DEPTH:
                raise InvalidRequest(f"JSON {what} is nested more than {MAX_DEPTH} levels deep")
            stack.extend((key, depth) for key in item)
            stack.extend((value, depth + 1) for value in item.values())
        elif isinstance(item, list):
            if depth > MAX_DEPTH:
                raise InvalidRequest(f"JSON {what} is nested more than {MAX_DEPTH} levels deep")
            stack.extend((value, depth + 1) for value in item)
        elif isinstance(item, str):
            if "\x00" in item:
                raise InvalidRequest(f"JSON {what} must not contain NUL characters")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidRequest(
                    f"JSON {what} contains an unpaired UTF-16 surrogate (invalid text)"
                ) from None


def query_problem(request: web.Request) -> str | None:
    """Why the URL's path or query cannot be accepted (NUL, invalid text), or None."""
    raw = request.raw_path
    if "%00" in raw:  # the only way a NUL reaches the path or a value (the parser refuses raw)
        return "The URL must not contain NUL (%00)"
    if "?" not in raw:  # most requests: nothing more to look at
        return None
    try:
        query = request.query
    except UnicodeDecodeError:
        return "Query parameters must be UTF-8"
    for name, value in query.items():
        if "\x00" in name or "\x00" in value:
            return "Query parameters must not contain NUL (%00)"
        if len(value) > MAX_QUERY_VALUE:
            return f"Query parameter {name[:40]} is too long (limit {MAX_QUERY_VALUE} characters)"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"Query parameter {name[:40]} is not valid UTF-8 text"
    return None


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
    if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
        raise APIError("invalid_request", f"Parameter {name} is out of range (64-bit integer)")
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
        if len(raw) > MAX_INT_DIGITS:
            raise ValueError(raw)
        value = int(raw)
    except ValueError:
        raise APIError(
            "invalid_request", f"Parameter {name} must be an integer (got {raw[:40]!r})"
        ) from None
    if not low <= value <= high:
        raise APIError("invalid_request", f"Parameter {name} must be between {low} and {high}")
    return value


async def body_model(
    request: web.Request, model: type[T], *, required: bool = True, plain_text: bool = False
) -> T:
    """The body as `model`: read and checked by json_body (one place for the byte-level
    checks), then validated; a bad field is 400 naming it."""
    from localresearch.api.base import convert

    body = await json_body(request, required=required, plain_text=plain_text)
    return convert(body, model)


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
