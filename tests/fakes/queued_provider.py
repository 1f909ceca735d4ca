"""The suite's main test double: a provider that plays back queued chunks, registered through the
same registry table that entry-point providers land in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import ClassVar

from localresearch.providers.base import (
    ChatRequest,
    Citation,
    Provider,
    StreamItem,
    TextChunk,
    ToolCall,
    Usage,
)
from localresearch.providers.registry import register_provider, unregister_provider


@dataclass
class Pause:
    """Sleep this long before the next item (slow models, timeouts)."""

    seconds: float


@dataclass
class Gate:
    """Block until the test opens the gate (cancellation and disconnect tests)."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    reached: asyncio.Event = field(default_factory=asyncio.Event)


Step = StreamItem | str | Exception | Pause | Gate


class QueuedProvider(Provider):
    """Each `stream` call pops one queued script; with none queued it echoes the question."""

    id = "queued"
    default_model = "queued-1"
    description = "Test double: plays back queued chunks."

    scripts: ClassVar[list[list[Step]]] = []
    requests: ClassVar[list[ChatRequest]] = []
    cancelled: ClassVar[int] = 0
    finished: ClassVar[int] = 0

    @classmethod
    def push(cls, *steps: Step) -> None:
        """Queue one reply: strings are text chunks, exceptions are raised where they stand."""
        cls.scripts.append(list(steps))

    @classmethod
    def reset(cls) -> None:
        cls.scripts = []
        cls.requests = []
        cls.cancelled = 0
        cls.finished = 0

    async def list_models(self) -> list[str]:
        return ["queued-1", "queued-2"]

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        type(self).requests.append(request)
        if self.scripts:
            steps = self.scripts.pop(0)
        else:
            question = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
            steps = ["echo: ", question]
        saw_usage = False
        try:
            for step in steps:
                if isinstance(step, Exception):
                    raise step
                if isinstance(step, Pause):
                    await asyncio.sleep(step.seconds)
                    continue
                if isinstance(step, Gate):
                    step.reached.set()
                    await step.event.wait()
                    continue
                if isinstance(step, str):
                    yield TextChunk(step)
                    continue
                if isinstance(step, Usage):
                    saw_usage = True
                assert isinstance(step, TextChunk | ToolCall | Usage | Citation)
                yield step
            if not saw_usage:
                prompt = sum(len(m.content.split()) for m in request.messages)
                completion = sum(len(s.split()) for s in steps if isinstance(s, str))
                yield Usage(prompt, completion)
            type(self).finished += 1
        except (asyncio.CancelledError, GeneratorExit):
            type(self).cancelled += 1
            raise


def install() -> type[QueuedProvider]:
    """Register the fake (as a plugin's entry point would) and start from an empty queue."""
    QueuedProvider.reset()
    register_provider(QueuedProvider)
    return QueuedProvider


def uninstall() -> None:
    unregister_provider(QueuedProvider.id)
    QueuedProvider.reset()
