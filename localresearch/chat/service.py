"""`runtime.chat`: grounded answers from a provider, with memory context, tools and sessions.

One generator produces the event contract (start, delta, tool_call, done | error) that SSE, the
WebSocket and the non-streaming POST /api/chat all consume.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from localresearch.citations import AlignedSentence, Alignment, Passage, align
from localresearch.config import Config
from localresearch.errors import InvalidRequest, LocalResearchError
from localresearch.events import Event
from localresearch.evidence import NOTHING_FOUND, Evidence, evidence_for, mark_quoted
from localresearch.memory.types import MemorySearcher, SearchHit
from localresearch.paths import Paths
from localresearch.providers.base import (
    ChatRequest,
    Citation,
    Message,
    Provider,
    StreamItem,
    TextChunk,
    ToolCall,
    ToolSpec,
    Usage,
)
from localresearch.providers.builtin import passages, read_lines, retrieve
from localresearch.providers.registry import available_providers, create_provider
from localresearch.store import Database
from localresearch.workspace import append_daily_log, ensure_workspace, workspace_dir

from .sessions import SessionStore, StoredMessage, check_session_id
from .tools import ToolBox

log = logging.getLogger(__name__)

MAX_TOOL_ROUNDS = 4
CONTEXT_HITS = 8
FIRST_INDEX_WAIT = 15.0  # seconds an answer waits for the first index pass after start
MAX_MESSAGE_CHARS = 100_000
MODELS_SHOWN = 20  # an error names at most this many of a provider's models
# A model whose context holds at most this many tokens gets the compact prompt when passages were
# found: a 0.5B model with a 4,096-token context lost its answer in tool definitions (docs/
# benchmarks.md, "Answers").
COMPACT_CONTEXT_TOKENS = 8192

SYSTEM_PROMPT = (
    "You are localresearch, a research assistant running on the user's own machine. "
    "Be accurate and concise; use Markdown. Today is {today}."
)


@dataclass
class Turn:
    """A validated question, ready to be answered."""

    message: str
    provider: Provider
    session_id: str | None = None
    include_memory: bool = True
    history: list[Message] = field(default_factory=list)
    record: bool = True  # append the exchange to the day's log
    # Set once the model request has left (or the answer began, or failed): a streaming
    # route writes to its client only after that, so as not to delay the model.
    sent: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def model(self) -> str:
        return f"{self.provider.id}/{self.provider.model}"


def check_model(provider: Provider, chosen: str) -> None:
    """A model the provider cannot serve is an error naming its models, never a silent rename
    (here only providers that know their models up front, like builtin; see check_served)."""
    served = list(type(provider).models)
    if chosen and served and not provider.serves(chosen, served):
        raise _not_served(provider, chosen, served)


async def check_served(provider: Provider, chosen: str) -> None:
    """The same against the server's own model list (cached briefly); a server whose list
    cannot be had does not block: the request itself then succeeds or fails."""
    if not chosen:
        return
    served = await provider.served_models()
    if served and not provider.serves(chosen, served):
        raise _not_served(provider, chosen, served)


def _not_served(provider: Provider, chosen: str, served: list[str]) -> InvalidRequest:
    shown = ", ".join(served[:MODELS_SHOWN])
    if len(served) > MODELS_SHOWN:
        shown += f", … ({len(served)} in all: research models --json)"
    base = getattr(provider, "base_url", "")
    where = f" at {base}" if isinstance(base, str) and base else ""
    return InvalidRequest(
        f"Model {chosen!r} is not served by provider {provider.id!r}{where} (its models: "
        f"{shown}). Ask for one of those, or configure a provider that serves {chosen!r} "
        "(llm.provider, llm.model)"
    )


def check_unconfigured(provider: Provider, configured: str) -> None:
    """A per-request provider other than the configured one may not reach a remote endpoint:
    no network beyond what the user configured."""
    base = getattr(provider, "base_url", "")
    host = urlsplit(base).hostname if isinstance(base, str) and base else None
    if host is not None and host not in ("127.0.0.1", "localhost", "::1"):
        raise InvalidRequest(
            f"Provider {provider.id!r} is not configured (llm.provider is {configured!r}), and "
            f"it would contact {host}. Set llm.provider = {provider.id!r} (and llm.base_url, "
            "llm.api_key_env) to use it"
        )


def verify_answer(
    response: str,
    hits: list[SearchHit],
    provided: list[Citation],
    embed: Callable[[list[str]], list[list[float]]] | None = None,
    question: str = "",
    *,
    extractive: bool = False,
    searched: bool = True,
) -> Alignment:
    """Every sentence of an answer aligned to the passage that supports it: a model's markers
    are checked and corrected against the passages it was shown (numbered by the search's rank;
    the strongest cited passage is listed first); a provider that cited its own passages
    (builtin) keeps its numbering and order, and what an `extractive` one says without a
    citation (that it found nothing) is its own statement, not a claim. With `question`, a
    model's answer the passages do not back gets a paragraph quoting them, or, when the notes
    were `searched` and no passage holds the question's topic, the statement that they hold
    nothing on it (localresearch.evidence)."""
    if extractive and not provided:
        checked = align(response, [])
        for sentence in checked.sentences:
            sentence.claim, sentence.supported = False, True
        return checked
    if provided:
        # The cited span as it stands in the file (one citation may back several sentences of
        # a long line, and its own text quotes only the first), else as the index holds it.
        files: dict[str, list[str] | None] = {}
        spans = [_span_text(c, hits, files) for c in provided]
        found = [
            Passage(c.n, c.file, c.line_start, c.line_end, c.path, text, rank=i, page=c.page)
            for i, (c, text) in enumerate(zip(provided, spans, strict=True))
        ]
        checked = align(response, found)
        checked.text, checked.citations = response, list(provided)
        checked.renumber = {c.n: c.n for c in provided}
        return checked
    found = [
        Passage(
            n,
            p.hit.file,
            p.hit.line_start,
            p.hit.line_end,
            p.hit.path,
            p.text,
            rank=n - 1,
            page=p.hit.page,
            heading=p.hit.heading,
        )
        for n, p in enumerate(passages(hits), start=1)
    ]
    checked = align(response, found, embed=embed)
    evidence = (
        evidence_for(question, checked.sentences, found, say_nothing_found=searched)
        if question
        else None
    )
    if evidence is None:
        return checked
    model_text = checked.text.rstrip()
    paragraph = evidence.paragraph()
    if evidence.reason == NOTHING_FOUND:
        # The daemon's own statement, after the model's checked answer: not a claim.
        start = len(model_text) + 2 if model_text else 0
        checked.text = f"{model_text}\n\n{paragraph}" if model_text else paragraph
        said = AlignedSentence(paragraph, start, start + len(paragraph), claim=False)
        said.quoted = True
        checked.sentences.append(said)
        checked.evidence = evidence
        return checked
    # The model's sentences align the same way again (each is checked on its own); the quotes
    # carry their markers, which hold: they are the passages' own words.
    combined = align(
        f"{response.rstrip()}\n\n{paragraph}" if model_text else paragraph, found, embed=embed
    )
    mark_quoted(combined, len(response.rstrip()) + 2 if model_text else 0)
    combined.evidence = evidence
    return combined


def text_tool_call(text: str, tools: list[ToolSpec], question: str = "") -> ToolCall | None:
    """A reply that is nothing but a JSON tool call ({"name": <an offered tool>, "arguments":
    {...}}, fenced or not), as small models write instead of calling the tool. With `question`,
    also one that names no offered tool or was cut off by the token limit (a model reaching for
    a search it cannot name): it becomes a memory search, for the query it wrote if any."""
    body = text.strip()
    if not tools or not body or len(body) > 2000:
        return None
    fence = re.fullmatch(r"```(?:json)?\s*(.*?)\s*(?:```)?", body, flags=re.S)
    body = fence.group(1).strip() if fence else body
    if not body.startswith("{"):
        return None
    names = {t.name for t in tools}
    try:
        obj = json.loads(body)
    except ValueError:
        obj = None
    if isinstance(obj, dict) and obj.get("name") in names:
        arguments = obj.get("arguments", obj.get("parameters", {}))
        if not isinstance(arguments, dict):
            return None
        return ToolCall("call_text_0", str(obj["name"]), arguments)
    if not question or "memory_search" not in names or not _CALL_SHAPE.match(body):
        return None
    query = _QUERY.search(body)
    wanted = query.group(1) if query and query.group(1).strip() else question
    return ToolCall("call_text_0", "memory_search", {"query": wanted})


# {"name": …  — the opening of a tool call; "query": "…" — its search words, even when cut off.
_CALL_SHAPE = re.compile(r'\{\s*"name"\s*:')
_QUERY = re.compile(r'"query"\s*:\s*"((?:[^"\\]|\\.)*)"')


def _span_text(
    citation: Citation, hits: list[SearchHit], files: dict[str, list[str] | None]
) -> str:
    if citation.path not in files:
        files[citation.path] = read_lines(citation.path) if citation.path else None
    lines = files[citation.path]
    if lines is not None and 0 < citation.line_start <= citation.line_end <= len(lines):
        return "\n".join(lines[citation.line_start - 1 : citation.line_end])
    for hit in hits:
        if hit.file == citation.file and hit.line_start <= citation.line_start <= hit.line_end:
            return hit.content
    return citation.text


T = TypeVar("T")


async def _replay(items: list[StreamItem]) -> AsyncIterator[StreamItem]:
    for item in items:
        yield item


@asynccontextmanager
async def closing_stream(stream: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Close a provider's stream when we stop early, so its upstream request ends too."""
    try:
        yield stream
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


