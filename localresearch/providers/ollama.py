"""Ollama's native API: /api/chat streaming NDJSON (one JSON object a line) and /api/tags."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

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


def wire_messages(messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        item: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.role == "tool" and m.name:
            item["tool_name"] = m.name
        if m.tool_calls:
            item["tool_calls"] = [
                {"function": {"name": c.name, "arguments": c.arguments}} for c in m.tool_calls
            ]
        out.append(item)
    return out


class OllamaProvider(HTTPProvider):
    """A local Ollama server; models are whatever `ollama pull` fetched."""

    id = "ollama"
    needs_key = False
    default_model = "llama3.2"
    default_base_url = "http://127.0.0.1:11434"
    models_path = "/api/tags"
    description = "A local Ollama server (native /api/chat)."

    def payload(self, request: ChatRequest) -> dict[str, Any]:
        temperature = (
            request.temperature if request.temperature is not None else self.options.temperature
        )
        body: dict[str, Any] = {
            "model": request.model or self.model,
            "messages": wire_messages(prompt_messages(request)),
            "stream": True,
            "options": {
                "temperature": temperature,
                "num_predict": request.max_tokens or self.options.max_tokens,
            },
        }
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
            body["format"] = request.json_schema
        elif request.json_mode:
            body["format"] = "json"
        return body

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        response = await self.request(
            "POST", "/api/chat", self.payload(request), on_sent=request.on_sent
        )
        reader = LineReader(self, response)
        final: dict[str, Any] | None = None
        calls = 0
        try:
            async for line in reader.lines():
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    raise self._fail(f"malformed stream line: {line[:200]!r}") from None
                if not isinstance(obj, dict):
                    raise self._fail(f"malformed stream line: {line[:200]!r}")
                if "error" in obj:
                    raise self._fail(f"stream error: {obj['error']}")
                message = obj.get("message") or {}
                text = message.get("content")
                if text:
                    reader.started()
                    yield TextChunk(text)
                for call in message.get("tool_calls") or []:
                    reader.started()
                    fn = call.get("function") or {}
                    args = fn.get("arguments") or {}
                    if isinstance(args, str):
                        try:
                            args = json.loads(args)
                        except ValueError:
                            args = {"_raw": args}
                    calls += 1
                    yield ToolCall(call.get("id") or f"call_{calls}", fn.get("name", ""), args)
                if obj.get("done"):
                    final = obj
                    break
            if final is None:
                raise self._fail("the stream ended before the reply was complete (no done message)")
            await release(response)
        finally:
            response.close()  # a no-op once released; a cut, failed or cancelled stream closes
        yield Usage(int(final.get("prompt_eval_count") or 0), int(final.get("eval_count") or 0))

    def parse_models(self, body: Any) -> list[str] | None:
        models = body.get("models") if isinstance(body, dict) else None
        if not isinstance(models, list):
            return None
        names = (m.get("name") or m.get("model") for m in models if isinstance(m, dict))
        return [n for n in names if isinstance(n, str)]

    def serves(self, name: str, served: list[str]) -> bool:
        return name in served or f"{name}:latest" in served  # "llama3.2" is "llama3.2:latest"

    async def list_models(self) -> list[str]:
        body = await self.get_json("/api/tags")
        models = body.get("models", []) if isinstance(body, dict) else []
        names = [str(m.get("name") or m.get("model")) for m in models if isinstance(m, dict)]
        return names or [self.model]
