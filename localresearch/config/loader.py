"""Read, validate and edit config.toml; environment variables override the file."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.exceptions

from localresearch.config.schema import Config

ENV_PREFIX = "LOCALRESEARCH_"


@dataclass
class ConfigError(Exception):
    """A problem a user can fix, told as file, place and what was expected."""

    file: str
    message: str
    key: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
        key = f" [{self.key}]" if self.key else ""
        return f"{where}{key}: {self.message}"


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_section(tp: Any) -> bool:
    return dataclasses.is_dataclass(tp)


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is list:
        return "a list of strings"
    if typing.get_origin(tp) is dict:
        value = typing.get_args(tp)[1]
        return f"a table of {_type_name(value).removeprefix('a ').removeprefix('an ')}s"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        tp, str(tp)
    )


def _check_value(tp: Any, value: Any) -> Any:
    """Return the value as the setting's type, or raise TypeError saying what was expected."""
    if typing.get_origin(tp) is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise TypeError(_type_name(tp))
        value_type = typing.get_args(tp)[1]
        return {str(k): _check_value(value_type, _plain(v)) for k, v in value.items()}
    if typing.get_origin(tp) is list:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [str(v) for v in value]
        raise TypeError(_type_name(tp))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise TypeError(_type_name(tp))
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        raise TypeError(_type_name(tp))
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError(_type_name(tp))
    if tp is str:
        if isinstance(value, str):
            return str(value)
        raise TypeError(_type_name(tp))
    raise TypeError(str(tp))


