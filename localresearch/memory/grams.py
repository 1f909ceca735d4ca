"""Searching scripts written without spaces (Chinese, Japanese, Thai, ...): character bigrams.

FTS5's `unicode61` tokenizer takes a whole run of such characters for one word, so no part of
a Chinese sentence can be found. Chunks holding these scripts also get a `grams` column: every
run's overlapping character pairs, as space-separated words the same tokenizer indexes as they
are; a query's runs become the same pairs. Chunks without them leave the column empty, so an
English index costs nothing more.
"""

from __future__ import annotations

import re
import unicodedata

# Han, Hiragana, Katakana, Hangul, Thai, Lao, Myanmar, Khmer (with their marks and extensions).
_UNSPACED_CHARS = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\U00020000-\U0003134f"  # CJK extensions B-G
)
UNSPACED = re.compile(f"[{_UNSPACED_CHARS}]")
_RUN = re.compile(f"[{_UNSPACED_CHARS}]+")
# The scripts whose words carry combining marks (Thai vowels and tones, ...): a query's words
# are read with them (Python's \w stops at a mark).
MARKED_SCRIPTS = "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"
# unicode61 ends a word at a combining mark: in the pairs, each mark is written as a private-use
# character (a letter to unicode61), the same in the index and in queries, so nothing is lost.
_MARKS_AS_LETTERS = {
    code: 0xE000 + (code & 0x0FFF)
    for start, end in ((0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF))
    for code in range(start, end + 1)
    if unicodedata.category(chr(code)).startswith("M")
}


def has_unspaced(text: str) -> bool:
    return UNSPACED.search(text) is not None


def _runs(text: str) -> list[str]:
    return [raw.translate(_MARKS_AS_LETTERS) for raw in _RUN.findall(text)]


def pairs(run: str) -> list[str]:
    """The overlapping character pairs of a run (a single character stands alone)."""
    if len(run) < 2:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def grams_of(text: str) -> str:
    """The `grams` column of a chunk: '' unless it holds an unspaced script."""
    if UNSPACED.search(text) is None:
        return ""
    return " ".join(gram for run in _runs(text) for gram in pairs(run))


def query_runs(text: str) -> list[str]:
    """The unspaced runs of a query (marks written as letters), in order."""
    return _runs(text)
