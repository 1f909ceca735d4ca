"""Find providers by id: the entry point group `localresearch.providers`, read once, plus
providers registered at run time through the same table (in-process plugins, test doubles)."""

from __future__ import annotations

import os
import threading
from importlib.metadata import EntryPoint, entry_points

from localresearch.config.schema import LLMConfig
from localresearch.errors import InvalidRequest, ProviderError
from localresearch.memory.types import MemorySearcher
from localresearch.providers.base import Provider, ProviderOptions
from localresearch.redaction import remember

GROUP = "localresearch.providers"

_lock = threading.Lock()
_entry_points: dict[str, EntryPoint] | None = None
_loaded: dict[str, type[Provider]] = {}


def _discover() -> dict[str, EntryPoint]:
    """The group's entry points, read from installed metadata once per process."""
    global _entry_points
    with _lock:
        if _entry_points is None:
            _entry_points = {ep.name: ep for ep in entry_points(group=GROUP)}
        return _entry_points


def register_provider(cls: type[Provider], name: str | None = None) -> type[Provider]:
    """Add a provider class under `name` (default: its id); usable as a class decorator."""
    with _lock:
        _loaded[name or cls.id] = cls
    return cls


def unregister_provider(name: str) -> None:
    """Forget a run-time registration (entry points come back on the next lookup)."""
    with _lock:
        _loaded.pop(name, None)


def available_providers() -> list[str]:
    """Every provider id that can be asked for, built-in and third-party, sorted."""
    return sorted(set(_discover()) | set(_loaded))


def provider_class(name: str) -> type[Provider]:
    """The class registered as `name`; an optional dependency is imported only now."""
    with _lock:
        cls = _loaded.get(name)
    if cls is not None:
        return cls
    ep = _discover().get(name)
    if ep is None:
        known = ", ".join(available_providers()) or "none"
        raise InvalidRequest(f"Unknown provider {name!r} (available: {known})")
    try:
        loaded = ep.load()
    except ImportError as exc:
        raise ProviderError(
            f"Provider {name!r} is not usable: {exc}. "
            f"Install its extra, e.g. pip install 'localresearch[{name}]'"
        ) from None
    if not (isinstance(loaded, type) and issubclass(loaded, Provider)):
        raise ProviderError(f"Entry point {name!r} does not name a Provider class")
    with _lock:
        _loaded.setdefault(name, loaded)
    return loaded


def resolve_api_key(env_name: str) -> str | None:
    """The key from the environment variable the config names (the key is never in config)."""
    if not env_name:
        return None
    value = os.environ.get(env_name, "").strip()
    remember(value)
    return value or None


def options_from_config(llm: LLMConfig) -> ProviderOptions:
    return ProviderOptions(
        model=llm.model,
        base_url=llm.base_url,
        api_key=resolve_api_key(llm.api_key_env),
        model_path=llm.model_path,
        temperature=llm.temperature,
        max_tokens=llm.max_tokens,
        connect_timeout=llm.connect_timeout,
        first_token_timeout=llm.first_token_timeout,
        idle_timeout=llm.idle_timeout,
        max_retries=llm.max_retries,
    )


def create_provider(
    llm: LLMConfig, memory: MemorySearcher | None = None, *, name: str | None = None
) -> Provider:
    """Build the provider `[llm]` configures (or `name` with the same settings)."""
    provider_id = name or llm.provider or "builtin"
    cls = provider_class(provider_id)
    options = options_from_config(llm)
    if name is not None and name != llm.provider:
        # Another provider than the configured one: its model, URL and key are its own defaults.
        options = ProviderOptions(
            temperature=llm.temperature,
            max_tokens=llm.max_tokens,
            connect_timeout=llm.connect_timeout,
            first_token_timeout=llm.first_token_timeout,
            idle_timeout=llm.idle_timeout,
            max_retries=llm.max_retries,
        )
    if cls.needs_key and not options.api_key:
        where = f"the environment variable {llm.api_key_env}" if llm.api_key_env else "none set"
        raise ProviderError(
            f"Provider {provider_id!r} needs an API key ({where}); set llm.api_key_env to the "
            "name of an environment variable that holds it"
        )
    return cls(options, memory)
