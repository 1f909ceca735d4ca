"""`[heartbeat]` checked and parsed once: a bad value is a ConfigError naming file, key and form.

`check_heartbeat_config` is what `research config check|set` and `daemon start` call, so a bad
value is refused before the daemon starts instead of failing inside it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, timedelta, tzinfo
from pathlib import Path
from typing import TypeVar

from localresearch.config import Config, ConfigError
from localresearch.config.schema import HeartbeatConfig
from localresearch.errors import LocalResearchError
from localresearch.heartbeat.schedule import (
    ActiveHours,
    format_duration,
    local_zone,
    parse_duration,
)

T = TypeVar("T")
ENV_PREFIX = "LOCALRESEARCH_HEARTBEAT__"
MIN_INTERVAL = timedelta(minutes=1)
EXPECTED = {
    "interval": "a duration of at least 1m such as 30m, 2h or 1h30m",
    "timeout": "a duration such as 15m, no longer than the interval (empty: half the interval)",
    "active_hours": "HH:MM-HH:MM in local time such as 08:00-22:00 (empty: always)",
    "timezone": "an IANA time zone such as Europe/Paris or America/New_York (empty: the system's)",
}


@dataclass(frozen=True)
class HeartbeatSettings:
    """The parsed `[heartbeat]` section the scheduler runs on."""

    enabled: bool = True
    interval: timedelta = timedelta(minutes=30)
    active: ActiveHours = ActiveHours()
    timeout: timedelta = timedelta(minutes=15)
    tz: tzinfo = UTC

    @classmethod
    def from_config(cls, config: Config, *, file: str | None = None) -> HeartbeatSettings:
        return cls.from_section(config.heartbeat, file=file)

    @classmethod
    def from_section(
        cls, section: HeartbeatConfig, *, file: str | None = None
    ) -> HeartbeatSettings:
        """Parse every value; the first bad one raises ConfigError (file, key, expected form)."""

        def check(key: str, parse: Callable[[str], T]) -> T:
            raw = getattr(section, key)
            if not isinstance(raw, str):
                raise _error(key, raw, "not a string", file)
            try:
                return parse(raw)
            except LocalResearchError as exc:
                raise _error(key, raw, exc.message, file) from None
            except (ValueError, OverflowError, OSError) as exc:
                raise _error(key, raw, str(exc), file) from None

        interval = check("interval", parse_duration)
        if interval < MIN_INTERVAL:
            raise _error("interval", section.interval, "too short", file)
        timeout = check("timeout", parse_duration) if section.timeout.strip() else interval / 2
        if timeout > interval:
            raise _error(
                "timeout", section.timeout, f"longer than the interval ({section.interval})", file
            )
        return cls(
            enabled=bool(section.enabled),
            interval=interval,
            active=check("active_hours", ActiveHours.parse),
            timeout=timeout,
            tz=check("timezone", local_zone),
        )

    def describe(self) -> str:
        return f"every {format_duration(self.interval)} (timeout {format_duration(self.timeout)})"


def check_heartbeat_config(section: HeartbeatConfig, file: str | None = None) -> None:
    """Raise ConfigError if `[heartbeat]` would not run: file, key and what was expected."""
    HeartbeatSettings.from_section(section, file=file)


def _error(key: str, raw: object, problem: str, file: str | None) -> ConfigError:
    source, line = _source(key, file)
    problem = re.sub(r"\s*\((?:examples|use)\b[^)]*\)", "", problem)  # ours says it better
    got = "" if repr(raw) in problem else f": got {raw!r}"
    message = f"{problem}{got}; expected {EXPECTED[key]}"
    return ConfigError(source, message, key=f"heartbeat.{key}", line=line)


def _source(key: str, file: str | None) -> tuple[str, int | None]:
    """Where the value came from: its environment variable if set, else the config file."""
    env = f"{ENV_PREFIX}{key.upper()}"
    if env in os.environ:
        return f"environment variable {env}", None
    if file is None:
        from localresearch.paths import resolve_paths

        file = str(resolve_paths().config_file)
    return file, _find_line(Path(file), key)


def _find_line(path: Path, key: str) -> int | None:
    """The line of `key = ...` inside `[heartbeat]`, to point the user at it (best effort)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    section = ""
    assignment = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"^\s*\[\s*([^\]]+?)\s*\]", line)
        if header:
            section = header.group(1).strip().strip('"')
        elif section == "heartbeat" and assignment.match(line):
            return number
    return None
