"""A realistic notes folder, searched and asked about through a real daemon: the user's own
words are found (every word counts, headings, unspaced scripts, exact locations) and what the
daemon wrote itself (chat logs, HEARTBEAT.md) is never cited back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localresearch.client import APIRequestError, Client
from tests.daemon_fixture import DaemonHandle, _free_port
from tests.memory_helpers import make_pdf

NOTES = {
    "network/dns.md": """# DNS at home

The home router forwards every lookup to a local resolver.
Blocklists for ads are refreshed every night.
""",
    "network/vpn.md": """# VPN

WireGuard keys rotate every quarter; the network config lives in /etc/wireguard.
""",
    "network/firewall.md": """# Firewall

Only ports 22 and 443 are open on the network edge. Security updates install nightly.
""",
    "databases/sqlite.md": """# SQLite

## Backups

Back up a live SQLite database with the .backup command or VACUUM INTO.
Copying the file while it is written can corrupt the copy.

## WAL mode

WAL mode lets readers continue while one writer commits.
""",
    "running/marathon.md": """# Marathon plan

## Long runs

Long runs grow by two kilometres a week up to 32 km.

## Taper

The last three weeks reduce volume by 20%, 40% and 60%.
""",
    "running/shoes.md": """# Shoes

Replace running shoes after about 700 km.
""",
    "lang/chinese.md": """# 文件同步

同步速度很快，每五分钟同步一次。
""",
    "lang/japanese.md": """# 東京メモ

会議の議事録は毎週金曜日に共有フォルダへ保存します。
""",
    "lang/thai.md": """# บันทึก

การสำรองข้อมูลทำทุกวันอาทิตย์
""",
    "web/page.html": """<!doctype html>
<html>
<head><title>Garden notes</title></head>
<body>
<h1>Tomatoes</h1>
<p>Tomatoes need deep watering twice a week.
Prune the suckers so that the plant keeps its strength.</p>
</body>
</html>
""",
    "text/plain.txt": """Kettle notes

The kettle descales best with citric acid.
""",
    "text/guide.rst": """Bicycle
=======

