"""The page in a real browser (Debian's Chromium driven by Playwright) against a real daemon
over a SciFact subset: ask, citations, deep research, memory, heartbeat, and the Origin guard.

Each test saves screenshots in its own tmp_path; figures (first paint, search latency) are
printed and written there as JSON. Skips when Playwright or Chromium is missing."""

from __future__ import annotations

import json
import os
import re
import statistics
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from tests.daemon_fixture import DaemonHandle
from tests.fakes.search_scifact import QUESTION, research_config, scifact_available, write_corpus
from tests.web_browser import api as _api
from tests.web_browser import docs_screenshot
from tests.web_browser import make_daemon as _daemon
from tests.web_browser import stop as _stop
from tests.web_browser import wait as _wait

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not scifact_available(), reason="SciFact data set not present"),
]

FIRST_PAINT_LIMIT_MS = 300
SEARCH_LIMIT_MS = 100
PAGE_BYTES_LIMIT = 300 * 1024  # JavaScript and CSS, uncompressed
STATIC = resources.files("localresearch.web").joinpath("static")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonHandle]:
    """A daemon on the builtin engine over ~170 SciFact abstracts, heartbeat on."""
    root = tmp_path_factory.mktemp("web")
    corpus = root / "corpus"
    write_corpus(corpus)
    config = research_config(corpus, dimensions=3, max_rounds=0)
    daemon = _daemon(root / "home", config, LOCALRESEARCH_HEARTBEAT__ENABLED="true")
    daemon.start()
    _wait(lambda: _api(daemon, "/api/memory/stats")["index"]["last_indexed"] is not None)
    yield daemon
    _stop(daemon)


def _first_paint(tab: Any, url: str) -> float:
    tab.goto(url)
    value = tab.evaluate(
        """() => new Promise((resolve) => {
            const found = performance.getEntriesByName("first-contentful-paint")[0];
            if (found) return resolve(found.startTime);
            new PerformanceObserver((list) => resolve(list.getEntries()[0].startTime))
              .observe({ type: "paint", buffered: true });
        })"""
    )
    return float(value)


def test_first_paint_ask_cite_and_sessions(page: Any, site: DaemonHandle, tmp_path: Path) -> None:
    first = _first_paint(page, f"{site.url}/")
    # The budget in bytes, as the browser got it: every script and stylesheet of the page.
    page.wait_for_selector("#status[data-state=ok]")  # app.js ran: all its modules are in
    loaded = page.evaluate(
        """() => performance.getEntriesByType("resource")
            .filter((e) => /[.](js|css)$/.test(new URL(e.name).pathname))
            .map((e) => [new URL(e.name).pathname.split("/").pop(), e.decodedBodySize])"""
    )
    on_disk = {
        f.name: len(f.read_bytes()) for f in STATIC.iterdir() if f.name.endswith((".js", ".css"))
    }
    assert dict(loaded) == on_disk
    assert sum(on_disk.values()) <= PAGE_BYTES_LIMIT
    ours = [_first_paint(page, f"{site.url}/?n={n}") for n in range(7)]
    # Baseline in the same run: a one-line page the browser gets without any network, in a
    # page of its own (routing a request turns the browser's cache off).
    other = page.context.new_page()
    other.route(
        "http://baseline.test/**", lambda r: r.fulfill(body="<p>x</p>", content_type="text/html")
    )
    baseline = [_first_paint(other, f"http://baseline.test/?n={n}") for n in range(7)]
    other.close()
    figures = {"first_load_ms": first, "page_ms": ours, "baseline_ms": baseline}
    (tmp_path / "first_paint.json").write_text(json.dumps(figures))
    print("first paint of / (ms):", figures)
    # Timings on a shared machine swing with its load: the limit is held when the machine is
    # not overloaded (scripts/bench_web.py reports the figures with a same-run baseline).
    if os.getloadavg()[0] <= (os.cpu_count() or 1):
        assert statistics.median(ours) <= FIRST_PAINT_LIMIT_MS

    page.goto(f"{site.url}/#ask")
    page.wait_for_selector("#status[data-state=ok]")
    assert page.locator("#model option").first.inner_text().startswith("builtin/")
    page.fill("#question", "How does vitamin B12 deficiency affect homocysteine levels?")
    page.press("#question", "Enter")
    answer = page.locator(".msg.assistant.done")
    answer.wait_for()
    cited = answer.locator(".cites li")
    n_cited = cited.count()
    assert n_cited >= 1
    assert answer.locator(".md a.cite").count() >= 1
    assert "homocysteine" in answer.inner_text().lower()
    page.screenshot(path=str(tmp_path / "ask.png"))
    docs_screenshot(page, "web.png")

    label = cited.first.inner_text()  # e.g. "11705328.md:3"
    answer.locator(".md a.cite").first.click()
    page.wait_for_selector("#file-lines .hl")
    assert page.locator("#file-title").inner_text() == label
    line = int(label.rsplit(":", 1)[1].split("-")[0])
    assert page.locator("#file-lines .hl").first.get_attribute("data-line") == str(line)
    assert page.locator("#file-lines .hl").first.inner_text().strip()
    page.screenshot(path=str(tmp_path / "citation.png"))
    page.keyboard.press("Escape")  # the dialog closes from the keyboard
    assert not page.locator("#file-dialog").is_visible()

    # The exchange is a session: a new chat clears the log, the session brings it back.
    session = page.locator("#sessions .item").first
    assert "vitamin B12" in session.inner_text()
    page.click("#new-chat")
    assert page.locator(".msg").count() == 0
    session.click()
    page.wait_for_selector(".msg.user")
    assert page.locator(".msg.assistant .cites li").count() == n_cited


