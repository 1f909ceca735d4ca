"""Any OpenAI-compatible server (OpenAI, llama.cpp, vLLM, LM Studio, OpenRouter, Mistral, Gemini's
compatible endpoint): /chat/completions with SSE streaming, tool calls and usage."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from localresearch.extractive import count_tokens
from localresearch.providers.base import (
    ChatRequest,
    Message,
    StreamItem,
    TextChunk,
    ToolCall,
    Usage,
)
from localresearch.providers.http import HTTPProvider, LineReader, release
from localresearch.providers.prompt import prompt_messages

log = logging.getLogger(__name__)

RETRY_SECONDS = 60.0  # a server that did not answer the context probe is asked again after this
# (provider, base URL) -> (when, the server answered, its context tokens or 0)
_context_cache: dict[tuple[str, str], tuple[float, bool, int]] = {}


def _positive(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _props_context(body: Any) -> int:
    """llama.cpp's GET /props: the context one slot (one request) has."""
    settings = body.get("default_generation_settings") if isinstance(body, dict) else None
    return _positive(settings.get("n_ctx")) if isinstance(settings, dict) else 0


def _is_llamacpp(body: Any) -> bool:
    """llama.cpp's server lists its model as owned by "llamacpp", with a `meta` object."""
    data = body.get("data") if isinstance(body, dict) else None
    return any(
        isinstance(m, dict) and (m.get("owned_by") == "llamacpp" or isinstance(m.get("meta"), dict))
        for m in (data if isinstance(data, list) else [])
    )


def _models_context(body: Any) -> int:
    """llama.cpp's GET /v1/models: each model's `meta` (n_ctx where the server tells it)."""
    data = body.get("data") if isinstance(body, dict) else None
    for model in data if isinstance(data, list) else []:
        meta = model.get("meta") if isinstance(model, dict) else None
        if isinstance(meta, dict):
            found = _positive(meta.get("n_ctx")) or _positive(meta.get("n_ctx_train"))
            if found:
                return found
    return 0


def wire_messages(messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            out.append({"role": "tool", "tool_call_id": m.tool_call_id or "", "content": m.content})
            continue
        item: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            item["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in m.tool_calls
            ]
        out.append(item)
    return out


def _arguments(raw: str) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"value": value}


