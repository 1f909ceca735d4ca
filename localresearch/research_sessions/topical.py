"""Which retrieved passages a session's questions, plan and tasks draw on (builtin engine): those
about the topic, and for a task those about the task within the topic. "About" is
`extractive.holds_topic`'s rarity rule over a passage with its heading, so a note on another
subject that shares one common word with the topic ("home" in "Baking sourdough bread at home")
names no aspect of it."""

from __future__ import annotations

from collections.abc import Sequence

from localresearch import extractive
from localresearch.research.builtin import vocabulary
from localresearch.research.types import Source


def _sentences(passages: Sequence[Source]) -> list[extractive.Sentence]:
    return [s for p in passages for s in extractive.split_sentences(p.passage)]


def _bag(passage: Source) -> set[str]:
    """The terms of a passage with its heading."""
    return set(extractive.terms(f"{passage.context or passage.title}\n{passage.passage}"))


def _about(query: str | Sequence[str], passages: Sequence[Source]) -> list[bool]:
    """Per passage, whether it holds the query's topic (extractive.holds_topic), the terms'
    rarity weighed once over all the passages' sentences."""
    weights = extractive.topic_weights(query, _sentences(passages))
    return [extractive.holds_weighted(weights, _bag(p)) for p in passages]


def about_topic(topic: str, passages: Sequence[Source]) -> list[Source]:
    """The passages that hold the topic's distinctive words, in their order."""
    return [p for p, about in zip(passages, _about(topic, passages), strict=True) if about]


def topic_vocabulary(
    topic: str, passages: Sequence[Source], exclude: set[str]
) -> list[tuple[str, set[int]]]:
    """`vocabulary` of the passages, best first, keeping the phrases that some passage about
    the topic holds ("Dutch oven" of the baking note, not "training zones" of a cycling note
    that shares only "home" with the topic); salience is counted over all the passages, so a
    phrase the topic's notes share with one another note still recurs."""
    return of_topic(topic, passages, vocabulary(passages, exclude))


def of_topic(
    topic: str, passages: Sequence[Source], found: list[tuple[str, set[int]]]
) -> list[tuple[str, set[int]]]:
    """Of `found` (the `vocabulary` of `passages`), the phrases some passage about the topic
    holds, in their order."""
    about = {i for i, held in enumerate(_about(topic, passages)) if held}
    return [(label, docs) for label, docs in found if docs & about]


def about_task(topic: str, focus: str, passages: Sequence[Source]) -> list[Source]:
    """The passages about a task: they hold the task's own words (those the topic does not
    name) and, with them, the topic's; all of `passages` when none does, or when the task
    names nothing beyond the topic (the engine then picks among them as before)."""
    topic_terms = extractive.query_terms(topic)
    own = [t for t in extractive.query_terms(focus) if t not in topic_terms]
    if not own:
        return list(passages)
    sentences = _sentences(passages)
    own_weights = extractive.topic_weights(own, sentences)
    together = extractive.topic_weights([*own, *topic_terms], sentences)
    found = [
        p
        for p, bag in ((p, _bag(p)) for p in passages)
        if extractive.holds_weighted(own_weights, bag) and extractive.holds_weighted(together, bag)
    ]
    return found or list(passages)