def test_keyboard_reaches_every_section(page: Any, site: DaemonHandle) -> None:
    page.goto(f"{site.url}/")
    page.wait_for_selector("#status[data-state=ok]")
    page.focus("#tab-ask")
    for name in ("research", "memory", "heartbeat"):
        page.keyboard.press("ArrowRight")
        assert page.evaluate("document.activeElement.id") == f"tab-{name}"
        assert page.locator(f"#panel-{name}").is_visible()
    # Every form control has a label a screen reader can announce.
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea")]
            .filter((el) => !el.labels?.length && !el.getAttribute("aria-label"))
            .map((el) => el.id)"""
    )
    assert unlabelled == []


def test_the_page_follows_the_system_dark_mode(
    browser: Any, site: DaemonHandle, tmp_path: Path
) -> None:
    colours = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(color_scheme=scheme, viewport={"width": 1280, "height": 800})
        tab = context.new_page()
        tab.goto(f"{site.url}/#research")
        tab.wait_for_selector("#status[data-state=ok]")
        colours[scheme] = tab.evaluate(
            "((s) => [s.backgroundColor, s.color])(getComputedStyle(document.body))"
        )
        tab.screenshot(path=str(tmp_path / f"{scheme}.png"))
        context.close()
    assert colours["light"] == ["rgb(246, 247, 249)", "rgb(29, 35, 48)"]
    assert colours["dark"] == ["rgb(18, 21, 27)", "rgb(228, 232, 239)"]


def test_deep_research_runs_live_to_completion(
    page: Any, site: DaemonHandle, tmp_path: Path
) -> None:
    page.goto(f"{site.url}/#research")
    page.fill("#deep-query", QUESTION)
    page.fill("#deep-rounds", "0")
    page.click("#deep-form button[type=submit]")
    page.wait_for_selector("#job[data-status=complete]", timeout=90_000)
    rows = page.locator("#dims tr")
    assert rows.count() == 3
    assert all(s == "done" for s in page.locator("#dims .state").all_inner_texts())
    assert "homocysteine" in page.locator("#report").inner_text().lower()
    page.screenshot(path=str(tmp_path / "research.png"), full_page=True)
    # A citation in the report, and a note in its Sources list, open the file at its lines.
    for link in ("#report a.cite", "#report a.file-link"):
        page.locator(link).first.click()
        page.wait_for_selector("#file-lines .hl")
        assert re.fullmatch(r"\d+\.md:\d+(-\d+)?", page.locator("#file-title").inner_text())
        page.keyboard.press("Escape")

    job_id = _api(site, "/api/research/deep?limit=1")["jobs"][0]["researchId"]
    status = _api(site, f"/api/research/deep/{job_id}/status")
    # Every stored event reached the page, none twice.
    assert page.get_attribute("#job", "data-events") == str(status["lastEventId"])

    with page.expect_download() as download:
        page.click("#job-export-md")
    exported = Path(download.value.path()).read_text(encoding="utf-8")
    assert exported.strip() == status["report"].strip()
    page.evaluate("window.print = () => { window.printed = document.body.dataset.print; }")
    page.click("#job-pdf")  # the print dialog, on the print view of this report
    assert page.evaluate("window.printed") == "job"
    page.emulate_media(media="print")
    assert (
        page.locator("#report").is_visible() and "Sources" in page.locator("#report").inner_text()
    )
    assert not page.locator("#dims").is_visible() and not page.locator("#jobs").is_visible()
    page.screenshot(path=str(tmp_path / "research-print.png"), full_page=True)
    page.emulate_media(media="screen")

    page.select_option("#job-filter", "complete")
    page.wait_for_function("() => document.querySelector('#jobs').innerText.includes('complete')")
    assert job_id in _ids_listed(site, "complete")
    page.select_option("#job-filter", "cancelled")
    page.wait_for_selector("#jobs li.muted")
    assert "No jobs with status cancelled" in page.locator("#jobs").inner_text()


TASK_LABELS = [("Task", " aspect"), ("Task", " search"), ("Remove task", "")]


def test_guided_research_questions_plan_live_progress_report_and_pdf(
    page: Any, site: DaemonHandle, tmp_path: Path
) -> None:
    """The research-sessions flow from the page: questions, answers, an edited plan, the run
    followed on the session's stream, the cited report, and its print view as a real PDF."""
    page.goto(f"{site.url}/#research")
    page.fill("#guided-topic", QUESTION)
    page.click("#guided-form button[type=submit]")
    page.wait_for_selector("#guided[data-phase=questions] #g-questions li")
    assert page.evaluate("document.activeElement.id") == "g-answers"
    page.keyboard.type("A brief overview, focus on folic acid. Exclude children.")
    page.focus("#g-make-plan")
    page.keyboard.press("Enter")  # every step is reachable from the keyboard
    page.wait_for_selector("#guided[data-phase=planning] #g-tasks li")
    assert page.locator("#g-tasks li").count() == 3  # "brief": three tasks
    page.fill("#g-focus-1", "Folate supplements")
    page.fill("#g-query-1", "folic acid supplementation homocysteine")
    page.get_by_role("button", name="Remove task 3").click()
    page.click("#g-add-task")
    assert page.evaluate("document.activeElement.getAttribute('placeholder')") == "aspect"
    page.keyboard.type("Vitamin B12")
    page.keyboard.press("Tab")
    page.keyboard.type("vitamin B12 deficiency homocysteine")
    edited = page.evaluate(
        """() => [...document.querySelectorAll("#g-tasks li")].map((li) =>
            li.querySelector(".query").value)"""
    )
    labels = page.evaluate(
        "() => [...document.querySelectorAll('#g-tasks input, #g-tasks button')]"
        ".map((el) => el.labels?.[0]?.textContent || el.getAttribute('aria-label'))"
    )  # a screen reader names each task by its place, after the edits too
    expected = [f"{kind} {n}{end}" for n in (1, 2, 3) for kind, end in TASK_LABELS]
    assert labels == expected
    page.screenshot(path=str(tmp_path / "guided-plan.png"), full_page=True)
    # The first connection to the session's stream drops after the first task's event: the
    # page reconnects with Last-Event-ID and gets the rest, none lost and none twice.
    cut: dict[str, Any] = {}
    resumed: list[str | None] = []

    def drop_once(route: Any) -> None:
        if cut:
            resumed.append(route.request.headers.get("last-event-id"))
            route.continue_()
            return
        response = route.fetch()
        frames = response.text().split("\n\n")
        k = next(i for i, f in enumerate(frames) if "Task 1 of" in f)
        cut["id"] = re.search(r"^id: (\d+)$", frames[k], re.M).group(1)  # type: ignore[union-attr]
        route.fulfill(response=response, body="\n\n".join(frames[: k + 1]) + "\n\n")

    page.route("**/api/research/sessions/*/stream", drop_once)
    page.click("#g-run")
    page.wait_for_selector("#guided[data-phase=completed][data-followed=done]", timeout=90_000)
    # Live progress came from the session's stream: one line per task, then the synthesis.
    log = page.locator("#g-log li").all_inner_texts()
    assert sum(line.startswith("Task ") for line in log) == 3, log
    assert "Writing the report" in log
    assert page.locator("#g-tasks li[data-state=done]").count() == 3
    assert page.locator("#g-run").is_disabled()  # a plan runs once
    assert resumed and resumed[0] == cut["id"]
    page.unroute("**/api/research/sessions/*/stream")
    report = page.locator("#g-report")
    assert int(page.get_attribute("#guided", "data-cited") or 0) >= 1
    assert "homocysteine" in report.inner_text().lower()
    assert report.locator("h3:has-text('Sources') + ol li").count() >= 1
    session = _api(site, "/api/research/sessions")["data"][0]
    results = _api(site, f"/api/research/sessions/{session['id']}/results")["data"]["results"]
    assert [r["query"] for r in results] == edited  # the edited plan is what ran
    page.screenshot(path=str(tmp_path / "guided.png"), full_page=True)
    docs_screenshot(page, "web-guided.png")
    report.locator("a.cite").first.click()  # a citation opens the note at its lines
    page.wait_for_selector("#file-lines .hl")
    assert re.fullmatch(r"\d+\.md:\d+(-\d+)?", page.locator("#file-title").inner_text())
    page.keyboard.press("Escape")

    # "PDF" opens the browser's print dialog on the print view (Save as PDF)...
    page.evaluate("window.print = () => { window.printed = document.body.dataset.print; }")
    page.click("#g-pdf")
    assert page.evaluate("window.printed") == "guided"
    # ...which shows the report and its sources, and nothing of the page around it.
    page.emulate_media(media="print")
    assert page.locator("#g-report").is_visible()
    for hidden in (".top", "#panel-research .side", "#g-step-plan", "#g-step-run", "#g-pdf"):
        assert not page.locator(hidden).is_visible(), hidden
    page.screenshot(path=str(tmp_path / "guided-print.png"), full_page=True)
    pdf = tmp_path / "guided.pdf"
    page.pdf(path=str(pdf))
    page.emulate_media(media="screen")
    assert pdf.read_bytes().startswith(b"%PDF-")
    text = " ".join(p.extract_text() for p in PdfReader(pdf).pages)
    words = " ".join(text.split())
    first = report.locator("p").first.inner_text().split()[:6]
    assert " ".join(first) in words and "Sources" in words
    assert "Clarifying questions" not in words and "Run research" not in words

    page.reload()  # the session is kept: opened again, it shows where it stands
    page.locator("#g-sessions .item").first.click()
    page.wait_for_selector("#guided[data-phase=completed] #g-report a.cite")
    assert (
        page.locator("#g-tasks .query").evaluate_all("(els) => els.map((e) => e.value)") == edited
    )
    assert page.locator("#g-run").is_disabled()


