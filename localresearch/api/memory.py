"""Memory: search, statistics, reindex and sources."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from localresearch.api.base import Model

if TYPE_CHECKING:
    from localresearch.memory import fileview, indexer, service, stats


class SearchQuery(Model):
    q: str
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10
    # Comma-separated kinds (note, log, digest, heartbeat); notes only by default.
    kind: str | None = None
    include_logs: bool = False  # every kind
    prefix: bool = False  # the last word also matches longer words (search as you type)


class SearchBody(Model):
    """POST /api/memory/search: the query in the body, for queries too long for a URL."""

    query: str
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10
    kind: str | None = None
    include_logs: bool = False
    prefix: bool = False


class FileQuery(Model):
    path: str
    line: Annotated[int, msgspec.Meta(ge=1, le=10**9)] = 1
    end: Annotated[int, msgspec.Meta(ge=1, le=10**9)] | None = None
    context: Annotated[int, msgspec.Meta(ge=0, le=2000)] = 40
    page: Annotated[int, msgspec.Meta(ge=1, le=10**6)] | None = None  # a PDF's page


class FileLines(Model):
    """A window of a cited file's lines (1-based, inclusive), for the page's citation view."""

    path: str
    file: str
    source: str
    line_start: int
    line_end: int
    first_line: int
    lines: list[str]
    total_lines: int
    page: int | None = None

    @classmethod
    def of(cls, view: fileview.FileView) -> FileLines:
        return cls(
            path=str(view.path),
            file=view.file,
            source=str(view.source),
            line_start=view.line_start,
            line_end=view.line_end,
            first_line=view.first_line,
            lines=view.lines,
            total_lines=view.total_lines,
            page=view.page,
        )


class Hit(Model):
    """The spec's result fields first, then extras for opening the hit."""

    file: str
    content: str
    score: float
    line_start: int
    line_end: int
    path: str
    heading: str
    chunk_id: int
    kind: str = "note"  # whose text: note (the user's), log, digest, heartbeat
    page: int | None = None  # a PDF's page (lines count within it)


class SearchResults(Model):
    query: str
    results: list[Hit]
    total: int


class Source(Model):
    path: str
    origin: str
    glob: str | None
    files: int = 0  # files in the index from this source: what removing it drops

    @classmethod
    def of(cls, source: service.Source, files: int = 0) -> Source:
        return cls(
            path=str(source.path), origin=source.origin, glob=source.glob or None, files=files
        )


class SourceList(Model):
    sources: list[Source]


class AddSource(Model):
    path: str
    glob: str | list[str] | None = None

    def glob_text(self) -> str:
        """A list of patterns as the comma-separated form the core takes."""
        if isinstance(self.glob, list):
            return ",".join(self.glob)
        return self.glob or ""


class RemoveSource(Model):
    path: str | None = None


class SourceRemoved(Model):
    path: str
    files_removed: int


class Reindex(Model):
    force: bool | None = None
    # Return (or end the stream) only once the background worker has embedded the new chunks.
    wait_vectors: bool = True


class ReindexReport(Model):
    added: int
    updated: int
    removed: int
    unchanged: int
    skipped: int
    chunks_added: int
    chunks_removed: int
    skipped_reasons: dict[str, int]
    skipped_files: list[dict[str, Any]]
    seconds: float

    @classmethod
    def of(cls, report: indexer.ReindexReport) -> ReindexReport:
        return cls(
            added=report.files_added,
            updated=report.files_updated,
            removed=report.files_removed,
            unchanged=report.files_unchanged,
            skipped=report.skipped_total,
            chunks_added=report.chunks_added,
            chunks_removed=report.chunks_removed,
            skipped_reasons=dict(report.skipped_reasons),
            skipped_files=[{"path": s.path, "reason": s.reason} for s in report.skipped],
            seconds=round(report.seconds, 3),
        )


class MemoryStats(Model):
    workspace: str
    files: dict[str, Any]
    index: dict[str, Any]
    sources: list[Source]
    last_reindex: dict[str, Any] | None
    embeddings: dict[str, Any] | None

    @classmethod
    def of(cls, found: stats.MemoryStats) -> MemoryStats:
        return cls(
            workspace=found.workspace,
            files=msgspec.to_builtins(found.files),
            index=msgspec.to_builtins(found.index),
            sources=[Source.of(s) for s in found.sources],
            last_reindex=ReindexReport.of(found.last_reindex).to_dict()
            if found.last_reindex
            else None,
            embeddings=msgspec.to_builtins(found.embeddings),
        )
