"""The offline engine: deterministic scoping, extractive summaries, coverage-based gaps and an
extractive report, all from the passages retrieval found (no model, no network)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
import re
from collections import Counter
from collections.abc import AsyncIterator, Sequence

from localresearch import extractive
from localresearch.research.citations import passage_supports, strip_markers
from localresearch.research.report import extractive_paragraphs
from localresearch.research.types import DimensionResult, Evaluation, Point, Source, StepUsage

_SENTENCES_PER_SUMMARY = 4
_TERMINAL = (".", "!", "?")


# Words frequent in any prose or abstract that make poor research angles on their own.
_GENERIC_WORDS = """
    result results method methods conclusion conclusions background objective objectives study
    studies patient patients time times month months year years day days week weeks data
    analysis analyses effect effects associated association increase increased decrease
    decreased report reported found show shows shown suggest suggests group groups level levels
    high higher low lower significant significantly compared comparison number numbers total
    present include included including observed measured finding findings evidence role case
    cases model models related whether however among within two three four five one first
    second new different large small mean median ratio values value rate rates well across
    based design setting participants subjects interval confidence respectively versus compared
    addition additional important previous previously recent recently possible potential known
    using used approach approaches purpose aim aims review reviews trial trials term terms type
    types outcome outcomes main highest lowest quintile quartile tertile long short
"""
GENERIC = frozenset(extractive.stem(w) for w in _GENERIC_WORDS.split())
_UNIT_WORDS = "nmol mmol umol pmol mol mg kg ml dl mcg ng pg mm cm ci sd se or hr"
_UNITS = frozenset(_UNIT_WORDS.split())
# Words that read as a fragment when they name a dimension ("Containing", "Earlier conditional").
_FUNCTION_TEXT = """
    earlier later greater lesser older younger larger smaller better worse conditional following
    according regarding concerning containing including involving whereas despite although
    though thus therefore hence due without upon either neither overall several various many
    much another specific particular certain similar likely unlikely able unable less least
    greatest further even yet still already often usually mainly mostly largely independent
    dependent available common general major minor novel current prior subsequent causing
    leading resulting suggesting indicating showing affecting reducing increasing decreasing
    improving promoting inhibiting preventing inducing regulating mediating encoding lacking
    expressing receiving undergoing underlying existing remaining surrounding having being
    making taking giving becoming providing requiring allowing enabling determining identifying
    comparing examining assessing evaluating furthermore moreover additionally finally
    conversely nevertheless notably importantly interestingly collectively together taken
    every everyone everything everywhere always never sometimes whole entire
"""
_FUNCTION_WORDS = frozenset(_FUNCTION_TEXT.split())
# Words that name a topic only with another word ("Cell death", not "Cells").
_WEAK_ALONE_TEXT = """
    human humans cell cells protein proteins gene genes tissue tissues risk risks factor factors
    control controls function functions expression treatment treatments disease diseases
    induction experience interaction interactions incidence birth animal animals modification
    activity activities response responses process processes system systems mechanism
    mechanisms condition conditions change changes development population populations health
    care age sample samples test tests exposure outcome use role area areas
