"""Answer quality on SciFact claims through the chat path `research ask` uses, with the memory
search's own first hit on the same claims as the same-run baseline.

For each claim (test claims that have relevant abstracts), in one process over one index:
  - search P@1: is the memory search's first hit a relevant abstract (the baseline);
  - first citation relevant: is the answer's first citation a relevant abstract;
  - sentences supported: the share of the answer's own claim sentences a passage supports
    (sentences the daemon quoted from the passages beside a model's answer are left out);
  - answers with quoted evidence: the share that carry the quoted paragraph, and why;
  - citations verbatim: the share of citations whose quoted words stand at their file:lines;
  - wall time per answer (median, p90), model requests per answer, prompt tokens (median).

    python scripts/eval_answers.py [--claims 100] [--docs 0 (all 5,183)] [--dataset DIR]
        [--openai http://127.0.0.1:8091 --max-tokens 96]   # a real model instead of builtin
        [--context-tokens 4096]   # the model's context: 8192 or less sends the compact prompt
        [--time-limit 3600]       # start no claim after this many seconds (slow models)
        [--notes docs --dataset scripts/data/docs_eval]   # a folder as it is, judged by file
        [--json out.json] [--dump answers.jsonl]   # each answer as written, with its passages,
                                                   # for scripts/judge_support.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATASET = ROOT.parent / "shared" / "datasets" / "scifact"


def claims(dataset: Path, n: int) -> list[tuple[str, set[str]]]:
    """The first `n` test claims with relevant abstracts, and those abstracts' ids."""
    relevant: dict[str, set[str]] = {}
    for line in (dataset / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        query_id, corpus_id, _ = line.split("\t")
        # A folder's ids are `file#section` (scripts/data/docs_eval): judged by the file.
        corpus_id = Path(corpus_id.partition("#")[0]).stem if "#" in corpus_id else corpus_id
        relevant.setdefault(query_id, set()).add(corpus_id)
    found: list[tuple[str, set[str]]] = []
    with (dataset / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            query = json.loads(line)
            if query["_id"] in relevant:
                found.append((query["text"], relevant[query["_id"]]))
    return found[:n]


def write_corpus(dataset: Path, dest: Path, limit: int, keep: set[str]) -> int:
    """One Markdown file per abstract: all of them, or the first `limit` plus those in `keep`."""
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    with (dataset / "corpus.jsonl").open(encoding="utf-8") as fh:
        for number, line in enumerate(fh):
            doc = json.loads(line)
            if limit and number >= limit and doc["_id"] not in keep:
                continue
            body = f"# {doc['title'].strip()}\n\n{doc['text'].strip()}\n"
            (dest / f"{doc['_id']}.md").write_text(body, encoding="utf-8")
            count += 1
    return count


def _doc(file: str) -> str:
    return Path(file).stem


def _norm(text: str) -> str:
    """Whitespace collapsed, table cell rules dropped: a table row is quoted by its cells."""
    return " ".join(text.replace("|", " ").split())


def verbatim(citation: dict[str, Any]) -> bool:
    """The citation's quoted words stand in its file at its lines."""
    try:
        lines = Path(citation["path"]).read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    span = _norm("\n".join(lines[citation["line_start"] - 1 : citation["line_end"]]))
    pieces = [_norm(p) for p in str(citation.get("text", "")).split(" … ") if p.strip()]
    # Code blocks and tables are quoted with their Markdown; compare on words then.
    return bool(pieces) and all(p in span for p in pieces)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from localresearch.config import load_config
    from localresearch.paths import resolve_paths
    from localresearch.runtime import Runtime

    if args.context_hits:
        import localresearch.chat.service as chat_service

        chat_service.CONTEXT_HITS = args.context_hits
    aligned: list[dict[str, Any]] = []
    if args.dump:
        import localresearch.chat.service as chat_service

        original = chat_service.align

        def recording(answer: str, passages: Any, **kw: Any) -> Any:
            aligned.append(
                {
                    "answer": answer,
                    "passages": [
                        {"n": p.n, "file": p.file, "text": p.text, "rank": p.rank} for p in passages
                    ],
                }
            )
            return original(answer, passages, **kw)

        chat_service.align = recording  # type: ignore[assignment]
    # Model requests per answer (a tool call, written or not, costs a second one).
    rounds = [0]
    if args.openai:
        from localresearch.providers.openai import OpenAIProvider

        payload = OpenAIProvider.payload

        def counting(self: Any, request: Any, *, stream: bool) -> dict[str, Any]:
            rounds[0] += 1
            return payload(self, request, stream=stream)

        OpenAIProvider.payload = counting  # type: ignore[method-assign]
    load_start = os.getloadavg()
    chosen = claims(args.dataset, args.claims)
    keep = {doc for _, docs in chosen for doc in docs}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        corpus = Path(tmp) / "corpus"
        if args.notes:
            corpus = args.notes.resolve()
            docs = sum(1 for _ in corpus.rglob("*.md"))
        else:
            docs = write_corpus(args.dataset, corpus, args.docs, keep)
        os.environ["LOCALRESEARCH_HOME"] = str(home)
        paths = resolve_paths()
        paths.ensure()
        text = f"[memory]\npaths = [{json.dumps(str(corpus))}]\nwatch = false\n"
        text += "\n[heartbeat]\nenabled = false\n"
        if args.openai:
            text += (
                f'\n[llm]\nprovider = "openai"\nbase_url = "{args.openai}"\nmodel = "local"\n'
                f"max_tokens = {args.max_tokens}\ntemperature = 0.0\n"
                f"context_tokens = {args.context_tokens}\n"
                "first_token_timeout = 900.0\nidle_timeout = 300.0\n"
            )
        paths.config_file.write_text(text, encoding="utf-8")
        runtime = Runtime(load_config(paths.config_file), paths)
        started = time.perf_counter()
        await runtime.start()
        try:
            assert runtime.memory is not None and runtime.chat is not None
            await runtime.memory.wait_ready()
            indexed = time.perf_counter() - started
            rows = []
            for claim, relevant in chosen:
                if args.time_limit and time.perf_counter() - started > args.time_limit:
                    break  # a slow model on a shared machine: the claims done so far count
                hits = await runtime.memory.search(claim, 10)
                search_p1 = bool(hits) and _doc(hits[0].file) in relevant
                t0 = time.perf_counter()
                aligned.clear()
                rounds[0] = 0
                done = await runtime.chat.answer(claim, record=False)
                seconds = time.perf_counter() - t0
                if args.dump and aligned:
                    with args.dump.open("a", encoding="utf-8") as out:
                        # The answer as the model wrote it (a second alignment, with the
                        # quoted evidence added, is the daemon's).
                        record = {"claim": claim, "relevant": sorted(relevant), **aligned[0]}
                        out.write(json.dumps(record) + "\n")
                citations = done.get("citations") or []
                # The model's own claim sentences: quoted evidence the daemon added is counted
                # apart (it is the passages' words, supported by construction).
                claimed = [s for s in done.get("sentences") or [] if s.get("claim")]
                sentences = [s for s in claimed if not s.get("quoted")]
                evidence = done.get("evidence") or {}
                rows.append(
                    {
                        "search_p1": search_p1,
                        "first_citation_relevant": bool(citations)
                        and _doc(citations[0]["file"]) in relevant,
                        "cited": bool(citations),
                        "evidence": evidence.get("reason", ""),
                        "quoted_sentences": len(claimed) - len(sentences),
                        "sentences": len(sentences),
                        "supported": sum(1 for s in sentences if s.get("supported")),
                        "citations": len(citations),
                        "verbatim": sum(1 for c in citations if verbatim(c)),
                        "seconds": seconds,
                        "rounds": rounds[0],
                        "prompt_tokens": int((done.get("tokens") or {}).get("prompt", 0)),
                    }
                )
                if args.verbose:
                    print(json.dumps(rows[-1]), flush=True)
        finally:
            await runtime.stop()
    n = len(rows)
    sentences = sum(r["sentences"] for r in rows)
    cites = sum(r["citations"] for r in rows)
    times = [r["seconds"] for r in rows]
    return {
        "engine": f"openai-compatible at {args.openai}" if args.openai else "builtin",
        "context_hits": args.context_hits or 8,
        "context_tokens": args.context_tokens,
        "rounds_per_answer": round(sum(r["rounds"] for r in rows) / n, 2),
        "prompt_tokens_median": statistics.median(r["prompt_tokens"] for r in rows),
        "load_average_start_end": [round(load_start[0], 2), round(os.getloadavg()[0], 2)],
        "claims": n,
        "documents": docs,
        "index_seconds": round(indexed, 1),
        "search_p1": round(sum(r["search_p1"] for r in rows) / n, 3),
        "first_citation_relevant": round(sum(r["first_citation_relevant"] for r in rows) / n, 3),
        "answers_cited": round(sum(r["cited"] for r in rows) / n, 3),
        "answers_with_quoted_evidence": round(sum(bool(r["evidence"]) for r in rows) / n, 3),
        "evidence_reasons": {
            reason: sum(r["evidence"] == reason for r in rows)
            for reason in sorted({r["evidence"] for r in rows if r["evidence"]})
        },
        "model_sentences": sentences,
        "sentences_supported": round(sum(r["supported"] for r in rows) / max(1, sentences), 3),
        "citations_verbatim": round(sum(r["verbatim"] for r in rows) / max(1, cites), 3),
        "seconds_median": round(statistics.median(times), 3),
        "seconds_p90": round(pct(times, 0.9), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--claims", type=int, default=100)
    parser.add_argument("--docs", type=int, default=0, help="abstracts besides the relevant ones")
    parser.add_argument("--openai", default="", help="base URL of an OpenAI-compatible server")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument(
        "--context-hits",
        type=int,
        default=0,
        help="passages the chat retrieves (default: the daemon's 8); fewer keep a slow model's "
        "prompt short",
    )
    parser.add_argument(
        "--notes", type=Path, help="index this folder as it is (queries and qrels: --dataset)"
    )
    parser.add_argument(
        "--context-tokens",
        type=int,
        default=0,
        help="llm.context_tokens for the model (0: unknown; 8192 or less: the compact prompt)",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=0,
        help="seconds after which no further claim starts (0: none); figures cover those done",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--dump", type=Path, help="append each answer as written, with its passages (JSON lines)"
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    if not args.notes and not (args.dataset / "corpus.jsonl").exists():
        sys.exit(f"SciFact not found at {args.dataset}")
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