def _ids_listed(site: DaemonHandle, status: str) -> list[str]:
    return [j["researchId"] for j in _api(site, f"/api/research/deep?status={status}")["jobs"]]


def test_memory_search_as_you_type_and_add_a_source(
    page: Any, site: DaemonHandle, tmp_path: Path
) -> None:
    page.goto(f"{site.url}/#memory")
    page.wait_for_selector("#stats dd")
    timings = []
    for query in ("homocysteine", "folic acid", "vitamin D", "stem cell", "colorectal cancer"):
        page.fill("#search", "")
        page.type("#search", query, delay=20)
        page.wait_for_selector(f"#results[data-query='{query}']")
        assert page.locator("#results li").count() >= 1
        timings.append(float(page.get_attribute("#results", "data-ms") or "inf"))
    figures = {"search_after_debounce_ms": timings}
    (tmp_path / "search.json").write_text(json.dumps(figures))
    print("search results shown after the debounce:", figures)
    assert statistics.median(timings) <= SEARCH_LIMIT_MS  # request to results drawn
    page.screenshot(path=str(tmp_path / "memory.png"))

    page.locator("#results a.hit").first.click()
    page.wait_for_selector("#file-lines .hl")
    page.keyboard.press("Escape")

    page.fill("#source-path", str(tmp_path / "no-such-folder"))  # the daemon validates it
    page.click("#source-form button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('#reindex-label').innerText.includes('No such')"
    )
    extra = tmp_path / "more-notes"
    extra.mkdir()
    for n in range(300):
        (extra / f"note{n:03}.md").write_text(f"# Note {n}\n\nzanzibarite sample {n}\n")
    page.fill("#source-path", str(extra))
    page.click("#source-form button[type=submit]")
    page.wait_for_selector("#reindex-bar[data-state=done]")
    assert int(page.get_attribute("#reindex-bar", "data-progress") or 0) >= 1
    done = page.locator("#reindex-label").inner_text()  # "Done in 0.2 s: 301 added, …"
    assert int(done.split(" added")[0].rsplit(" ", 1)[1]) >= 300, done  # + today's chat log
    assert str(extra) in page.locator("#sources").inner_text()
    page.screenshot(path=str(tmp_path / "source-added.png"))
    page.fill("#search", "zanzibarite")
    page.wait_for_selector("#results[data-query='zanzibarite']")
    assert "note" in page.locator("#results").inner_text()

    # Remove asks first, naming the folder and how many files leave the index; Escape keeps it.
    remove = page.get_by_role("button", name=f"Remove {extra}")
    remove.click()
    dialog = page.locator("#confirm-dialog")
    dialog.wait_for()
    assert f"{extra}: Its 300 files leave the index" in dialog.inner_text()
    assert page.evaluate("document.activeElement.id") == "confirm-cancel"
    page.screenshot(path=str(tmp_path / "source-remove.png"))
    page.keyboard.press("Escape")
    assert not dialog.is_visible()
    assert str(extra) in page.locator("#sources").inner_text()
    assert str(extra) in [s["path"] for s in _api(site, "/api/memory/sources")["sources"]]
    remove.click()
    dialog.wait_for()
    page.keyboard.press("Tab")  # from Cancel to Remove, then Enter: all from the keyboard
    assert page.evaluate("document.activeElement.id") == "confirm-ok"
    page.keyboard.press("Enter")
    page.wait_for_function(
        "(p) => !document.querySelector('#sources').innerText.includes(p)", arg=str(extra)
    )
    assert "300 files" in page.locator("#reindex-label").inner_text()


