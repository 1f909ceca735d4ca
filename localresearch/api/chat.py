"""Chat and sessions: the LocalGPT daemon spec's shapes (snake_case)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from localresearch.api.base import Model

if TYPE_CHECKING:
    from localresearch.chat import sessions

SessionId = Annotated[str, msgspec.Meta(max_length=200)]


class ChatRequest(Model):
    """POST /api/chat and /api/chat/stream, and a WebSocket `chat` message."""

    message: str
    session_id: str | None = None
    model: str | None = None
    include_memory: bool | None = None

    def options(self) -> dict[str, Any]:
        """The keyword arguments of ChatService.answer/prepare besides the message."""
        return {
            "session_id": self.session_id,
            "model": self.model or None,
            "include_memory": True if self.include_memory is None else self.include_memory,
        }


class Tokens(Model):
    prompt: int
    completion: int
    total: int


class ToolUse(Model):
    name: str
    arguments: dict[str, Any]


class AnswerSentence(Model):
    """One sentence of an answer, as the citation check found it."""

    text: str
    citations: list[int]
    supported: bool
    claim: bool
    score: float
    quoted: bool = False  # quoted from a passage by the daemon, not written by the model


class AnswerEvidence(Model):
    """Why the answer carries a paragraph quoted from the notes, and what it cites."""

    reason: str
    citations: list[int]


class ChatResponse(Model):
    """The spec's fields in the spec's order, then citations, session_id and sentences."""

    response: str
    model: str | None
    tokens: dict[str, Any] | None
    tools_used: list[dict[str, Any]] | None
    citations: list[dict[str, Any]] | None
    session_id: str | None
    sentences: list[AnswerSentence] | None = None
    evidence: AnswerEvidence | None = None


class CreateSession(Model):
    title: str | None = None


class Session(Model):
    id: str
    title: str
    model: str | None
    created_at: str
    updated_at: str
    message_count: int

    @classmethod
    def of(cls, session: sessions.ChatSession) -> Session:
        return cls(
            id=session.id,
            title=session.title,
            model=session.model,
            created_at=session.created_at,
            updated_at=session.updated_at,
            message_count=session.message_count,
        )


class Message(Model):
    id: int
    role: str
    content: str
    model: str | None
    tokens: Any
    tools_used: Any
    citations: Any
    created_at: str


class SessionWithMessages(Session):
    messages: list[Message]

    @classmethod
    def of(cls, session: sessions.ChatSession) -> SessionWithMessages:
        found = session.messages or []
        return msgspec.convert(
            dataclasses.replace(session, messages=found), cls, from_attributes=True, strict=True
        )


class SessionList(Model):
    sessions: list[Session]
    total: int


class SessionDeleted(Model):
    id: str
    deleted: bool


class Page(Model):
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 50
    offset: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)] = 0