"""
_WEAK_ALONE = frozenset(_WEAK_ALONE_TEXT.split())
_ADJECTIVE_ENDINGS = ("ous", "ive", "ful", "less", "able", "ible", "ional", "ical")


@functools.lru_cache(maxsize=65536)
def _stem(lower: str) -> str:
    return extractive.stem(lower)


@functools.lru_cache(maxsize=65536)
def _content(word: str) -> bool:
    """A word that can name a topic (cached: the same words recur across passages)."""
    lower = word.lower()
    return not (
        lower in extractive.STOPWORDS
        or lower in _UNITS
        or len(lower) < 3
        or any(ch.isdigit() for ch in lower)
        or (lower.endswith("ly") and len(lower) > 5)  # adverbs name no topic
        or _stem(lower) in GENERIC
        or lower in _FUNCTION_WORDS
        or (len(lower) >= 4 and lower.endswith("ed") and not lower.endswith("eed"))  # participles
    )


def _can_end_name(lower: str) -> bool:
    """A name ends on a noun: not a verb form ('treating') nor an adjective ('conditional')."""
    return not (lower.endswith("ing") or lower.endswith(_ADJECTIVE_ENDINGS))


def _candidates(passages: Sequence[Source]) -> dict[tuple[str, ...], tuple[Counter[str], set[int]]]:
    """Phrases (one or two content words, stemmed) → (surface forms, passages containing them)."""
    found: dict[tuple[str, ...], tuple[Counter[str], set[int]]] = {}

    def add(key: tuple[str, ...], form: str, index: int) -> None:
        entry = found.get(key)
        if entry is None:
            entry = found[key] = (Counter(), set())
        entry[0][form] += 1
        entry[1].add(index)

    for index, source in enumerate(passages):
        original = extractive.words(source.passage)
        seq = [w.lower() for w in original]
        keep = [_content(w) for w in seq]
        for i, word in enumerate(seq):
            if not keep[i]:
                continue
            if len(word) >= 4 and _can_end_name(word) and word not in _WEAK_ALONE:
                add((_stem(word),), original[i], index)
            if i + 1 < len(seq) and keep[i + 1] and _can_end_name(seq[i + 1]):
                add((_stem(word), _stem(seq[i + 1])), f"{original[i]} {original[i + 1]}", index)
    return found


def _readable(forms: Counter[str]) -> str:
    """The phrase as the passages write it most often (keeps 'DNA', 'Notch'), lower-case first
    letters only where the passages mostly do, so sentence-initial capitals do not win."""
    lowered: Counter[str] = Counter()
    for form, count in forms.items():
        lowered[form.lower()] += count
    best_lower = lowered.most_common(1)[0][0]
    variants = Counter({f: c for f, c in forms.items() if f.lower() == best_lower})
    return variants.most_common(1)[0][0]


def vocabulary(passages: Sequence[Source], exclude: set[str]) -> list[tuple[str, set[int]]]:
    """Salient phrases of the retrieved passages, best first, with the passages holding each.

    A phrase is salient when several passages share it but not nearly all, weighted by how early
    those passages ranked; two-word phrases are preferred (they name a topic, not a word)."""
    n = len(passages)
    scored: list[tuple[float, str, set[int]]] = []
    for key, (forms, docs) in _candidates(passages).items():
        if all(part in exclude for part in key):
            continue
        least = 2 if len(key) == 2 else 3  # a lone word must recur more to name a topic
        if len(docs) < least or (n >= 5 and len(docs) > n * 0.8):
            continue
        rank_weight = sum(1.0 / math.sqrt(1 + i) for i in docs)
        bonus = 2.5 if len(key) == 2 else 1.0
        score = rank_weight * math.log(1 + n / len(docs)) * bonus
        label = _readable(forms)
        scored.append((-score, label, docs))
    scored.sort(key=lambda item: (item[0], item[1]))
    return [(label, docs) for _, label, docs in scored]


def _pick(candidates: list[tuple[str, set[int]]], count: int, taken: list[str]) -> list[str]:
    """Greedy diverse choice: no shared word with a taken label, not the same passages."""
    chosen: list[str] = []
    used = {t for label in taken for t in extractive.terms(label)}
    covered: list[set[int]] = []
    for label, docs in candidates:
        if len(chosen) >= count:
            break
        stems = set(extractive.terms(label))
        if not stems or stems & used:
            continue
        if any(len(docs & c) / len(docs | c) > 0.7 for c in covered):
            continue
        chosen.append(label[:1].upper() + label[1:])
        used |= stems
        covered.append(docs)
    return chosen


def on_topic(query: str, passages: Sequence[Source], share: float = 0.5) -> list[Source]:
    """The passages about the question: those holding at least `share` of the best passage's
    rarity-weighted share of the question's words (a note on another topic that shares only
    'care' or 'setup' with the question is left out)."""
    qterms = extractive.query_terms(query)
    if not qterms or not passages:
        return list(passages)
    bags = [
        set(extractive.terms(p.passage)) | set(extractive.terms(f"{p.title} {p.context}"))
        for p in passages
    ]
    n = len(bags)
    idf = {t: math.log(1.0 + n / (1 + sum(t in b for b in bags))) + 0.05 for t in qterms}
    total = sum(idf.values())
    cover = [sum(idf[t] for t in qterms if t in bag) / total for bag in bags]
    best = max(cover)
    if best <= 0:
        return list(passages)  # none speaks of the question's words: nothing to tell apart
    return [p for p, c in zip(passages, cover, strict=True) if c >= best * share]


def question_phrases(query: str) -> list[str]:
    """The question's own topic phrases, as written: runs of content words ("quince tree",
    "garden"), never a lone stopword or abbreviation ('vs'), nor the question's verb ("back"
    in "How do I back up…", "allow" in "What does WAL mode allow?"); a possessive ends its
    phrase's words as a noun ("router's security", a lone "router")."""
    phrases: list[str] = []
    run: list[str] = []
    found = _QUESTION_WORD.findall(query)
    verbs = _verb_slots(found)
    for i, word in enumerate([*found, ""]):
        if word and i not in verbs and _content(word) and word.lower() not in _QUESTION_WORDS:
            run.append(word)
            continue
        if run:
            phrase = " ".join(run[:3])
            if len(run) == 1:
                phrase = _POSSESSIVE.sub("", phrase)
            if phrase.lower() not in (p.lower() for p in phrases):
                phrases.append(phrase)
        run = []
    return phrases


