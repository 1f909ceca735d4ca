"""The base of every wire model, and turning decoded JSON into models with field-named errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from localresearch.errors import InvalidRequest

T = TypeVar("T")

UNSET = msgspec.UNSET
UnsetType = msgspec.UnsetType


class Model(msgspec.Struct, kw_only=True):
    """A wire object. Item access (`obj["field"]`, `obj.get("field")`) keeps scripts written
    against the dicts the client used to return working; attributes are the typed way."""

    def __getitem__(self, name: str) -> Any:
        value = getattr(self, name, UNSET) if name in self.__struct_fields__ else UNSET
        if value is UNSET:
            renamed = _renamed(type(self)).get(name)
            value = getattr(self, renamed, UNSET) if renamed else UNSET
        if value is UNSET:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name, UNSET) is not UNSET

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, with its wire names."""
        result: dict[str, Any] = msgspec.to_builtins(self)
        return result


_RENAMED: dict[type, dict[str, str]] = {}


def _renamed(cls: type[Model]) -> dict[str, str]:
    """Wire name → attribute, for models whose wire names differ (camelCase surfaces)."""
    table = _RENAMED.get(cls)
    if table is None:
        fields = msgspec.structs.fields(cls)
        table = _RENAMED[cls] = {f.encode_name: f.name for f in fields if f.encode_name != f.name}
    return table


_TYPE_WORDS = {
    "str": "a string",
    "int": "an integer",
    "bool": "a boolean",
    "float": "a number",
    "array": "a list",
    "object": "an object",
    "null": "null",
}
_EXPECTED = re.compile(
    r"Expected `(?P<want>[^`]+)`, got `(?P<got>[^`]+)`(?: - at `(?P<at>[^`]*)`)?"
)
_CONSTRAINT = re.compile(r"Expected `(?P<want>[^`]+)` (?P<rule>[^-]+?)(?: - at `(?P<at>[^`]*)`)?$")
_MISSING = re.compile(r"Object missing required field `(?P<name>[^`]+)`(?: - at `(?P<at>[^`]*)`)?")
_INVALID = re.compile(r"Invalid enum value (?P<value>.+?)(?: - at `(?P<at>[^`]*)`)?$")


def _where(at: str | None) -> str:
    """`$.glob[0]` → `glob[0]`."""
    if not at:
        return "body"
    return at[2:] if at.startswith("$.") else at.lstrip("$")


def _words(kinds: str) -> str:
    return " or ".join(_TYPE_WORDS.get(k.strip(), k.strip()) for k in kinds.split("|"))


def error_message(exc: msgspec.ValidationError) -> str:
    """msgspec's message in the daemon's words, naming the field ("Parameter limit must be an
    integer"), so every surface says the same thing for the same mistake."""
    text = str(exc)
    if match := _MISSING.match(text):
        prefix = f"{_where(match['at'])}." if match["at"] else ""
        return f"Missing required parameter: {prefix}{match['name']}"
    if match := _EXPECTED.match(text):
        name = _where(match["at"])
        if match["got"] == "null":
            return f"Missing required parameter: {name}"
        return f"Parameter {name} must be {_words(match['want'])} (got {match['got']})"
    if match := _CONSTRAINT.match(text):
        return f"Parameter {_where(match['at'])} must be {match['rule'].strip()}"
    if match := _INVALID.match(text):
        return f"Parameter {_where(match['at'])} has an invalid value {match['value']}"
    return text


def convert(data: Mapping[str, Any], model: type[T], *, strict: bool = True) -> T:
    """Decoded JSON (or query values, with `strict=False` so "10" is an integer) → the model;
    a wrong field is InvalidRequest naming it (400 in the surface's envelope)."""
    try:
        return msgspec.convert(data, model, strict=strict)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(error_message(exc)) from None


_OPTIONAL: dict[type, frozenset[str]] = {}


def optional_fields(model: type) -> frozenset[str]:
    """The wire names of a model's fields that have a default."""
    names = _OPTIONAL.get(model)
    if names is None:
        fields = msgspec.structs.fields(model)
        names = _OPTIONAL[model] = frozenset(f.encode_name for f in fields if not f.required)
    return names


def to_builtins(value: Any) -> Any:
    """A model (or a structure of models) as JSON-ready builtins."""
    return msgspec.to_builtins(value)


_ENCODER = msgspec.json.Encoder()


def encode(value: Any) -> bytes:
    """A model (or builtins) as JSON bytes."""
    return _ENCODER.encode(value)


def shape(data: Any, model: type[T]) -> T:
    """What the core returned, as the response model: a mismatch is the daemon's own bug (a
    500 with its traceback in the log), never the client's."""
    return msgspec.convert(data, model, strict=True)
