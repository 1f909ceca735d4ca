"""Judge the citation check's thresholds (localresearch/citations.py) on answers as they were
written, dumped by `scripts/eval_answers.py --dump`, on any number of data sets.

For each answer, its claim sentences are checked twice at every threshold pair:
  - against its own passages: a builtin answer quotes them, so each of its sentences is truly
    supported (the share flagged is the check's miss rate); a model's answers are a mix, and
    where a judgement file gives a label per sentence, precision and recall are computed;
  - against the passages of another question (none of them the same lines as its own): no
    sentence is supported there, so every one the check calls supported is a false support,
    and every marker it keeps is a wrong one kept.

A third check uses written judgements (scripts/data/support_eval/*.jsonl): a sentence, the passage
it was written from, and whether that passage supports it (faithful paraphrases and plausible
wrong claims in the passage's own words); each is checked without a marker (a replacement must
clear the support threshold) and with `[1]` (a model's marker is kept at the keep threshold),
against its passage and two others.

    python scripts/judge_support.py NAME=answers.jsonl [NAME=answers.jsonl …]
        [--judged NAME=scripts/data/support_eval/docs.jsonl …]
        [--labels labels.jsonl]   # {"answer_index", "sentence", "supported"} per judged sentence
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SUPPORT_GRID = (0.3, 0.4, 0.5, 0.6, 0.7)
KEEP_GRID = (0.3, 0.4, 0.5)


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def passages(record: dict[str, Any]) -> list[Any]:
    from localresearch.citations import Passage

    out = []
    for p in record["passages"]:
        text = p["text"]
        out.append(Passage(p["n"], p["file"], 1, text.count("\n") + 1, "", text, p["rank"]))
    return out


def _spans(record: dict[str, Any]) -> set[tuple[str, str]]:
    return {(p["file"], " ".join(p["text"].split())[:200]) for p in record["passages"]}


def foreign(records: list[dict[str, Any]], i: int) -> list[Any]:
    """Another question's passages, none of them one of this answer's own."""
    own = _spans(records[i])
    for step in range(len(records) // 2, len(records)):
        other = records[(i + step) % len(records)]
        kept = [
            p
            for p in other["passages"]
            if (p["file"], " ".join(p["text"].split())[:200]) not in own
        ]
        if kept and (i + step) % len(records) != i:
            return passages({"passages": kept})
    return []


def check(answer: str, found: list[Any], support: float, keep: float) -> list[Any]:
    import localresearch.citations as citations

    citations.KEEP_THRESHOLD = keep
    return [s for s in citations.align(answer, found, threshold=support).sentences if s.claim]


def judge(
    records: list[dict[str, Any]], labels: dict[tuple[int, str], bool]
) -> list[dict[str, Any]]:
    from localresearch.citations import _markers

    rows = []
    for support in SUPPORT_GRID:
        for keep in KEEP_GRID:
            if keep > support:
                continue
            own_total = own_supported = 0
            neg_total = neg_supported = neg_marked = neg_kept = 0
            tp = fp = fn = tn = 0
            for i, record in enumerate(records):
                answer = record["answer"]
                for s in check(answer, passages(record), support, keep):
                    own_total += 1
                    own_supported += s.supported
                    label = labels.get((i, " ".join(s.text.split())))
                    if label is not None:
                        tp += label and s.supported
                        fn += label and not s.supported
                        fp += (not label) and s.supported
                        tn += (not label) and not s.supported
                other = foreign(records, i)
                if not other:
                    continue
                for s in check(answer, other, support, keep):
                    neg_total += 1
                    neg_supported += s.supported
                    given = _markers(answer[s.start : s.end])
                    neg_marked += bool(given)
                    neg_kept += bool(set(given) & set(s.cited))
            row: dict[str, Any] = {
                "support": support,
                "keep": keep,
                "sentences": own_total,
                "own_supported": round(own_supported / max(1, own_total), 3),
                "foreign_supported": round(neg_supported / max(1, neg_total), 3),
                "foreign_markers_kept": round(neg_kept / max(1, neg_marked), 3)
                if neg_marked
                else None,
            }
            if tp + fp + fn + tn:
                row["judged"] = tp + fp + fn + tn
                row["precision"] = round(tp / max(1, tp + fp), 3)
                row["recall"] = round(tp / max(1, tp + fn), 3)
            rows.append(row)
    return rows


def judged(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Precision and recall of `supported` on written judgements, per threshold pair."""
    from localresearch.citations import Passage

    rows = []
    for support in SUPPORT_GRID:
        for keep in KEEP_GRID:
            if keep > support:
                continue
            row: dict[str, Any] = {"support": support, "keep": keep, "judged": len(items)}
            for marker in ("", " [1]"):
                tp = fp = fn = tn = 0
                for i, item in enumerate(items):
                    others = [items[(i + k) % len(items)]["passage"] for k in (7, 13)]
                    found = [
                        Passage(n, f"p{n}", 1, 1, "", text, n - 1)
                        for n, text in enumerate([item["passage"], *others], start=1)
                    ]
                    sentence = item["sentence"].rstrip(".") + marker + "."
                    (s,) = check(sentence, found, support, keep) or [None]
                    said = s is not None and 1 in s.cited
                    truth = bool(item["supported"])
                    tp += truth and said
                    fn += truth and not said
                    fp += (not truth) and said
                    tn += (not truth) and not said
                name = "marked" if marker else "unmarked"
                row[f"{name}_precision"] = round(tp / max(1, tp + fp), 3)
                row[f"{name}_recall"] = round(tp / max(1, tp + fn), 3)
                # The share of wrong claims called supported (false support rate); recall is
                # the share of faithful ones (true support rate).
                row[f"{name}_false_support"] = round(fp / max(1, fp + tn), 3)
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dumps", nargs="*", help="NAME=path of an eval_answers.py --dump file")
    parser.add_argument("--judged", action="append", default=[], help="NAME=written judgements")
    parser.add_argument("--labels", type=Path, action="append", default=[])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    labels: dict[str, dict[tuple[int, str], bool]] = {}
    for path in args.labels:
        for item in load(path):
            key = (int(item["answer_index"]), " ".join(item["sentence"].split()))
            labels.setdefault(item["set"], {})[key] = bool(item["supported"])
    result = {}
    for spec in args.dumps:
        name, _, path = spec.partition("=")
        records = load(Path(path))
        result[name] = {"answers": len(records), "grid": judge(records, labels.get(name, {}))}
        print(f"\n{name}: {len(records)} answers")
        for row in result[name]["grid"]:
            print("  " + json.dumps(row))
    for spec in args.judged:
        name, _, path = spec.partition("=")
        items = load(Path(path))
        result[name] = {"judged": len(items), "grid": judged(items)}
        print(f"\n{name}: {len(items)} written judgements")
        for row in result[name]["grid"]:
            print("  " + json.dumps(row))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
