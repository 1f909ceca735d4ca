"""JSON out of model text: parse strictly, else repair what local models commonly get wrong."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_SMART = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'"})


class MalformedJSON(ValueError):
    """The reply holds no JSON object, even after repair."""


def _objects(text: str, tries: int = 20) -> list[str]:
    """Balanced {...} spans of text (string-aware), from the first `tries` opening braces."""
    found: list[str] = []
    start = text.find("{")
    while start >= 0 and tries > 0:
        tries -= 1
        depth = 0
        quote: str | None = None
        escaped = False
        for i in range(start, len(text)):
            ch = text[i]
            if quote:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == quote:
                    quote = None
                continue
            if ch in "\"'":
                quote = ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    found.append(text[start : i + 1])
                    break
        start = text.find("{", start + 1)
    return found


def parse_object(text: str) -> tuple[dict[str, Any], bool]:
    """The JSON object in a reply, and whether it needed repair (fences, prose, trailing commas,
    smart or single quotes, Python literals); raises MalformedJSON when nothing is usable."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        pass
    else:
        if isinstance(value, dict):
            return value, False
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    bodies = [body for c in candidates for body in _objects(c.translate(_SMART))]
    for body in bodies:
        for attempt in (body, _TRAILING_COMMA.sub(r"\1", body)):
            try:
                value = json.loads(attempt)
            except (json.JSONDecodeError, RecursionError):
                try:
                    value = ast.literal_eval(attempt)
                except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
                    continue
            if isinstance(value, dict):
                return value, True
    raise MalformedJSON("the reply is not a JSON object")


def string_list(value: Any, name: str, *, low: int = 0, high: int = 20) -> list[str]:
    """A list of distinct non-empty strings (validation of structured outputs)."""
    if not isinstance(value, list):
        raise MalformedJSON(f"'{name}' must be a list of strings")
    items: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise MalformedJSON(f"'{name}' must contain only strings")
        text = " ".join(item.split())
        if text and text.lower() not in (i.lower() for i in items):
            items.append(text)
    if len(items) < low:
        raise MalformedJSON(f"'{name}' needs at least {low} item(s)")
    return items[:high]


def text_field(obj: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = obj.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise MalformedJSON(f"'{name}' must be a non-empty string")
    return value.strip()
