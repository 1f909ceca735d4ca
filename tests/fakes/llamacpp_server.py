"""A real OpenAI-compatible server for tests: llama-cpp-python's server on loopback with a tiny
random-weight model generated locally (no download). See ../shared/peers/llamacpp/README.md."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MAKE_GGUF = REPO.parent / "shared" / "peers" / "llamacpp" / "make_tiny_gguf.py"
DEV_PYTHON = REPO.parent / "peer" / ".peer-venv" / "bin" / "python"


def llamacpp_python() -> Path | None:
    """The interpreter with llama-cpp-python[server]: $LLAMACPP_PYTHON (CI), else the dev venv."""
    configured = os.environ.get("LLAMACPP_PYTHON")
    candidate = Path(configured) if configured else DEV_PYTHON
    return candidate if candidate.exists() else None


@functools.cache
def unavailable_reason() -> str | None:
    python = llamacpp_python()
    if python is None:
        return (
            "llama.cpp server unavailable: set LLAMACPP_PYTHON to a Python with "
            "llama-cpp-python[server] installed (.ci/run does this)"
        )
    if not MAKE_GGUF.exists():
        return f"llama.cpp server unavailable: {MAKE_GGUF} not found"
    probe = subprocess.run(
        [str(python), "-c", "import llama_cpp.server"], capture_output=True, timeout=60
    )
    if probe.returncode != 0:
        return f"llama.cpp server unavailable: {python} cannot import llama_cpp.server"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def llamacpp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (…/v1) of a running llama.cpp server serving the tiny model as `tiny`."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    python = llamacpp_python()
    assert python is not None
    folder = tmp_path_factory.mktemp("llamacpp")
    model = folder / "tiny.gguf"
    subprocess.run([str(python), str(MAKE_GGUF), str(model)], check=True, timeout=120)
    port = _free_port()
    log_path = folder / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                *(str(python), "-m", "llama_cpp.server", "--model", str(model)),
                *("--model_alias", "tiny", "--host", "127.0.0.1", "--port", str(port)),
                # its byte-level vocabulary is verbose: research prompts need the room
                *("--n_ctx", "8192", "--n_threads", "1"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    pytest.fail(f"llama.cpp server did not start:\n{tail}")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
