"""A GGUF model loaded in-process through llama-cpp-python (the optional `llamacpp` extra)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from localresearch.errors import ProviderError
from localresearch.memory.types import MemorySearcher
from localresearch.providers.base import (
    ChatRequest,
    Provider,
    ProviderOptions,
    StreamItem,
    TextChunk,
    Usage,
)
from localresearch.providers.prompt import prompt_messages

_DONE = object()


def _messages(request: ChatRequest) -> list[dict[str, Any]]:
    """llama-cpp-python takes OpenAI-style messages (tool turns become plain text here)."""
    out: list[dict[str, Any]] = []
    for m in prompt_messages(request):
        role = m.role if m.role in ("system", "user", "assistant") else "user"
        content = m.content if m.role != "tool" else f"[{m.name or 'tool'} result]\n{m.content}"
        out.append({"role": role, "content": content})
    return out


class LlamaCppProvider(Provider):
    """Fully local, no server: the model runs in a worker thread of the daemon."""

    id = "llamacpp"
    needs_key = False
    default_model = "local-gguf"
    description = "A GGUF file run in-process by llama-cpp-python (extra: localresearch[llamacpp])."
    context_tokens = 4096  # the context it loads the model with (the chat's compact prompt)

    def __init__(self, options: ProviderOptions, memory: MemorySearcher | None = None) -> None:
        super().__init__(options, memory)
        self._llama: Any = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()  # one generation at a time per loaded model

    @property
    def model(self) -> str:
        return self.options.model or Path(self.options.model_path).stem or self.default_model

    async def context_window(self) -> int:
        return self.context_tokens

    def _load(self) -> Any:
        with self._load_lock:
            if self._llama is None:
                try:
                    from llama_cpp import Llama
                except ImportError:
                    raise ProviderError(
                        "llamacpp: llama-cpp-python is not installed "
                        "(pip install 'localresearch[llamacpp]')"
                    ) from None
                path = Path(self.options.model_path).expanduser()
                if not self.options.model_path or not path.is_file():
                    raise ProviderError(
                        f"llamacpp: llm.model_path must name a GGUF file (got {str(path)!r})"
                    )
                self._llama = Llama(model_path=str(path), n_ctx=self.context_tokens, verbose=False)
            return self._llama

    def _generate(self, request: ChatRequest) -> Iterator[dict[str, Any]]:
        llama = self._load()
        extra: dict[str, Any] = {}
        if request.json_schema is not None:
            extra["response_format"] = {"type": "json_object", "schema": request.json_schema}
        elif request.json_mode:
            extra["response_format"] = {"type": "json_object"}
        with self._run_lock:
            yield from llama.create_chat_completion(
                messages=_messages(request),
                stream=True,
                **extra,
                temperature=(
                    request.temperature
                    if request.temperature is not None
                    else self.options.temperature
                ),
                max_tokens=request.max_tokens or self.options.max_tokens,
            )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamItem]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def work() -> None:
            try:
                for chunk in self._generate(request):
                    if stop.is_set():
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            except BaseException as exc:
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        worker = loop.run_in_executor(None, work)
        completion = 0
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                if isinstance(item, ProviderError):
                    raise item
                if isinstance(item, BaseException):
                    raise ProviderError(f"llamacpp: {item}")
                for choice in item.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        completion += 1
                        yield TextChunk(text)
        finally:
            stop.set()
            await asyncio.shield(worker)
        prompt = sum(len(m.content.split()) for m in request.messages)
        yield Usage(prompt, completion)
