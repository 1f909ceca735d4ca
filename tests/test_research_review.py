"""Review findings on the research engine, each pinned by the test that would have caught it:
stale citation markers, the task list as a source, repeated findings, junk dimension names,
sentence fragments, marker-only lines and filler, and the narrow progress table."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from localresearch.cli.deep import DimensionRow, JobView
from localresearch.memory.types import SearchHit
from localresearch.research.builtin import scope_dimensions, summarise_sources, whole_sentence
from localresearch.research.citations import (
    drop_unsupported,
    strip_markers,
    unsupported_statements,
    verify_report,
)
from localresearch.research.report import extractive_paragraphs
from localresearch.research.retrieval import Retriever
from localresearch.research.types import DimensionResult, Point, Source


def _source(n: int, passage: str, name: str = "") -> Source:
    location = f"{name or f'doc{n}'}.md:1-5"
    return Source(Source.make_id(location, passage), f"Doc {n}", location, "", passage, "memory")


def test_citation_markers_are_stripped_from_passages() -> None:
    text = "Folate lowers homocysteine [3]. B12 helps [2, 5]; both do [1][4]. See [2-4].\n[7]\n"
    assert strip_markers(text) == "Folate lowers homocysteine. B12 helps; both do. See.\n\n"
    assert (
        strip_markers("A [link](x.md) and [1](y.md) stay.") == "A [link](x.md) and [1](y.md) stay."
    )


class _Memory:
    """A MemorySearcher over fixed hits (the workspace layout of the real service)."""

    def __init__(self, hits: list[SearchHit]) -> None:
        self.hits = hits

    async def search(self, query: str, limit: int = 10) -> list[SearchHit]:
        return self.hits[:limit]


async def test_retrieval_strips_markers_and_skips_the_task_list(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    log = "Homocysteine rises with B12 deficiency [3]. Folate lowers it [1, 2].\n"
    hits = [
        SearchHit(
            "HEARTBEAT.md", str(workspace / "HEARTBEAT.md"), "- [ ] check homocysteine", 9, 1, 2
        ),
        SearchHit("memory/2026-11-24.md", str(workspace / "memory/2026-11-24.md"), log, 5, 3, 4),
        SearchHit(
            "notes/HEARTBEAT.md", str(tmp_path / "notes/HEARTBEAT.md"), "Real notes.", 1, 1, 1
        ),
    ]
    found = await Retriever(_Memory(hits), workspace=workspace).search("homocysteine", 5)
    assert [s.location for s in found] == ["memory/2026-11-24.md:3-4", "notes/HEARTBEAT.md:1-1"]
    assert found[0].passage == "Homocysteine rises with B12 deficiency. Folate lowers it."
    assert "[" not in found[0].passage


def test_verification_checks_the_cited_passage_holds_the_sentence() -> None:
    sources = [
        _source(1, "Folate lowers homocysteine [4]. It is cheap."),
        _source(2, "B12 is rare."),
    ]
    body = (
        "# Q\n\n- **Folate**: Folate lowers homocysteine. [1]\n\n"
        "## Folate\n\nIt is cheap. [1] B12 is rare. [1] Folate  lowers\nhomocysteine. [1, 2]\n"
    )
    assert unsupported_statements(body, sources) == ["'B12 is rare.' is not in the passage of [1]"]
    assert verify_report(body, 2, sources) == unsupported_statements(body, sources)
    assert verify_report(body, 1) == ["[2] names no listed source"]
    fixed = drop_unsupported(body, sources)
    assert "B12 is rare" not in fixed and "It is cheap. [1] Folate" in fixed
    assert unsupported_statements(fixed, sources) == []
    bullet = drop_unsupported("- **X**: Invented claim. [2]\n- **Y**: B12 is rare. [2]", sources)
    assert bullet == "- **Y**: B12 is rare. [2]"


def test_fragments_cut_at_chunk_boundaries_are_not_sentences() -> None:
    assert whole_sentence("Homocysteine rose in deficient patients.")
    assert whole_sentence("25 patients (12%) had the variant.")
    assert not whole_sentence("was used to determine the associated")
    assert not whole_sentence("was used to determine the associated risk.")
    assert not whole_sentence("Plasma homocysteine was measured in")
    assert not whole_sentence("[3] [3]")
    assert not whole_sentence("Yes.")


def test_summaries_drop_fragments_markers_and_abstract_labels() -> None:
    sources = [
        _source(
            1,
            "associated with homocysteine levels in the cohort. METHODS Plasma homocysteine was "
            "measured in 200 adults with B12 deficiency [2]. Homocysteine was higher in deficient "
            "adults than in controls. The association with homocysteine was used to determine the",
        )
    ]
    result = summarise_sources("homocysteine B12", "Plasma homocysteine", 0, sources)
    texts = [p.text for p in result.points]
    assert texts == [
        "Plasma homocysteine was measured in 200 adults with B12 deficiency.",
        "Homocysteine was higher in deficient adults than in controls.",
    ]
    assert result.key_finding == texts[0]  # it speaks to its own dimension


def _passages(texts: list[str]) -> list[Source]:
    return [_source(i, t) for i, t in enumerate(texts)]


def test_dimension_names_are_noun_phrases_not_participles() -> None:
    texts = [
        "Diets containing folic acid prevented anemia in aged mice. Earlier conditional models "
        "induced it.",
        "Tablets containing folic acid prevented defects. Aged rats were induced. Earlier "
        "conditional knockouts.",
        "Folic acid and DNA repair. Cells containing it were prevented from dividing; aged cells "
        "induced.",
        "DNA repair in adipose tissue. Earlier conditional deletion prevented it.",
        "Adipose tissue and DNA repair.",
    ]
    names = scope_dimensions("What protects the heart?", _passages(texts), 3)
    assert names == ["Folic acid", "DNA repair", "Adipose tissue"]
    for junk in ("Containing", "Prevented", "Induced", "Aged", "Earlier conditional"):
        assert junk not in names


def _result(index: int, dimension: str, points: list[Point], key: str) -> DimensionResult:
    return DimensionResult(dimension, index, " ".join(p.text for p in points), key, [], points)


def test_report_does_not_repeat_a_finding_or_print_filler() -> None:
    shared = Point("Homocysteine rose in deficient patients.", "a")
    other = Point("Folate fortification lowered homocysteine by a fifth.", "b")
    marker = Point("[3] [3]", "b")
    results = [
        _result(0, "Folate", [shared, other], shared.text),
        _result(1, "Vitamin B12", [shared, marker], shared.text),
        _result(2, "Fortification", [shared, other], shared.text),
    ]
    body = "".join(extractive_paragraphs("Q?", results, {"a": 1, "b": 2}))
    findings = [line for line in body.splitlines() if line.startswith("- **")]
    assert findings == [
        "- **Folate**: Homocysteine rose in deficient patients. [1]",
        "- **Fortification**: Folate fortification lowered homocysteine by a fifth. [2]",
    ]
    assert "Its sources repeat" not in body and "[3] [3]" not in body
    assert body.count("Homocysteine rose in deficient patients.") == 2  # finding + its section
    assert "## Vitamin B12" not in body  # nothing of its own to say: no filler section


def test_progress_table_keeps_the_dimension_readable_at_80_columns() -> None:
    view = JobView("res_6c1f0e2a9b3d4f1e", phase="research")
    finding = "Median serum homocysteine level decreased with folic acid supplementation by 25%."
    for name in ("Containing mice experiments", "Folic acid", "Food fortification"):
        view.dimensions[name] = DimensionRow(name, "done", 6, finding)
    console = Console(width=80, record=True, color_system=None)
    console.print(view.render(80))
    lines = console.export_text().splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert any("│ Folic acid " in line for line in lines)
    assert any("│ Food fortification " in line for line in lines)
    assert "Sources" in lines[2] and "State" in lines[2]
    assert all("…" in line for line in lines if "Median" in line)  # the finding is what is cut
