"""`research web`: the daemon's page in the browser, signed in with a one-time link."""

from __future__ import annotations

import click

from localresearch.cli.common import api_errors, client_starting_daemon, console, print_json


@click.command(epilog="Example: research web --no-open")
@click.option("--no-open", is_flag=True, help="Print the sign-in link instead of opening it.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts (implies --no-open).")
@api_errors
def web(no_open: bool, as_json: bool) -> None:
    """Open the page (ask, deep research, memory, heartbeat) in your browser, signed in.

    The link carries a one-time token, valid for two minutes, that the daemon exchanges for a
    session cookie; starts the daemon if it is not running.
    """
    result = client_starting_daemon().web_signin()
    url = result.url
    opened = False
    if not (no_open or as_json):
        import webbrowser

        opened = webbrowser.open(url)
    if as_json:
        print_json({"url": url, "expires_in": result.expires_in, "opened": opened})
        return
    out = console()
    if opened:
        out.print("Opened the page in your browser.", markup=False)
    else:
        out.print(f"Open this link within {result.expires_in} s (it works once):")
        click.echo(url)