_POSSESSIVE = re.compile(r"['’]s$")
# A word as a question writes it, hyphens kept ("Wi-Fi", "write-ahead").
_QUESTION_WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")
_AUXILIARIES_TEXT = "do does did can could should would will shall may might must"
_AUXILIARIES = frozenset(_AUXILIARIES_TEXT.split())
_SUBJECTS_TEXT = "i you we they one"
_SUBJECTS = frozenset(_SUBJECTS_TEXT.split())
_WH_TEXT = "how what why where when which who whom whose"
_WH = frozenset(_WH_TEXT.split())


def _verb_slots(found: Sequence[str]) -> set[int]:
    """Positions of a question's verbs: the word after an auxiliary and its pronoun ("how do I
    *harden*", "can we *speed* up") or after "how to"; and the last word of a question whose
    subject sits between the auxiliary and it ("what does WAL mode *allow*")."""
    lower = [w.lower() for w in found]
    slots: set[int] = set()
    for i, word in enumerate(lower[:-1]):
        if word in _AUXILIARIES and lower[i + 1] in _SUBJECTS:
            slots.add(i + 2)
        elif word == "to" and i > 0 and lower[i - 1] in _WH:
            slots.add(i + 1)
    subject_first = len(lower) >= 4 and lower[0] in _WH and lower[1] in _AUXILIARIES
    if subject_first and lower[2] not in _SUBJECTS:
        slots.add(len(lower) - 1)
    return slots


def names_topic(text: str) -> bool:
    """A phrase with a word that is neither a stopword nor a question's framing ('care for',
    'the best way' have none; 'Pruning' has one)."""
    return any(
        w.lower() not in extractive.STOPWORDS and w.lower() not in _QUESTION_WORDS
        for w in extractive.words(text)
    )


# Words that shape a question but name no topic of it.
_QUESTION_WORDS_TEXT = """care best better good way ways should could would might does compare
    comparison difference differences versus help helps tips advice"""
_QUESTION_WORDS = frozenset(_QUESTION_WORDS_TEXT.split())


def scope_dimensions(query: str, passages: Sequence[Source], count: int) -> list[str]:
    """Dimensions from the vocabulary of the passages about the question (never a fixed list of
    aspects); when they offer fewer, the question's own phrases; fewer dimensions rather than
    filler."""
    qterms = set(extractive.query_terms(query))
    chosen = _pick(vocabulary(on_topic(query, passages), qterms), count, [])
    used = {t for label in chosen for t in extractive.terms(label)}
    for phrase in question_phrases(query):
        if len(chosen) >= count:
            break
        stems = set(extractive.terms(phrase))
        if stems and not stems & used:
            chosen.append(phrase[:1].upper() + phrase[1:])
            used |= stems
    if not chosen:
        chosen.append(query.strip().rstrip("?.!") or query)
    return chosen


_LABEL = re.compile(
    r"^(?:(?:[A-Z]{4,}(?:\s+AND)?\s+)+|(?:Background|Objectives?|Aims?|Purpose|Design|Setting|"
    r"Methods?|Results?|Findings|Conclusions?|Interpretation):\s+)(?=[A-Z])"
)


def _unlabelled(sentence: extractive.Sentence) -> extractive.Sentence:
    """Without a structured abstract's leading label ("METHODS In a study…" → "In a study…"):
    what is left is still verbatim in the passage."""
    text = _LABEL.sub("", sentence.text)
    return dataclasses.replace(sentence, text=text) if text != sentence.text else sentence


def whole_sentence(text: str) -> bool:
    """False for fragments cut at a chunk boundary: they start lower-case (or with a marker),
    end without terminal punctuation, or are too short to say anything."""
    body = text.strip()
    if len(extractive.words(body)) < 4 or not body[:1].isalnum() or body[:1].islower():
        return False
    return body.rstrip("\"')]*_\u201d\u2019").endswith(_TERMINAL)


