"""Counts in words: "1 source", "2 sources"."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`n` followed by `noun`, in the plural unless `n` is 1 (`plural` for irregular nouns)."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"
