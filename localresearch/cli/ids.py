"""IDs in tables and on the command line: shown whole, and (like git) a unique prefix will do."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from localresearch.cli.common import fail

if TYPE_CHECKING:
    from rich.table import Table

SESSION_ID_LENGTH = 32  # chat and research session ids are uuid4 hex


def add_id_column(table: Table, header: str, ids: Iterable[str]) -> None:
    """A column that never cuts an ID: as wide as the longest, never wrapped; other columns
    wrap instead."""
    width = max((len(i) for i in ids), default=len(header))
    table.add_column(header, no_wrap=True, min_width=max(width, len(header)))


def resolve_id(
    given: str, ids: Callable[[], Iterable[str]], what: str, *, whole: int | None = None
) -> str:
    """The ID that `given` names: itself if it is one of `ids()`, else the one ID it is a prefix
    of. Ambiguous prefixes are a usage error (exit 2) listing the candidates; an unknown ID is
    returned as given, for the daemon to say it is not found. `given` of at least `whole`
    characters (the IDs' length) is taken as it is, without asking for `ids()`."""
    if not given.strip():
        fail(f"the {what} ID is empty", code=2)
    if whole is not None and len(given) >= whole:
        return given
    matches = []
    for candidate in ids():
        if candidate == given:
            return given
        if candidate.startswith(given):
            matches.append(candidate)
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = ", ".join(matches[:5]) + (", …" if len(matches) > 5 else "")
        fail(f"the {what} ID prefix {given!r} is ambiguous: it matches {shown}", code=2)
    return given
