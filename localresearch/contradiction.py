"""Whether a claim says the opposite of the passage sentence that holds its words.

Word overlap cannot tell "a checkpoint copies its pages back" from "a checkpoint never copies
its pages back", nor "1000 pages" from "10 pages": both hold most of the passage's words. Two
checks catch what a small model gets wrong most often while keeping the passage's wording:

- **negation**: a negation (not, no, never, n't, without, cannot, none…) reaches from its word
  to the end of its clause (punctuation, or a conjunction such as "and", "but", "while",
  "which"). When most of what one side negates (by rarity weight, two words or more) the other
  side states without negating it, they contradict: "never copies pages back into the main
  database" against "copies the pages back into the main database". A negation present on
  both sides ("needs no key" and "does not need a key"), or over words the other side does not
  hold, is none;
- **numbers**: every number the claim states must stand in the passage (the whole passage: a
  long sentence may gather several of its sentences), compared as values
  ("1,000" = "1000", "50%" = "50 percent", "1.5 s" = "1500 ms", "two" = "2").
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from functools import lru_cache

from localresearch.extractive import terms
from localresearch.extractive import words as split_words

NEGATION = "negation"
NUMBER = "number"


def _listed(text: str) -> list[str]:
    return text.split()


_NEGATIONS = frozenset(
    _listed(
        "not no never none nothing nobody nowhere neither nor without cannot cant dont doesnt "
        "didnt isnt arent wasnt werent wont wouldnt couldnt shouldnt hasnt havent hadnt"
    )
)
# "not only …", "no matter …", "whether or not": no claim is denied.
_NOT_NEGATING = re.compile(r"\b(?:not\s+(?:only|just|merely)|no\s+matter|or\s+not)\b", re.I)
# Clauses end at punctuation, and start at a conjunction or a relative word.
_CLAUSE_PUNCT = re.compile(r"[,;:()\[\]—–]|\s-\s|[.!?](?:\s|$)")
_CLAUSE_WORD = re.compile(
    r"\b(?=(?:and|but|or|nor|whereas|while|although|though|unless|because|since|so|yet|"
    r"however|which|who|whose|that|where|when|whenever|if|then|after|before|until|once|"
    r"except|instead|rather)\b)",
    re.I,
)
# Share of a negation's scope (rarity-weighted) the other side must state for a contradiction:
# less is another statement, not the same one denied.
MIN_SHARED = 0.5

_SMALL = {
    w: i
    for i, w in enumerate(
        _listed(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen "
            "fourteen fifteen sixteen seventeen eighteen nineteen twenty"
        )
    )
}
_TENS = {
    w: 10 * i
    for i, w in enumerate(_listed("_ _ _ thirty forty fifty sixty seventy eighty ninety"))
    if i >= 3
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
_MONTHS = {
    m: i
    for i, m in enumerate(
        _listed(
            "_ january february march april may june july august september october november "
            "december"
        )
    )
    if i
}
# A unit after a number, with its dimension and its factor to the dimension's base unit.
_UNITS: dict[str, tuple[str, float]] = {}
for _names, _dim, _factor in (
    ("ns nanosecond nanoseconds", "s", 1e-9),
    ("µs us microsecond microseconds", "s", 1e-6),
    ("ms msec millisecond milliseconds", "s", 1e-3),
    ("s sec secs second seconds", "s", 1.0),
    ("min mins minute minutes", "s", 60.0),
    ("h hr hrs hour hours", "s", 3600.0),
    ("d day days", "s", 86400.0),
    ("week weeks", "s", 604800.0),
    ("b byte bytes", "B", 1.0),
    ("kb kib kilobyte kilobytes", "B", 1024.0),
    ("mb mib megabyte megabytes", "B", 1024.0**2),
    ("gb gib gigabyte gigabytes", "B", 1024.0**3),
    ("tb tib terabyte terabytes", "B", 1024.0**4),
    ("k", "", 1e3),
    ("m", "", 1e6),
):
    for _name in _names.split():
        _UNITS[_name] = (_dim, _factor)
_DECIMAL_BYTES = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12}  # KB is 1,000 or 1,024 bytes
_PERCENT = re.compile(r"\s*(?:%|percent\b|per\s+cent\b)", re.I)
# A number standing on its own: not inside a word or an identifier (v1.5, x86_64, CX3CR1).
_NUMBER = re.compile(
    r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?!\.\d)"
    r"(?:(st|nd|rd|th)\b|\s?([a-zµ]+)\b)?",
    re.I,
)
_VERSION = re.compile(r"(?<![\w.])v?\d+(?:\.\d+){2,}(?!\w|\.\d)")
_DIGITS = re.compile(r"\d+(?:\.\d+)?")

Weight = Callable[[str], float]


def contradiction(claim: str, source: str, passage: str = "", weight: Weight | None = None) -> str:
    """Why `claim` does not say what `source` (the passage sentence holding its words) says:
    NEGATION, or NUMBER (one the whole `passage`, or else `source`, does not hold); "" when it
    may. `weight` gives a term's rarity weight (1 for every term when not given)."""
    if _numbers_missing(claim, passage or source):
        return NUMBER
    if _negation_differs(claim, source, weight or (lambda _t: 1.0)):
        return NEGATION
    return ""


