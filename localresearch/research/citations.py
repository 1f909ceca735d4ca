"""Citations that hold: every [n] names a listed source, every listed source was retrieved."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from localresearch.citations import AlignedSentence, Passage, align
from localresearch.evidence import REPORT_LABEL, evidence_for
from localresearch.research.types import DimensionResult, Source

CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_SPACE = re.compile(r"\s+")
# Markers other text already carries ("[3]", "[2, 5]", "[1][4]", "[2-4]"), not links "[1](u)".
_MARKER = re.compile(r"[ \t]*\[\d{1,4}(?:\s*[,;\u2013-]\s*\d{1,4})*\](?!\()")
_MARKER_RUN = re.compile(r"((?:\s*\[\d+(?:\s*,\s*\d+)*\])+)")
_LEAD = re.compile(r"^\s*(?:[-*]\s+)?(?:\*\*[^*]+\*\*:\s*)?")


def number_sources(
    results: Iterable[DimensionResult], only: Collection[str] | None = None
) -> tuple[dict[str, int], list[Source]]:
    """Number the retrieved sources 1..N strongest first, as an answer lists its citations:
    every dimension's best source, then every dimension's second best, and so on (each
    dimension's sources are in its search's rank; ids are stable). With `only`, the sources
    with those ids alone (those a report cites)."""
    numbering: dict[str, int] = {}
    ordered: list[Source] = []
    found = [result.sources for result in results]
    for rank in range(max((len(sources) for sources in found), default=0)):
        for sources in found:
            if rank >= len(sources) or (only is not None and sources[rank].id not in only):
                continue
            if sources[rank].id not in numbering:
                numbering[sources[rank].id] = len(ordered) + 1
                ordered.append(sources[rank])
    return numbering, ordered


def cited_numbers(text: str) -> list[int]:
    found: list[int] = []
    for match in CITATION.finditer(text):
        found.extend(int(n) for n in match.group(1).split(","))
    return found


def strip_invalid(text: str, count: int) -> str:
    """Drop citation numbers that point to no listed source (models invent them)."""

    def fix(match: re.Match[str]) -> str:
        valid = [n.strip() for n in match.group(1).split(",") if 1 <= int(n) <= count]
        return f"[{', '.join(valid)}]" if valid else ""

    return CITATION.sub(fix, text)


def strip_markers(text: str) -> str:
    """Text without citation markers: a passage's own `[n]` (an earlier answer in a daily log,
    a web page's footnotes) would point at the wrong source once reused in a report."""
    return _MARKER.sub("", text)


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def passage_supports(passage: str, sentence: str) -> bool:
    """An extractive statement is only cited to a passage that contains it verbatim."""
    return normalise(strip_markers(sentence)) in normalise(strip_markers(passage))


def _statements(line: str) -> list[tuple[str, list[int], str]]:
    """(statement, cited numbers, raw text incl. marker) for each cited statement of a line."""
    parts = _MARKER_RUN.split(line)
    found: list[tuple[str, list[int], str]] = []
    for i in range(0, len(parts) - 1, 2):
        text = _LEAD.sub("", parts[i]) if i == 0 else parts[i]
        found.append((text.strip(), cited_numbers(parts[i + 1]), parts[i] + parts[i + 1]))
    return found


def _supported(text: str, numbers: list[int], ordered: list[Source]) -> bool:
    return bool(text) and any(
        1 <= n <= len(ordered) and passage_supports(ordered[n - 1].passage, text) for n in numbers
    )


def unsupported_statements(body: str, ordered: list[Source]) -> list[str]:
    """Cited statements of an extractive report not found in the passage they cite."""
    problems: list[str] = []
    for line in body.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for text, numbers, _raw in _statements(line):
            if not _supported(text, numbers, ordered):
                problems.append(f"{text!r} is not in the passage of {numbers}")
    return problems


def drop_unsupported(paragraph: str, ordered: list[Source]) -> str:
    """An extractive paragraph without the statements its cited passages do not contain."""
    lines: list[str] = []
    for line in paragraph.split("\n"):
        statements = _statements(line)
        if line.lstrip().startswith("#") or not statements:
            lines.append(line)
            continue
        bad = [raw for text, numbers, raw in statements if not _supported(text, numbers, ordered)]
        if not bad:
            lines.append(line)
            continue
        if line.lstrip().startswith("- "):
            continue  # a key-finding bullet is one statement: drop the whole line
        for raw in bad:
            line = line.replace(raw, "", 1)
        if line.strip():
            lines.append(line.strip())
    return "\n".join(lines)


