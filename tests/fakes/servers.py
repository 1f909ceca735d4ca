"""Protocol-level fakes of cloud model APIs: a real aiohttp server on loopback that replays
scripted replies in each service's documented wire format (OpenAI SSE, Ollama NDJSON,
Anthropic Messages SSE), including error bodies, 429 + Retry-After and streams cut midway."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    """One scripted answer: a status, headers, and a body sent as chunks (floats are pauses)."""

    status: int = 200
    chunks: Sequence[bytes | float] = ()
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    cut: bool = False  # drop the connection after the chunks instead of finishing the body
    delay: float = 0.0  # seconds before the status line and headers go out


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    connection: int = 0  # which accepted connection carried it: 1, 2, … (equal means reused)


class FakeServer:
    """Replies are queued per path and served in order; unknown paths answer 404."""

    def __init__(self) -> None:
        self.replies: dict[str, list[Reply]] = {}
        self.requests: list[Seen] = []
        self.disconnects = 0
        self.completed = 0
        self.connections: list[asyncio.BaseTransport] = []  # held, so no identity is reused
        self._runner: web.AppRunner | None = None
        self.url = ""

    def queue(self, path: str, *replies: Reply) -> None:
        self.replies.setdefault(path, []).extend(replies)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        connection = self._connection(request)
        self.requests.append(
            Seen(request.method, request.path, dict(request.headers), body, connection)
        )
        queue = self.replies.get(request.path) or []
        if not queue:
            return web.json_response({"error": f"no reply queued for {request.path}"}, status=404)
        reply = queue.pop(0)
        if reply.delay:
            try:
                await self._pause(request, reply.delay)
            except ConnectionResetError:
                self.disconnects += 1
                return web.Response(status=499)
        response = web.StreamResponse(status=reply.status, headers=reply.headers)
        response.content_type = reply.content_type
        try:
            await response.prepare(request)
            for chunk in reply.chunks:
                if isinstance(chunk, float):
                    await self._pause(request, chunk)
                    continue
                await response.write(chunk)
            if reply.cut:
                assert request.transport is not None
                request.transport.close()
                return response
            await response.write_eof()
            self.completed += 1
        except ConnectionResetError:
            self.disconnects += 1
        except asyncio.CancelledError:
            self.disconnects += 1
            raise
        return response

    def _connection(self, request: web.Request) -> int:
        """Number the connection a request came on, so tests can tell reuse from a new one."""
        transport = request.transport
        if transport is None:  # the client already hung up
            return 0
        for number, seen in enumerate(self.connections, 1):
            if seen is transport:
                return number
        self.connections.append(transport)
        return len(self.connections)

    async def _pause(self, request: web.Request, seconds: float) -> None:
        """Sleep, but notice at once when the client hangs up (as a real server would)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            transport = request.transport
            if transport is None or transport.is_closing():
                raise ConnectionResetError("client went away")
            await asyncio.sleep(0.01)


def json_reply(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, [json.dumps(obj).encode()], headers or {})


# -- OpenAI chat completions -----------------------------------------------------------------


def openai_chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    obj = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(obj)}\n\n".encode()


def openai_stream(
    texts: Sequence[str],
    *,
    usage: tuple[int, int] | None = (7, 3),
    tool_calls: Sequence[dict[str, Any]] = (),
    done: bool = True,
    pause: float = 0.0,
) -> list[bytes | float]:
    chunks: list[bytes | float] = [openai_chunk({"role": "assistant", "content": ""})]
    for text in texts:
        if pause:
            chunks.append(pause)
        chunks.append(openai_chunk({"content": text}))
    for i, call in enumerate(tool_calls):
        args = json.dumps(call["arguments"])
        head = {"index": i, "id": call["id"], "type": "function"}
        head["function"] = {"name": call["name"], "arguments": args[:5]}
        chunks.append(openai_chunk({"tool_calls": [head]}))
        chunks.append(
            openai_chunk({"tool_calls": [{"index": i, "function": {"arguments": args[5:]}}]})
        )
    if not done:
        return chunks
    chunks.append(openai_chunk({}, "tool_calls" if tool_calls else "stop"))
    if usage:
        u = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
        obj = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], "usage": u}
        chunks.append(f"data: {json.dumps(obj)}\n\n".encode())
    chunks.append(b"data: [DONE]\n\n")
    return chunks


