"""Principals (who is calling) and the permissions of their roles."""

from __future__ import annotations

from dataclasses import dataclass

# Route families: the query API's permissions, then the daemon's own.
PERMISSIONS = (
    "query",
    "docs",
    "metrics",
    "capabilities",
    "config",
    "health",
    "chat",
    "memory",
    "research",
    "heartbeat",
    "admin",
)
ALL = frozenset(PERMISSIONS)

OWNER_ROLE = "owner"  # the daemon's own OS user: every permission, whatever the config says


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. `id` names what authenticated it (a key id, `config:api_key`,
    `owner`), never the secret; sessions and jobs that a surface makes owned record it."""

    id: str
    role: str
    permissions: frozenset[str]
    source: str  # "key", "config", "local", "peer", "open", or a plugged-in resolver's name
    limited: bool = True  # subject to rate limits (the owner's own credential is not)

    def may(self, permission: str | None) -> bool:
        return permission is None or permission in self.permissions

    def owns(self, owner_id: str | None) -> bool:
        """Ownership hook: may this caller see a resource made by `owner_id`? Admins and the
        owner see everything; resources made before ownership was recorded are everyone's."""
        return owner_id is None or owner_id == self.id or "admin" in self.permissions


def permissions_of(role: str, table: dict[str, list[str]]) -> frozenset[str]:
    """A role's permissions; `admin` always has every permission, unknown roles none."""
    if role in (OWNER_ROLE, "admin"):
        return ALL
    return frozenset(table.get(role, ()))
