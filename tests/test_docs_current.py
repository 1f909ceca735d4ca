"""Docs cannot drift: every endpoint is in docs/api.md, generated docs are current."""

from __future__ import annotations

import re
from pathlib import Path

from localresearch.config import load_config
from localresearch.paths import Paths
from localresearch.server.app import make_app

REPO = Path(__file__).resolve().parents[1]


def test_every_endpoint_is_documented(paths: Paths) -> None:
    app = make_app(load_config(paths.config_file), paths)
    doc = (REPO / "docs" / "api.md").read_text()
    documented = {
        re.sub(r"\{[^}]+\}", "{}", p) for p in re.findall(r"`(?:[A-Z]+ )?(/[^`?\s]*)", doc)
    }
    missing = []
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        path = re.sub(r"\{[^}]+\}", "{}", route.resource.canonical if route.resource else "")
        if path not in documented:
            missing.append(f"{route.method} {path}")
    assert not missing, f"endpoints missing from docs/api.md: {sorted(set(missing))}"


def test_generated_docs_are_current() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_docs", REPO / "scripts" / "gen_docs.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert (REPO / "docs" / "configuration.md").read_text() == gen.configuration_md(), (
        "run: python scripts/gen_docs.py"
    )
    assert (REPO / "docs" / "cli.md").read_text() == gen.cli_md(), "run: python scripts/gen_docs.py"
    assert (REPO / "localresearch" / "cli" / "help_text.py").read_text() == gen.help_text_py(), (
        "run: python scripts/gen_docs.py"
    )
    assert (REPO / "localresearch" / "server" / "route_list.py").read_text() == gen.routes_py(), (
        "run: python scripts/gen_docs.py"
    )