def test_heartbeat_pause_resume_and_schedules(
    page: Any, site: DaemonHandle, tmp_path: Path
) -> None:
    page.goto(f"{site.url}/#heartbeat")
    page.wait_for_selector("#hb-state[data-status=active]")
    page.click("#hb-toggle")
    page.wait_for_selector("#hb-state[data-status=paused]")
    assert _api(site, "/api/heartbeat")["paused"] is True
    assert page.locator("#hb-toggle").inner_text() == "Resume"
    page.fill("#sched-every", "every fortnight")  # the daemon says what is wrong
    page.fill("#sched-question", "What did I note about folic acid?")
    page.click("#schedule-form button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('#hb-message').innerText.includes('fortnight')"
    )
    page.fill("#sched-every", "every 1d at 08:00")
    page.fill("#sched-question", "What did I note about folic acid?")
    page.click("#schedule-form button[type=submit]")
    page.wait_for_selector("#schedules tr:has-text('folic acid')")
    assert [s["text"] for s in _api(site, "/api/schedules")["schedules"]] == [
        "What did I note about folic acid?"
    ]
    page.screenshot(path=str(tmp_path / "heartbeat.png"))
    page.click("#hb-toggle")
    page.wait_for_selector("#hb-state[data-status=active]")
    assert _api(site, "/api/heartbeat")["paused"] is False
    page.get_by_role("button", name="Remove schedule: What did I note about folic acid?").click()
    page.wait_for_selector("#schedules td.muted")
    assert _api(site, "/api/schedules")["schedules"] == []