def _find_line(text: str, section: str, key: str | None) -> int | None:
    """Best-effort line of `key` inside `[section]` so errors can point at it."""
    header = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*(#.*)?$")
    current = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        match = header.match(raw)
        if match:
            current = match.group(1)
            if key is None and current == section:
                return number
            continue
        if key is not None and current == section and re.match(rf"^\s*{re.escape(key)}\s*=", raw):
            return number
    return None


def _build(cls: type, data: dict[str, Any], path: str, file: str, text: str) -> Any:
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{path}.{key}" if path else key
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(
                file,
                f"unknown setting '{key}' (known here: {known})",
                key=dotted,
                line=_find_line(text, path, key) if path else _find_line(text, key, None),
            )
        tp = hints[key]
        if _is_section(tp):
            if not isinstance(value, dict):
                raise ConfigError(file, f"'{dotted}' must be a [section]", key=dotted)
            kwargs[key] = _build(tp, dict(value), dotted, file, text)
            continue
        try:
            kwargs[key] = _check_value(tp, _plain(value))
        except TypeError as exc:
            raise ConfigError(
                file,
                f"expected {exc}, got {json.dumps(_plain(value), default=str)}",
                key=dotted,
                line=_find_line(text, path, key),
            ) from None
    return cls(**kwargs)


def _plain(value: Any) -> Any:
    """tomlkit items → plain Python values."""
    if hasattr(value, "unwrap"):
        return value.unwrap()
    return value


def _parse_env_value(tp: Any, raw: str) -> Any:
    if typing.get_origin(tp) is dict:  # JSON: {"admin": "secret1"}
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    if typing.get_origin(tp) is list:
        raw = raw.strip()
        if raw.startswith("["):
            return json.loads(raw)
        return [part.strip() for part in raw.split(",") if part.strip()]
    if tp is bool:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        return raw
    if tp is int:
        try:
            return int(raw)
        except ValueError:
            return raw
    if tp is float:
        try:
            return float(raw)
        except ValueError:
            return raw
    return raw


def _env_overrides(env: typing.Mapping[str, str]) -> dict[str, Any]:
    """LOCALRESEARCH_SECTION__KEY=value → nested dict; unknown names are reported."""
    overrides: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        cls: Any = Config
        target = overrides
        for i, part in enumerate(parts):
            hints = _hints(cls)
            if part not in hints:
                raise ConfigError(f"environment variable {name}", f"unknown setting '{part}'")
            tp = hints[part]
            if i == len(parts) - 1:
                if _is_section(tp):
                    raise ConfigError(f"environment variable {name}", "names a section, not a key")
                target[part] = _parse_env_value(tp, raw)
            else:
                if not _is_section(tp):
                    raise ConfigError(f"environment variable {name}", f"'{part}' is not a section")
                target = target.setdefault(part, {})
                cls = tp
    return overrides


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_text(config_file: Path) -> str:
    """The file's text ('' if missing); not UTF-8 or unreadable is a ConfigError saying where."""
    try:
        raw = config_file.read_bytes()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise ConfigError(str(config_file), f"cannot read the file: {exc.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = raw[exc.start : exc.start + 1].hex()
        raise ConfigError(
            str(config_file),
            f"not UTF-8 text: byte 0x{byte} at column {column} (save the file as UTF-8)",
            line=line,
        ) from None


def read_document(config_file: Path) -> tomlkit.TOMLDocument:
    """Parse the file keeping comments; a missing file is an empty document."""
    if not config_file.exists():
        return tomlkit.document()
    text = read_text(config_file)
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(
            str(config_file), f"invalid TOML: {exc}", line=getattr(exc, "line", None)
        ) from None


def load_checked_config(config_file: Path, env: typing.Mapping[str, str] | None = None) -> Config:
    """load_config plus the value checks: for `config check` and `daemon start`.

    The file's own values are checked first, so a variable that overrides a bad one does not
    hide it; then the effective values. An error names its source: the file and line, or the
    environment variable."""
    from localresearch.config.checks import check_config

    environ = os.environ if env is None else env
    if _env_overrides(environ):
        check_config(load_config(config_file, {}), config_file)
    config = load_config(config_file, environ)
    try:
        check_config(config, config_file)
    except ConfigError as exc:
        raise _attributed(exc, environ) from None
    return config


def load_config(config_file: Path, env: typing.Mapping[str, str] | None = None) -> Config:
    """The effective configuration: defaults, then the file, then the environment."""
    environ = os.environ if env is None else env
    document = read_document(config_file)
    text = read_text(config_file)
    data = _merge(_plain(document), _env_overrides(environ))
    try:
        config: Config = _build(Config, data, "", str(config_file), text)
    except ConfigError as exc:
        raise _attributed(exc, environ) from None
    return config


def _attributed(exc: ConfigError, environ: typing.Mapping[str, str]) -> ConfigError:
    """The error with its source: the variable that set the key, if one did (else the file)."""
    if exc.key is None or exc.file.startswith("environment variable"):
        return exc
    parts = exc.key.split(".")
    for name in environ:
        if name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX) :].lower().split("__") == parts:
            exc.file, exc.line = f"environment variable {name}", None
            break
    return exc


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def describe(cls: type = Config, prefix: str = "") -> list[tuple[str, Any, str, str]]:
    """(dotted key, default, type name, doc) for every setting: docs and the example file."""
    rows: list[tuple[str, Any, str, str]] = []
    instance = cls()
    for f in dataclasses.fields(cls):
        tp = _hints(cls)[f.name]
        dotted = f"{prefix}{f.name}"
        if _is_section(tp):
            rows.extend(describe(tp, dotted + "."))
        else:
            rows.append((dotted, getattr(instance, f.name), _type_name(tp), f.metadata["doc"]))
    return rows


