"""API keys (admin): create, list and revoke."""

from __future__ import annotations

from typing import TYPE_CHECKING

from localresearch.api.base import Model

if TYPE_CHECKING:
    from localresearch.access.keys import KeyRecord


class CreateKey(Model):
    role: str
    name: str | None = None
    prefix: str | None = None


class KeyInfo(Model):
    """A key without its secret: the hint is its prefix and last four characters."""

    id: str
    name: str
    role: str
    prefix: str
    hint: str
    created_at: str
    revoked_at: str | None

    @classmethod
    def of(cls, record: KeyRecord) -> KeyInfo:
        return cls(
            id=record.id,
            name=record.name,
            role=record.role,
            prefix=record.prefix,
            hint=record.hint,
            created_at=record.created_at,
            revoked_at=record.revoked_at,
        )


class KeyCreated(KeyInfo):
    key: str  # the secret: shown in this answer only, stored as a hash


class KeyList(Model):
    keys: list[KeyInfo]


class KeyListQuery(Model):
    revoked: bool = False


class SigninLink(Model):
    """A one-time link that signs a browser in to the page (`research web`)."""

    url: str
    expires_in: int
