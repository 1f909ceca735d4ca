"""Citation alignment: each answer sentence tied to the passage that supports it, markers that
hold kept as written, wrong or missing ones corrected, unsupported sentences flagged."""

from __future__ import annotations

from localresearch.citations import Passage, align, answer_sentences

SQLITE = Passage(
    1,
    "notes/sqlite.md",
    3,
    5,
    "",
    "SQLite keeps a database in one file.\n"
    "WAL mode allows readers to run concurrently with a single writer.\n"
    "A checkpoint copies pages from the WAL back into the database file.",
    rank=0,
)
QUINCE = Passage(
    2,
    "garden/quince.md",
    10,
    11,
    "",
    "Quince trees need full sun and well-drained soil.\nPrune quince in late winter.",
    rank=1,
)


def _by_text(alignment: object) -> dict[str, dict[str, object]]:
    return {s["text"]: s for s in alignment.sentence_dicts()}  # type: ignore[attr-defined]


def test_markers_that_hold_stay_as_written() -> None:
    answer = "WAL mode allows readers to run concurrently with a writer [1]."
    checked = align(answer, [SQLITE, QUINCE])
    assert checked.text == answer and checked.corrections == 0
    (sentence,) = checked.sentence_dicts()
    assert sentence["citations"] == [1] and sentence["supported"] is True
    (citation,) = checked.citations
    # Narrowed to the supporting line, quoting it as the file has it.
    assert (citation.file, citation.line_start, citation.line_end) == ("notes/sqlite.md", 4, 4)
    assert citation.text == "WAL mode allows readers to run concurrently with a single writer."


def test_wrong_and_missing_markers_are_corrected() -> None:
    answer = (
        "WAL mode lets readers run concurrently with the writer [2]. "
        "Quince trees need full sun and well-drained soil."
    )
    checked = align(answer, [SQLITE, QUINCE])
    assert checked.text == (
        "WAL mode lets readers run concurrently with the writer [1]. "
        "Quince trees need full sun and well-drained soil [2]."
    )
    assert checked.corrections == 2
    assert [c.n for c in checked.citations] == [1, 2]
    assert checked.citations[1].line_start == 10


def test_citations_lead_with_the_strongest_passage_cited() -> None:
    """The search's best passage among those cited comes first, whichever sentence cites it;
    each sentence keeps its own marker and an unsupported one stays flagged."""
    answer = (
        "Prune quince in late winter [2]. The moon is made of green cheese. "
        "WAL mode allows readers to run concurrently with a single writer [1]."
    )
    checked = align(answer, [SQLITE, QUINCE])
    assert [c.file for c in checked.citations] == ["notes/sqlite.md", "garden/quince.md"]
    assert checked.text == answer
    assert [(s["citations"], s["supported"]) for s in checked.sentence_dicts()] == [
        ([2], True),
        ([], False),
        ([1], True),
    ]
    # Ranked the other way round (the quince note was the search's first hit), it leads.
    stronger = [
        Passage(p.n, p.file, p.line_start, p.line_end, p.path, p.text, rank=1 - p.rank)
        for p in (SQLITE, QUINCE)
    ]
    assert [c.file for c in align(answer, stronger).citations] == [
        "garden/quince.md",
        "notes/sqlite.md",
    ]


def test_unsupported_sentences_are_flagged_and_lose_their_marker() -> None:
    answer = "The moon is made of green cheese [1]. Prune quince in late winter [2]."
    checked = align(answer, [SQLITE, QUINCE])
    sentences = _by_text(checked)
    moon = sentences["The moon is made of green cheese."]
    assert moon["supported"] is False and moon["citations"] == [] and moon["claim"] is True
    assert checked.unsupported == ["The moon is made of green cheese."]
    assert checked.text.startswith("The moon is made of green cheese. Prune")
    assert [c.n for c in checked.citations] == [2]
    flagged = align(answer, [SQLITE, QUINCE], flag="*(unsupported)*")
    assert flagged.text.startswith("The moon is made of green cheese *(unsupported)*.")


def test_short_lines_code_and_headings_are_not_claims() -> None:
    answer = (
        "# Answer\n\nFrom your notes:\n\n```sql\nPRAGMA journal_mode = WAL; [7]\n```\n\n"
        "- **SQLite**: WAL mode allows readers to run concurrently with a single writer. [1]\n"
    )
    spans = [answer[a:b] for a, b in answer_sentences(answer)]
    assert spans == [
        "From your notes:",
        "WAL mode allows readers to run concurrently with a single writer. [1]",
    ]
    checked = align(answer, [SQLITE])
    assert "PRAGMA journal_mode = WAL; [7]" in checked.text  # code is left as written
    first, second = checked.sentence_dicts()
    assert first["claim"] is False and second["citations"] == [1]


def test_a_sentence_joining_two_passage_sentences_quotes_both() -> None:
    answer = "Quince needs full sun and should be pruned in late winter."
    checked = align(answer, [QUINCE])
    (citation,) = checked.citations
    assert (citation.line_start, citation.line_end) == (10, 11)
    assert citation.text.split(" … ") == [
        "Quince trees need full sun and well-drained soil.",
        "Prune quince in late winter.",
    ]


def test_embeddings_support_a_paraphrase_the_words_miss() -> None:
    answer = "Several readers may proceed while one process writes."

    def embed(texts: list[str]) -> list[list[float]]:
        # A stand-in for an embedding model: the paraphrase and the SQLite passage are close.
        return [[1.0, 0.0] if "WAL" in t or "readers" in t else [0.0, 1.0] for t in texts]

    assert align(answer, [SQLITE, QUINCE]).sentence_dicts()[0]["supported"] is False
    checked = align(answer, [SQLITE, QUINCE], embed=embed)
    assert checked.sentence_dicts()[0]["citations"] == [1]


def test_echoed_headings_and_labels_are_not_claims() -> None:
    """A small model echoes the sources' headings ("**Sources:** # Backing up SQLite"): a
    heading after a label, or a line of bold words alone, is no sentence to cite."""
    answer = (
        "**Sources:** # SQLite notes\n\n**SQLite WAL mode**\n\n"
        "**Answer:** WAL mode allows readers to run concurrently with a single writer [1].\n"
    )
    heading = Passage(1, "notes/sqlite.md", 1, 4, "", "# SQLite notes\n\n" + SQLITE.text)
    checked = align(answer, [heading])
    assert [s.text for s in checked.sentences] == [
        "WAL mode allows readers to run concurrently with a single writer."
    ]
    assert checked.sentences[0].claim and checked.sentences[0].cited == [1]
    assert checked.text == answer


def test_a_marker_ends_a_sentence_that_has_no_full_stop() -> None:
    """A table row quoted as prose ends at its marker: the next sentence is checked on its own."""
    answer = "`limit` integer, at most 1000 (default 10) [1] Quince trees need full sun [2]."
    table = Passage(1, "api.md", 5, 5, "", "| `limit` | integer | at most 1000 (default 10) |")
    spans = [answer[a:b] for a, b in answer_sentences(answer)]
    assert spans == [
        "`limit` integer, at most 1000 (default 10) [1]",
        "Quince trees need full sun [2].",
    ]
    assert [s.cited for s in align(answer, [table, QUINCE]).sentences] == [[1], [2]]