HOSTILE = (
    'From your notes: <img src=x onerror="window.pwned=1"> **WAL** keeps readers apart [1].\n\n'
    "[click](javascript:window.pwned=1) and <script>window.pwned=1</script> [2]\n\n"
    "The moon is made of cheese."
)


def _sse(*events: dict[str, Any]) -> str:
    return "".join(
        f"id: {n}\ndata: {json.dumps({**e, 'timestamp': 0})}\n\n"
        for n, e in enumerate(events, start=1)
    )


def _answered(page: Any, site: DaemonHandle, question: str, body: str) -> Any:
    """The page's answer once `body` (chat events, verbatim) has streamed in for `question`."""
    page.route(
        f"{site.url}/api/chat/stream",
        lambda r: r.fulfill(body=body, content_type="text/event-stream"),
    )
    page.goto(f"{site.url}/#ask")
    page.fill("#question", question)
    page.press("#question", "Enter")
    answer = page.locator(".msg.assistant.done")
    answer.wait_for()
    return answer


def test_answers_render_safely_with_pages_and_unsupported_sentences(
    page: Any, site: DaemonHandle, tmp_path: Path
) -> None:
    """Markup in an answer or a file name stays text; a PDF citation shows its page; sentences
    the daemon marks unsupported are listed (the chat event contract, answered verbatim)."""
    citations = [
        {
            "n": 1,
            "file": "paper.pdf",
            "line_start": 3,
            "line_end": 4,
            "page": 2,
            "path": "/nowhere/paper.pdf",
            "text": "WAL",
        },
        {
            "n": 2,
            "file": "<b>bold</b>.md",
            "line_start": 1,
            "line_end": 1,
            "path": "/nowhere/b.md",
            "text": "x",
        },
    ]
    sentences = [
        {"text": "From your notes:", "supported": False, "claim": False},
        {"text": "WAL keeps readers apart.", "supported": True, "claim": True},
        {"text": "The moon is made of cheese.", "supported": False, "claim": True},
    ]
    body = _sse(
        {"type": "start", "data": {"session_id": None, "model": "builtin/extractive"}},
        {"type": "delta", "data": {"text": HOSTILE}},
        {
            "type": "done",
            "data": {
                "response": HOSTILE,
                "model": "builtin/extractive",
                "citations": citations,
                "sentences": sentences,
            },
        },
    )
    answer = _answered(page, site, "hostile?", body)
    assert page.evaluate("window.pwned") is None
    assert answer.locator("img, script, [onerror]").count() == 0
    assert answer.locator("a[href^='javascript']").count() == 0
    text = answer.inner_text()
    assert '<img src=x onerror="window.pwned=1">' in text  # shown as text
    assert "paper.pdf:3-4 (page 2)" in text and "<b>bold</b>.md:1" in text
    assert answer.locator("strong").inner_text() == "WAL"
    unsupported = answer.locator(".unsupported li").all_inner_texts()
    assert unsupported == ["The moon is made of cheese."]  # "From your notes:" is no claim
    page.screenshot(path=str(tmp_path / "hostile.png"))


