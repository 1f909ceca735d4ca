"""Docs cannot drift: every endpoint is in docs/api.md, generated docs are current."""

from __future__ import annotations

import json
import re
import subprocess
import sys
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
    """Generated in a fresh interpreter: click keeps each command's help option once it has
    made one, so in this process the output would depend on which tests ran the CLI first."""
    code = (
        "import json, runpy; g = runpy.run_path('scripts/gen_docs.py', run_name='gen');"
        " print(json.dumps({name: g[name]() for name in"
        " ('configuration_md', 'cli_md', 'help_text_py', 'routes_py')}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    generated = json.loads(done.stdout)
    for name, path in (
        ("configuration_md", "docs/configuration.md"),
        ("cli_md", "docs/cli.md"),
        ("help_text_py", "localresearch/cli/help_text.py"),
        ("routes_py", "localresearch/server/route_list.py"),
    ):
        assert (REPO / path).read_text() == generated[name], (
            f"{path}: run python scripts/gen_docs.py"
        )
