"""Clarifying questions from the topic and what the user's notes already say (builtin engine).

Each question is one that would change the plan: which of the aspects the notes discuss to
cover (scope), which period (from the years the notes mention), how deep, which sources to
trust (the notes' own files, the web when configured). Every question names the topic's terms
or what retrieval found about them, so two topics never get the same questions."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from localresearch import extractive
from localresearch.research.types import Source
from localresearch.research_sessions.topical import about_topic, topic_vocabulary

_YEAR = re.compile(r"\b(19[5-9]\d|20[0-4]\d)\b")


def topic_words(topic: str) -> list[str]:
    """The topic's content words as the user wrote them, in order, without repeats."""
    seen: set[str] = set()
    words: list[str] = []
    for word in extractive.words(topic):
        lower = word.lower()
        if lower in extractive.STOPWORDS or len(lower) < 3 or extractive.stem(lower) in seen:
            continue
        seen.add(extractive.stem(lower))
        words.append(word)
    return words


def subject(topic: str) -> str:
    """The topic as a question can name it: as written when short, else its first words."""
    text = " ".join(topic.split()).rstrip("?.!")
    if len(text) <= 60:
        return text
    words = topic_words(topic)
    return " ".join(words[:6]) if words else text[:60]


def aspects(topic: str, passages: Sequence[Source], count: int = 3) -> list[str]:
    """Salient phrases of what retrieval found about the topic that it does not already name."""
    qterms = set(extractive.query_terms(topic))
    chosen: list[str] = []
    used: set[str] = set()
    for label, _docs in topic_vocabulary(topic, passages, qterms):
        stems = set(extractive.terms(label))
        if not stems or stems & used or stems <= qterms:
            continue
        chosen.append(label)
        used |= stems
        if len(chosen) >= count:
            break
    return chosen


def years(passages: Sequence[Source]) -> list[int]:
    found = Counter(int(y) for p in passages for y in _YEAR.findall(p.passage))
    return sorted(found)


def _titles(passages: Sequence[Source], count: int = 3) -> list[str]:
    titles: list[str] = []
    for source in passages:
        title = " ".join(source.title.split())[:70]
        if title and title not in titles:
            titles.append(title)
        if len(titles) >= count:
            break
    return titles


def _join(items: Sequence[str]) -> str:
    quoted = [f'"{i}"' for i in items]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


def builtin_questions(topic: str, passages: Sequence[Source], *, web: bool = False) -> list[str]:
    """Four or five questions about this topic, grounded in the retrieved passages that are
    about it (a note on another subject sharing a word with the topic offers no aspect)."""
    name = subject(topic)
    found = aspects(topic, passages, 4)
    retrieved = bool(passages)
    passages = about_topic(topic, passages)
    questions: list[str] = []
    if len(found) >= 2:
        questions.append(
            f"Your notes on {name} discuss {_join(found[:3])}. Which of these should the "
            "research cover, and is any of them out of scope?"
        )
    else:
        words = topic_words(topic)
        focus = _join(words[:3]) if words else f'"{name}"'
        # Passages were found but share no aspect: the notes are short, not silent.
        lead = (
            f"Your notes on {name} name no separate aspects of it."
            if retrieved
            else f"Your notes say little about {name} yet."
        )
        questions.append(
            f"{lead} Which part of {focus} matters most to you, and what should be left out?"
        )
    span = years(passages)
    if span:
        low, high = span[0], span[-1]
        middle = span[len(span) // 2]
        period = f"from {low} to {high}" if low != high else f"from {low}"
        questions.append(
            f"The sources found on {name} date {period}. Should the research cover all of "
            f"that period, or only work since {middle}?"
        )
    else:
        questions.append(
            f"Which time range matters for {name}: the current state only, or how it "
            "developed over the years?"
        )
    n = len({p.location.split(":")[0] for p in passages})
    if n:
        questions.append(
            f"How deep should the report on {name} go: a short overview of the {n} "
            f"document{'s' if n != 1 else ''} found in your notes, or a detailed review of "
            f"each aspect{(' such as ' + _join(found[:2])) if found else ''}?"
        )
    else:
        questions.append(
            f"How deep should the report on {name} go: a short overview, or a detailed review?"
        )
    titles = _titles(passages)
    where = " and the web" if web else ""
    if titles:
        questions.append(
            f"Which sources on {name} should be trusted most: {_join(titles)}, or other "
            f"documents in your notes{where}? Any source to exclude?"
        )
    else:
        questions.append(
            f"Which sources on {name} should be trusted: your own notes only{where}, or "
            "specific documents you can add to the index first?"
        )
    if len(found) >= 4:
        questions.append(
            f'Should the report compare {name} with "{found[3]}", which your notes '
            "mention alongside it, or leave that aside?"
        )
    return questions


def numbered(questions: Sequence[str]) -> str:
    """The spec's `questions` string: "1. …\\n2. …"."""
    return "\n".join(f"{i}. {q}" for i, q in enumerate(questions, start=1))
