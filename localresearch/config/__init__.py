"""Configuration: the schema of config.toml and how it is loaded, checked and edited."""

from localresearch.config.loader import ConfigError, load_config
from localresearch.config.schema import Config

__all__ = ["Config", "ConfigError", "load_config"]
