"""The engine on a language model: structured steps as validated JSON (repaired or retried when a
model returns malformed JSON, the builtin engine as the last resort), the report as a stream."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from localresearch.errors import ProviderError
from localresearch.providers.base import ChatRequest, Message, Provider, TextChunk, Usage
from localresearch.research.builtin import BuiltinEngine, names_topic
from localresearch.research.structured import (
    MalformedJSON,
    check_text,
    dimension_name,
    evaluation_schema,
    first_sentence,
    is_echo,
    looks_like_json,
    parse_object,
    scope_schema,
    string_list,
    summary_schema,
    text_field,
)
from localresearch.research.types import DimensionResult, Evaluation, Point, Source, StepUsage

T = TypeVar("T")
log = logging.getLogger(__name__)

SYSTEM = (
    "You are a careful research assistant. You only state what the given passages support. "
    "When asked for JSON, reply with one JSON object and nothing else."
)
SYNTHESIS = (
    "Write a well-structured Markdown report answering the question, starting with a "
    "'# ' title. End every sentence with the number of the source it comes from, like [1], "
    "using only the numbers above. Write prose, not JSON. Do not add a list of sources at the "
    "end; it is appended for you."
)
_PASSAGE_CHARS = 800
_SYNTHESIS_CHARS = 300


def _excerpt(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


class LLMEngine:
    """Every step on the configured provider; usage is added to the step's StepUsage."""

    async def close(self) -> None:
        await self.provider.close()

    def __init__(
        self,
        provider: Provider,
        *,
        attempts: int = 3,
        gap_dimensions: int = 2,
        max_tokens: int | None = None,
        language: str = "",
    ) -> None:
        self.provider = provider
        # Every text the model writes (findings, report) in this language (ISO code), if set.
        self.system = SYSTEM + (
            f" Write every text you produce in the language with ISO code {language!r}, "
            "whatever the language of the passages."
            if language
            else ""
        )
        self.attempts = attempts
        self.gap_dimensions = gap_dimensions
        self.max_tokens = max_tokens
        self.fallback = BuiltinEngine(gap_dimensions)
        # Cleared when the server refuses a JSON schema (llama-cpp-python's server takes only
        # `json_object`): later steps then ask for plain JSON and validate it themselves.
        self.schemas = True

    async def _stream(
        self,
        messages: list[Message],
        usage: StepUsage,
        json_mode: bool,
        schema: tuple[str, dict[str, Any]] | None = None,
    ) -> Any:
        request = ChatRequest(
            messages=messages,
            json_mode=json_mode,
            json_schema=schema[1] if schema else None,
            schema_name=schema[0] if schema else "reply",
            max_tokens=self.max_tokens,
        )
        usage.calls += 1
        async for item in self.provider.stream(request):
            if isinstance(item, TextChunk):
                yield item.text
            elif isinstance(item, Usage):
                usage.prompt_tokens += item.prompt_tokens
                usage.completion_tokens += item.completion_tokens

    async def _complete(
        self, messages: list[Message], usage: StepUsage, schema: tuple[str, dict[str, Any]]
    ) -> str:
        if self.schemas:
            try:
                return "".join([c async for c in self._stream(messages, usage, True, schema)])
            except ProviderError as exc:
                if "response_format" not in exc.message:
                    raise  # the server failed, it did not refuse the schema
                usage.calls -= 1  # refused before the model ran: not an answer
                log.warning(
                    "the model server refused a structured-output schema (%s); asking for "
                    "plain JSON from now on",
                    exc.message,
                )
                self.schemas = False
        return "".join([c async for c in self._stream(messages, usage, True, None)])

    async def _structured(
        self,
        prompt: str,
        validate: Callable[[dict[str, Any]], T],
        usage: StepUsage,
        schema: tuple[str, dict[str, Any]],
        part: str,
    ) -> T | None:
        """Ask for JSON in the server's structured output (`schema`); validate it (shape, and no
        echoed instruction or empty field); repair what a parse can fix, else retry telling the
        model what was wrong; None (a fallback noted on `usage`) when it stays unusable."""
        messages = [Message("system", self.system), Message("user", prompt)]
        problem = ""
        for attempt in range(self.attempts):
            if attempt:
                usage.retries += 1
            reply = await self._complete(messages, usage, schema)
            try:
                obj, repaired = parse_object(reply)
                value = validate(obj)
            except MalformedJSON as exc:
                problem = str(exc)
                log.info("model reply rejected (%s); attempt %d", problem, attempt + 1)
                messages = [
                    *messages,
                    Message("assistant", reply[:2000]),
                    Message(
                        "user",
                        f"That reply was not usable: {problem}. Reply again with only the JSON "
                        "object, in exactly the requested shape.",
                    ),
                ]
                continue
            if repaired:
                usage.repairs += 1
            return value
        usage.fallbacks += 1
        usage.notes.append({"part": part, "reason": problem, "attempts": self.attempts})
        log.warning(
            "research %s: the model's reply stayed unusable after %d attempts (%s); "
            "the builtin engine does this part",
            part,
            self.attempts,
            problem,
        )
        return None

    async def scope(
        self, query: str, passages: list[Source], count: int, usage: StepUsage
    ) -> list[str]:
        titles = "\n".join(f"- {p.title}" for p in passages[:15]) or "(none)"
        instruction = (
            f"Split the question into {count} distinct research dimensions, each a short noun "
            "phrase naming one aspect of the question to look into."
        )
        prompt = (
            f"Question: {query}\n\nTitles of passages found so far:\n{titles}\n\n"
            f'{instruction} JSON shape: {{"dimensions": ["...", "..."]}}'
        )

        def validate(obj: dict[str, Any]) -> list[str]:
            dims = string_list(obj.get("dimensions"), "dimensions", low=1, high=count)
            for dim in dims:
                check_text(dim, "a dimension", instruction, words=(1, 12))
                if not names_topic(dim):
                    raise MalformedJSON(f"the dimension {dim!r} names no topic")
            return dims

        dims = await self._structured(prompt, validate, usage, scope_schema(count), "scope")
        if dims is None:
            return await self.fallback.scope(query, passages, count, usage)
        return dims

    async def summarise(
        self, query: str, dimension: str, index: int, sources: list[Source], usage: StepUsage
    ) -> DimensionResult:
        if not sources:
            return await self.fallback.summarise(query, dimension, index, sources, usage)
        listing = "\n\n".join(
            f"[{n}] {s.title}\n{_excerpt(s.passage, _PASSAGE_CHARS)}"
            for n, s in enumerate(sources, start=1)
        )
        instruction = (
            "Summarise what the passages say about this dimension of the question. "
            "summary: two or three sentences. keyFinding: the most important fact, as a full "
            "sentence. points: statements, each with the number of the passage it comes from."
        )
        prompt = (
            f"Question: {query}\nDimension: {dimension}\n\nPassages:\n{listing}\n\n"
            f"{instruction} JSON shape: "
            '{"summary": "...", "keyFinding": "...", "points": [{"text": "...", "source": 1}]}'
        )

        def validate(obj: dict[str, Any]) -> DimensionResult:
            summary = check_text(text_field(obj, "summary"), "'summary'", instruction)
            key = text_field(obj, "keyFinding", required=False)
            if not key or is_echo(key, instruction) or looks_like_json(key):
                key = first_sentence(summary)  # never an empty or echoed finding
            raw_points = obj.get("points") or []
            if not isinstance(raw_points, list):
                raise MalformedJSON("'points' must be a list")
            points = []
            for item in raw_points:
                if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                    raise MalformedJSON("each point needs a 'text' and a 'source' number")
                number = item.get("source")
                text = item["text"].strip()
                if is_echo(text, instruction) or looks_like_json(text) or not text:
                    continue
                if isinstance(number, int) and 1 <= number <= len(sources):
                    points.append(Point(text, sources[number - 1].id))
            return DimensionResult(dimension, index, summary, key, list(sources), points)

        result = await self._structured(
            prompt, validate, usage, summary_schema(), f"findings ({dimension})"
        )
        if result is None:
            return await self.fallback.summarise(query, dimension, index, sources, usage)
        return result

    async def evaluate(
        self,
        query: str,
        results: list[DimensionResult],
        passages: list[Source],
        iteration: int,
        usage: StepUsage,
    ) -> Evaluation:
        done = "\n".join(f"- {r.dimension}: {r.key_finding or r.summary[:200]}" for r in results)
        instruction = (
            "What important aspects of the question are still missing? List the gaps, and up to "
            f"{self.gap_dimensions} new dimensions to research that would fill them (none if "
            "the research is sufficient), each a short noun phrase of a few words, not a "
            "sentence."
        )
        prompt = (
            f"Question: {query}\n\nResearch so far (dimension: key finding):\n{done}\n\n"
            f'{instruction} JSON shape: {{"gaps": ["..."], "newDimensions": ["..."]}}'
        )
        known = {r.dimension.lower() for r in results}

        def validate(obj: dict[str, Any]) -> Evaluation:
            gaps = string_list(obj.get("gaps", []), "gaps")
            new = string_list(obj.get("newDimensions", []), "newDimensions")
            for text in (*gaps, *new):
                check_text(text, "a gap or dimension", instruction)
            names: list[str] = []
            for proposed in new:
                # A model that ignores the format proposes sentences ("The research does not
                # provide…"): not a name to research under, nor a section heading.
                name = dimension_name(proposed)
                if name is None or not names_topic(name):
                    log.info("gap evaluation: %r is not a dimension name; left out", proposed)
                elif name.lower() not in known and name.lower() not in map(str.lower, names):
                    names.append(name)
            return Evaluation(gaps=gaps, new_dimensions=names[: self.gap_dimensions])

        evaluation = await self._structured(
            prompt, validate, usage, evaluation_schema(), "gap evaluation"
        )
        if evaluation is None:
            return await self.fallback.evaluate(query, results, passages, iteration, usage)
        return evaluation

    async def synthesise(
        self,
        query: str,
        results: list[DimensionResult],
        numbering: dict[str, int],
        usage: StepUsage,
    ) -> AsyncIterator[str]:
        sources = {s.id: s for r in results for s in r.sources}
        ordered = sorted(numbering.items(), key=lambda item: item[1])
        listing = "\n".join(
            f"[{n}] {sources[sid].title}: {_excerpt(sources[sid].passage, _SYNTHESIS_CHARS)}"
            for sid, n in ordered
        )
        findings = "\n".join(f"## {r.dimension}\n{r.summary}" for r in results)
        prompt = (
            f"Question: {query}\n\nFindings by dimension:\n{findings}\n\nSources:\n{listing}\n\n"
            f"{SYNTHESIS}"
        )
        messages = [Message("system", self.system), Message("user", prompt)]
        async for chunk in self._stream(messages, usage, False):
            yield chunk
