"""One redaction for everything the daemon says or keeps: the secrets it was given (API keys of
models, embeddings and web search) and anything shaped like a credential are replaced by `***`
before a message becomes an error, an event, a stored row or a log line."""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"
_MIN_SECRET = 6  # shorter values would mask ordinary words

_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()

# Credential shapes a provider may echo back even when the value is not one the daemon knows
# (a truncated key, a key of another account): an Authorization value, a key header or
# parameter, and the common key prefixes.
_SHAPES = re.compile(
    r"""(?ix)
    (?P<keep>
        \bbearer\s+
      | \b(?:authorization|x-api-key|api[-_]?key|x-subscription-token|access[-_]?token)
        ["']?\s*[:=]\s*["']?(?:bearer\s+|basic\s+)?
    )
    [^\s"',;&}\]]{4,}
  | \b(?:sk|tvly|pk|rk|xai|gsk)-(?=[A-Za-z_\-]*\d)[A-Za-z0-9_\-]{8,}  # random: has a digit
    """
)


def remember(secret: str | None) -> None:
    """Add a secret the daemon holds (from the environment) to what is always masked."""
    global _secrets
    if not secret or len(secret.strip()) < _MIN_SECRET:
        return
    with _lock:
        _secrets = _secrets | {secret.strip()}


def redact(text: str) -> str:
    """`text` with every known secret and credential-shaped value replaced by ***."""
    if not text:
        return text
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return _SHAPES.sub(_mask, text)


def _mask(match: re.Match[str]) -> str:
    return (match.group("keep") or "") + MASK


class RedactingFormatter(logging.Formatter):
    """A log formatter whose every line, traceback included, passes through `redact`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
