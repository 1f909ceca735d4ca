"""The provider interface: one async streaming call that yields text, tool calls and usage."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from localresearch.memory.types import MemorySearcher, SearchHit


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments


@dataclass(frozen=True)
class TextChunk:
    text: str


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant" | "tool"
    content: str
    name: str | None = None  # tool name for role == "tool"
    tool_call_id: str | None = None
    # The calls an assistant turn made, so the next request can show the model its own calls.
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Citation:
    """A source an answer cites as `[n]`: providers that pick their own passages yield these."""

    n: int
    file: str
    line_start: int
    line_end: int
    path: str = ""
    text: str = ""
    page: int | None = None  # PDFs: the page; the lines count within it

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "n": self.n,
            "file": self.file,
            "line_start": self.line_start,
            "line_end": self.line_end,
            "path": self.path,
            "text": self.text,
        }
        if self.page is not None:
            data["page"] = self.page
        return data


StreamItem = TextChunk | ToolCall | Usage | Citation


@dataclass
class ChatRequest:
    messages: list[Message]
    model: str | None = None
    tools: list[ToolSpec] = field(default_factory=list)
    temperature: float | None = None
    max_tokens: int | None = None
    # Passages retrieved for grounding: LLMs see them in the prompt, builtin answers from them.
    context: list[SearchHit] = field(default_factory=list)
    json_mode: bool = False  # ask for a JSON object (structured outputs in research jobs)
    # The JSON schema the reply must follow, sent as the server's structured output (OpenAI and
    # llama.cpp `response_format`, Ollama `format`, an Anthropic tool's input); implies json_mode.
    json_schema: dict[str, Any] | None = None
    schema_name: str = "reply"
    # The caller already searched memory: `context` is all there is (maybe nothing), so
    # providers that retrieve for themselves (builtin) must not search again.
    retrieved: bool = False
    # A small model's prompt: the passages beside the question under a short instruction (and
    # the caller offers no tools), instead of a long system prompt it loses track of.
    compact: bool = False
    # Called once the request has left for the model (HTTP providers): the daemon waits for it
    # before writing to its own client, which would otherwise delay the model's start.
    on_sent: Callable[[], None] | None = None


@dataclass(frozen=True)
class ProviderOptions:
    """What a provider is configured with (from [llm]); the key is resolved from its env var."""

    model: str = ""
    base_url: str = ""
    api_key: str | None = None
    model_path: str = ""
    temperature: float = 0.2
    max_tokens: int = 1024
    connect_timeout: float = 10.0
    first_token_timeout: float = 120.0
    idle_timeout: float = 60.0
    max_retries: int = 3


class Provider(ABC):
    """A model backend. Built-in and third-party providers register through the same entry point
    group, `localresearch.providers`."""

    id: ClassVar[str]
    needs_key: ClassVar[bool] = False
    default_model: ClassVar[str] = ""
    description: ClassVar[str] = ""
    # The only models this provider can serve, when it knows them up front (empty: ask it).
    models: ClassVar[tuple[str, ...]] = ()
    # Answers only in its passages' own words, each cited: a sentence it writes without a
    # citation ("I found nothing in your notes about …") is its own statement, not a claim.
    extractive: ClassVar[bool] = False

    def __init__(self, options: ProviderOptions, memory: MemorySearcher | None = None) -> None:
        self.options = options
        self.memory = memory

    @property
    def model(self) -> str:
        return self.options.model or self.default_model

    @abstractmethod
    def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        """Yield text chunks and tool calls as they arrive (providers that pick their own sources
        also yield Citations), then exactly one Usage."""

    async def complete(self, request: ChatRequest) -> list[StreamItem]:
        """The whole reply at once; providers with a non-streaming API override this."""
        return [item async for item in self.stream(request)]

    async def list_models(self) -> list[str]:
        return [self.model] if self.model else []

    async def served_models(self) -> list[str] | None:
        """The models this provider can serve, to refuse another name up front; None when it
        cannot tell (no list, or a server that answers any name)."""
        return list(self.models) or None

    async def context_window(self) -> int:
        """Tokens the model's context holds, as the provider can tell (0: it cannot)."""
        return 0

    def serves(self, name: str, served: list[str]) -> bool:
        """Whether `name` is one of `served` (providers with aliases widen this)."""
        return name in served

    async def close(self) -> None:
        """Release connections (called when the daemon stops)."""