class ChatService:
    """Answers questions; owns the providers it created and the session store."""

    def __init__(
        self, config: Config, paths: Paths, db: Database, memory: MemorySearcher | None = None
    ) -> None:
        self._config = config
        self.paths = paths
        self.sessions = SessionStore(db)
        self.memory = memory
        self.workspace: Path = workspace_dir(config, paths)
        self._config_roots = [Path(p).expanduser() for p in config.memory.paths]
        self._providers: dict[tuple[str, str], Provider] = {}
        # Providers made for earlier llm settings: an answer may still stream from one, so
        # they are closed when the service stops, not when the settings change.
        self._retired: list[Provider] = []

    @property
    def config(self) -> Config:
        return self._config

    @config.setter
    def config(self, config: Config) -> None:
        """New settings (the daemon applies a config change here): when any llm.* setting
        changed, the next answer gets a provider made for them (base_url, model, key…)."""
        if config.llm != self._config.llm:
            self._retired.extend(self._providers.values())
            self._providers = {}
        self._config = config

    async def start(self) -> None:
        await asyncio.to_thread(ensure_workspace, self.workspace)

    async def stop(self) -> None:
        providers, self._providers = [*self._retired, *self._providers.values()], {}
        self._retired = []
        for provider in providers:
            try:
                await provider.close()
            except Exception:
                log.exception("closing provider %s", provider.id)

    # -- providers -------------------------------------------------------------------------

    def provider(self, model: str | None = None) -> Provider:
        """The provider for a model override: "provider/model", "provider", or a model name for
        the configured provider (OpenRouter-style "org/model" names stay whole)."""
        llm = self.config.llm
        name, chosen = self._split(model)
        key = (name, chosen)
        cached = self._providers.get(key)
        if cached is not None:
            return cached
        if name == llm.provider:
            provider = create_provider(dataclasses.replace(llm, model=chosen or llm.model))
        else:
            provider = create_provider(llm, name=name)
            if chosen:
                provider.options = dataclasses.replace(provider.options, model=chosen)
            check_unconfigured(provider, llm.provider or "builtin")
        check_model(provider, chosen)
        self._providers[key] = provider
        return provider

    def _split(self, model: str | None) -> tuple[str, str]:
        """(provider, model name) of a model override; an empty name is the provider's own."""
        name, chosen = self.config.llm.provider, (model or "").strip()
        if chosen:
            known = available_providers()
            head, sep, rest = chosen.partition("/")
            if sep and head in known:
                name, chosen = head, rest
            elif chosen in known:
                name, chosen = chosen, ""
        return name, chosen

    async def checked_provider(self, model: str | None = None) -> Provider:
        """The provider for a model override, once its server confirmed it serves that model."""
        provider = self.provider(model)
        await check_served(provider, self._split(model)[1])
        return provider

    def toolbox(self) -> ToolBox:
        roots = list(self._config_roots)
        return ToolBox(
            self.workspace, roots, self.memory, self.config.api.web_fetch, self._source_roots
        )

    async def _source_roots(self) -> list[Path]:
        """Folders the memory index covers (added with `memory add`), which read_file may open."""
        sources = getattr(self.memory, "sources", None)
        if sources is None:
            return []
        try:
            return [Path(s.path) for s in await sources()]
        except Exception:
            log.exception("listing memory sources")
            return []

    # -- answering -------------------------------------------------------------------------

    async def prepare(
        self,
        message: Any,
        *,
        session_id: str | None = None,
        model: str | None = None,
        include_memory: bool = True,
    ) -> Turn:
        """Check everything that can be checked before a stream opens (bad input stays a 4xx)."""
        if not isinstance(message, str) or not message.strip():
            raise InvalidRequest("Missing required parameter: message")
        if len(message) > MAX_MESSAGE_CHARS:
            raise InvalidRequest(f"message is too long (limit: {MAX_MESSAGE_CHARS} characters)")
        history: list[Message] = []
        if session_id is not None:
            session_id = check_session_id(session_id)
            history = await self.sessions.history(session_id)  # NotFound if absent
        provider = await self.checked_provider(model)
        return Turn(message.strip(), provider, session_id, include_memory, history)

    async def answer(self, message: Any, *, record: bool = True, **options: Any) -> dict[str, Any]:
        """The whole answer at once (POST /api/chat): the `done` event's data. The provider is
        still streamed underneath, so the first-token and idle timeouts guard long answers.

        `record=False` leaves the exchange out of the day's log, for callers (the heartbeat) that
        log it themselves; a session, if given, still keeps it."""
        turn = await self.prepare(message, **options)
        turn.record = record
        done: dict[str, Any] = {}
        async with aclosing(self.events(turn)) as events:
            async for event in events:
                if event.type == "done":
                    done = event.data
        return done

    async def stream(self, message: Any, **options: Any) -> AsyncGenerator[Event, None]:
        """Prepare and answer, every failure becoming an `error` event (for in-process users)."""
        try:
            turn = await self.prepare(message, **options)
        except LocalResearchError as exc:
            yield Event("error", {"code": exc.code, "message": exc.message})
            return
        async with aclosing(self.run(turn)) as events:
            async for event in events:
                yield event

    async def run(self, turn: Turn) -> AsyncGenerator[Event, None]:
        """The events of one answer; a failure mid-way ends the stream with an `error` event."""
        try:
            async with aclosing(self.events(turn)) as events:
                async for event in events:
                    yield event
        except LocalResearchError as exc:
            yield Event("error", {"code": exc.code, "message": exc.message})
        except Exception:
            log.exception("chat stream failed")
            message = "Internal error while answering (details are in the daemon log)"
            yield Event("error", {"code": "internal_error", "message": message})
        finally:
            turn.sent.set()

    async def _retrieve(self, turn: Turn) -> list[SearchHit]:
        if not turn.include_memory or self.memory is None:
            return []
        wait_ready = getattr(self.memory, "wait_ready", None)
        if wait_ready is not None:
            # Right after start the first index pass may still run: wait briefly for it rather
            # than answer "nothing found" from an empty index.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(wait_ready()), FIRST_INDEX_WAIT)
        try:
            return await retrieve(self.memory, turn.message, CONTEXT_HITS)
        except LocalResearchError:
            raise
        except Exception:
            log.exception("memory search failed; answering without memory")
            return []

    async def events(self, turn: Turn, *, streaming: bool = True) -> AsyncGenerator[Event, None]:
        """start, delta*, tool_call*, done; raises LocalResearchError on failure."""
        yield Event("start", {"session_id": turn.session_id, "model": turn.model})
        # The model's context size is asked of its server while the notes are searched.
        hits, window = await asyncio.gather(self._retrieve(turn), self._window(turn.provider))
        toolbox = self.toolbox()
        # The passages are already found: a small model gets them beside the question and no
        # tools, which it would otherwise call as text again and again.
        compact = bool(hits) and 0 < window <= COMPACT_CONTEXT_TOKENS
        today = datetime.now().astimezone().strftime("%A %Y-%m-%d")
        messages = [
            Message("system", SYSTEM_PROMPT.format(today=today)),
            *turn.history,
            Message("user", turn.message),
        ]
        parts: list[str] = []
        tools_used: list[dict[str, Any]] = []
        provided: list[Citation] = []
        prompt_tokens = completion_tokens = 0
        text_tools = False  # the model wrote a tool call as text: no tools after it
        for round_no in range(MAX_TOOL_ROUNDS + 1):
            request = ChatRequest(
                messages=list(messages),
                tools=(
                    toolbox.specs()
                    if round_no < MAX_TOOL_ROUNDS and not text_tools and not compact
                    else []
                ),
                context=hits,
                retrieved=turn.include_memory and self.memory is not None,
                compact=compact,
                on_sent=turn.sent.set,
            )
            source = (
                turn.provider.stream(request)
                if streaming
                else _replay(await turn.provider.complete(request))
            )
            calls: list[ToolCall] = []
            text: list[str] = []
            async with closing_stream(source) as items:
                async for item in items:
                    turn.sent.set()  # for providers that do not say when their request left
                    if isinstance(item, TextChunk):
                        text.append(item.text)
                        yield Event("delta", {"text": item.text})
                    elif isinstance(item, ToolCall):
                        calls.append(item)
                        tools_used.append({"name": item.name, "arguments": item.arguments})
                        yield Event("tool_call", {"name": item.name, "arguments": item.arguments})
                    elif isinstance(item, Citation):
                        provided.append(item)
                    elif isinstance(item, Usage):
                        prompt_tokens += item.prompt_tokens
                        completion_tokens += item.completion_tokens
            raw = "".join(text)
            written = text_tool_call(raw, request.tools, turn.message) if not calls else None
            if written is not None:
                # A small model that writes its tool call as a JSON block instead of calling:
                # run it as the call it meant, leave the block out of the answer, show the
                # result as text (it does not speak the tool protocol) and ask for the answer
                # with no more tools, or it calls again and again.
                tools_used.append({"name": written.name, "arguments": written.arguments})
                yield Event("tool_call", {"name": written.name, "arguments": written.arguments})
                result = await toolbox.run(written)
                messages.append(  # its own JSON is left out: shown it, it writes it again
                    Message(
                        "user",
                        f"Result of {written.name}:\n{result}\n\nNow answer the question in "
                        f"plain sentences: {turn.message}",
                    )
                )
                text_tools = True
                continue
            parts.extend(text)
            if not calls:
                break
            messages.append(Message("assistant", "".join(text), tool_calls=tuple(calls)))
            for call in calls:
                result = await toolbox.run(call)
                messages.append(Message("tool", result, name=call.name, tool_call_id=call.id))
        response = "".join(parts)
        checked = await asyncio.to_thread(
            verify_answer,
            response,
            hits,
            provided,
            self._embed(),
            turn.message,
            extractive=turn.provider.extractive,
            searched=turn.include_memory and self.memory is not None,
        )
        evidence: Evidence | None = checked.evidence
        if evidence is not None:
            # Streaming clients see the quoted paragraph too (done.response holds it as well).
            lead = "\n\n" if response.strip() else ""
            yield Event("delta", {"text": lead + evidence.paragraph()})
        response = checked.text
        citations = [c.to_dict() for c in checked.citations]
        tokens = {
            "prompt": prompt_tokens,
            "completion": completion_tokens,
            "total": prompt_tokens + completion_tokens,
        }
        await self._record(turn, response, tokens, tools_used, citations)
        yield Event(
            "done",
            {
                "response": response,
                "model": turn.model,
                "tokens": tokens,
                "tools_used": tools_used,
                "citations": citations,
                "session_id": turn.session_id,
                "sentences": checked.sentence_dicts(),
                "evidence": evidence.to_dict() if evidence is not None else None,
            },
        )

    async def _window(self, provider: Provider) -> int:
        """Tokens the model's context holds: llm.context_tokens when set, else what the provider
        can tell (a llama.cpp server's /props, cached per provider), else 0 (unknown)."""
        if self.config.llm.context_tokens:
            return self.config.llm.context_tokens
        try:
            return await provider.context_window()
        except Exception:
            log.exception("asking %s for its context size", provider.id)
            return 0

    def _embed(self) -> Callable[[list[str]], list[list[float]]] | None:
        """The memory index's embedder, when one is configured (alignment then uses meaning too)."""
        embedder = getattr(self.memory, "embedder", None)
        return getattr(embedder, "embed", None) if embedder is not None else None

    async def _record(
        self,
        turn: Turn,
        response: str,
        tokens: dict[str, int],
        tools_used: list[dict[str, Any]],
        citations: list[dict[str, Any]],
    ) -> None:
        """Keep the exchange: in its session (if any) and in today's log (unless told not to)."""
        if turn.session_id is not None:
            await self.sessions.append(
                turn.session_id,
                [
                    StoredMessage("user", turn.message),
                    StoredMessage("assistant", response, turn.model, tokens, tools_used, citations),
                ],
            )
        if not turn.record:
            return
        title = " ".join(turn.message.split())
        title = title if len(title) <= 80 else title[:79] + "…"
        sources = ", ".join(f"{c['file']}:{c['line_start']}-{c['line_end']}" for c in citations)
        body = f"**Question:** {turn.message}\n\n**Answer** ({turn.model}):\n\n{response}"
        if sources:
            body += f"\n\nSources: {sources}"
        try:
            await asyncio.to_thread(append_daily_log, self.workspace, f"Chat: {title}", body)
        except OSError:
            log.exception("could not append the exchange to the daily log")
