"""A research plan from the topic and the user's feedback (builtin engine): the feedback decides
what to cover first, what to leave out, which period and how many tasks; retrieval over the
notes supplies the aspects the topic itself does not name."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from localresearch import extractive
from localresearch.research.builtin import vocabulary
from localresearch.research.types import Source
from localresearch.research_sessions.questions import subject, topic_words
from localresearch.research_sessions.store import Task
from localresearch.research_sessions.topical import of_topic

_BRIEF_TEXT = "brief short overview quick summary concise high-level"
_BRIEF = frozenset(_BRIEF_TEXT.split())
_DEEP_TEXT = "detailed deep thorough comprehensive in-depth extensive exhaustive"
_DEEP = frozenset(_DEEP_TEXT.split())
_INSTRUCTION_TEXT = """
    focus focusing look looking include including cover covering particularly especially
    mainly only research report interested interest want like prefer please also both aspects
    aspect roles role specific recent trends trend sources source study studies paper papers
    review detail details answer question questions topic plan since after before from until
    during years year period current currently latest newest oldest today nowadays lately
    everything entire whole yes okay sure fine none nothing whatever default"""
_INSTRUCTION = frozenset(_INSTRUCTION_TEXT.split())
_EXCLUDE = re.compile(
    r"\b(?:exclude|excluding|without|skip|ignore|except|leave out|not|no)\s+([^.,;:!?\n]+)",
    re.IGNORECASE,
)
_CLAUSE = re.compile(r"[.,;:!?\n]|\band\b|\bor\b|\bthen\b", re.IGNORECASE)
_YEAR = re.compile(r"\b(19[5-9]\d|20[0-4]\d)\b")


@dataclass(frozen=True)
class Guidance:
    """What the feedback asks for, read without a model."""

    focus: list[str] = field(default_factory=list)  # phrases to cover first
    excluded: set[str] = field(default_factory=set)  # stems to leave out
    excluded_text: list[str] = field(default_factory=list)
    period: str = ""
    depth: str = "standard"

    def terms(self) -> list[str]:
        return [w for phrase in self.focus for w in phrase.split()]


def _content(words: Sequence[str], skip: set[str]) -> list[str]:
    kept = []
    for word in words:
        lower = word.lower()
        if (
            lower in extractive.STOPWORDS
            or lower in _INSTRUCTION
            or lower in _BRIEF
            or lower in _DEEP
            or len(lower) < 3
            or lower.isdigit()
            or extractive.stem(lower) in skip
        ):
            continue
        kept.append(word)
    return kept


def read_feedback(topic: str, feedback: str) -> Guidance:
    excluded_text = [m.strip() for m in _EXCLUDE.findall(feedback)]
    excluded = {
        extractive.stem(w.lower())
        for phrase in excluded_text
        for w in extractive.words(phrase)
        if w.lower() not in extractive.STOPWORDS
    }
    remaining = _EXCLUDE.sub(" ", feedback)
    topic_stems = {extractive.stem(w.lower()) for w in topic_words(topic)}
    focus: list[str] = []
    for clause in _CLAUSE.split(remaining):
        words = _content(extractive.words(clause), excluded | topic_stems)
        if words:
            phrase = " ".join(words[:4])
            if phrase.lower() not in (f.lower() for f in focus):
                focus.append(phrase)
    years = sorted({int(y) for y in _YEAR.findall(feedback)})
    period = ""
    if len(years) >= 2:
        period = f"{years[0]}-{years[-1]}"
    elif years:
        period = f"since {years[0]}"
    lowered = {w.lower() for w in extractive.words(feedback.replace("-", " "))}
    lowered |= {w.lower() for w in feedback.split()}
    depth = "standard"
    if lowered & _DEEP:
        depth = "detailed"
    elif lowered & _BRIEF:
        depth = "overview"
    return Guidance(focus[:4], excluded, excluded_text, period, depth)


def task_count(guidance: Guidance, default: int) -> int:
    if guidance.depth == "overview":
        return 3
    if guidance.depth == "detailed":
        return 6
    return min(6, max(3, default))


def builtin_plan(
    topic: str, feedback: str, passages: Sequence[Source], default_tasks: int
) -> tuple[list[Task], str]:
    """The plan's tasks and its Markdown, from the topic, the feedback and what was found."""
    guidance = read_feedback(topic, feedback)
    count = task_count(guidance, default_tasks)
    name = subject(topic)
    labels: list[str] = []
    used: set[str] = set()

    def take(label: str) -> None:
        stems = set(extractive.terms(label))
        if not stems or stems & used or stems & guidance.excluded or len(labels) >= count:
            return
        labels.append(label[:1].upper() + label[1:])
        used.update(stems)

    for phrase in guidance.focus:
        take(phrase)
    qterms = set(extractive.query_terms(topic))
    found = vocabulary(passages, qterms)
    about = of_topic(topic, passages, found)
    known = {label for label, _docs in about}
    others = [item for item in found if item[0] not in known]
    wanted = {extractive.stem(w.lower()) for w in guidance.terms()}

    def named(item: tuple[str, set[int]]) -> bool:
        return bool(set(extractive.terms(item[0])) & wanted)

    # Aspects the feedback names come first, then those of the passages about the topic in
    # order of salience, then the general tasks; another subject's aspects only fill the count.
    first = [i for i in about + others if named(i)] + [i for i in about if not named(i)]
    for label, _docs in first:
        take(label)
    for fallback in ("Background and definitions", "Evidence and findings", "Open questions"):
        take(fallback)
    for label, _docs in others:
        take(label)
    suffix = f" {guidance.period}" if guidance.period else ""
    tasks = [Task(query=f"{label} {name}{suffix}".strip(), focus=label) for label in labels]
    return tasks, plan_markdown(topic, feedback, tasks, guidance)


def plan_markdown(topic: str, feedback: str, tasks: Sequence[Task], guidance: Guidance) -> str:
    lines = [f"# Research Plan: {topic.strip()}", "", "## Scope", ""]
    if feedback.strip():
        shown = " ".join(feedback.split())
        lines.append(f"- Guided by the feedback: {shown[:300]}{'…' if len(shown) > 300 else ''}")
    lines.append(f"- Depth: {guidance.depth} ({len(tasks)} research tasks)")
    if guidance.period:
        lines.append(f"- Period: {guidance.period}")
    if guidance.excluded_text:
        lines.append("- Left out: " + "; ".join(guidance.excluded_text))
    lines.append("")
    for n, task in enumerate(tasks, start=1):
        lines += [f"## {n}. {task.focus}", "", f"Search: {task.query}", ""]
    lines += [
        f"## {len(tasks) + 1}. Synthesis",
        "",
        "The key findings of each task, cited to the sources found, in one report.",
    ]
    return "\n".join(lines) + "\n"
