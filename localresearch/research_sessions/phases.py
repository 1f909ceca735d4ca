"""The phases of a research session and the calls each one admits."""

from __future__ import annotations

from localresearch.errors import Conflict

PHASES = ("topic", "questions", "feedback", "planning", "executing", "completed", "error")

# Which phases each step may start from (the spec's order; a step may be redone before the next).
ALLOWED = {
    "questions": ("topic", "questions"),
    "feedback": ("questions", "feedback"),
    "plan": ("feedback", "planning"),
    "execute": ("planning",),
}


class PhaseError(Conflict):
    """A call made out of order: 409 naming the phase the session is in and those expected."""

    def __init__(self, phase: str, expected: tuple[str, ...]) -> None:
        self.phase = phase
        self.expected = expected
        wanted = " or ".join(repr(p) for p in expected)
        super().__init__(f"Session is in phase {phase!r}; this call needs phase {wanted}")
