"""`*_env` settings name an environment variable; a key pasted into one is refused by every path
that writes or loads the configuration (`config set`, `config check`, `PUT /config`, daemon
start), and no message repeats it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from localresearch.cli.main import cli
from localresearch.config.checks import env_name_problem
from localresearch.config.loader import ENV_NAME_SETTINGS, load_checked_config, set_value
from localresearch.paths import Paths
from tests.conftest import free_port
from tests.daemon_fixture import DaemonHandle, call_json

SECRET = "sk-test-SECRET123"


def test_every_env_setting_is_checked() -> None:
    assert {
        "llm.api_key_env",
        "memory.embeddings.api_key_env",
        "research.web_search_key_env",
        "api.key_env",
    } == ENV_NAME_SETTINGS


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (SECRET, "looks like an API key"),
        ("Bearer abcdef123456", "looks like an API key"),
        ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "looks like an API key"),  # a valid name's shape
        ("ghp_" + "aB3" * 12, "looks like an API key"),
        ("Ab3" * 12, "looks like an API key"),
        ("MY-KEY", "expected the name of an environment variable"),
        ("1KEY", "expected the name of an environment variable"),
        ("OPENAI API KEY", "expected the name of an environment variable"),
    ],
)
def test_a_value_that_is_no_variable_name_is_refused(value: str, says: str) -> None:
    problem = env_name_problem(value)
    assert problem is not None and says in problem
    assert "environment variable" in problem and value not in problem


@pytest.mark.parametrize("value", ["", "OPENAI_API_KEY", "_key2", "hf_token_for_my_model"])
def test_variable_names_are_accepted(value: str) -> None:
    assert env_name_problem(value) is None


@pytest.fixture
def no_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI finds no daemon (a free port), so it reads and writes the file itself."""
    monkeypatch.setenv("LOCALRESEARCH_SERVER__PORT", str(free_port()))


@pytest.mark.usefixtures("no_daemon")
@pytest.mark.parametrize("key", sorted(ENV_NAME_SETTINGS))
def test_config_set_refuses_a_key_without_echoing_it(paths: Paths, key: str) -> None:
    paths.config_file.write_text("# mine\n")
    result = CliRunner().invoke(cli, ["config", "set", key, SECRET])
    assert result.exit_code == 2
    assert "looks like an API key" in result.output and key in result.output
    assert SECRET not in result.output
    assert paths.config_file.read_text() == "# mine\n"
    with pytest.raises(Exception, match="looks like an API key"):
        set_value(paths.config_file, key, SECRET)
    assert set_value(paths.config_file, key, "MY_KEY") == "MY_KEY"


@pytest.mark.usefixtures("no_daemon")
def test_config_check_and_get_with_a_key_in_the_file(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths.config_file.write_text(f'[llm]\nprovider = "openai"\napi_key_env = "{SECRET}"\n')
    runner = CliRunner()
    check = runner.invoke(cli, ["config", "check"])
    assert check.exit_code == 2 and "[llm.api_key_env]" in check.output
    assert "looks like an API key" in check.output and SECRET not in check.output
    as_json = runner.invoke(cli, ["config", "check", "--json"])
    answer = json.loads(as_json.stdout)
    assert as_json.exit_code == 2 and answer["key"] == "llm.api_key_env" and answer["line"] == 3
    assert SECRET not in as_json.output
    for args in (
        ["config", "get", "llm"],
        ["config", "get", "llm.api_key_env"],
        ["config", "show"],
    ):
        shown = runner.invoke(cli, args)
        assert shown.exit_code == 0, shown.output
        assert SECRET not in shown.output and "hidden" in shown.output, args

    paths.config_file.write_text("")
    monkeypatch.setenv("LOCALRESEARCH_RESEARCH__WEB_SEARCH_KEY_ENV", SECRET)
    env = runner.invoke(cli, ["config", "check"])
    assert env.exit_code == 2 and "LOCALRESEARCH_RESEARCH__WEB_SEARCH_KEY_ENV" in env.output
    assert SECRET not in env.output
    with pytest.raises(Exception, match="looks like an API key") as info:
        load_checked_config(paths.config_file)
    assert SECRET not in str(info.value)


def test_running_daemon_refuses_it_and_start_refuses_a_file_holding_it(
    daemon_env: DaemonHandle,
) -> None:
    config_file = daemon_env.home / "config.toml"
    config_file.write_text('[llm]\napi_key_env = "OPENAI_API_KEY"\n')
    daemon_env.start()
    try:
        status, body = call_json(
            daemon_env.port, "PUT", "/config", {"llm": {"api_key_env": SECRET}}
        )
        assert status == 400 and "looks like an API key" in json.dumps(body)
        assert SECRET not in json.dumps(body)
        status, body = call_json(daemon_env.port, "PUT", "/config", {"api.key_env": "MY KEY"})
        assert status == 400 and "expected the name of an environment variable" in json.dumps(body)
        through = daemon_env.cli("config", "set", "memory.embeddings.api_key_env", SECRET)
        assert through.returncode == 2 and "looks like an API key" in through.stderr
        assert SECRET not in through.stdout + through.stderr
        assert SECRET not in config_file.read_text()
        status, body = call_json(daemon_env.port, "GET", "/config")
        assert status == 200 and body["llm"]["api_key_env"] == "OPENAI_API_KEY"
    finally:
        daemon_env.stop()
    log = daemon_env.home / "state" / "daemon.log"
    assert log.exists() and SECRET not in log.read_text()

    config_file.write_text(f'[research]\nweb_search_key_env = "{SECRET}"\n')
    refused = daemon_env.cli("daemon", "start")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "[research.web_search_key_env]" in refused.stderr
    assert "looks like an API key" in refused.stderr
    assert SECRET not in refused.stdout + refused.stderr
    assert daemon_env.pid() is None


def test_shown_settings_hide_a_key_but_not_a_name() -> None:
    from localresearch.config.loader import HIDDEN, redact

    stripe = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"  # a valid variable name, shaped like a key
    assert redact("memory.embeddings.api_key_env", stripe) == HIDDEN
    assert redact("memory", {"embeddings": {"api_key_env": SECRET}}) == {
        "embeddings": {"api_key_env": HIDDEN}
    }
    assert redact("llm", {"api_key_env": "OPENAI_API_KEY", "model": SECRET}) == {
        "api_key_env": "OPENAI_API_KEY",
        "model": SECRET,  # not a `*_env` setting
    }
