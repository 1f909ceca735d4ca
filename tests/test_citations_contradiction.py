"""A sentence that says the opposite of the note holding its words (a negation on one side
only) or states a number the note does not hold is not supported, however many of the note's
words it repeats; paraphrases, numbers written another way and negations on both sides stay
supported."""

from __future__ import annotations

import pytest

from localresearch.citations import Passage, align
from localresearch.contradiction import NEGATION, NUMBER, contradiction

NOTE = """# Backing up SQLite

In WAL mode, changes are appended to the WAL file instead of the database file.
A checkpoint copies the pages of the WAL back into the main database.
By default SQLite runs a checkpoint when the WAL reaches 1000 pages.
`PRAGMA wal_checkpoint(TRUNCATE)` copies every page back and truncates the WAL to zero bytes.
Readers do not block the writer, and the writer does not block readers.
A checkpoint cannot complete while a long read transaction is open.
While a slow model thinks, the stream sends a keep-alive comment every 15 s so proxies stay.
Half of the 1,200 test queries (50%) hit the cache.
"""
SQLITE = Passage(1, "notes/sqlite.md", 1, 10, "", NOTE, rank=0)
QUINCE = Passage(
    2,
    "garden/quince.md",
    1,
    2,
    "",
    "Quince trees need full sun and well-drained soil.\nPrune quince in late winter.",
    rank=1,
)


@pytest.mark.parametrize(
    ("sentence", "why"),
    [
        # The QA pass's own: a small model's sentence, cited to the line it contradicts.
        (
            "PRAGMA wal_checkpoint(TRUNCATE) does not copy its pages back into the main "
            "database [1].",
            NEGATION,
        ),
        ("A checkpoint never copies pages of the WAL back into the main database.", NEGATION),
        ("By default SQLite runs a checkpoint when the WAL reaches 10 pages [1].", NUMBER),
        # The negation on the note's side only.
        ("Readers block the writer.", NEGATION),
        ("A checkpoint can complete while a long read transaction is open.", NEGATION),
        ("The stream sends a keep-alive comment every 20 seconds.", NUMBER),
    ],
)
def test_a_contradicted_sentence_is_not_supported(sentence: str, why: str) -> None:
    checked = align(sentence, [SQLITE, QUINCE])
    (s,) = checked.sentences
    assert s.claim and not s.supported and s.cited == [], (s.score, s.conflict)
    assert s.conflict == why
    assert "[1]" not in checked.text and checked.citations == []


@pytest.mark.parametrize(
    "sentence",
    [
        "A checkpoint copies the WAL's pages back into the main database [1].",
        "By default, SQLite checkpoints once the WAL reaches 1,000 pages.",
        "Readers don't block the writer.",
        "The writer does not block readers, and readers do not block the writer.",
        "While a long read transaction is open, a checkpoint cannot complete.",
        "PRAGMA wal_checkpoint(TRUNCATE) truncates the WAL to 0 bytes.",
        "The stream sends a keep-alive comment every 15 seconds while a slow model thinks.",
        "The stream sends a keep-alive comment every 15000 ms while a slow model thinks.",
        "Half of the 1200 test queries, 50 percent, hit the cache.",
    ],
)
def test_paraphrases_other_number_forms_and_shared_negations_stay_supported(
    sentence: str,
) -> None:
    (s,) = align(sentence, [SQLITE, QUINCE]).sentences
    assert s.supported and s.cited == [1] and s.conflict == "", s.score


def test_another_sentence_of_the_note_may_still_support_it() -> None:
    """A contradicted unit is left out, not the whole passage: the line that says it stands."""
    note = "The cache is not shared between users.\nThe cache is shared between threads."
    passage = Passage(1, "notes/cache.md", 1, 2, "", note)
    (s,) = align("The cache is shared between threads [1].", [passage]).sentences
    assert s.supported and s.quotes[1].text == "The cache is shared between threads."


def test_numbers_compare_as_values() -> None:
    assert contradiction("It keeps 1000 pages.", "It keeps 1,000 pages.") == ""
    assert contradiction("It waits 1.5 s.", "It waits 1500 ms.") == ""
    assert contradiction("It runs on two cores.", "It runs on 2 cores.") == ""
    assert contradiction("It runs on 2 cores.", "It runs on two cores.") == ""
    assert contradiction("The index holds 5,183 abstracts.", "It holds 5183 of them.") == ""
    assert contradiction("It was released on 2024-03-15.", "Released 15 March 2024.") == ""
    assert contradiction("It keeps 100 pages.", "It keeps 1,000 pages.") == NUMBER
    assert contradiction("It needs SQLite 3.7.0.", "SQLite 3.7.0 or later.") == ""
    assert contradiction("It needs SQLite 3.8.0.", "SQLite 3.7.0 or later.") == NUMBER
    # Digits inside names state no count: "x86_64", "v1.5", "2FA" are names.
    assert contradiction("Build it for x86_64 with 2FA.", "Build it for amd64 with 2FA.") == ""
