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


def _text(passage: Source) -> str:
    return f"{passage.context or passage.title}\n{passage.passage}"


def about_topic(topic: str, passages: Sequence[Source]) -> list[Source]:
    """The passages that hold the topic's distinctive words, in their order."""
    sentences = _sentences(passages)
    return [p for p in passages if extractive.holds_topic(topic, sentences, [_text(p)])]


def topic_vocabulary(
    topic: str, passages: Sequence[Source], exclude: set[str]
) -> list[tuple[str, set[int]]]:
    """`vocabulary` of the passages, best first, keeping the phrases that some passage about
    the topic holds ("Dutch oven" of the baking note, not "training zones" of a cycling note
    that shares only "home" with the topic); salience is counted over all the passages, so a
    phrase the topic's notes share with one another note still recurs."""
    sentences = _sentences(passages)
    about = {
        i for i, p in enumerate(passages) if extractive.holds_topic(topic, sentences, [_text(p)])
    }
    return [(label, docs) for label, docs in vocabulary(passages, exclude) if docs & about]


def about_task(topic: str, focus: str, passages: Sequence[Source]) -> list[Source]:
    """The passages about a task: they hold the task's own words (those the topic does not
    name) and, with them, the topic's; all of `passages` when none does, or when the task
    names nothing beyond the topic (the engine then picks among them as before)."""
    topic_terms = extractive.query_terms(topic)
    own = [t for t in extractive.query_terms(focus) if t not in topic_terms]
    if not own:
        return list(passages)
    sentences = _sentences(passages)
    together = [*own, *topic_terms]
    found = [
        p
        for p in passages
        if extractive.holds_topic(own, sentences, [_text(p)])
        and extractive.holds_topic(together, sentences, [_text(p)])
    ]
    return found or list(passages)
