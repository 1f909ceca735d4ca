"""The phases of a research session and the calls each one admits."""

from __future__ import annotations

from localresearch.errors import InvalidRequest

PHASES = ("topic", "questions", "feedback", "planning", "executing", "completed", "error")

# Which phases each step may start from (the spec's order; a step may be redone before the next).
ALLOWED = {
    "questions": ("topic", "questions"),
    "feedback": ("questions", "feedback"),
    "plan": ("feedback", "planning"),
    "execute": ("planning",),
}

# The stages refine may redo, and the phases it may redo each from (the spec: "Refine the
# session at any stage (questions, feedback, or planning)"); a completed session's refine is
# follow-up research instead.
REFINE_FROM = {
    "questions": ("topic", "questions", "feedback", "planning"),
    "feedback": ("questions", "feedback", "planning"),
    "planning": ("questions", "feedback", "planning"),
}


class PhaseError(InvalidRequest):
    """A call made out of order: 400 (the spec's INVALID_REQUEST) naming the phase the session
    is in and those expected."""

    def __init__(self, phase: str, expected: tuple[str, ...]) -> None:
        self.phase = phase
        self.expected = expected
        wanted = " or ".join(repr(p) for p in expected)
        super().__init__(f"Session is in phase {phase!r}; this call needs phase {wanted}")
