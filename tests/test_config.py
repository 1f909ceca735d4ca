"""Configuration: defaults, file, environment overrides, errors that point at the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from localresearch.config import ConfigError, load_config
from localresearch.config.loader import example_toml, get_value, set_value


def test_defaults_without_a_file(tmp_path: Path) -> None:
    config = load_config(tmp_path / "missing.toml", env={})
    assert config.server.port == 31327
    assert config.server.bind == "127.0.0.1"
    assert config.server.enabled is True
    assert config.llm.provider == "builtin"
    assert config.memory.embeddings.provider == "none"


def test_file_values_and_env_override(tmp_path: Path) -> None:
    f = tmp_path / "config.toml"
    f.write_text("[server]\nport = 9000\n[memory]\npaths = ['/a', '/b']\n")
    config = load_config(f, env={})
    assert config.server.port == 9000
    assert config.memory.paths == ["/a", "/b"]
    env = {
        "LOCALRESEARCH_SERVER__PORT": "8123",
        "LOCALRESEARCH_MEMORY__PATHS": "/x,/y",
        "LOCALRESEARCH_MEMORY__EMBEDDINGS__PROVIDER": "ollama",
        "LOCALRESEARCH_HEARTBEAT__ENABLED": "false",
    }
    config = load_config(f, env=env)
    assert config.server.port == 8123
    assert config.memory.paths == ["/x", "/y"]
    assert config.memory.embeddings.provider == "ollama"
    assert config.heartbeat.enabled is False


def test_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    f = tmp_path / "config.toml"
    f.write_text("# comment\n[server]\nport = 1\nprot = 2\n")
    with pytest.raises(ConfigError) as info:
        load_config(f, env={})
    err = info.value
    assert err.key == "server.prot"
    assert err.line == 4
    assert str(f) in str(err) and "unknown setting 'prot'" in str(err)


def test_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    f = tmp_path / "config.toml"
    f.write_text('[server]\nport = "eighty"\n')
    with pytest.raises(ConfigError) as info:
        load_config(f, env={})
    assert info.value.line == 2
    assert "expected an integer" in str(info.value)


def test_bool_is_not_an_int(tmp_path: Path) -> None:
    f = tmp_path / "config.toml"
    f.write_text("[server]\nport = true\n")
    with pytest.raises(ConfigError, match="expected an integer"):
        load_config(f, env={})


def test_invalid_toml_reports_line(tmp_path: Path) -> None:
    f = tmp_path / "config.toml"
    f.write_text("[server]\nport = = 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(f, env={})
    assert info.value.line == 2
    assert "invalid TOML" in str(info.value)


def test_unknown_section_and_bad_env(tmp_path: Path) -> None:
    f = tmp_path / "config.toml"
    f.write_text("[nonsense]\na = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'nonsense'"):
        load_config(f, env={})
    with pytest.raises(ConfigError, match="LOCALRESEARCH_SERVER__NOPE"):
        load_config(tmp_path / "none.toml", env={"LOCALRESEARCH_SERVER__NOPE": "1"})
    with pytest.raises(ConfigError, match="expected an integer"):
        load_config(tmp_path / "none.toml", env={"LOCALRESEARCH_SERVER__PORT": "abc"})


def test_set_keeps_comments_and_order(tmp_path: Path) -> None:
    f = tmp_path / "config.toml"
    f.write_text("# my settings\n[llm]\n# which model\nmodel = 'x'\n\n[server]\nport = 1\n")
    set_value(f, "server.port", "4242")
    set_value(f, "research.dimensions", "5")
    text = f.read_text()
    assert text.startswith("# my settings\n[llm]\n# which model\nmodel = 'x'\n")
    assert "port = 4242" in text
    assert text.index("[llm]") < text.index("[server]") < text.index("[research]")
    config = load_config(f, env={})
    assert config.server.port == 4242 and config.research.dimensions == 5
    assert get_value(config, "llm.model") == "x"


def test_set_refuses_bad_values(tmp_path: Path) -> None:
    f = tmp_path / "config.toml"
    with pytest.raises(ConfigError, match="expected an integer"):
        set_value(f, "server.port", "many")
    with pytest.raises(ConfigError, match="unknown setting"):
        set_value(f, "server.nope", "1")
    with pytest.raises(ConfigError, match="is a section"):
        set_value(f, "server", "1")
    assert not f.exists()


def test_example_file_is_current_and_loads(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    example = (repo / "config.toml.example").read_text()
    assert example == example_toml(), "run: python scripts/gen_docs.py"
    uncommented = "\n".join(
        line[2:] if line.startswith("# ") and " = " in line else line
        for line in example.splitlines()
    )
    f = tmp_path / "config.toml"
    f.write_text(uncommented)
    assert load_config(f, env={}) == load_config(tmp_path / "none.toml", env={})


def test_every_setting_is_documented() -> None:
    from localresearch.config.loader import describe

    repo = Path(__file__).resolve().parents[1]
    doc = (repo / "docs" / "configuration.md").read_text()
    missing = [key for key, *_ in describe() if f"`{key}`" not in doc]
    assert not missing, f"undocumented settings (run scripts/gen_docs.py): {missing}"


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("[server]\nport = 70000\n", "server.port", "between 1 and 65535"),
        ("[research]\ndimensions = 50\n", "research.dimensions", "between 3 and 6"),
        ('[research]\nweb_search = "google"\n', "research.web_search", "one of none, searxng"),
        ('[llm]\nprovider = "nosuch"\n', "llm.provider", "one of"),
        ('[memory.embeddings]\nprovider = "magic"\n', "memory.embeddings.provider", "one of"),
        ('[server]\nlog_level = "loud"\n', "server.log_level", "one of debug"),
        ('[heartbeat]\ninterval = "banana"\n', "heartbeat.interval", "banana"),
        ('[heartbeat]\nactive_hours = "25:00-xx"\n', "heartbeat.active_hours", "25:00-xx"),
    ],
)
def test_values_are_checked_with_file_line_and_key(
    tmp_path: Path, text: str, key: str, fragment: str
) -> None:
    from localresearch.config.loader import load_checked_config

    f = tmp_path / "config.toml"
    f.write_text("# mine\n" + text)
    load_config(f, env={})  # the type is right: plain loading works
    with pytest.raises(ConfigError) as info:
        load_checked_config(f, env={})
    err = info.value
    assert err.key == key and fragment in str(err)
    assert err.file == str(f) and err.line == 3


def test_set_refuses_out_of_range_values(tmp_path: Path) -> None:
    f = tmp_path / "config.toml"
    with pytest.raises(ConfigError, match="between 3 and 6"):
        set_value(f, "research.dimensions", "9")
    with pytest.raises(ConfigError, match="between 0 and 5"):  # what deep --rounds and loops take
        set_value(f, "research.max_rounds", "9")
    with pytest.raises(ConfigError, match="banana"):
        set_value(f, "heartbeat.interval", "banana")
    assert not f.exists()


def test_known_web_search_names_match_the_implementations() -> None:
    from localresearch.config.checks import WEB_SEARCH
    from localresearch.research.websearch import APIS

    assert set(WEB_SEARCH) == {"none", *APIS}


def test_builtin_provider_names_are_all_registered() -> None:
    from localresearch.config.checks import BUILTIN_PROVIDERS, _providers

    assert set(BUILTIN_PROVIDERS) <= set(_providers())
