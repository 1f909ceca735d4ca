"""Anthropic's Messages API with its SSE event stream (message_start … message_stop)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

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

API_VERSION = "2023-06-01"


def split_system(messages: list[Message]) -> tuple[str, list[dict[str, Any]]]:
    """Anthropic takes the system prompt apart, tool results as user turns, calls as blocks."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": m.tool_call_id or "",
                "content": m.content,
            }
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
            continue
        if m.tool_calls:
            blocks: list[dict[str, Any]] = []
            if m.content:
                blocks.append({"type": "text", "text": m.content})
            blocks.extend(
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                for c in m.tool_calls
            )
            out.append({"role": "assistant", "content": blocks})
            continue
        out.append({"role": m.role, "content": m.content})
    return system, out


class AnthropicProvider(HTTPProvider):
    """Claude models over the Messages API; the key comes from the env var named in config."""

    id = "anthropic"
    needs_key = True
    default_model = "claude-sonnet-4-5"
    default_base_url = "https://api.anthropic.com"
    models_path = "/v1/models?limit=1000"
    description = "Anthropic's Messages API (needs a key)."
    retry_statuses: ClassVar[frozenset[int]] = frozenset({429, 503, 529})

    def headers(self) -> dict[str, str]:
        headers = super().headers()
        headers["anthropic-version"] = API_VERSION
        if self.options.api_key:
            headers["x-api-key"] = self.options.api_key
        return headers

    def payload(self, request: ChatRequest) -> dict[str, Any]:
        system, messages = split_system(prompt_messages(request))
        if request.json_mode:
            system = (system + "\n\nReply with one JSON object and nothing else.").strip()
        body: dict[str, Any] = {
            "model": request.model or self.model,
            "max_tokens": request.max_tokens or self.options.max_tokens,
            "messages": messages,
            "stream": True,
            "temperature": (
                request.temperature if request.temperature is not None else self.options.temperature
            ),
        }
        if system:
            body["system"] = system
        if request.tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in request.tools
            ]
        if request.json_schema is not None:
            # Anthropic's structured output is a tool's input: one tool, and the model must use it.
            body["tools"] = [
                *body.get("tools", []),
                {
                    "name": request.schema_name,
                    "description": "Give the reply as this tool's input.",
                    "input_schema": request.json_schema,
                },
            ]
            body["tool_choice"] = {"type": "tool", "name": request.schema_name}
        return body

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        response = await self.request(
            "POST", "/v1/messages", self.payload(request), on_sent=request.on_sent
        )
        reader = LineReader(self, response)
        prompt_tokens = completion_tokens = 0
        blocks: dict[int, dict[str, Any]] = {}
        stopped = False
        try:
            async for line in reader.lines():
                if not line.startswith("data:"):
                    continue  # `event:` lines repeat the type that is also in the data
                try:
                    event = json.loads(line[5:].strip())
                except ValueError:
                    raise self._fail(f"malformed stream data: {line[:200]!r}") from None
                kind = event.get("type") if isinstance(event, dict) else None
                if kind == "error":
                    raise self._fail(f"stream error: {self.error_message(line[5:].encode())}")
                if kind == "message_start":
                    usage = (event.get("message") or {}).get("usage") or {}
                    prompt_tokens = int(usage.get("input_tokens") or 0)
                    completion_tokens = int(usage.get("output_tokens") or 0)
                elif kind == "content_block_start":
                    block = dict(event.get("content_block") or {})
                    block["partial"] = ""
                    blocks[int(event.get("index", 0))] = block
                elif kind == "content_block_delta":
                    delta = event.get("delta") or {}
                    if delta.get("type") == "text_delta" and delta.get("text"):
                        reader.started()
                        yield TextChunk(delta["text"])
                    elif delta.get("type") == "input_json_delta":
                        reader.started()
                        block = blocks.setdefault(int(event.get("index", 0)), {"partial": ""})
                        block["partial"] += delta.get("partial_json") or ""
                elif kind == "content_block_stop":
                    block = blocks.pop(int(event.get("index", 0)), {})
                    if block.get("type") == "tool_use":
                        call = self._tool_call(block)
                        if request.json_schema is not None and call.name == request.schema_name:
                            yield TextChunk(json.dumps(call.arguments, ensure_ascii=False))
                        else:
                            yield call
                elif kind == "message_delta":
                    usage = event.get("usage") or {}
                    completion_tokens = int(usage.get("output_tokens") or completion_tokens)
                elif kind == "message_stop":
                    stopped = True
                    break
            if not stopped:
                raise self._fail("the stream ended before the reply was complete (no message_stop)")
            await release(response)
        finally:
            response.close()  # a no-op once released; a cut, failed or cancelled stream closes
        yield Usage(prompt_tokens, completion_tokens)

    def _tool_call(self, block: dict[str, Any]) -> ToolCall:
        raw = block.get("partial") or ""
        arguments: Any = block.get("input") or {}
        if raw:
            try:
                arguments = json.loads(raw)
            except ValueError:
                raise self._fail(f"malformed tool input: {raw[:200]!r}") from None
        if not isinstance(arguments, dict):
            arguments = {"value": arguments}
        return ToolCall(str(block.get("id", "")), str(block.get("name", "")), arguments)

    def parse_models(self, body: Any) -> list[str] | None:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or body.get("has_more"):
            return None  # a partial list cannot tell a name is missing
        return [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]

    def serves(self, name: str, served: list[str]) -> bool:
        """Dated ids are listed; their aliases ("claude-sonnet-4-5", "claude-3-5-haiku-latest",
        "claude-sonnet-4-0") are served too."""
        if name in served:
            return True
        stem = name.removesuffix("-latest").removesuffix("-0")
        return any(m.startswith(stem + "-") and m[len(stem) + 1 :].isdigit() for m in served)

    async def list_models(self) -> list[str]:
        body = await self.get_json("/v1/models")
        data = body.get("data", []) if isinstance(body, dict) else []
        models = [str(m.get("id")) for m in data if isinstance(m, dict)]
        return models or [self.model]
