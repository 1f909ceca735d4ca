"""`research keys`: API keys for scripts and other machines' clients (admin only)."""

from __future__ import annotations

import click

from localresearch.cli.common import api_errors, console, get_client, json_option, print_json


@click.group(epilog="Example: research keys create --role user --name laptop")
def keys() -> None:
    """Create, list and revoke API keys (stored by the daemon as hashes only)."""


@keys.command("create", epilog="Example: research keys create --role user --prefix dr_")
@click.option("--role", required=True, help="Role of the key (a role of api.role_permissions).")
@click.option("--name", default="", help="A label to tell keys apart (default: the role).")
@click.option("--prefix", default="lr_", show_default=True, help="Start of the key's secret.")
@json_option
@api_errors
def create(role: str, name: str, prefix: str, as_json: bool) -> None:
    """Create a key and print its secret: it is shown this once only."""
    created = get_client().keys_create(role, name=name, prefix=prefix)
    if as_json:
        print_json(created)
        return
    click.echo(created.key)
    console().print(
        f"[dim]{created.id} · role {created.role} · {created.name} — copy the key now: "
        "it is not shown again.[/]",
        markup=True,
    )


@keys.command("list", epilog="Example: research keys list --all")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
@json_option
@api_errors
def list_keys(include_revoked: bool, as_json: bool) -> None:
    """Keys, oldest first, without their secrets."""
    found = get_client().keys_list(revoked=include_revoked)
    if as_json:
        print_json(found)
        return
    if not found.keys:
        console().print("No keys. Create one with: research keys create --role user")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("id", "role", "name", "key", "created", "revoked"):
        table.add_column(column)
    for key in found.keys:
        table.add_row(key.id, key.role, key.name, key.hint, key.created_at, key.revoked_at or "-")
    console().print(table)


@keys.command("revoke", epilog="Example: research keys revoke key_3f2a9c1d4b5e")
@click.argument("key_id")
@json_option
@api_errors
def revoke(key_id: str, as_json: bool) -> None:
    """Stop accepting a key, at once."""
    revoked = get_client().keys_revoke(key_id)
    if as_json:
        print_json(revoked)
        return
    console().print(f"Revoked {revoked.id} ({revoked.role}, {revoked.name}).", markup=False)