async def respond_openai_stream(
    request: web.Request, text: str, usage: tuple[int, int] = (11, 5)
) -> web.StreamResponse:
    """One streamed chat completion in OpenAI's wire format, for a handler of one's own (one
    that stalls, records or chooses its reply): `openai_stream([text])`, written at once."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for chunk in openai_stream([text], usage=usage):
        assert isinstance(chunk, bytes)
        await response.write(chunk)
    return response


# -- Ollama /api/chat --------------------------------------------------------------------------


def ollama_line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj) + "\n").encode()


def ollama_stream(
    texts: Sequence[str],
    *,
    tool_calls: Sequence[dict[str, Any]] = (),
    counts: tuple[int, int] = (26, 4),
    done: bool = True,
) -> list[bytes | float]:
    base = {"model": "llama3.2", "created_at": "2026-01-01T00:00:00Z"}
    chunks: list[bytes | float] = []
    for text in texts:
        message = {"role": "assistant", "content": text}
        chunks.append(ollama_line({**base, "message": message, "done": False}))
    if tool_calls:
        calls = [{"function": {"name": c["name"], "arguments": c["arguments"]}} for c in tool_calls]
        message = {"role": "assistant", "content": "", "tool_calls": calls}
        chunks.append(ollama_line({**base, "message": message, "done": False}))
    if done:
        final = {
            **base,
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "total_duration": 4883583458,
            "load_duration": 1334875,
            "prompt_eval_count": counts[0],
            "prompt_eval_duration": 342546000,
            "eval_count": counts[1],
            "eval_duration": 4535599000,
        }
        chunks.append(ollama_line(final))
    return chunks


# -- Anthropic Messages ------------------------------------------------------------------------


def anthropic_event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


def anthropic_stream(
    texts: Sequence[str],
    *,
    tool_use: dict[str, Any] | None = None,
    usage: tuple[int, int] = (25, 15),
    stop: bool = True,
) -> list[bytes | float]:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-test",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": usage[0], "output_tokens": 1},
    }
    chunks: list[bytes | float] = [anthropic_event("message_start", {"message": message})]
    start = {"index": 0, "content_block": {"type": "text", "text": ""}}
    chunks.append(anthropic_event("content_block_start", start))
    chunks.append(anthropic_event("ping", {}))
    for text in texts:
        delta = {"index": 0, "delta": {"type": "text_delta", "text": text}}
        chunks.append(anthropic_event("content_block_delta", delta))
    chunks.append(anthropic_event("content_block_stop", {"index": 0}))
    if tool_use is not None:
        block = {"type": "tool_use", "id": tool_use["id"], "name": tool_use["name"], "input": {}}
        chunks.append(anthropic_event("content_block_start", {"index": 1, "content_block": block}))
        raw = json.dumps(tool_use["input"])
        for part in (raw[: len(raw) // 2], raw[len(raw) // 2 :]):
            delta = {"index": 1, "delta": {"type": "input_json_delta", "partial_json": part}}
            chunks.append(anthropic_event("content_block_delta", delta))
        chunks.append(anthropic_event("content_block_stop", {"index": 1}))
    if not stop:
        return chunks
    reason = "tool_use" if tool_use else "end_turn"
    chunks.append(
        anthropic_event(
            "message_delta",
            {
                "delta": {"stop_reason": reason, "stop_sequence": None},
                "usage": {"output_tokens": usage[1]},
            },
        )
    )
    chunks.append(anthropic_event("message_stop", {}))
    return chunks


def anthropic_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


# -- Model lists -------------------------------------------------------------------------------


def openai_models(ids: Sequence[str], owned_by: str = "openai") -> Reply:
    """GET /v1/models as OpenAI (and llama.cpp, with owned_by "llamacpp") answer it."""
    data = [{"id": i, "object": "model", "created": 1686935002, "owned_by": owned_by} for i in ids]
    return json_reply({"object": "list", "data": data})


def llamacpp_models(model: str, n_ctx: int | None = 4096, n_ctx_train: int = 32768) -> Reply:
    """GET /v1/models as llama.cpp's server answers it: its one model, owned by "llamacpp",
    with a `meta` object (`n_ctx` only in newer servers; None leaves it out, as older ones do)."""
    meta: dict[str, Any] = {
        "vocab_type": 2,
        "n_vocab": 151936,
        "n_ctx_train": n_ctx_train,
        "n_embd": 896,
        "n_params": 630167424,
        "size": 485452288,
    }
    if n_ctx is not None:
        meta["n_ctx"] = n_ctx
    entry = {
        "id": model,
        "aliases": [model],
        "tags": [],
        "object": "model",
        "created": 1796196426,
        "owned_by": "llamacpp",
        "meta": meta,
    }
    return json_reply(
        {"models": [{"name": model, "model": model}], "object": "list", "data": [entry]}
    )


def llamacpp_props(model: str, n_ctx: int = 4096, total_slots: int = 1) -> Reply:
    """GET /props as llama.cpp's server answers it: the default generation settings of a slot
    (`n_ctx` is one slot's context: the server's divided by its parallel slots)."""
    return json_reply(
        {
            "default_generation_settings": {
                "params": {"seed": 4294967295, "temperature": 0.8, "top_k": 40, "n_predict": -1},
                "n_ctx": n_ctx,
            },
            "total_slots": total_slots,
            "model_alias": model,
            "model_path": model,
            "modalities": {"vision": False, "audio": False},
            "chat_template": "{{ messages }}",
            "build_info": "b1-fake",
        }
    )


def ollama_tags(names: Sequence[str]) -> Reply:
    """GET /api/tags as Ollama answers it."""
    models = [
        {
            "name": name,
            "model": name,
            "modified_at": "2026-01-01T00:00:00Z",
            "size": 2019393189,
            "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": "llama",
                "families": ["llama"],
                "parameter_size": "3.2B",
                "quantization_level": "Q4_K_M",
            },
        }
        for name in names
    ]
    return json_reply({"models": models})


def anthropic_models(ids: Sequence[str], has_more: bool = False) -> Reply:
    """GET /v1/models as Anthropic answers it (one page)."""
    data = [
        {"type": "model", "id": i, "display_name": i, "created_at": "2025-05-14T00:00:00Z"}
        for i in ids
    ]
    return json_reply(
        {
            "data": data,
            "has_more": has_more,
            "first_id": ids[0] if ids else None,
            "last_id": ids[-1] if ids else None,
        }
    )
