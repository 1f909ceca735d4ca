"""Small pure parts of research jobs: JSON repair, citation checks, report rendering."""

from __future__ import annotations

import re

import pytest

from localresearch.research.citations import cited_numbers, passage_supports, strip_invalid
from localresearch.research.report import markdown_to_html
from localresearch.research.structured import MalformedJSON, parse_object, string_list


@pytest.mark.parametrize(
    ("reply", "repaired"),
    [
        ('{"dimensions": ["a", "b"]}', False),
        ('Sure! ```json\n{"dimensions": ["a", "b"]}\n```', True),
        ('Here: {"dimensions": ["a", "b",],} hope it helps', True),
        ("{'dimensions': ['a', 'b']}", True),
        ("“{“dimensions”: [“a”, “b”]}”", True),
        ('noise {"broken": } then {"dimensions": ["a", "b"]}', True),
        ('{"dimensions": ["a", "b"], "note": "a } inside a string"}', False),
    ],
)
def test_parse_object_repairs_what_models_get_wrong(reply: str, repaired: bool) -> None:
    obj, was_repaired = parse_object(reply)
    assert obj["dimensions"] == ["a", "b"]
    assert was_repaired is repaired


@pytest.mark.parametrize("reply", ["", "no json here", "[1, 2]", '{"a": ', "{{{{", "x" * 10_000])
def test_parse_object_rejects_hopeless_replies(reply: str) -> None:
    with pytest.raises(MalformedJSON):
        parse_object(reply)


def test_string_list_validation() -> None:
    assert string_list([" A  b ", "a b", "", "C"], "d") == ["A b", "C"]
    with pytest.raises(MalformedJSON, match="list of strings"):
        string_list("a, b", "d")
    with pytest.raises(MalformedJSON, match="only strings"):
        string_list(["a", 3], "d")
    with pytest.raises(MalformedJSON, match="at least 1"):
        string_list([], "d", low=1)


def test_invalid_citations_are_stripped() -> None:
    text = "One [1]. Two [7]. Three [2, 9, 3]. Four [0][3]."
    fixed = strip_invalid(text, 3)
    assert fixed == "One [1]. Two . Three [2, 3]. Four [3]."
    assert cited_numbers(fixed) == [1, 2, 3, 3]


def test_passage_support_ignores_spacing_and_case_only() -> None:
    passage = "Vitamin B12\n  deficiency RAISES homocysteine."
    assert passage_supports(passage, "vitamin b12 deficiency raises homocysteine.")
    assert not passage_supports(passage, "Vitamin B12 deficiency lowers homocysteine.")


def test_html_export_escapes_and_links() -> None:
    page = markdown_to_html(
        "# Q <script>\n\nText **bold** [1].\n\n## Sources\n\n"
        "1. [T](https://example.org/a) — `a.md:1-2`\n2. [J](javascript:alert(1)) — `x`",
        "Q <script>",
    )
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert '<a href="https://example.org/a">T</a>' in page
    assert (
        "javascript:" not in page.split("<body>")[1].split("href")[-1]
        or 'href="javascript' not in page
    )
    assert "<strong>bold</strong>" in page and re.search(r"<ol>\s*<li>", page)


def test_model_fields_that_are_echoes_json_or_no_topic_are_rejected() -> None:
    from localresearch.research.builtin import names_topic, question_phrases
    from localresearch.research.structured import MalformedJSON, check_text, is_echo

    instruction = "Summarise what the passages say about this dimension of the question."
    assert is_echo("one sentence", instruction) and is_echo("...", instruction)
    assert is_echo("what the passages say", instruction)
    assert not is_echo("Prune quince trees in late winter.", instruction)
    for bad in ('{"summary": "x"}', "```json\n{}\n```", 'The "answer": yes'):
        with pytest.raises(MalformedJSON):
            check_text(bad, "'summary'", instruction)
    assert check_text("Quince needs sun.", "'summary'", instruction) == "Quince needs sun."
    assert not names_topic("care for") and not names_topic("the best way")
    assert names_topic("Fire blight") and names_topic("Pruning")
    phrases = question_phrases("How should I care for the quince tree in my garden?")
    assert phrases == ["quince tree", "garden"]
    assert "vs" not in question_phrases("Rust vs Go: which is faster for web servers?")


def test_html_export_renders_what_reports_and_notes_contain() -> None:
    """markdown-it-py, not a hand-written converter: query strings stay intact (the old one
    made `&amp;amp;`), and fenced code, tables, nested lists and emphasis survive."""
    page = markdown_to_html(
        "# Q\n\nSee [page](https://example.org/s?a=1&b=2) and *this* or _that_.\n\n"
        "```python\nif a < b:\n    pass\n```\n\n"
        "| dose | effect |\n|---|---|\n| 1 mg | none |\n\n"
        "- outer\n  - inner\n- second\n\n"
        "3. [memory note](file:///home/u/notes/b12.md)\n",
        "Q",
    )
    body = page.split("<body>")[1]
    assert 'href="https://example.org/s?a=1&amp;b=2"' in body and "&amp;amp;" not in body
    assert '<pre><code class="language-python">if a &lt; b:\n    pass\n</code></pre>' in body
    assert "<table>" in body and "<td>1 mg</td>" in body and "<th>dose</th>" in body
    assert re.search(r"<li>outer\s*<ul>\s*<li>inner</li>", body)
    assert "<em>this</em>" in body and "<em>that</em>" in body
    assert '<ol start="3">' in body and 'href="file:///home/u/notes/b12.md"' in body


def test_prose_a_model_wraps_in_a_markdown_fence_is_unwrapped() -> None:
    from localresearch.research.citations import unwrap_prose

    assert unwrap_prose("```markdown\n# Quince care\n\n") == "# Quince care\n\n"
    assert unwrap_prose("Prune in winter [1].\n```\n\n") == "Prune in winter [1].\n\n"
    code = "Run it:\n```bash\nls\n```\n\n"
    assert unwrap_prose(code) == code  # a real code block stays
