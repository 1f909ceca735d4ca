"""What a research engine does at each step; the builtin and the LLM engines implement it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from localresearch.research.types import DimensionResult, Evaluation, Source, StepUsage


class Engine(Protocol):
    """The thinking steps of a job; retrieval, persistence and streaming belong to the pipeline."""

    async def scope(
        self, query: str, passages: list[Source], count: int, usage: StepUsage
    ) -> list[str]:
        """Split the question into `count` dimensions to research."""
        ...

    async def summarise(
        self, query: str, dimension: str, index: int, sources: list[Source], usage: StepUsage
    ) -> DimensionResult:
        """Summarise what the sources say about one dimension, with a key finding."""
        ...

    async def evaluate(
        self,
        query: str,
        results: list[DimensionResult],
        passages: list[Source],
        iteration: int,
        usage: StepUsage,
    ) -> Evaluation:
        """Find what the research so far misses; propose dimensions to fill the gaps."""
        ...

    def synthesise(
        self,
        query: str,
        results: list[DimensionResult],
        numbering: dict[str, int],
        usage: StepUsage,
    ) -> AsyncIterator[str]:
        """Stream the report body as Markdown citing sources as [n] (n from `numbering`)."""
        ...

    async def close(self) -> None:
        """Release the model connection when the job ends."""
        ...
