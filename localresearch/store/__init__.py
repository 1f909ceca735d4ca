"""Persistence: the daemon's one SQLite database."""

from localresearch.store.database import Database

__all__ = ["Database"]
