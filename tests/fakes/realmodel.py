"""A real, trained model on loopback for the `realmodel` tests: Qwen2.5-Coder-0.5B-Instruct served
by llama.cpp's own OpenAI-compatible server (the `xllamacpp` wheel). See
../shared/peers/realmodel/README.md; `.ci/run` fetches both and exports the two variables."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVE = REPO.parent / "shared" / "peers" / "realmodel" / "serve.py"
MODEL_FILE = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
START_TIMEOUT = 180.0  # loading takes ~3 s idle, far longer on a loaded machine


def model_path() -> Path | None:
    """The GGUF: $LOCALRESEARCH_REALMODEL, else the cache fetch_model.sh fills by default."""
    configured = os.environ.get("LOCALRESEARCH_REALMODEL")
    path = (
        Path(configured)
        if configured
        else Path.home() / ".cache" / "localresearch-peers" / MODEL_FILE
    )
    return path if path.is_file() else None


def model_python() -> Path | None:
    """The interpreter with xllamacpp: $LOCALRESEARCH_REALMODEL_PYTHON, else ./.model-venv."""
    configured = os.environ.get("LOCALRESEARCH_REALMODEL_PYTHON")
    path = Path(configured) if configured else REPO / ".model-venv" / "bin" / "python"
    return path if path.exists() else None


@functools.cache
def unavailable_reason() -> str | None:
    if not SERVE.exists():
        return f"real model unavailable: {SERVE} not found"
    if model_path() is None:
        return "real model unavailable: set LOCALRESEARCH_REALMODEL to the GGUF (.ci/run does)"
    python = model_python()
    if python is None:
        return "real model unavailable: set LOCALRESEARCH_REALMODEL_PYTHON (a venv with xllamacpp)"
    probe = subprocess.run([str(python), "-c", "import xllamacpp"], capture_output=True, timeout=60)
    if probe.returncode != 0:
        return f"real model unavailable: {python} cannot import xllamacpp"
    return None


def threads() -> int:
    """Two threads on an idle 2-core machine; one when it is oversubscribed, where two threads
    that must meet at every token generate several times slower than one."""
    configured = os.environ.get("LOCALRESEARCH_REALMODEL_THREADS")
    if configured:
        return max(1, int(configured))
    cores = os.cpu_count() or 1
    return 1 if os.getloadavg()[0] > cores else min(2, cores)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def realmodel_server() -> Iterator[str]:
    """Base URL of llama.cpp's server with the real model, started once for the session."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    python, model = model_python(), model_path()
    assert python is not None and model is not None
    port = _free_port()
    command = [str(python), str(SERVE), str(model), str(port), "--ctx", "4096"]
    proc = subprocess.Popen(
        [*command, "--threads", str(threads())],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        assert proc.stdout is not None
        line = ""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("LISTENING") or not line:
                break
        if not line.startswith("LISTENING"):
            pytest.skip(f"real model server did not start (exit {proc.poll()})")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
