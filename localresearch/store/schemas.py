"""The migrations of each part of the core, in the order they are applied."""

from __future__ import annotations

from localresearch.access.schema import MIGRATIONS as ACCESS_MIGRATIONS
from localresearch.chat.schema import MIGRATIONS as CHAT_MIGRATIONS
from localresearch.heartbeat.schema import MIGRATIONS as HEARTBEAT_MIGRATIONS
from localresearch.memory.schema import MIGRATIONS as MEMORY_MIGRATIONS
from localresearch.query.schema import MIGRATIONS as QUERY_MIGRATIONS
from localresearch.research.schema import MIGRATIONS as RESEARCH_MIGRATIONS
from localresearch.research_sessions.schema import MIGRATIONS as RESEARCH_SESSION_MIGRATIONS
from localresearch.store.migrations import Migration

# Each part of the core owns a `schema.py` with its own ordered MIGRATIONS list; add it here.
SCHEMAS: list[list[Migration]] = [
    MEMORY_MIGRATIONS,
    CHAT_MIGRATIONS,
    RESEARCH_MIGRATIONS,
    HEARTBEAT_MIGRATIONS,
    ACCESS_MIGRATIONS,
    QUERY_MIGRATIONS,
    RESEARCH_SESSION_MIGRATIONS,
]