def get_value(config: Config, key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        if not dataclasses.is_dataclass(node) or not hasattr(node, part):
            raise ConfigError("config", f"unknown setting '{key}'", key=key)
        node = getattr(node, part)
    return to_dict(node) if dataclasses.is_dataclass(node) else node


def _setting_type(key: str) -> Any:
    cls: Any = Config
    parts = key.split(".")
    for i, part in enumerate(parts):
        hints = _hints(cls)
        if part not in hints:
            raise ConfigError("config", f"unknown setting '{key}'", key=key)
        tp = hints[part]
        if i < len(parts) - 1:
            if not _is_section(tp):
                raise ConfigError("config", f"'{part}' is not a section", key=key)
            cls = tp
        elif _is_section(tp):
            raise ConfigError("config", f"'{key}' is a section; name one of its keys", key=key)
    return tp


def set_value(config_file: Path, key: str, raw: str) -> Any:
    """Change one setting in place, keeping the user's comments and key order."""
    tp = _setting_type(key)
    value = _parse_env_value(tp, raw)
    try:
        value = _check_value(tp, value)
    except TypeError as exc:
        raise ConfigError(str(config_file), f"expected {exc}, got {raw!r}", key=key) from None
    document = read_document(config_file)
    parts = key.split(".")
    table: Any = document
    for part in parts[:-1]:
        if part not in table:
            table.add(part, tomlkit.table())
        table = table[part]
    table[parts[-1]] = value
    config_file.parent.mkdir(parents=True, exist_ok=True)
    new_text = tomlkit.dumps(document)
    load_config_text_check(config_file, new_text)
    tmp = config_file.with_suffix(".toml.tmp")
    tmp.write_text(new_text, encoding="utf-8")
    tmp.replace(config_file)
    return value


def load_config_text_check(config_file: Path, text: str) -> None:
    """Refuse to write a file that would not load or whose values are out of range."""
    from localresearch.config.checks import check_config

    data = _plain(tomlkit.parse(text))
    check_config(_build(Config, data, "", str(config_file), text), config_file, text)


def example_toml() -> str:
    """config.toml.example: every setting with its default, commented."""
    lines = [
        "# localresearch configuration. Copy to the path shown by `research config path`.",
        "# Every setting is optional; the values below are the defaults.",
        "# Environment variables override the file: LOCALRESEARCH_<SECTION>__<KEY>,",
        "# e.g. LOCALRESEARCH_SERVER__PORT=8123 or",
        "# LOCALRESEARCH_MEMORY__EMBEDDINGS__PROVIDER=ollama.",
    ]
    current = None
    for key, default, _type, doc in describe():
        section, _, name = key.rpartition(".")
        if section != current:
            lines += ["", f"[{section}]"]
            current = section
        lines.append(f"# {doc}")
        lines.append(f"# {name} = {_toml_value(default)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    """One value as TOML on one line (tables inline)."""
    if isinstance(value, dict):
        table = tomlkit.inline_table()
        table.update(value)
        return str(table.as_string())
    return str(tomlkit.item(value).as_string())


# Settings whose values are credentials: shown as "(set)" by `config show/get`, never echoed.
SECRET_SETTINGS = frozenset({"api.api_key", "api.bearer_token", "api.api_keys"})


# Settings that name the environment variable holding a key (llm.api_key_env, …): every
# setting whose name ends in `_env`. Their value is a variable's name, never the key itself.
# Found by walking the default Config, not `describe()`: this runs at import (daemon start-up,
# every command that reads the config) and describe's type-hint resolution costs ~100x more.
def _env_name_settings(section: Any, prefix: str = "") -> typing.Iterator[str]:
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if dataclasses.is_dataclass(value):
            yield from _env_name_settings(value, f"{prefix}{f.name}.")
        elif f.name.endswith("_env"):
            yield f"{prefix}{f.name}"


ENV_NAME_SETTINGS = frozenset(_env_name_settings(Config()))
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
HIDDEN = "(hidden: not an environment variable name)"  # a key, perhaps: never shown


def is_env_name(value: str) -> bool:
    """Whether `value` can name an environment variable (letters, digits, _; no digit first)."""
    return _ENV_NAME.fullmatch(value) is not None


def redact(key: str, value: Any) -> Any:
    """The value of a setting (or of a section, as a table) as it may be shown: credentials
    masked, and a `*_env` setting that holds something other than a variable's name (a key
    pasted by mistake) hidden."""
    if isinstance(value, dict) and key not in SECRET_SETTINGS:
        return {name: redact(f"{key}.{name}", item) for name, item in value.items()}
    if key in ENV_NAME_SETTINGS and isinstance(value, str) and value:
        from localresearch.config.checks import env_name_problem

        return HIDDEN if env_name_problem(value) else value
    if key not in SECRET_SETTINGS or not value:
        return value
    if isinstance(value, dict):
        return {name: "(set)" for name in value}
    return "(set)"


def redacted_dict(config: Any) -> dict[str, Any]:
    """to_dict with every credential masked."""
    data = to_dict(config)
    return {section: redact(section, values) for section, values in data.items()}
