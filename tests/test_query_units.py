"""The query API's pure parts: config edits given as JSON, webhook URL checks and redaction,
and a job's events told as reasoning steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from localresearch.config import ConfigError, load_config
from localresearch.config.live import checked, flatten, restart_required, write
from localresearch.events import Event
from localresearch.query.compose import step_of
from localresearch.query.webhooks import shown, webhook_problem


def test_flatten_accepts_the_spec_names_sections_and_dotted_keys() -> None:
    body = {"loops": 3, "llm_backend": "builtin", "research": {"dimensions": 5},
            "api.rate_limit": 7, "reasoning_mode": "research"}  # fmt: skip
    assert flatten(body) == {
        "research.max_rounds": 3,
        "llm.provider": "builtin",
        "research.dimensions": 5,
        "api.rate_limit": 7,
    }
    for bad, key in (({"nope": 1}, "nope"), ({"research": {"nope": 1}}, "research.nope"),
                     ({"reasoning_mode": "dialectical"}, "reasoning_mode")):  # fmt: skip
        with pytest.raises(ConfigError) as err:
            flatten(bad)
        assert err.value.key == key


def test_checked_names_the_key_and_the_expected_type() -> None:
    assert checked({"llm.temperature": 1}) == {"llm.temperature": 1.0}
    with pytest.raises(ConfigError) as err:
        checked({"research.max_rounds": "3"})
    assert err.value.key == "research.max_rounds" and "an integer" in err.value.message
    with pytest.raises(ConfigError):
        checked({"research.max_rounds": True})


def test_write_keeps_comments_and_replace_drops_the_rest(tmp_path: Path) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        "# top comment\n[research]\n# rounds, tuned\nmax_rounds = 1\ndimensions = 5\n"
        '\n[server]\nlog_level = "debug"  # noisy\n'
    )
    write(config_file, {"research.max_rounds": 3})
    text = config_file.read_text()
    assert "# top comment" in text and "# rounds, tuned" in text and "# noisy" in text
    assert load_config(config_file, env={}).research.max_rounds == 3
    before = text
    with pytest.raises(ConfigError) as err:
        write(config_file, {"research.dimensions": 9})  # out of range: nothing written
    assert err.value.key == "research.dimensions"
    assert config_file.read_text() == before
    write(config_file, {"research.max_rounds": 2}, replace=True)
    config = load_config(config_file, env={})
    assert config.research.max_rounds == 2
    assert config.research.dimensions == 4 and config.server.log_level == "info"  # defaults
    assert "# top comment" in config_file.read_text()


def test_restart_required_lists_only_settings_not_applied_live(tmp_path: Path) -> None:
    old = load_config(tmp_path / "none.toml", env={})
    (tmp_path / "c.toml").write_text(
        "[server]\nport = 8123\n[research]\nmax_rounds = 1\nmax_concurrent_jobs = 4\n"
        "[api]\nrate_limit = 5\n[llm]\ntemperature = 0.5\n"
    )
    new = load_config(tmp_path / "c.toml", env={})
    assert restart_required(old, new) == ["server.port", "research.max_concurrent_jobs"]


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://host/x", "gopher://h/", "http://", "javascript:alert(1)",
     "http://host:99999/", "http://a b/", "", "/relative/hook"],
)  # fmt: skip
def test_webhook_urls_other_than_http_are_refused(url: str) -> None:
    assert webhook_problem(url)


def test_webhook_urls_are_shown_without_their_secrets() -> None:
    assert webhook_problem("https://hooks.example.com/x?token=1") is None
    assert shown("https://user:pw@hooks.example.com:8443/x?token=s3cret#f") == (
        "https://***@hooks.example.com:8443/x?***"
    )
    assert shown("http://127.0.0.1:9000/hook") == "http://127.0.0.1:9000/hook"


def test_events_become_reasoning_steps() -> None:
    def step(kind: str, data: object) -> tuple[str, str] | None:
        found = step_of(Event(type=kind, data=data))
        return (found.kind, found.text) if found else None

    assert step("scope_complete", {"dimensions": ["A", "B"]}) == (
        "scope", "Scoped the question into 2 dimensions: A; B",
    )  # fmt: skip
    assert step("dimension_complete", {"dimension": "A", "keyFinding": "", "summary":
                "First point. Second.", "sourceCount": 2}) == (
        "dimension", "A: First point. (2 sources)",
    )  # fmt: skip
    assert step("evaluate_complete", {"gaps": ["cost"], "newDimensions": ["Cost"]}) == (
        "gap_round", "Gap round: cost → researching Cost",
    )  # fmt: skip
    assert step("evaluate_complete", {"gaps": [], "newDimensions": []}) == (
        "gap_round", "Gap round: no gaps found",
    )  # fmt: skip
    assert step("dimension_source", {"title": "x"}) is None
