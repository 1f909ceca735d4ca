"""Allow `python -m localresearch` as an alias of the `research` command."""

from localresearch.cli.main import main

main()
