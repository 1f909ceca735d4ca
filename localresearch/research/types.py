"""The values a research job is made of: sources, dimension results, evaluations, options."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

TERMINAL_STATUSES = frozenset({"complete", "error", "cancelled"})
PHASES = ("scope", "research", "evaluate", "synthesis", "done")


@dataclass(frozen=True)
class Source:
    """One retrieved passage; the id is derived from where it came from, so it is stable."""

    id: str
    title: str
    location: str  # file:line_start-line_end, or a URL
    url: str  # a file:// or http(s) URL the user can open
    passage: str
    kind: str  # "memory" or "web"
    dimension: str = ""
    # The headings above the passage ("Home Wi-Fi setup > Security"): what its sentences are
    # about though they do not say it. Used while researching, not stored with the report.
    context: str = ""

    @staticmethod
    def make_id(location: str, passage: str) -> str:
        digest = hashlib.sha1(f"{location}\n{passage}".encode()).hexdigest()
        return f"src_{digest[:12]}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["context"]
        return data

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Source:
        return cls(**{k: obj[k] for k in cls.__dataclass_fields__ if k in obj})


@dataclass(frozen=True)
class Point:
    """One statement of a summary and the source that backs it (cited in the report)."""

    text: str
    source_id: str


@dataclass(frozen=True)
class DimensionResult:
    """What researching one dimension produced (its checkpoint)."""

    dimension: str
    index: int
    summary: str
    key_finding: str
    sources: list[Source] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "index": self.index,
            "summary": self.summary,
            "keyFinding": self.key_finding,
            "sources": [s.to_dict() for s in self.sources],
            "points": [{"text": p.text, "sourceId": p.source_id} for p in self.points],
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> DimensionResult:
        return cls(
            dimension=obj["dimension"],
            index=int(obj["index"]),
            summary=obj["summary"],
            key_finding=obj["keyFinding"],
            sources=[Source.from_dict(s) for s in obj.get("sources", [])],
            points=[Point(p["text"], p["sourceId"]) for p in obj.get("points", [])],
        )


@dataclass(frozen=True)
class Evaluation:
    """Gaps found after a round, and the dimensions added to fill them."""

    gaps: list[str]
    new_dimensions: list[str]

    @property
    def has_gaps(self) -> bool:
        return bool(self.gaps)


@dataclass(frozen=True)
class JobOptions:
    """Per-job knobs (defaults come from [research])."""

    dimensions: int = 4
    rounds: int = 2
    sources_per_dimension: int = 6
    model: str = ""  # a model of the configured provider for this job only ("": [llm].model)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> JobOptions:
        values: dict[str, Any] = {
            k: int(obj[k]) for k in ("dimensions", "rounds", "sources_per_dimension") if k in obj
        }
        return cls(**values, model=str(obj.get("model") or ""))


@dataclass
class StepUsage:
    """Model calls made by one step: tokens, and how often the output had to be repaired."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    repairs: int = 0
    retries: int = 0
    fallbacks: int = 0
    # Each fallback to the builtin engine: {"part", "reason", "attempts"} (an event, not usage).
    notes: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if k != "notes"}