def sources_section(ordered: list[Source]) -> str:
    lines = ["", "## Sources", ""]
    for number, source in enumerate(ordered, start=1):
        title = source.title.replace("[", "(").replace("]", ")") or source.location
        link = f"[{title}]({source.url})" if source.url else title
        lines.append(f"{number}. {link} — `{source.location}`")
    return "\n".join(lines) + "\n"


def verify_report(body: str, count: int, ordered: list[Source] | None = None) -> list[str]:
    """Problems with a report body (empty when it is sound): citations outside 1..count and,
    given the sources of an extractive report, statements their cited passage does not hold."""
    problems = [f"[{n}] names no listed source" for n in cited_numbers(body) if not 1 <= n <= count]
    if ordered is not None:
        problems += unsupported_statements(body, ordered)
    return problems


_JSON_FENCE = re.compile(r"```[ \t]*(\w*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_JSON_LINE = re.compile(r'^\s*(?:[{}\[\]],?|"[^"]+"\s*:.*)\s*$')
UNSUPPORTED = "*(unsupported)*"


def _without_json(text: str) -> str:
    """A model's report paragraph without the JSON it should not have written: ```json blocks,
    fences holding an object, and lines that are JSON members."""

    def fence(match: re.Match[str]) -> str:
        lang, inner = match.group(1).lower(), match.group(2).strip()
        return "" if lang in ("json", "") or inner.startswith(("{", "[")) else match.group(0)

    text = _JSON_FENCE.sub(fence, text)
    return "\n".join(line for line in text.split("\n") if not _JSON_LINE.match(line))


_PROSE_FENCE = re.compile(r"^\s*```[ \t]*(?:markdown|md|text|txt)?[ \t]*$", re.I)


def unwrap_prose(paragraph: str) -> str:
    """A report paragraph without the ```markdown fence a small model wraps its prose in (the
    fence lines go, the prose stays); a bare ``` line left unmatched in the paragraph is the
    closing one of such a fence."""
    lines = paragraph.split("\n")
    fences = [line for line in lines if line.strip().startswith("```")]
    keep = []
    for line in lines:
        named = _PROSE_FENCE.match(line) and line.strip() != "```"
        unmatched = line.strip() == "```" and len(fences) % 2 == 1
        if not (named or unmatched):
            keep.append(line)
    text = "\n".join(keep)
    return text.lstrip("\n") if text.strip() else text


def quoted_evidence(query: str, sentences: list[AlignedSentence], ordered: list[Source]) -> str:
    """The paragraph quoting the strongest sources when a model's report does not stand on its
    own (the rule of localresearch.evidence, as for answers), or ""."""
    evidence = evidence_for(query, sentences, source_passages(ordered))
    return f"{evidence.paragraph(REPORT_LABEL)}\n\n" if evidence is not None else ""


def source_passages(ordered: list[Source]) -> list[Passage]:
    """The report's sources as the passages `align` checks sentences against, numbered 1..N."""
    found = []
    for n, source in enumerate(ordered, start=1):
        file, _, lines = source.location.rpartition(":")
        start, _, end = lines.partition("-")
        if file and start.isdigit():
            first, last = int(start), int(end) if end.isdigit() else int(start)
        else:
            file, first, last = source.location, 1, 1
        found.append(Passage(n, file, first, last, "", source.passage, rank=n - 1))
    return found


def check_model_paragraph(
    paragraph: str,
    ordered: list[Source],
    instruction: str = "",
    sentences: list[AlignedSentence] | None = None,
) -> tuple[str, int, int]:
    """A model's report paragraph made sound: no JSON, no echoed instruction, every sentence's
    `[n]` checked against the passage it names (corrected to the one that supports it), and a
    sentence no source supports marked unsupported. Returns (text, supported, unsupported);
    the checked sentences are added to `sentences` when given."""
    from localresearch.research.structured import is_echo

    text = _without_json(strip_invalid(paragraph, len(ordered)))
    if not text.strip():
        return ("\n\n" if paragraph.endswith("\n\n") else ""), 0, 0
    lines = text.split("\n")
    if instruction:
        lines = [line for line in lines if not line.strip() or not is_echo(line, instruction)]
    text = "\n".join(lines)
    if text.lstrip().startswith("#") and "\n" not in text.strip():
        return text, 0, 0  # a heading alone
    checked = align(text, source_passages(ordered), flag=UNSUPPORTED)
    if sentences is not None:
        sentences.extend(checked.sentences)
    supported = sum(1 for s in checked.sentences if s.claim and s.supported)
    unsupported = sum(1 for s in checked.sentences if s.claim and not s.supported)
    return checked.text, supported, unsupported
