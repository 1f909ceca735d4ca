"""Built-in report quality over a 300-document SciFact subset: the defects a reviewer found
(repeated key findings, junk dimension names, sentence fragments, marker-only lines, filler,
citations whose sentence is not in the cited passage) are counted and must all be zero."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from localresearch.paths import Paths
from localresearch.research.citations import CITATION, normalise
from localresearch.runtime import Runtime
from tests.fakes.search_scifact import (
    QUESTION,
    SCIFACT,
    research_config,
    scifact_available,
    scifact_runtime,
    write_corpus,
)

pytestmark = pytest.mark.skipif(not scifact_available(), reason="SciFact data set not present")

_MARKERS = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
_MARKER_ONLY = re.compile(r"^\s*(?:[-*]\s*)?(?:\[\d+(?:\s*,\s*\d+)*\]\s*)+$")
_PARTICIPLE = re.compile(r"^[A-Za-z]+(?:ed|ing)$")
# Words the reviewer saw as whole dimension names, and their kind: not a topic on their own.
_KNOWN_JUNK = {"containing", "prevented", "induced", "aged", "earlier", "conditional"}
_LEAD = re.compile(r"^\s*-\s+\*\*[^*]+\*\*:\s*")


def _statements(markdown: str) -> list[tuple[str, list[int]]]:
    """(sentence, cited numbers) for each cited statement of the report body."""
    body = markdown.split("\n## Sources\n")[0]
    found: list[tuple[str, list[int]]] = []
    for line in body.splitlines():
        if line.startswith("#") or line.startswith(">"):
            continue
        parts = re.split(r"((?:\s*\[\d+(?:\s*,\s*\d+)*\])+)", _LEAD.sub("", line))
        for i in range(0, len(parts) - 1, 2):
            numbers = [
                int(n) for m in CITATION.finditer(parts[i + 1]) for n in m.group(1).split(",")
            ]
            found.append((parts[i].strip(), numbers))
    return found


def report_defects(
    markdown: str, dimensions: list[str], sources: list[dict[str, Any]]
) -> Counter[str]:
    """Count each kind of defect in one report (an empty Counter is a clean report)."""
    defects: Counter[str] = Counter()
    for name in dimensions:
        words = name.split()
        participle = len(words) == 1 and _PARTICIPLE.match(name)
        if participle or any(w.lower() in _KNOWN_JUNK for w in words) or not name[:1].isupper():
            defects["junk dimension name"] += 1
    findings = [
        _MARKERS.sub("", _LEAD.sub("", line)).strip()
        for line in markdown.splitlines()
        if _LEAD.match(line)
    ]
    defects["repeated key finding"] += len(findings) - len(set(findings))
    statements = _statements(markdown)
    texts = [text for text, _ in statements]
    body_texts = texts[len(findings) :]  # sections: each statement said once
    defects["repeated statement"] += len(body_texts) - len(set(body_texts))
    for line in markdown.splitlines():
        if _MARKER_ONLY.match(line):
            defects["marker-only line"] += 1
    defects["placeholder"] += markdown.count("Its sources repeat the findings above")
    for text, numbers in statements:
        if not text:
            continue  # a marker with no sentence: counted as a marker-only line
        if text[0].islower() or not text.rstrip("\"')").endswith((".", "!", "?")):
            defects["fragment"] += 1
        passages = [sources[n - 1]["passage"] for n in numbers if 1 <= n <= len(sources)]
        if not any(normalise(text) in normalise(p) for p in passages):
            defects["citation not in its passage"] += 1
    return +defects


def _claims(count: int) -> list[str]:
    """SciFact test claims that have relevant documents (written into the corpus)."""
    wanted = set((SCIFACT / "qrels" / "test.tsv").read_text().split()[3::3][:40])
    claims = []
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            query = json.loads(line)
            if query["_id"] in wanted:
                claims.append(query["text"])
    return claims[:count]


@pytest.fixture
async def runtime(tmp_path: Path, paths: Paths) -> AsyncIterator[Runtime]:
    corpus = tmp_path / "corpus"
    assert write_corpus(corpus, extra=260, queries=40) >= 300
    text = research_config(corpus, dimensions=4, max_rounds=1)
    async with scifact_runtime(text, paths) as rt:
        yield rt


async def test_builtin_reports_have_no_known_defects(runtime: Runtime) -> None:
    jobs = runtime.jobs
    assert jobs is not None
    questions = [QUESTION, *_claims(5)]
    ids = [(await jobs.submit(q)).id for q in questions]
    total: Counter[str] = Counter()
    for job_id in ids:
        final = await jobs.wait(job_id)
        assert final.status == "complete", final.error
        events = await jobs.store.events(job_id)
        dimensions = [e.data["dimension"] for e in events if e.type == "dimension_started"]
        shown = [e.data["keyFinding"] for e in events if e.type == "dimension_complete"]
        shown = [finding for finding in shown if finding]
        assert len(shown) == len(set(shown)), shown  # the live table repeats no finding either
        saved = await jobs.store.report(job_id)
        assert saved is not None
        defects = report_defects(saved.markdown, dimensions, saved.sources)
        assert len(_statements(saved.markdown)) >= 3, saved.markdown  # a report, not a stub
        total += defects
        assert not defects, (defects, dimensions, saved.markdown)
    assert not total


def test_the_checker_sees_each_defect() -> None:
    """The counter above is only worth something if it fires on the reviewer's examples."""
    sources = [{"passage": "Homocysteine rose in deficient patients. It fell after treatment."}]
    bad = (
        "# Q\n\n## Key findings\n\n"
        "- **Containing**: Homocysteine rose in deficient patients. [1]\n"
        "- **Earlier conditional**: Homocysteine rose in deficient patients. [1]\n\n"
        "## A\n\nwas used to determine the associated [1] It fell after treatment. [1]\n\n"
        "[1] [1]\n\n## B\n\nIts sources repeat the findings above.\n\n"
        "## C\n\nInvented sentence. [1]\n\n## Sources\n\n1. x — `x.md:1-2`\n"
    )
    defects = report_defects(bad, ["Containing", "Earlier conditional", "Prevented"], sources)
    assert defects == Counter(
        {
            "junk dimension name": 3,
            "repeated key finding": 1,
            "marker-only line": 1,
            "placeholder": 1,
            "fragment": 1,
            "citation not in its passage": 2,
        }
    )
