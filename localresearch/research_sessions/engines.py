"""The research engine a session runs on (the same as `research deep`'s), per its settings, and
the report it writes from the tasks' results."""

from __future__ import annotations

from typing import TYPE_CHECKING

from localresearch.citations import AlignedSentence
from localresearch.research.builtin import BuiltinEngine
from localresearch.research.citations import (
    check_model_paragraph,
    drop_unsupported,
    number_sources,
    quoted_evidence,
    sources_section,
    strip_invalid,
)
from localresearch.research.report import report_numbering
from localresearch.research.types import DimensionResult, Source, StepUsage
from localresearch.research_sessions.settings import SessionSettings, llm_config
from localresearch.research_sessions.topical import about_task

if TYPE_CHECKING:
    from localresearch.config import Config
    from localresearch.memory.types import MemorySearcher
    from localresearch.research.engine import Engine
    from localresearch.research_sessions.model import ModelWriter


class SessionBuiltinEngine(BuiltinEngine):
    """The builtin engine as a session runs a task: the task's finding and section come from
    the passages about the task ("Fermentation temperature" of a sourdough topic quotes the
    note on fermentation, not the reading list that names sourdough bread most often)."""

    async def summarise(
        self, query: str, dimension: str, index: int, sources: list[Source], usage: StepUsage
    ) -> DimensionResult:
        return await super().summarise(
            query, dimension, index, about_task(query, dimension, sources), usage
        )


def writer_for(
    config: Config, settings: SessionSettings, memory: MemorySearcher | None
) -> ModelWriter:
    """The thinking model, for questions and plans."""
    from localresearch.providers.registry import create_provider
    from localresearch.research_sessions.model import ModelWriter

    llm = llm_config(config, settings.provider, settings.thinking_model)
    return ModelWriter(create_provider(llm, memory), settings.thinking_model or None)


def engine_for(
    config: Config, settings: SessionSettings, model: str, memory: MemorySearcher | None
) -> Engine:
    """The builtin engine, or the LLM engine on the session's provider and `model`."""
    if settings.builtin:
        return SessionBuiltinEngine()
    from localresearch.providers.registry import create_provider
    from localresearch.research.llm import LLMEngine

    provider = create_provider(llm_config(config, settings.provider, model), memory)
    return LLMEngine(provider, language=settings.language)


async def write_report(
    engine: Engine, topic: str, results: list[DimensionResult], references: bool
) -> str:
    """The engine's cited synthesis: citations past the sources dropped and, as in a job, for
    the builtin engine every cited sentence checked against its passage; for a model every
    `[n]` checked and corrected, unsupported sentences flagged, and the sources quoted when
    its report does not stand on its own (localresearch.evidence)."""
    from localresearch.research.llm import SYNTHESIS

    extractive = bool(getattr(engine, "extractive", False))
    # The builtin report lists the sources it cites; a model sees every source numbered.
    numbering, ordered = report_numbering(topic, results) if extractive else number_sources(results)
    parts = [chunk async for chunk in engine.synthesise(topic, results, numbering, StepUsage())]
    body = strip_invalid("".join(parts), len(ordered))
    if extractive:
        body = "".join(drop_unsupported(p + "\n\n", ordered) for p in body.split("\n\n") if p)
    elif ordered:
        sentences: list[AlignedSentence] = []
        checked = [
            check_model_paragraph(p, ordered, SYNTHESIS, sentences)[0].strip("\n")
            for p in body.split("\n\n")
            if p.strip()
        ]
        body = "\n\n".join(c for c in checked if c.strip()) + "\n\n"
        body += quoted_evidence(topic, sentences, ordered)
    body = body.rstrip("\n") + "\n"
    return body + sources_section(ordered) if references else body