def summarise_sources(
    query: str, dimension: str, index: int, sources: Sequence[Source]
) -> DimensionResult:
    """Pick the sentences that best answer the dimension; each stays tied to its passage."""
    sentences: list[extractive.Sentence] = []
    relevant = {id(s) for s in on_topic(query, sources)}
    for i, source in enumerate(sources):
        if id(source) not in relevant:
            continue  # another topic's note that shares a word with the question
        split = extractive.split_sentences(strip_markers(source.passage), source=i)
        sentences.extend(_unlabelled(s) for s in split if whole_sentence(_unlabelled(s).text))
    wanted = list(dict.fromkeys(extractive.query_terms(dimension) + extractive.query_terms(query)))
    weights = [1.0 / (1 + i) for i in range(len(sources))]
    # A passage's headings frame its sentences: those under "Home Wi-Fi setup > Security"
    # speak to "Wi-Fi security" though none repeats the words.
    titles = [s.context or s.title for s in sources]
    scored = extractive.score_sentences(sentences, wanted, source_weights=weights, contexts=titles)
    # The key finding speaks to this dimension, not only to the question every dimension shares.
    own = set(extractive.query_terms(dimension)) - set(extractive.query_terms(query))
    framed = [set(extractive.terms(title)) for title in titles]

    def about(item: extractive.ScoredSentence) -> bool:
        return bool((item.matched | framed[item.sentence.source]) & own)

    def pick(candidates: list[extractive.ScoredSentence]) -> list[extractive.ScoredSentence]:
        return [
            s
            for s in extractive.select_sentences(candidates, limit=_SENTENCES_PER_SUMMARY)
            if passage_supports(sources[s.sentence.source].passage, s.sentence.text)
        ]

    # Its section quotes the passages that speak of the dimension itself when some do ("GHz
    # band" quotes the notes on the bands, not the security settings of the same topic).
    speaking = {s.sentence.source for s in scored if own and s.score > 0 and about(s)}
    chosen = pick([s for s in scored if s.sentence.source in speaking]) or pick(scored)
    if not chosen:
        return DimensionResult(
            dimension=dimension, index=index, summary="", key_finding="", sources=list(sources)
        )

    key = next((c for c in chosen if about(c)), None)
    if key is None:  # look further down for a sentence about the dimension itself
        key = next(
            (
                s
                for s in scored[:40]
                if about(s)
                and s not in chosen
                and passage_supports(sources[s.sentence.source].passage, s.sentence.text)
            ),
            chosen[0],
        )
        if key not in chosen:
            chosen = [key, *chosen[: _SENTENCES_PER_SUMMARY - 1]]
    points = [
        Point(item.sentence.text, sources[item.sentence.source].id)
        for group in extractive.reading_order(chosen)
        for item in group
    ]
    return DimensionResult(
        dimension=dimension,
        index=index,
        summary=" ".join(p.text for p in points),
        key_finding=key.sentence.text,
        sources=list(sources),
        points=points,
    )


def find_gaps(
    query: str, results: Sequence[DimensionResult], passages: Sequence[Source], budget: int
) -> Evaluation:
    """Coverage-based gaps: question terms no finding mentions, and salient vocabulary of the
    retrieved passages that no dimension has covered yet (those become new dimensions)."""
    covered_text = " ".join(
        [r.dimension for r in results] + [p.text for r in results for p in r.points]
    )
    covered = set(extractive.terms(covered_text))
    gaps = [
        f"No finding yet covers “{phrase}”"
        for phrase in question_phrases(query)
        if not set(extractive.terms(phrase)) <= covered
    ]
    qterms = set(extractive.query_terms(query))
    found = on_topic(query, passages)
    new = _pick(vocabulary(found, qterms | covered), budget, [r.dimension for r in results])
    gaps += [f"Retrieved passages discuss '{label}', which no dimension covers" for label in new]
    return Evaluation(gaps=gaps, new_dimensions=new)


class BuiltinEngine:
    """The Engine for `llm.provider = "builtin"`: CPU work runs in a thread, off the loop."""

    extractive = True  # the pipeline verifies each cited sentence against its passage

    def __init__(self, gap_dimensions: int = 2) -> None:
        self.gap_dimensions = gap_dimensions

    async def close(self) -> None:
        """Nothing to release: no model, no connection."""

    async def scope(
        self, query: str, passages: list[Source], count: int, usage: StepUsage
    ) -> list[str]:
        return await asyncio.to_thread(scope_dimensions, query, passages, count)

    async def summarise(
        self, query: str, dimension: str, index: int, sources: list[Source], usage: StepUsage
    ) -> DimensionResult:
        return await asyncio.to_thread(summarise_sources, query, dimension, index, sources)

    async def evaluate(
        self,
        query: str,
        results: list[DimensionResult],
        passages: list[Source],
        iteration: int,
        usage: StepUsage,
    ) -> Evaluation:
        return await asyncio.to_thread(find_gaps, query, results, passages, self.gap_dimensions)

    async def synthesise(
        self,
        query: str,
        results: list[DimensionResult],
        numbering: dict[str, int],
        usage: StepUsage,
    ) -> AsyncIterator[str]:
        for paragraph in extractive_paragraphs(query, results, numbering):
            yield paragraph
