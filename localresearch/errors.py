"""Errors the core raises for the user to see; the server maps each `code` to an HTTP status."""

from __future__ import annotations

from localresearch.redaction import redact


class LocalResearchError(Exception):
    """Base of all errors that carry a stable code and a message meant for the user."""

    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        message = redact(message)  # a provider may echo a key; it never reaches the user
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidRequest(LocalResearchError):
    code = "invalid_request"


class NotFound(LocalResearchError):
    code = "not_found"


class Conflict(LocalResearchError):
    code = "conflict"


class ProviderError(LocalResearchError):
    """A model or search provider failed; the message is the provider's own, without secrets."""

    code = "provider_error"


class Unavailable(LocalResearchError):
    code = "unavailable"
