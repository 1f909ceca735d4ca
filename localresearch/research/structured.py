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


# What small models hand back instead of content: the prompt's placeholders and instructions.
_PLACEHOLDERS = frozenset(
    {
        "",
        "...",
        "…",
        "one sentence",
        "a sentence",
        "a statement",
        "statement",
        "a short noun phrase",
        "short noun phrase",
        "noun phrase",
        "string",
        "text",
        "summary",
        "key finding",
        "keyfinding",
        "dimension",
        "gap",
        "passage number",
        "source",
        "n/a",
        "none",
        "null",
    }
)
_NON_WORD = re.compile(r"[^\w\s]+")


def _plain(text: str) -> str:
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def looks_like_json(text: str) -> bool:
    """A field that holds JSON or a code fence instead of prose (a small model's nested reply)."""
    body = text.strip()
    return body.startswith(("{", "[")) or "```" in body or bool(re.search(r'"\w+"\s*:', body))


def is_echo(text: str, instruction: str) -> bool:
    """A placeholder ("one sentence", "...") or a piece of the instruction given back as content."""
    plain = _plain(text)
    if plain in _PLACEHOLDERS:
        return True
    return len(plain.split()) >= 3 and plain in _plain(instruction)


def check_text(text: str, what: str, instruction: str, *, words: tuple[int, int] = (1, 400)) -> str:
    """The text, if it is content: not JSON, not an echoed instruction, of a sensible length."""
    if looks_like_json(text):
        raise MalformedJSON(f"{what} holds JSON or a code block instead of plain text")
    if is_echo(text, instruction):
        raise MalformedJSON(f"{what} repeats the instructions ({text[:60]!r}) instead of content")
    count = len(text.split())
    if not words[0] <= count <= words[1]:
        raise MalformedJSON(f"{what} should have {words[0]} to {words[1]} words, not {count}")
    return text


# A name of a few words: a longer proposal is a sentence or a list, not one aspect.
NAME_WORDS = 6
# Words a noun phrase does without: a finite verb of being, doing or having, a modal, a negation.
_SENTENCE_TEXT = """is isn't are aren't was wasn't were weren't be been am does doesn't do don't
    did didn't has hasn't have haven't had can cannot can't could should shouldn't would will
    won't shall may might must not"""
_SENTENCE_WORDS = frozenset(_SENTENCE_TEXT.split())
_NAME_WRAPPERS = "\"'`*_\u201c\u201d\u2018\u2019 "
_SENTENCE_STOP = re.compile(r"[.!?;:](?:\s|$)")
_NAME_TOKEN = re.compile(r"[\w'\u2019-]+")


def dimension_name(text: str) -> str | None:
    """A proposed dimension as a short name (quotes, emphasis and a final full stop removed,
    the first letter capitalised), or None when it reads as a sentence: more than a few words,
    a sentence's punctuation inside or a question mark, or a verb such as *is* or *does*
    ("The research does not provide…", "…is a key finding.")."""
    name = " ".join(text.split()).strip(_NAME_WRAPPERS)
    name = name.removesuffix(".").strip(_NAME_WRAPPERS)
    words = _NAME_TOKEN.findall(name)
    if not words or len(words) > NAME_WORDS or _SENTENCE_STOP.search(name):
        return None
    if any(w.lower().replace("\u2019", "'") in _SENTENCE_WORDS for w in words):
        return None
    return name[:1].upper() + name[1:]


def first_sentence(text: str) -> str:
    """The first sentence of a summary (a key finding when the model gave none)."""
    head = re.split(r"(?<=[.!?])\s+", text.strip(), maxsplit=1)[0]
    return head.strip()


def _strings(low: int = 0, high: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": {"type": "string"}, "minItems": low}
    if high is not None:
        schema["maxItems"] = high
    return schema


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    """A strict object schema (all properties required, no others): OpenAI's strict mode."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def scope_schema(count: int) -> tuple[str, dict[str, Any]]:
    return "dimensions", _object({"dimensions": _strings(1, count)})


def summary_schema() -> tuple[str, dict[str, Any]]:
    point = _object({"text": {"type": "string"}, "source": {"type": "integer"}})
    return "findings", _object(
        {
            "summary": {"type": "string"},
            "keyFinding": {"type": "string"},
            "points": {"type": "array", "items": point},
        }
    )


def evaluation_schema() -> tuple[str, dict[str, Any]]:
    return "gaps", _object({"gaps": _strings(), "newDimensions": _strings()})
