"""The llamacpp provider loading a GGUF in-process, run under the interpreter that has
llama-cpp-python (the same one the llama.cpp server tests use)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.fakes.llamacpp_server import MAKE_GGUF, REPO, llamacpp_python

pytestmark = pytest.mark.llamacpp

SCRIPT = """
import asyncio, json, sys
from localresearch.providers.base import ChatRequest, Message, ProviderOptions, TextChunk, Usage
from localresearch.providers.llamacpp import LlamaCppProvider

async def main():
    options = ProviderOptions(model_path=sys.argv[1], temperature=0.0, max_tokens=8)
    provider = LlamaCppProvider(options)
    request = ChatRequest(messages=[Message("user", "hello")])
    items = [item async for item in provider.stream(request)]
    again = [item async for item in provider.stream(request)]
    text = "".join(i.text for i in items if isinstance(i, TextChunk))
    usage = items[-1]
    print(json.dumps({
        "text": text,
        "same": text == "".join(i.text for i in again if isinstance(i, TextChunk)),
        "chunks": sum(isinstance(i, TextChunk) for i in items),
        "usage": [usage.prompt_tokens, usage.completion_tokens]
        if isinstance(usage, Usage) else None,
        "model": provider.model,
    }))

asyncio.run(main())
"""


def test_llamacpp_provider_streams_in_process(tmp_path: Path) -> None:
    python = llamacpp_python()
    if python is None or not MAKE_GGUF.exists():
        pytest.skip("llama-cpp-python unavailable: set LLAMACPP_PYTHON (see .ci/run)")
    model = tmp_path / "tiny.gguf"
    subprocess.run([str(python), str(MAKE_GGUF), str(model)], check=True, timeout=120)
    result = subprocess.run(
        [str(python), "-c", SCRIPT, str(model)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["chunks"] == 8 and out["usage"][1] == 8  # one chunk per token, to max_tokens
    assert out["text"] and out["same"] is True  # deterministic at temperature 0
    assert out["model"] == "tiny"
