"""Changing the configuration of a running daemon: edits given as JSON (the query API's
/config), checked like `research config set`, written with their comments kept, and a watcher
that applies edits of config.toml as they are saved."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import tomlkit

from localresearch.config.loader import (
    ENV_PREFIX,
    ConfigError,
    _check_value,
    _setting_type,
    describe,
    get_value,
    load_checked_config,
    load_config_text_check,
    read_document,
    redacted_dict,
)
from localresearch.config.schema import Config

log = logging.getLogger(__name__)

# The query API's names for our settings (its spec's `current_config` keys).
SPEC_KEYS = {"loops": "research.max_rounds", "llm_backend": "llm.provider"}
# The spec's backend names for ours: its offline `mock` backend is our offline builtin engine.
BACKEND_ALIASES = {"mock": "builtin"}
REASONING_MODES = ("research",)  # what /query runs; `ask` is the chat API's

# Settings that take effect without a restart: read on each use by the services holding them.
_LIVE_PREFIXES = ("llm.", "api.", "research.")
_RESTART = frozenset(
    {"research.max_concurrent_jobs", "research.web_search", "research.web_search_url",
     "research.web_search_key_env"}
)  # fmt: skip


def settings() -> list[str]:
    """Every dotted setting name."""
    return [key for key, _default, _type, _doc in describe()]


def is_live(key: str) -> bool:
    return key.startswith(_LIVE_PREFIXES) and key not in _RESTART


def flatten(body: Mapping[str, Any]) -> dict[str, Any]:
    """{"research": {"max_rounds": 3}}, {"research.max_rounds": 3} or the spec's {"loops": 3}
    → {"research.max_rounds": 3}; an unknown name is a ConfigError naming it."""
    known = set(settings())
    sections = {key.rsplit(".", 1)[0] for key in known}
    flat: dict[str, Any] = {}

    def walk(prefix: str, data: Mapping[str, Any]) -> None:
        for name, value in data.items():
            dotted = f"{prefix}{name}"
            if not prefix and name in SPEC_KEYS:
                if name == "llm_backend" and isinstance(value, str):
                    value = BACKEND_ALIASES.get(value, value)
                flat[SPEC_KEYS[name]] = value
            elif not prefix and name == "reasoning_mode":
                if value not in REASONING_MODES:
                    raise ConfigError(
                        "config", f"expected one of {', '.join(REASONING_MODES)}, got "
                        f"{json.dumps(value)}", key=name,
                    )  # fmt: skip
            elif dotted in known:
                flat[dotted] = value
            elif dotted in sections and isinstance(value, Mapping):
                walk(dotted + ".", value)
            elif not prefix and name in ("restart_required", "overridden_by_environment"):
                continue  # a GET's answer posted back as it is
            else:
                raise ConfigError(
                    "config",
                    f"unknown setting '{dotted}' (see GET /config for the known ones)",
                    key=dotted,
                )

    walk("", body)
    return flat


def checked(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Each value as its setting's type, or a ConfigError naming the key and the type."""
    values: dict[str, Any] = {}
    for key, value in flat.items():
        try:
            values[key] = _check_value(_setting_type(key), value)
        except TypeError as exc:
            raise ConfigError(
                "config", f"expected {exc}, got {json.dumps(value, default=str)}", key=key
            ) from None
    return values


def write(config_file: Path, values: Mapping[str, Any], *, replace: bool = False) -> None:
    """Set the values in config.toml keeping its comments and order; with `replace`, every
    setting not given is removed (back to its default). A value that fails the checks of
    `research config check` raises ConfigError and the file is left as it was."""
    document = read_document(config_file)
    if replace:
        _drop_missing(document, "", set(values))
    for key, value in values.items():
        parts = key.split(".")
        table: Any = document
        for part in parts[:-1]:
            if part not in table:
                table.add(part, tomlkit.table())
            table = table[part]
        table[parts[-1]] = value
    text = tomlkit.dumps(document)
    load_config_text_check(config_file, text)
    config_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = config_file.with_suffix(".toml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(config_file)


def _drop_missing(table: Any, prefix: str, keep: set[str]) -> None:
    for name in list(table.keys()):
        dotted = f"{prefix}{name}"
        value = table[name]
        if isinstance(value, Mapping) and not any(k == dotted for k in keep):
            _drop_missing(value, dotted + ".", keep)
            if not value:
                del table[name]
        elif dotted not in keep:
            del table[name]


def changed(old: Config, new: Config) -> list[str]:
    return [key for key in settings() if get_value(old, key) != get_value(new, key)]


def restart_required(old: Config, new: Config) -> list[str]:
    """The changed settings that take effect only when the daemon restarts."""
    return [key for key in changed(old, new) if not is_live(key)]


def overridden(keys: list[str], env: Mapping[str, str] | None = None) -> list[str]:
    """Those of `keys` a LOCALRESEARCH_* variable overrides (a file edit will not show)."""
    environ = os.environ if env is None else env
    return [k for k in keys if f"{ENV_PREFIX}{k.upper().replace('.', '__')}" in environ]


def view(config: Config) -> dict[str, Any]:
    """The configuration as GET /config shows it: the spec's keys, then every section, with
    credentials (and webhook URLs' tokens) redacted."""
    from localresearch.query.webhooks import shown

    data = redacted_dict(config)
    data["api"]["webhooks"] = [shown(url) for url in config.api.webhooks]
    return {
        "reasoning_mode": REASONING_MODES[0],
        "loops": config.research.max_rounds,
        "llm_backend": config.llm.provider,
        **data,
    }


Apply = Callable[[Config], list[str]]


class ConfigWatcher:
    """Applies config.toml as saved while the daemon runs (polling its size and mtime); a file
    that does not pass the checks is logged and the running configuration kept."""

    def __init__(self, config_file: Path, interval: float, apply: Apply) -> None:
        self.config_file = config_file
        self.interval = interval
        self.apply = apply
        self._seen = self._stamp()
        self._task: asyncio.Task[None] | None = None
        self.applied = 0

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.config_file.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def mark_written(self) -> None:
        """The daemon wrote the file itself (and applied it): not an edit to apply again."""
        self._seen = self._stamp()

    async def start(self) -> None:
        if self.interval > 0:
            self._task = asyncio.create_task(self._watch(), name="config-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            stamp = self._stamp()
            if stamp == self._seen:
                continue
            self._seen = stamp
            try:
                config = await asyncio.to_thread(load_checked_config, self.config_file)
            except ConfigError as exc:
                log.warning("config.toml edited but not applied: %s", exc)
                continue
            restart = self.apply(config)
            self.applied += 1
            log.info(
                "config.toml edited: applied%s",
                f" (restart needed for {', '.join(restart)})" if restart else "",
            )