class OpenAIProvider(HTTPProvider):
    """OpenAI's chat completions wire format, which most servers speak."""

    id = "openai"
    needs_key = False  # local servers (llama.cpp, vLLM, LM Studio) take none
    default_model = "gpt-4o-mini"
    default_base_url = "https://api.openai.com/v1"
    models_path = "/models"
    description = "Any OpenAI-compatible server: OpenAI, llama.cpp, vLLM, LM Studio, OpenRouter…"

    @property
    def base_url(self) -> str:
        url = super().base_url
        return url + "/v1" if urlsplit(url).path in ("", "/") else url

    def headers(self) -> dict[str, str]:
        headers = super().headers()
        if self.options.api_key:
            headers["Authorization"] = f"Bearer {self.options.api_key}"
        return headers

    def payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model or self.model,
            "messages": wire_messages(prompt_messages(request)),
            "stream": stream,
            "temperature": (
                request.temperature if request.temperature is not None else self.options.temperature
            ),
            "max_tokens": request.max_tokens or self.options.max_tokens,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in request.tools
            ]
        if request.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": request.schema_name,
                    "schema": request.json_schema,
                    "strict": True,
                },
            }
        elif request.json_mode:
            body["response_format"] = {"type": "json_object"}
        return body

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        response = await self.request(
            "POST", "/chat/completions", self.payload(request, stream=True), on_sent=request.on_sent
        )
        reader = LineReader(self, response)
        calls: dict[int, dict[str, str]] = {}
        usage: Usage | None = None
        finished = False
        completion: list[str] = []
        try:
            async for line in reader.lines():
                if not line.startswith("data:"):
                    continue  # blank separators, comments, `event:` lines
                data = line[5:].strip()
                if data == "[DONE]":
                    finished = True
                    break
                chunk = self._decode(data)
                if "error" in chunk:
                    raise self._fail(f"stream error: {self.error_message(data.encode())}")
                if isinstance(chunk.get("usage"), dict):
                    u = chunk["usage"]
                    usage = Usage(
                        int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0)
                    )
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    text = delta.get("content")
                    if text:
                        reader.started()
                        completion.append(text)
                        yield TextChunk(text)
                    for tc in delta.get("tool_calls") or []:
                        reader.started()
                        slot = calls.setdefault(
                            int(tc.get("index", 0)), {"id": "", "name": "", "args": ""}
                        )
                        slot["id"] = tc.get("id") or slot["id"]
                        fn = tc.get("function") or {}
                        slot["name"] = fn.get("name") or slot["name"]
                        slot["args"] += fn.get("arguments") or ""
                    if choice.get("finish_reason"):
                        finished = True
            if not finished:
                raise self._fail("the stream ended before the reply was complete")
            await release(response)
        finally:
            response.close()  # a no-op once released
        for index in sorted(calls):
            slot = calls[index]
            yield ToolCall(slot["id"] or f"call_{index}", slot["name"], _arguments(slot["args"]))
        if usage is None:
            # The server sent no usage (llama.cpp ignores include_usage): these servers stream one
            # token per chunk, so count chunks; the prompt is estimated.
            prompt = sum(count_tokens(m.content) for m in prompt_messages(request))
            usage = Usage(prompt, len(completion))
        yield usage

    async def complete(self, request: ChatRequest) -> list[StreamItem]:
        response = await self.request(
            "POST", "/chat/completions", self.payload(request, stream=False)
        )
        try:
            raw = await response.read()
        finally:
            response.close()
        body = self._decode(raw.decode("utf-8", errors="replace"))
        choices = body.get("choices") or []
        if not choices:
            raise self._fail(f"reply without choices: {self.error_message(raw)}")
        message = choices[0].get("message") or {}
        items: list[StreamItem] = []
        if message.get("content"):
            items.append(TextChunk(message["content"]))
        for i, tc in enumerate(message.get("tool_calls") or []):
            fn = tc.get("function") or {}
            items.append(
                ToolCall(
                    tc.get("id") or f"call_{i}",
                    fn.get("name", ""),
                    _arguments(fn.get("arguments") or ""),
                )
            )
        u = body.get("usage") or {}
        items.append(Usage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0)))
        return items

    def _decode(self, data: str) -> dict[str, Any]:
        try:
            chunk = json.loads(data)
        except ValueError:
            raise self._fail(f"malformed stream data: {data[:200]!r}") from None
        if not isinstance(chunk, dict):
            raise self._fail(f"malformed stream data: {data[:200]!r}")
        return chunk

    async def context_window(self) -> int:
        """The context a llama.cpp server gives one request: GET /props
        (`default_generation_settings.n_ctx`, the slot's context), else the model's `meta` in
        /v1/models (`n_ctx`, else `n_ctx_train`). Other servers (OpenAI, vLLM) tell neither:
        0, with no request beyond the model list the model check already fetches."""
        key = (self.id, self.base_url)
        cached = _context_cache.get(key)
        if cached is not None and (cached[1] or time.monotonic() - cached[0] < RETRY_SECONDS):
            return cached[2]
        models = await self.models_body()
        tokens = 0
        if _is_llamacpp(models):
            props, _ = await self.probe_json(f"{self.base_url.removesuffix('/v1')}/props")
            tokens = _props_context(props) or _models_context(models)
        # A server that answered is asked once; one that did not (still starting) again later.
        _context_cache[key] = (time.monotonic(), models is not None, tokens)
        if tokens:
            log.info(
                "%s: the model at %s holds %d tokens of context", self.id, self.base_url, tokens
            )
        return tokens

    def parse_models(self, body: Any) -> list[str] | None:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            return None
        entries = [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]
        if len(entries) == 1 and entries[0].get("owned_by") == "llamacpp":
            return None  # llama.cpp's server answers with its one model whatever the name
        return [m["id"] for m in entries]

    async def list_models(self) -> list[str]:
        body = await self.get_json("/models")
        models = [str(m.get("id")) for m in body.get("data", []) if isinstance(m, dict)]
        return models or [self.model]
