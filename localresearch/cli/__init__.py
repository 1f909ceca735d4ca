"""The `research` command: parse, call the client, render."""
