"""`research models`: the providers you can choose and the configured one's models."""

from __future__ import annotations

import click

from localresearch.cli.common import api_errors, console, get_client, json_option, print_json


@click.command(epilog="Example: research models --json")
@json_option
@api_errors
def models(as_json: bool) -> None:
    """List model providers and models (use one with: research ask --model provider/model)."""
    result = get_client(timeout=60.0).models()
    if as_json:
        print_json(result)
        return
    out = console()
    out.print(f"Default: [bold]{result['default']}[/]", markup=True)
    for p in result["providers"]:
        mark = "*" if p.get("configured") else " "
        key = " (needs key)" if p.get("needs_key") else ""
        out.print(f"\n{mark} [bold]{p['id']}[/]{key}  {p.get('description', '')}", markup=True)
        if p.get("error"):
            out.print(f"    [yellow]{p['error']}[/]", markup=True)
        for name in p.get("models", []):
            out.print(f"    {p['id']}/{name}", markup=False, highlight=False)
