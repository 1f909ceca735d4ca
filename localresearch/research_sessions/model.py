"""Questions and plans written by a language model (when the session runs on one): validated
JSON, with one retry; None when the model's replies are unusable (the builtin writer is used)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from localresearch.providers.base import ChatRequest, Message, Provider, TextChunk
from localresearch.research.structured import MalformedJSON, parse_object, string_list
from localresearch.research.types import Source
from localresearch.research_sessions.store import Task

T = TypeVar("T")
log = logging.getLogger(__name__)

SYSTEM = (
    "You are a careful research assistant planning research over the user's own notes. "
    "When asked for JSON, reply with one JSON object and nothing else."
)


def _listing(passages: Sequence[Source], limit: int = 12) -> str:
    lines = []
    for source in passages[:limit]:
        text = " ".join(source.passage.split())[:240]
        lines.append(f"- {source.title}: {text}")
    return "\n".join(lines) or "(nothing found in the notes yet)"


def _language(language: str) -> str:
    return f" Write in the language with ISO code {language!r}." if language else ""


class ModelWriter:
    def __init__(self, provider: Provider, model: str | None, attempts: int = 2) -> None:
        self.provider = provider
        self.model = model
        self.attempts = attempts

    async def _json(self, prompt: str, validate: Callable[[dict[str, Any]], T]) -> T | None:
        messages = [Message("system", SYSTEM), Message("user", prompt)]
        for _attempt in range(self.attempts):
            request = ChatRequest(messages=messages, model=self.model, json_mode=True)
            parts = [
                i.text async for i in self.provider.stream(request) if isinstance(i, TextChunk)
            ]
            reply = "".join(parts)
            try:
                obj, _repaired = parse_object(reply)
                return validate(obj)
            except MalformedJSON as exc:
                log.info("model reply rejected: %s", exc)
                messages = [
                    *messages,
                    Message("assistant", reply[:2000]),
                    Message("user", f"That reply was not usable: {exc}. Reply with only the JSON."),
                ]
        return None

    async def questions(
        self, topic: str, passages: Sequence[Source], language: str = ""
    ) -> list[str] | None:
        prompt = (
            f"Research topic: {topic}\n\nWhat the user's notes already say:\n{_listing(passages)}"
            "\n\nAsk the user 3 to 5 clarifying questions whose answers would change the "
            "research plan: scope, time range, depth, and which sources to trust. Make each "
            "question specific to this topic and to what the notes say."
            f"{_language(language)}"
            ' JSON shape: {"questions": ["...", "..."]}'
        )
        return await self._json(
            prompt, lambda obj: string_list(obj.get("questions"), "questions", low=3, high=5)
        )

    async def plan(
        self,
        topic: str,
        questions: str,
        feedback: str,
        passages: Sequence[Source],
        count: int,
        language: str = "",
    ) -> tuple[list[Task], str] | None:
        prompt = (
            f"Research topic: {topic}\n\nClarifying questions asked:\n{questions}\n\n"
            f"The user's answers:\n{feedback or '(none)'}\n\nWhat the notes say:\n"
            f"{_listing(passages)}\n\nWrite a research plan that follows the user's answers: "
            f"a Markdown plan starting with '# Research Plan', and 1 to {count} search tasks, "
            "each a search query and the aspect it serves."
            f"{_language(language)}"
            ' JSON shape: {"reportPlan": "# Research Plan...", '
            '"tasks": [{"query": "...", "focus": "..."}]}'
        )

        def validate(obj: dict[str, Any]) -> tuple[list[Task], str]:
            plan = obj.get("reportPlan")
            if not isinstance(plan, str) or not plan.strip():
                raise MalformedJSON("'reportPlan' must be a non-empty string")
            raw = obj.get("tasks")
            if not isinstance(raw, list) or not 1 <= len(raw) <= count:
                raise MalformedJSON(f"'tasks' must be a list of 1 to {count} tasks")
            tasks = []
            for item in raw:
                if not isinstance(item, dict):
                    raise MalformedJSON("each task needs a 'query' and a 'focus'")
                query, focus = item.get("query"), item.get("focus")
                if not isinstance(query, str) or not query.strip():
                    raise MalformedJSON("each task needs a non-empty 'query'")
                focus = focus if isinstance(focus, str) and focus.strip() else query
                tasks.append(Task(" ".join(query.split())[:300], " ".join(focus.split())[:200]))
            return tasks, plan.strip() + "\n"

        return await self._json(prompt, validate)
