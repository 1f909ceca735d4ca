"""The migrations of each part of the core, in the order they are applied."""

from __future__ import annotations

from localresearch.store.migrations import Migration

# Each part of the core owns a `schema.py` with its own ordered MIGRATIONS list; add it here.
SCHEMAS: list[list[Migration]] = []
