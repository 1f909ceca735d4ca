"""localresearch: a local research assistant daemon driven from the terminal."""

__version__ = "0.1.0"