def test_the_quoted_paragraph_is_set_apart_and_says_why(page: Any, site: DaemonHandle) -> None:
    """A model's answer the notes do not back ends with the daemon's quoted paragraph: the page
    sets it apart and says why, from `done.evidence` (the chat event contract, verbatim)."""
    quote = "Readers never block writers in WAL mode."
    response = f"The moon is made of cheese.\n\n**Quoted from your notes**: {quote} [1]"
    citation = {"n": 1, "file": "wal.md", "line_start": 3, "line_end": 3, "path": "/n/wal.md"}
    body = _sse(
        {"type": "start", "data": {"session_id": None, "model": "openai/small"}},
        {"type": "delta", "data": {"text": response}},
        {
            "type": "done",
            "data": {
                "response": response,
                "model": "openai/small",
                "citations": [citation],
                "sentences": [
                    {"text": "The moon is made of cheese.", "supported": False, "claim": True},
                    {"text": quote, "supported": True, "claim": True, "quoted": True},
                ],
                "evidence": {"reason": "unsupported", "citations": [1]},
            },
        },
    )
    answer = _answered(page, site, "what about WAL?", body)
    quoted = answer.locator(".md p.quoted")
    assert quoted.count() == 1
    assert quoted.inner_text() == f"Quoted from your notes: {quote} [1]"
    why = answer.locator(".md p.quoted-why").inner_text()
    assert why == "Quoted verbatim because most of the model's answer is not in your notes."
    assert answer.locator(".md p").first.inner_text() == "The moon is made of cheese."
    assert "quoted" not in (answer.locator(".md p").first.get_attribute("class") or "")
    style = quoted.evaluate("p => getComputedStyle(p).borderLeftStyle")
    assert style == "solid"


REPORT_QUOTE = 'Readers never block writers in WAL mode <img src=x onerror="window.pwned=1">.'
QUOTED_REPORT = (
    "# WAL\n\nThe moon is made of cheese [1].\n\n"
    f"**Quoted from the sources**: {REPORT_QUOTE} [1]\n\n"
    "## Sources\n\n1. wal — `wal.md:3`\n"
)


def _json_route(body: Any) -> Any:
    return lambda r: r.fulfill(body=json.dumps(body), content_type="application/json")


def _assert_quoted_apart(root: Any) -> None:
    """The report in `root` shows its quoted paragraph set apart, its markup as text."""
    quoted = root.locator("p.quoted")
    assert quoted.count() == 1
    assert quoted.inner_text() == f"Quoted from the sources: {REPORT_QUOTE} [1]"
    assert quoted.locator("strong").inner_text() == "Quoted from the sources"
    assert quoted.locator("a.cite[data-n='1']").count() == 1  # its [1] still names the source
    assert quoted.locator("img").count() == 0
    assert root.locator("p.quoted-why").count() == 0  # a report's data gives no reason
    first = root.locator("p").first
    assert first.inner_text() == "The moon is made of cheese [1]."
    assert "quoted" not in (first.get_attribute("class") or "")
    style = quoted.evaluate(
        "p => [getComputedStyle(p).borderLeftStyle, getComputedStyle(p).fontStyle]"
    )
    assert style == ["solid", "italic"]


