"""Allow `python -m localresearch` as an alias of the `research` command."""

from localresearch.cli.main import main

if __name__ == "__main__":  # worker processes (spawn) import this module as __mp_main__
    main()
