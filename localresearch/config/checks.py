"""Checks of values beyond their type (ranges, known names, formats): run by `config check`,
`config set` and `daemon start`, so a bad value is reported before the daemon trips on it."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from localresearch.config.loader import (
    ENV_NAME_SETTINGS,
    ConfigError,
    _find_line,
    is_env_name,
    read_text,
)
from localresearch.config.schema import Config

WEB_SEARCH = ("none", "searxng", "tavily", "brave", "serper", "exa")
EMBEDDINGS = ("none", "onnx", "local", "ollama", "openai")
LOG_LEVELS = ("debug", "info", "warning", "error")


BUILTIN_PROVIDERS = ("builtin", "openai", "ollama", "anthropic", "llamacpp")


def _providers() -> list[str]:
    """Built-in and third-party model providers (the entry-point group they register in)."""
    # Imported here: check_bind (daemon start-up, before the bind) imports this module, and
    # importlib.metadata alone takes ~17 ms.
    from importlib.metadata import entry_points

    return sorted({ep.name for ep in entry_points(group="localresearch.providers")})


def _check_provider(value: Any) -> str | None:
    # The built-in names need no scan of installed packages (~50 ms at every `daemon start`).
    if str(value).strip().lower() in BUILTIN_PROVIDERS:
        return None
    return _one_of(_providers)(value)


def _one_of(choices: tuple[str, ...] | Callable[[], list[str]]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        options = choices() if callable(choices) else choices
        if str(value).strip().lower() in options:
            return None
        return f"expected one of {', '.join(options)}, got {value!r}"

    return check


def _between(low: float, high: float | None = None) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            return f"expected a value {bound}, got {value!r}"
        return None

    return check


# Keys that are valid variable names, which the redaction's shapes (they need a `-`) miss: a
# known prefix with `_` (Stripe, GitHub, Hugging Face, …), or a long run of letters and digits
# in both cases, as random tokens are and variable names are not.
_NAME_SHAPED_KEY = re.compile(
    r"""(?x)
    \b(?:sk|pk|rk|ghp|gho|ghu|ghs|ghr|github_pat|hf)_(?=\w*[0-9A-Z])\w{16,}
  | (?=[A-Za-z0-9]*[a-z])(?=[A-Za-z0-9]*[A-Z])(?=[A-Za-z0-9]*[0-9])[A-Za-z0-9]{32,}
    """
)


def looks_like_key(value: str) -> bool:
    """Whether `value` is shaped like a credential (the redaction's patterns, a secret the daemon
    holds, or a name-shaped token)."""
    from localresearch.redaction import redact

    return redact(value) != value or _NAME_SHAPED_KEY.search(value) is not None


def env_name_problem(value: str) -> str | None:
    """Why a `*_env` setting's value cannot name an environment variable, or None. The message
    never repeats the value: it may be a key pasted by mistake."""
    if not value:
        return None
    where = (
        "a key is never stored in config.toml: put it in an environment variable "
        "(export MY_API_KEY=...) and set this setting to that variable's name (MY_API_KEY)"
    )
    if looks_like_key(value):
        return f"the value looks like an API key, not the name of an environment variable; {where}"
    if not is_env_name(value):
        return (
            "expected the name of an environment variable (letters, digits and _, not starting "
            f"with a digit); {where}"
        )
    return None


RULES: dict[str, Callable[[Any], str | None]] = {
    **{key: env_name_problem for key in sorted(ENV_NAME_SETTINGS)},
    "server.port": _between(1, 65535),
    "server.max_body_bytes": _between(1024),
    "server.shutdown_timeout": _between(0.1),
    "server.log_level": _one_of(LOG_LEVELS),
    "server.log_backups": _between(0, 100),
    "server.log_max_bytes": _between(4096),
    "llm.provider": _check_provider,
    "llm.max_tokens": _between(1),
    "llm.temperature": _between(0.0, 2.0),
    "llm.connect_timeout": _between(0.1),
    "llm.first_token_timeout": _between(0.1),
    "llm.idle_timeout": _between(0.1),
    "llm.max_retries": _between(0, 20),
    "llm.context_tokens": _between(0),
    "memory.chunk_chars": _between(200),
    "memory.chunk_overlap": _between(0),
    "memory.watch_interval": _between(0.1),
    "memory.mmr_lambda": _between(0.0, 1.0),
    "memory.length_prior": _between(0.0, 1.0),
    "memory.recency_weight": _between(0.0),
    "memory.embeddings.provider": _one_of(EMBEDDINGS),
    "memory.embeddings.vector_weight": _between(0.0, 1.0),
    "memory.embeddings.similarity_floor": _between(-1.0, 0.99),
    "memory.embeddings.threads": _between(0),
    "research.dimensions": _between(3, 6),
    "research.max_rounds": _between(0, 5),
    "research.dimension_concurrency": _between(1, 32),
    "research.max_concurrent_jobs": _between(1, 64),
    "research.sources_per_dimension": _between(1, 50),
    "research.web_search": _one_of(WEB_SEARCH),
    "api.rate_limit": _between(0),
    "api.webhooks": lambda value: _check_webhooks(value),
    "api.webhook_timeout": _between(0.1, 300),
    "api.webhook_backoff": _between(0.0, 60),
    "api.stream_keepalive": _between(0.05, 3600),
    "api.config_watch_interval": _between(0.0, 3600),
    "api.role_permissions": lambda value: _check_permissions(value),
    "api.rate_limits": lambda value: next(
        (f"expected counts of at least 0, got {k} = {v!r}" for k, v in value.items() if v < 0),
        None,
    ),
}


def _check_webhooks(urls: list[str]) -> str | None:
    from localresearch.query.webhooks import webhook_problem

    for url in urls:
        problem = webhook_problem(url)
        if problem:
            return problem
    return None


def _check_permissions(roles: dict[str, list[str]]) -> str | None:
    from localresearch.access.roles import PERMISSIONS

    for role, permissions in roles.items():
        unknown = sorted(set(permissions) - set(PERMISSIONS))
        if unknown:
            return (
                f"role {role!r}: unknown permission {', '.join(unknown)} "
                f"(known: {', '.join(PERMISSIONS)})"
            )
    return None


def bind_problem(bind: str, allow_remote: bool) -> str | None:
    """Why the daemon refuses to bind `bind` (None if it may): start and `config check` agree."""
    from localresearch.loopback import is_loopback_host

    if is_loopback_host(bind) or allow_remote:
        return None
    return (
        f"{bind!r} is not a loopback address: other machines could reach the API. They get in "
        "only with an API key (`research keys create`; without one only the daemon's own user "
        "does) and with their Host name in server.allowed_hosts. Set server.allow_remote = true "
        "to bind it anyway"
    )


def workspace_problem(workspace: str) -> str | None:
    """Why memory.workspace cannot be the workspace folder (it, or a folder above it, is a
    file), or None."""
    if not workspace:
        return None
    folder = Path(workspace).expanduser().resolve()
    for path in (folder, *folder.parents):
        try:
            if path.is_dir():
                return None
            if path.exists():
                inside = f" (the workspace {folder} would be inside it)" if path != folder else ""
                return f"{path} is not a directory{inside}"
        except OSError as exc:
            return f"{path}: {exc.strerror}"
    return None


def _value(config: Config, key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = getattr(node, part)
    return node


def check_config(config: Config, config_file: Path, text: str | None = None) -> None:
    """Raise ConfigError (file, line, key, what was expected) for the first bad value."""
    if text is None:
        text = read_text(config_file)
    for key, rule in RULES.items():
        problem = rule(_value(config, key))
        if problem:
            section, _, name = key.rpartition(".")
            raise ConfigError(
                str(config_file), problem, key=key, line=_find_line(text, section, name)
            )
    if config.memory.chunk_overlap >= config.memory.chunk_chars:
        raise ConfigError(
            str(config_file),
            "memory.chunk_overlap must be smaller than memory.chunk_chars",
            key="memory.chunk_overlap",
            line=_find_line(text, "memory", "chunk_overlap"),
        )
    for key, problem in (
        ("server.bind", bind_problem(config.server.bind, config.server.allow_remote)),
        ("memory.workspace", workspace_problem(config.memory.workspace)),
    ):
        if problem:
            section, _, name = key.rpartition(".")
            raise ConfigError(
                str(config_file), problem, key=key, line=_find_line(text, section, name)
            )
    from localresearch.heartbeat.settings import check_heartbeat_config

    try:
        check_heartbeat_config(config.heartbeat, file=str(config_file))
    except ConfigError as exc:
        from_file = not exc.file.startswith("environment variable")
        if from_file and exc.key and exc.line is None:
            section, _, name = exc.key.rpartition(".")
            exc.line = _find_line(text, section, name)
        raise