def test_reports_set_apart_the_paragraph_quoted_from_the_sources(
    page: Any, site: DaemonHandle, tmp_path: Path
) -> None:
    """A model's report the sources do not back ends with the daemon's quoted paragraph: both
    report views (a deep research job, a guided session) set it apart as an answer does. The
    job's events and report and the session are scripted, in their wire shapes."""
    job, session, query = "quoted-job", "quoted-session", "what about WAL?"
    events = _sse(
        {"type": "scope_started", "data": {"query": query}},
        {"type": "scope_complete", "data": {"dimensions": ["WAL"]}},
        {"type": "synthesis_started", "data": {}},
        *(
            {"type": "synthesis_delta", "data": {"text": part + "\n\n"}}
            for part in QUOTED_REPORT.split("\n\n")
        ),
        {"type": "done", "data": {"researchId": job, "status": "complete"}},
    )
    report = {
        "researchId": job,
        "query": query,
        "status": "complete",
        "partial": False,
        "markdown": QUOTED_REPORT,
        "sources": [{"title": "wal", "url": "", "location": "wal.md:3"}],
        "updatedAt": "2024-01-01T00:00:00Z",
        "usage": {},
    }
    summary = {
        "id": session,
        "phase": "completed",
        "topic": query,
        "createdAt": "2024-01-01T00:00:00Z",
        "updatedAt": "2024-01-01T00:00:00Z",
        "expiresAt": "2099-01-01T00:00:00Z",
    }
    detail = {
        **summary,
        "questions": "",
        "feedback": "",
        "reportPlan": "## 1. WAL\n\nSearch: WAL readers writers",
        "finalReport": QUOTED_REPORT,
        "progress": 100,
        "settings": {},
    }

    def start(route: Any) -> None:
        if route.request.method != "POST":
            return route.fallback()
        return _json_route({"researchId": job, "status": "queued"})(route)

    page.route(f"{site.url}/api/research/deep", start)
    page.route(
        f"{site.url}/api/research/deep/{job}",
        lambda r: r.fulfill(body=events, content_type="text/event-stream"),
    )
    page.route(f"{site.url}/api/research/deep/{job}/report?format=json", _json_route(report))
    sessions = f"{site.url}/api/research/sessions"
    page.route(sessions, _json_route({"success": True, "data": [summary]}))
    page.route(f"{sessions}/{session}", _json_route({"success": True, "data": detail}))

    page.goto(f"{site.url}/#research")
    page.fill("#deep-query", query)
    page.click("#deep-form button[type=submit]")
    page.wait_for_selector("#job[data-status=complete] #report a.cite")
    _assert_quoted_apart(page.locator("#report"))
    page.screenshot(path=str(tmp_path / "report-quoted.png"))

    page.locator("#g-sessions .item").first.click()
    page.wait_for_selector("#guided[data-phase=completed] #g-report a.cite")
    _assert_quoted_apart(page.locator("#g-report"))
    page.screenshot(path=str(tmp_path / "guided-quoted.png"))
    assert page.evaluate("window.pwned") is None


def test_another_origin_cannot_drive_the_daemon(page: Any, site: DaemonHandle) -> None:
    # The page's own origin: its WebSocket opens and answers.
    page.goto(f"{site.url}/")
    own = page.evaluate(_WS_PROBE, f"ws://127.0.0.1:{site.port}/api/ws")
    assert own == "pong"
    sessions_before = _api(site, "/api/sessions")["total"]
    for foreign in ("http://evil.example/", "http://localhost:9/"):
        page.route(
            foreign + "**", lambda r: r.fulfill(body="<p>elsewhere</p>", content_type="text/html")
        )
        page.goto(foreign)
        # Writes without a preflight: the Origin guard must refuse them.
        for path in ("/api/heartbeat/pause", "/api/sessions"):
            page.evaluate(
                "(url) => fetch(url, {method: 'POST', mode: 'no-cors'}).catch(() => null)",
                f"{site.url}{path}",
            )
        # Reads: the browser keeps the answer from the foreign page (no CORS headers).
        read = page.evaluate(
            "(url) => fetch(url).then(() => 'read').catch(() => 'blocked')",
            f"{site.url}/api/status",
        )
        assert read == "blocked"
        assert page.evaluate(_WS_PROBE, f"ws://127.0.0.1:{site.port}/api/ws") == "refused"
    assert _api(site, "/api/heartbeat")["paused"] is False
    assert _api(site, "/api/sessions")["total"] == sessions_before


_WS_PROBE = """(url) => new Promise((resolve) => {
  const ws = new WebSocket(url);
  ws.onopen = () => ws.send(JSON.stringify({ type: "ping" }));
  ws.onmessage = (m) => { resolve(JSON.parse(m.data).type); ws.close(); };
  ws.onerror = () => resolve("refused");
  setTimeout(() => resolve("timeout"), 5000);
})"""


_OUTSIDE = """() => [...document.querySelectorAll("button")]
  .filter((b) => b.checkVisibility())
  .map((b) => [b.id || b.getAttribute("aria-label") || b.textContent.trim(),
               b.getBoundingClientRect()])
  .filter(([, r]) => r.left < 0 || r.right > innerWidth || r.width === 0)
  .map(([name, r]) => `${name}: ${Math.round(r.left)}-${Math.round(r.right)}`)"""