Chains last longer when they are waxed instead of oiled.
""",
}
PDF_PAGES = [
    ["Quarterly report", "Revenue grew in the first quarter."],
    ["Second page", "Costs stayed flat across the year."],
    ["Third page", "Hiring paused after the spring freeze.", "The freeze ends in autumn."],
]


@pytest.fixture
def notes_daemon(daemon: DaemonHandle, tmp_path: Path) -> Iterator[tuple[DaemonHandle, Client]]:
    folder = tmp_path / "notes"
    for rel, text in NOTES.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text, encoding="utf-8")
    (folder / "report.pdf").write_bytes(make_pdf(PDF_PAGES))
    added = daemon.cli("memory", "add", str(folder))
    assert added.returncode == 0, added.stderr
    client = Client(daemon.url)
    client.post("/api/memory/reindex", {})
    yield daemon, client


def _search(client: Client, q: str, **params: Any) -> list[dict[str, Any]]:
    query = {"q": q, "limit": 10, **params}
    results: list[dict[str, Any]] = client.get("/api/memory/search", query)["results"]
    return results


def _ask(daemon: DaemonHandle, question: str) -> dict[str, Any]:
    result = daemon.cli("ask", "--json", question)
    assert result.returncode == 0, result.stderr
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def _cited(body: dict[str, Any]) -> list[str]:
    return [c["file"] for c in body["citations"]]


def test_a_repeated_question_is_answered_from_the_notes_never_the_log(
    notes_daemon: tuple[DaemonHandle, Client],
) -> None:
    daemon, client = notes_daemon
    question = "How do I back up a live SQLite database?"
    first = _ask(daemon, question)
    assert _cited(first) and set(_cited(first)) == {"databases/sqlite.md"}
    client.post("/api/memory/reindex", {})  # the exchange is now in today's log, indexed
    logged = _search(client, "back up live SQLite", include_logs="true")
    assert any(h["kind"] == "log" and h["file"].startswith("memory/") for h in logged)
    for _ in range(2):
        again = _ask(daemon, question)
        assert again["answer"] == first["answer"]
        assert _cited(again) == _cited(first)
        assert "**Question:**" not in again["answer"]
        client.post("/api/memory/reindex", {})
    # Small talk finds nothing to cite, the second time too (not its own earlier exchange).
    for _ in range(2):
        hello = _ask(daemon, "Hello, how are you?")
        assert not any(f.startswith("memory/") for f in _cited(hello))
        client.post("/api/memory/reindex", {})
    # The user's own note written into the daily log is still theirs: found and citable.
    workspace = Path(client.get("/api/memory/stats")["workspace"])
    log_file = next((workspace / "memory").glob("*.md"))
    with log_file.open("a", encoding="utf-8") as fh:
        fh.write("## Idea\n\nThe kayak trip starts at the northern jetty.\n\n")
    client.post("/api/memory/reindex", {})
    hits = _search(client, "kayak jetty")
    assert [(h["file"], h["kind"]) for h in hits] == [(f"memory/{log_file.name}", "note")]
    assert _cited(_ask(daemon, "Where does the kayak trip start?")) == [f"memory/{log_file.name}"]


def test_an_added_word_never_hides_a_note(notes_daemon: tuple[DaemonHandle, Client]) -> None:
    daemon, client = notes_daemon
    _ask(daemon, "home network hardening guide")  # logs the words "hardening" and "security"
    _ask(daemon, "home network security checklist")
    client.post("/api/memory/reindex", {})
    assert "network/dns.md" in [h["file"] for h in _search(client, "home")]
    for q in ("home network hardening", "home network security"):
        files = [h["file"] for h in _search(client, q)]
        assert "network/dns.md" in files, (q, files)
        assert not any(f.startswith("memory/") or f == "HEARTBEAT.md" for f in files)
    # On request the logs are there too, and HEARTBEAT.md with its own kind.
    with_logs = _search(client, "home network hardening", include_logs="true")
    assert {"note", "log"} <= {h["kind"] for h in with_logs}
    tasks = _search(client, "heartbeat tasks", kind="heartbeat")
    assert tasks and {h["file"] for h in tasks} == {"HEARTBEAT.md"}
    cli = daemon.cli("memory", "search", "--include-logs", "--json", "home network hardening")
    assert {"note", "log"} <= {h["kind"] for h in json.loads(cli.stdout)["results"]}
    shown = daemon.cli("memory", "search", "--kind", "log", "home network hardening").stdout
    assert "(log)" in shown and "dns.md" not in shown
    counts = client.get("/api/memory/stats")["index"]["chunks_by_kind"]
    assert counts["log"] >= 2 and counts["heartbeat"] >= 1 and counts["note"] >= len(NOTES)
    with pytest.raises(APIRequestError) as bad:
        client.get("/api/memory/search", {"q": "x", "kind": "bogus"})
    assert bad.value.status == 400 and "kind" in bad.value.message


def test_phrases_and_prefixes(notes_daemon: tuple[DaemonHandle, Client]) -> None:
    _, client = notes_daemon
    assert [h["file"] for h in _search(client, '"live SQLite database"')] == ["databases/sqlite.md"]
    assert _search(client, '"database live SQLite"') == []  # the words, but not in that order
    assert _search(client, "marat") == []
    assert {h["file"] for h in _search(client, "marat", prefix="true")} == {"running/marathon.md"}


def test_a_heading_carries_its_section(notes_daemon: tuple[DaemonHandle, Client]) -> None:
    daemon, client = notes_daemon
    hits = _search(client, "What is the marathon taper?")
    assert hits[0]["file"] == "running/marathon.md" and "20%, 40% and 60%" in hits[0]["content"]
    body = _ask(daemon, "What is the marathon taper?")
    assert "20%, 40% and 60%" in body["answer"]
    assert body["citations"][0]["file"] == "running/marathon.md"
    assert body["citations"][0]["line_start"] == 9


UNSPACED = [  # substring, question, file, line of the answer
    ("同步", "同步速度怎么样？", "lang/chinese.md", 3),
    ("議事録", "議事録はどこに保存しますか？", "lang/japanese.md", 3),
    ("สำรองข้อมูล", "สำรองข้อมูลวันไหน", "lang/thai.md", 3),
]


def test_unspaced_scripts_are_found_by_substring_and_question(
    notes_daemon: tuple[DaemonHandle, Client],
) -> None:
    daemon, client = notes_daemon
    for substring, question, rel, line in UNSPACED:
        assert [h["file"] for h in _search(client, substring)] == [rel]
        assert _search(client, question)[0]["file"] == rel
        body = _ask(daemon, question)
        assert body["citations"] and body["citations"][0]["file"] == rel, question
        assert body["citations"][0]["line_start"] == line


LOCATIONS = [  # question, file, line, page, the cited sentence's first words
    ("How do I back up a live SQLite database?", "databases/sqlite.md", 5, None, "Back up a"),
    ("How does the kettle descale best?", "text/plain.txt", 3, None, "The kettle descales"),
    ("Why are bicycle chains waxed?", "text/guide.rst", 4, None, "Chains last longer"),
    ("How often do tomatoes need watering?", "web/page.html", 6, None, "Tomatoes need deep"),
    ("Why prune the tomato suckers?", "web/page.html", 7, None, "Prune the suckers"),
    ("When does the hiring freeze end?", "report.pdf", 3, 3, "The freeze ends"),
]


def test_citations_point_at_the_line_and_page_of_the_sentence(
    notes_daemon: tuple[DaemonHandle, Client], tmp_path: Path
) -> None:
    """Markdown, text, reStructuredText, HTML (the source file's line) and PDF (page, and line
    within the page's text), through the HTTP API and `research ask` (JSON and text)."""
    daemon, client = notes_daemon
    for question, rel, line, page, words in LOCATIONS:
        body = _ask(daemon, question)
        cited = next(c for c in body["citations"] if c["text"].startswith(words))
        assert (cited["file"], cited["line_start"], cited.get("page")) == (rel, line, page)
        if page is None:  # the file's own line holds the sentence
            source = (tmp_path / "notes" / rel).read_text(encoding="utf-8").splitlines()
            assert words in source[line - 1]
        hit = next(h for h in _search(client, question) if h["file"] == rel)
        assert hit["page"] == page
        text = daemon.cli("ask", question)
        where = f"{rel} p. {page}:{line}" if page else f"{rel}:{line}"
        assert where in text.stdout.split("Sources", 1)[1], question


SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "scifact"


@pytest.mark.slow  # ~30 s: 50 asks, then the same questions on a fresh index
@pytest.mark.skipif(not SCIFACT.is_dir(), reason="needs shared/datasets/scifact")
def test_fifty_asks_never_cite_the_log_and_answer_as_a_fresh_index(
    daemon: DaemonHandle, tmp_path: Path
) -> None:
    """25 SciFact questions asked twice (50 asks, each logged and indexed before the next):
    no citation points at a daily log or HEARTBEAT.md, and every answer equals the answer of
    a fresh daemon that never chatted."""
    queries = [json.loads(line) for line in (SCIFACT / "queries.jsonl").read_text().splitlines()]
    judged = {line.split("\t")[0] for line in (SCIFACT / "qrels" / "test.tsv").read_text().split()}
    questions = [q["text"] for q in queries if q["_id"] in judged][:25]
    docs = tmp_path / "scifact"
    docs.mkdir()
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in list(fh)[:400]:
            doc = json.loads(line)
            text = f"# {doc['title']}\n\n{doc['text']}\n"
            (docs / f"{doc['_id']}.md").write_text(text, encoding="utf-8")

    def ask_all(handle: DaemonHandle, rounds: int) -> list[dict[str, Any]]:
        client = Client(handle.url)
        client.post("/api/memory/sources", {"path": str(docs)})
        client.post("/api/memory/reindex", {})
        answers = []
        for _ in range(rounds):
            for question in questions:
                answers.append(client.chat(question))
                client.post("/api/memory/reindex", {})  # the exchange is searchable at once
        return answers

    used = ask_all(daemon, 2)
    assert len(used) == 50
    cited = [c["file"] for a in used for c in a["citations"]]
    assert cited  # the questions do find abstracts
    assert not [f for f in cited if f.startswith("memory/") or f == "HEARTBEAT.md"]
    logged = Client(daemon.url).get("/api/memory/stats")["index"]["chunks_by_kind"]
    assert logged["log"] >= 50  # the exchanges are there, searchable on request
    fresh_home = tmp_path / "fresh"
    fresh_home.mkdir()
    env = {**daemon.env, "LOCALRESEARCH_HOME": str(fresh_home)}
    env["LOCALRESEARCH_SERVER__PORT"] = str(_free_port())
    fresh = DaemonHandle(fresh_home, int(env["LOCALRESEARCH_SERVER__PORT"]), env)
    fresh.start()
    try:
        first = ask_all(fresh, 1)
    finally:
        fresh.stop()
    for before, after in zip(first, used[25:], strict=True):
        assert (after["response"], after["citations"]) == (before["response"], before["citations"])