# -- negation ----------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _scopes(text: str) -> tuple[frozenset[str], tuple[frozenset[str], ...]]:
    """(terms stated outside any negation, the terms of each negation's scope): a negation
    reaches from its word to the end of its clause."""
    plain: set[str] = set()
    scopes: list[frozenset[str]] = []
    for part in _CLAUSE_PUNCT.split(text):
        for clause in _CLAUSE_WORD.split(_NOT_NEGATING.sub(" ", part)):
            words = split_words(clause)
            cues = [i for i, w in enumerate(words) if _is_negation(w)]
            if not cues:
                plain.update(terms(clause))
                continue
            plain.update(terms(" ".join(words[: cues[0]])))
            if len(cues) % 2 == 1:
                scopes.append(frozenset(terms(" ".join(words[cues[0] + 1 :]))))
            else:
                plain.update(terms(" ".join(words[cues[0] + 1 :])))
    return frozenset(plain), tuple(s for s in scopes if s)


def _is_negation(word: str) -> bool:
    w = word.lower().replace("’", "'")
    return w.endswith("n't") or w.replace("'", "") in _NEGATIONS


def _negation_differs(claim: str, source: str, weight: Weight) -> bool:
    """Whether one side denies what the other states: most of a negation's scope (by weight,
    and two of its terms or all when it has fewer) stated by the other side outside any of
    its own negations."""
    mine, theirs = _scopes(claim), _scopes(source)
    for scopes, (plain, denying) in ((mine[1], theirs), (theirs[1], mine)):
        denied = frozenset().union(*denying)
        for scope in scopes:
            stated = [t for t in scope if t in plain and t not in denied]
            if len(stated) < min(2, len(scope)):
                continue
            total = sum(weight(t) for t in scope) or 1.0
            if sum(weight(t) for t in stated) / total >= MIN_SHARED:
                return True
    return False


# -- numbers -----------------------------------------------------------------------------------


def _numbers_missing(claim: str, source: str) -> bool:
    stated = _stated(claim)
    if not stated:
        return False
    held = _held(source)
    return any(not (values & held) for values in stated)


@lru_cache(maxsize=4096)
def _stated(text: str) -> tuple[frozenset[tuple[str, float]], ...]:
    """Each number the text states, as the set of values it may be compared as (cached: a
    claim is checked against every passage unit that holds its words)."""
    found = [_values(m) for m in _NUMBER.finditer(text) if not _identifier(m)]
    found += [{(_version(m.group(0)), 0.0)} for m in _VERSION.finditer(text)]
    words = [w.lower() for w in split_words(text)]
    for i, w in enumerate(words):
        value = _SMALL.get(w, _TENS.get(w))
        if value is None or w in ("zero", "one"):
            continue  # "one of the files" states no count
        near = words[max(0, i - 1) : i] + words[i + 1 : i + 2]
        if any(n in _SMALL or n in _TENS or n in _SCALES for n in near):
            continue  # "twenty five", "two hundred": left to the passage side's reading
        found.append({("", float(value))})
    return tuple(frozenset(v) for v in found if v)


@lru_cache(maxsize=4096)
def _held(text: str) -> frozenset[tuple[str, float]]:
    """Every value a passage holds, read generously: its numbers with and without their units,
    every run of digits (identifiers included), number words and their compounds, and months."""
    held: set[tuple[str, float]] = set()
    for m in _NUMBER.finditer(text):
        held |= _values(m)
    for m in _VERSION.finditer(text):
        held.add((_version(m.group(0)), 0.0))
    for m in _DIGITS.finditer(text):
        held.add(("", _round(float(m.group(0)))))
    words = [w.lower() for w in split_words(text.replace("-", " "))]
    for value in _word_numbers(words):
        held.add(("", _round(float(value))))
    return frozenset(held)


def _word_numbers(words: list[str]) -> Iterable[int]:
    current: int | None = None
    for w in [*words, ""]:
        if w in _MONTHS:
            yield _MONTHS[w]
        if w in _SMALL or w in _TENS:
            value = _SMALL.get(w, _TENS.get(w, 0))
            yield value
            current = (current or 0) + value if current is not None and current % 10 == 0 else value
            yield current
        elif w in _SCALES and current is not None:
            current *= _SCALES[w]
            yield current
        else:
            current = None


def _identifier(m: re.Match[str]) -> bool:
    """Digits glued to letters that are no unit ("2FA", "3D") name something, state no count."""
    glued = m.group(4) is not None and not m.string[m.end(2 if m.group(2) else 1)].isspace()
    return glued and m.group(4).lower() not in _UNITS


def _values(m: re.Match[str]) -> set[tuple[str, float]]:
    number = float(m.group(1).replace(",", "") + (m.group(2) or ""))
    values = {("", number)}
    after = m.string[m.end(1) + len(m.group(2) or "") :]
    unit = "" if _PERCENT.match(after) else (m.group(4) or "").lower()
    if unit in _UNITS:
        dim, factor = _UNITS[unit]
        values.add((dim, number * factor))
        if unit in _DECIMAL_BYTES:
            values.add((dim, number * _DECIMAL_BYTES[unit]))
        if not dim:
            values.add(("", number * factor))
    return {(dim, _round(v)) for dim, v in values}


def _round(value: float) -> float:
    """Values equal up to floating-point noise compare equal (1.5 s = 1500 ms)."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, 9 - math.floor(math.log10(abs(value))))


def _version(text: str) -> str:
    """A version number ("3.7.0", "v3.7.0") compares as its text, under a dimension of its own."""
    return "version " + text.lstrip("vV")