def test_every_button_fits_a_phone_screen(browser: Any, site: DaemonHandle, tmp_path: Path) -> None:
    """At 390x844 every visible button of each section lies within the screen (rows wrap)."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    tab = context.new_page()
    try:
        tab.goto(f"{site.url}/#heartbeat")  # a schedule, so its row's Remove button shows
        tab.wait_for_selector("#status[data-state=ok]")
        tab.fill("#sched-every", "every 1d at 08:00")
        tab.fill("#sched-question", "A question long enough to fill the phone's narrow column")
        tab.click("#schedule-form button[type=submit]")
        tab.wait_for_selector("#schedules button")
        for name in ("ask", "research", "memory", "heartbeat"):
            tab.click(f"#tab-{name}")
            tab.wait_for_selector(f"#panel-{name}:not([hidden])")
            tab.wait_for_timeout(300)  # the section's lists are in
            if name == "research":  # both report views, every step shown
                tab.evaluate(
                    "() => document.querySelectorAll('#job, #guided, #guided .step')"
                    ".forEach((el) => { el.hidden = false; })"
                )
            tab.screenshot(path=str(tmp_path / f"phone-{name}.png"), full_page=True)
            assert tab.evaluate(_OUTSIDE) == [], name
            assert tab.evaluate("document.documentElement.scrollWidth") <= 390, name
        tab.get_by_role("button", name="Remove schedule: A question long enough").click()
        tab.wait_for_selector("#schedules td.muted")
    finally:
        context.close()


def test_a_stopped_daemon_is_said_at_once_and_the_page_recovers(
    browser: Any, tmp_path: Path
) -> None:
    """A request that cannot reach the daemon says it is not running and turns the status dot at
    once (not at the next 15 s poll); the page sees the daemon back within seconds."""
    corpus = tmp_path / "notes"
    corpus.mkdir()
    (corpus / "wal.md").write_text("# WAL\n\nReaders never block writers in WAL mode.\n")
    daemon = _daemon(tmp_path / "home", research_config(corpus, dimensions=3, max_rounds=0))
    daemon.start()
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    try:
        tab.goto(f"{daemon.url}/#ask")
        tab.wait_for_selector("#status[data-state=ok]")
        _stop(daemon)
        tab.fill("#question", "What about WAL?")
        tab.press("#question", "Enter")
        warn = tab.locator(".msg.assistant .warn")
        warn.wait_for(timeout=5_000)
        assert warn.inner_text() == (
            "The daemon is not running — start it with `research daemon start`."
        )
        assert tab.get_attribute("#status", "data-state") == "error"
        assert tab.locator("#status").inner_text() == "Daemon not running"
        tab.screenshot(path=str(tmp_path / "stopped.png"))
        tab.click("#tab-memory")
        tab.fill("#search", "WAL")
        tab.wait_for_function(
            "() => document.querySelector('#search-info').innerText.includes('daemon start')",
            timeout=5_000,
        )
        daemon.start()  # the page looks again every 3 s while the daemon is away
        tab.wait_for_selector("#status[data-state=ok]", timeout=10_000)
        tab.wait_for_selector("#stats dd")  # the open section's lists came back
    finally:
        context.close()
        _stop(daemon)


def test_the_open_job_is_in_the_url_and_other_tabs_follow(
    page: Any, site: DaemonHandle, tmp_path: Path
) -> None:
    """The job (or guided session) in view is in the URL, so a reload opens it again; a second
    tab's jobs list shows a job started in the first when it is seen again (and every 10 s)."""
    other = page.context.new_page()
    other.goto(f"{site.url}/#research")
    other.wait_for_selector("#status[data-state=ok]")
    query = "What do my notes say about folate and homocysteine in the elderly?"
    page.goto(f"{site.url}/#research")
    page.fill("#deep-query", query)
    page.fill("#deep-rounds", "0")
    page.click("#deep-form button[type=submit]")
    page.wait_for_function("() => /^#research[/][^/]+$/.test(location.hash)", timeout=90_000)
    job_id = page.url.rsplit("/", 1)[1]
    assert job_id in [j["researchId"] for j in _api(site, "/api/research/deep")["jobs"]]
    other.evaluate("window.dispatchEvent(new Event('focus'))")  # the tab is seen again
    other.wait_for_function(
        "(q) => document.querySelector('#jobs').innerText.includes(q)", arg=query, timeout=5_000
    )
    other.close()
    page.wait_for_selector("#job[data-status=complete]", timeout=90_000)
    page.click("#tab-ask")
    assert page.url.endswith("#ask")
    page.click("#tab-research")  # the job stays open, and in the URL
    assert page.url.endswith(f"#research/{job_id}")
    page.reload()
    page.wait_for_selector("#job[data-status=complete]")
    assert page.locator("#job-query").inner_text() == query
    assert page.url.endswith(f"#research/{job_id}")

    topic = "Vitamin B12 and homocysteine"
    page.fill("#guided-topic", topic)
    page.click("#guided-form button[type=submit]")
    page.wait_for_selector("#guided[data-phase=questions] #g-questions li")
    page.wait_for_function("() => /^#research[/]guided[/][^/]+$/.test(location.hash)")
    session = page.url.rsplit("/", 1)[1]
    page.reload()
    page.wait_for_selector("#guided[data-phase=questions] #g-questions li")
    assert page.locator("#g-topic").inner_text() == topic
    assert page.url.endswith(f"#research/guided/{session}") and page.locator("#job").is_hidden()
    page.click("#g-discard")
    page.wait_for_selector("#job-empty:not([hidden])")
    assert page.url.endswith("#research")
