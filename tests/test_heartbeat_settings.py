"""`[heartbeat]` values are checked up front: a bad one is a ConfigError naming file and key."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from localresearch.config import ConfigError, load_config
from localresearch.heartbeat.settings import HeartbeatSettings, check_heartbeat_config
from localresearch.paths import Paths
from localresearch.runtime import Runtime


@pytest.mark.parametrize(
    ("setting", "key", "expected"),
    [
        ('interval = "banana"', "heartbeat.interval", "30m"),
        ('interval = "10s"', "heartbeat.interval", "at least 1m"),
        ('interval = "99999999999w"', "heartbeat.interval", "30m"),
        ('timeout = "5"', "heartbeat.timeout", "15m"),
        ('timeout = "2h"', "heartbeat.timeout", "no longer than the interval"),
        ('active_hours = "25:00-xx"', "heartbeat.active_hours", "08:00-22:00"),
        ('active_hours = "8-22"', "heartbeat.active_hours", "08:00-22:00"),
        ('timezone = "Nowhere/Land"', "heartbeat.timezone", "Europe/Paris"),
        ('timezone = "' + "a" * 300 + '"', "heartbeat.timezone", "IANA"),
        ('timezone = "/etc/passwd"', "heartbeat.timezone", "IANA"),
    ],
)
def test_bad_values_are_config_errors_with_file_key_and_form(
    write_config: Any, paths: Paths, setting: str, key: str, expected: str
) -> None:
    write_config(f"# my settings\n[heartbeat]\nenabled = true\n{setting}\n")
    config = load_config(paths.config_file)  # the loader checks types only
    with pytest.raises(ConfigError) as info:
        check_heartbeat_config(config.heartbeat)
    error = info.value
    assert error.key == key
    assert error.file == str(paths.config_file) and error.line == 4
    assert "expected" in error.message and expected in error.message
    assert f"{paths.config_file}:4 [{key}]" in str(error)


def test_a_value_from_the_environment_names_its_variable(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCALRESEARCH_HEARTBEAT__INTERVAL", "banana")
    config = load_config(paths.config_file)
    with pytest.raises(ConfigError) as info:
        check_heartbeat_config(config.heartbeat)
    assert info.value.file == "environment variable LOCALRESEARCH_HEARTBEAT__INTERVAL"


def test_good_values_pass_and_parse(write_config: Any, paths: Paths) -> None:
    write_config(
        '[heartbeat]\ninterval = "1h"\nactive_hours = "22:00-06:00"\ntimezone = "Asia/Tokyo"\n'
    )
    config = load_config(paths.config_file)
    check_heartbeat_config(config.heartbeat)
    settings = HeartbeatSettings.from_config(config)
    assert settings.interval == timedelta(hours=1) and settings.timeout == timedelta(minutes=30)
    assert str(settings.tz) == "Asia/Tokyo" and settings.active.describe() == "22:00-06:00"
    check_heartbeat_config(load_config(paths.config_file.with_name("absent.toml")).heartbeat)


async def test_the_runtime_raises_config_error_not_a_crash(write_config: Any, paths: Paths) -> None:
    write_config('[heartbeat]\nactive_hours = "25:00-xx"\n')
    runtime = Runtime(load_config(paths.config_file), paths)
    try:
        with pytest.raises(ConfigError) as info:
            await runtime.start()
        assert info.value.key == "heartbeat.active_hours"
    finally:
        await runtime.stop()


def test_daemon_start_refuses_a_bad_heartbeat_config(daemon_env: Any) -> None:
    (daemon_env.home / "config.toml").write_text('[heartbeat]\ninterval = "banana"\n')
    result = daemon_env.cli("daemon", "start")
    assert result.returncode != 0
    assert "heartbeat.interval" in result.stderr and "banana" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_config_check_refuses_a_bad_heartbeat_config(daemon_env: Any) -> None:
    (daemon_env.home / "config.toml").write_text('[heartbeat]\nactive_hours = "25:00-xx"\n')
    result = daemon_env.cli("config", "check")
    assert result.returncode != 0
    assert "heartbeat.active_hours" in result.stderr and "08:00-22:00" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
