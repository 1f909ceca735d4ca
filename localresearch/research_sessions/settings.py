"""A session's `settings` mapped onto the daemon's configuration.

provider → a model provider of this daemon ([llm] when it is the configured one, the
provider's own defaults otherwise); thinkingModel → questions, plan and report; taskModel →
each task's summary; searchProvider → the configured web search (`research.web_search`), or
"none" for the notes only; maxResults → sources kept per task; enableReferences → the sources
list under the report; language → asked of model engines (questions, plan, findings and report
in that language); the builtin engine cannot translate, so its sessions say so in
`languageNote` and write in the language of the notes; enableCitationImage → accepted and
ignored (reports carry no images)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict, dataclass, replace
from typing import Any

from localresearch.config import Config
from localresearch.errors import InvalidRequest, LocalResearchError

SEARCH_PROVIDERS = ("none", "searxng", "tavily", "brave", "serper", "exa")
LIST_TIMEOUT = 5.0


class SettingsError(InvalidRequest):
    """A setting this daemon cannot honour: 400 naming the field and the choices."""

    def __init__(self, field: str, message: str, choices: list[str]) -> None:
        self.field = field
        self.choices = choices
        shown = ", ".join(choices) if choices else "none"
        super().__init__(f"{message} (settings.{field}; choices: {shown})")


@dataclass(frozen=True)
class SessionSettings:
    provider: str
    thinking_model: str
    task_model: str
    search_provider: str
    language: str = "en"
    max_results: int = 10
    enable_references: bool = True
    enable_citation_image: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> SessionSettings:
        return cls(**{k: obj[k] for k in cls.__dataclass_fields__ if k in obj})

    @property
    def builtin(self) -> bool:
        return self.provider in ("", "builtin")

    @property
    def report_language(self) -> str:
        """The language questions, plan and report are written in: the requested one when a
        model writes them; "notes" (the notes' own language) on the builtin engine."""
        return "notes" if self.builtin else self.language

    @property
    def language_note(self) -> str:
        """Why settings.language is not applied, when it is not (the builtin engine)."""
        if not self.builtin:
            return ""
        if self.language == "en":  # the default: the client may not have asked for it
            return (
                "The builtin engine cannot translate: questions, plan and report are written in "
                "the language of your notes. A language (settings.language, 'en' by default) "
                "applies only with a model provider (settings.provider)."
            )
        return (
            f"The builtin engine cannot translate: questions, plan and report are written in "
            f"the language of your notes, not in settings.language {self.language!r}. "
            "Choose a model provider (settings.provider) to have them written in it."
        )


def _remote_host(provider: str) -> str | None:
    """The host beyond this machine that `provider` contacts with its own defaults, if any."""
    from urllib.parse import urlsplit

    from localresearch.loopback import is_loopback_host
    from localresearch.providers.registry import provider_class

    base = getattr(provider_class(provider), "default_base_url", "")
    host = urlsplit(base).hostname if isinstance(base, str) and base else None
    return host if host is not None and not is_loopback_host(host) else None


def usable_providers(config: Config) -> list[str]:
    """The providers a session may name: the configured one, and those that stay on this
    machine (no network beyond what the user configured)."""
    from localresearch.providers.registry import available_providers

    configured = config.llm.provider or "builtin"
    usable = []
    for name in available_providers():
        try:
            if name in (configured, "builtin") or _remote_host(name) is None:
                usable.append(name)
        except LocalResearchError:
            continue  # its extra is not installed
    return usable


def check_provider(config: Config, provider: str) -> None:
    """Refuse, before any connection, a provider that is not the configured one and would
    reach a cloud service with its own defaults (at create, and when the session's provider
    is used after the configuration changed)."""
    configured = config.llm.provider or "builtin"
    if provider in (configured, "builtin", ""):
        return
    try:
        host = _remote_host(provider)
    except LocalResearchError as exc:
        raise SettingsError("provider", exc.message, usable_providers(config)) from None
    if host is not None:
        raise SettingsError(
            "provider",
            f"Provider {provider!r} is not configured on this daemon (llm.provider is "
            f"{configured!r}) and would contact {host}; set llm.provider = {provider!r} (with "
            "llm.base_url and llm.api_key_env) to use it",
            usable_providers(config),
        )


def llm_config(config: Config, provider: str, model: str) -> Any:
    """[llm] for `provider`: the configured one's settings, or that provider's own defaults
    (only for a provider that stays on this machine: see `check_provider`)."""
    if provider == config.llm.provider:
        return replace(config.llm, model=model or config.llm.model)
    check_provider(config, provider)
    return replace(config.llm, provider=provider, model=model, base_url="", api_key_env="")


async def resolve(config: Config, requested: dict[str, Any]) -> SessionSettings:
    """Check the requested settings against what this daemon has; defaults from the config."""
    from localresearch.providers.registry import available_providers, create_provider

    provider = requested.get("provider") or config.llm.provider or "builtin"
    if provider not in available_providers():
        raise SettingsError("provider", f"Unknown provider {provider!r}", usable_providers(config))
    check_provider(config, provider)
    try:
        built = create_provider(llm_config(config, provider, ""))
    except LocalResearchError as exc:
        raise SettingsError("provider", exc.message, usable_providers(config)) from None
    try:
        models: list[str] = []
        with contextlib.suppress(LocalResearchError, TimeoutError, OSError):
            models = list(await asyncio.wait_for(built.list_models(), LIST_TIMEOUT))
        default = built.model
    finally:
        with contextlib.suppress(Exception):
            await built.close()
    choices = sorted({*models, default} - {""})
    chosen: dict[str, str] = {}
    for name in ("thinkingModel", "taskModel"):
        model = requested.get(name) or default
        # A provider whose models cannot be listed (offline server) accepts any name.
        if models and model not in choices:
            raise SettingsError(name, f"Unknown model {model!r} for provider {provider!r}", choices)
        chosen[name] = model
    configured = config.research.web_search.strip().lower() or "none"
    search = requested.get("searchProvider") or configured
    usable = sorted({"none", configured})
    if search not in SEARCH_PROVIDERS:
        raise SettingsError("searchProvider", f"Unknown search provider {search!r}", usable)
    if search not in usable:
        raise SettingsError(
            "searchProvider",
            f"Search provider {search!r} is not configured on this daemon (research.web_search)",
            usable,
        )
    return SessionSettings(
        provider=provider,
        thinking_model=chosen["thinkingModel"],
        task_model=chosen["taskModel"],
        search_provider=search,
        language=requested.get("language") or "en",
        max_results=int(requested.get("maxResults") or 10),
        enable_references=bool(requested.get("enableReferences", True)),
        enable_citation_image=bool(requested.get("enableCitationImage", False)),
    )
