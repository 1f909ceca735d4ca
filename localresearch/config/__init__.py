"""Configuration: the schema of config.toml and how it is loaded, checked and edited.

The names are loaded on first use: the daemon's child process needs only the schema (its
config arrives already checked), not the TOML machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from localresearch.config.loader import ConfigError, load_config
    from localresearch.config.schema import Config

__all__ = ["Config", "ConfigError", "load_config"]


def __getattr__(name: str) -> Any:
    if name == "Config":
        from localresearch.config.schema import Config

        return Config
    if name in ("ConfigError", "load_config"):
        from localresearch.config import loader

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
