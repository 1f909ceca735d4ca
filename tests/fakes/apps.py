"""The daemon's app over a few notes in its workspace, for tests that ask it through HTTP."""

from __future__ import annotations

from typing import Any

from localresearch.config import load_config
from localresearch.paths import Paths
from localresearch.server.keys import RUNTIME
from localresearch.workspace import workspace_dir
from tests.fakes.search_scifact import write_notes


async def notes_client(
    make_client: Any, paths: Paths, notes: dict[str, str], config_text: str | None = None
) -> Any:
    """A test client of the app on `config_text` (if given), `notes` written under the
    workspace's notes/ and indexed before it returns."""
    if config_text is not None:
        paths.config_file.write_text(config_text, encoding="utf-8")
    config = load_config(paths.config_file)
    write_notes(workspace_dir(config, paths) / "notes", notes)
    client = await make_client(config)
    memory = client.server.app[RUNTIME].memory
    if memory is not None:
        await memory.wait_ready()
    return client
