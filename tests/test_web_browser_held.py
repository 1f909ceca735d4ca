"""The page in a real browser against daemons whose model is held at will (an OpenAI-format
server in a thread): a job followed across a daemon restart, cancel, stop; and sign-in when an
API key is configured."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_fixture import DaemonHandle
from tests.fakes.search_scifact import QUESTION, research_config, scifact_available, write_corpus
from tests.web_browser import api as _api
from tests.web_browser import make_daemon as _daemon
from tests.web_browser import stop as _stop
from tests.web_browser import wait as _wait

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not scifact_available(), reason="SciFact data set not present"),
]

DIMENSIONS = ["Folic acid", "Vitamin B12", "Heart disease"]


class HeldModel:
    """An OpenAI-compatible /v1/chat/completions that answers each research step (as in
    test_research_daemon) and holds the last dimension, and any chat saying "hold", until
    `release` is set."""

    def __init__(self) -> None:
        self.holding = threading.Event()
        self.release = threading.Event()

    def reply(self, prompt: str) -> tuple[str, str]:
        if "research dimensions" in prompt:
            return "scope", json.dumps({"dimensions": DIMENSIONS})
        if "\nDimension: " in prompt:
            dimension = prompt.split("\nDimension: ", 1)[1].split("\n", 1)[0]
            summary = f"{dimension} matters for homocysteine."
            body = {
                "summary": summary,
                "keyFinding": summary,
                "points": [{"text": summary, "source": 1}],
            }
            return dimension, json.dumps(body)
        if "still missing" in prompt:
            return "evaluate", json.dumps({"gaps": [], "newDimensions": []})
        if "please hold" in prompt:
            return "hold", "never sent"
        return "synthesis", "# Report\n\nFolic acid lowers homocysteine [1].\n"

    def serve(self) -> ThreadingHTTPServer:
        model = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                kind, text = model.reply(body["messages"][-1]["content"])
                if kind in (DIMENSIONS[-1], "hold") and not model.release.is_set():
                    model.holding.set()
                    model.release.wait(60)
                frames = [
                    {"choices": [{"index": 0, "delta": {"content": text[i : i + 16]}}]}
                    for i in range(0, len(text), 16)
                ]
                frames.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for frame in frames:
                        self.wfile.write(f"data: {json.dumps(frame)}\n\n".encode())
                    self.wfile.write(b"data: [DONE]\n\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the daemon stopped or cancelled while the answer was held

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[DaemonHandle, HeldModel]]:
    model = HeldModel()
    server = model.serve()
    corpus = tmp_path / "corpus"
    write_corpus(corpus, extra=40, queries=10)
    config = research_config(corpus, dimensions=3, max_rounds=1, dimension_concurrency=1)
    config += f'\n[llm]\nprovider = "openai"\nbase_url = "http://127.0.0.1:{server.server_port}"\n'
    daemon = _daemon(tmp_path / "home", config, LOCALRESEARCH_HEARTBEAT__ENABLED="false")
    daemon.start()
    yield daemon, model
    model.release.set()
    _stop(daemon)
    server.shutdown()
    server.server_close()


def test_a_job_survives_a_daemon_restart_and_another_is_cancelled(
    page: Any, held: tuple[DaemonHandle, HeldModel], tmp_path: Path
) -> None:
    daemon, model = held
    page.goto(f"{daemon.url}/#research")
    page.fill("#deep-query", QUESTION)
    page.click("#deep-form button[type=submit]")
    _wait(model.holding.is_set)
    page.wait_for_selector("#dims tr[data-state=done]")
    daemon.stop()  # the page keeps what it has and retries with Last-Event-ID
    page.wait_for_function(
        "() => document.querySelector('#job-phase').innerText.includes('reconnecting')"
    )
    page.screenshot(path=str(tmp_path / "reconnecting.png"))
    model.release.set()
    daemon.start()
    page.wait_for_selector("#job[data-status=complete]", timeout=60_000)
    job_id = _api(daemon, "/api/research/deep?limit=1")["jobs"][0]["researchId"]
    status = _api(daemon, f"/api/research/deep/{job_id}/status")
    assert page.get_attribute("#job", "data-events") == str(status["lastEventId"])
    assert all(s == "done" for s in page.locator("#dims .state").all_inner_texts())

    model.holding.clear()
    model.release.clear()
    page.fill("#deep-query", "What do my notes say about folate and heart disease?")
    page.click("#deep-form button[type=submit]")
    _wait(model.holding.is_set)
    page.wait_for_selector("#job[data-status=running]")
    page.click("#job-cancel")
    model.release.set()
    page.wait_for_selector("#job[data-status=cancelled]")
    page.screenshot(path=str(tmp_path / "cancelled.png"))
    second = _api(daemon, "/api/research/deep?limit=1")["jobs"][0]
    assert second["status"] == "cancelled"


def test_stop_ends_a_streaming_answer(page: Any, held: tuple[DaemonHandle, HeldModel]) -> None:
    daemon, model = held
    page.goto(f"{daemon.url}/#ask")
    page.fill("#question", "please hold while I think")
    page.click("#send")
    _wait(model.holding.is_set)
    assert page.locator("#stop").is_enabled()
    page.click("#stop")
    page.wait_for_selector(".msg.assistant :text('Stopped.')")
    assert page.locator("#send").is_enabled() and page.locator("#stop").is_disabled()


def test_with_an_api_key_the_page_signs_in_by_key_or_by_link(browser: Any, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write_corpus(corpus, extra=20, queries=5)
    daemon = _daemon(
        tmp_path / "home",
        research_config(corpus),
        LOCALRESEARCH_API__KEY_ENV="WEB_TEST_KEY",
        WEB_TEST_KEY="k3y-for-the-browser",
        LOCALRESEARCH_HEARTBEAT__ENABLED="false",
    )
    daemon.start()
    try:
        # The first index runs in the background: search once it is there, as a user would.
        _wait(
            lambda: (
                _api(daemon, "/api/memory/stats", key="k3y-for-the-browser")["index"][
                    "last_indexed"
                ]
                is not None
            )
        )
        context = browser.new_context()
        tab = context.new_page()
        tab.goto(f"{daemon.url}/#memory")
        tab.wait_for_selector("#login-dialog[open]")
        tab.fill("#login-key", "wrong")
        tab.press("#login-key", "Enter")
        tab.wait_for_function(
            "() => document.querySelector('#login-why').innerText.includes('not')"
        )
        tab.fill("#login-key", "k3y-for-the-browser")
        tab.press("#login-key", "Enter")
        tab.wait_for_selector("#status[data-state=ok]")
        assert not tab.locator("#login-dialog").is_visible()
        text = sorted(corpus.iterdir())[0].read_text()
        word = next(w for w in text.split() if w.isalpha() and len(w) >= 5)
        tab.fill("#search", word)  # fetches carry the key as a Bearer header
        tab.wait_for_selector(f"#results[data-query='{word}'] li")
        tab.click("#reindex")  # and so does the fetch-read event stream
        tab.wait_for_selector("#reindex-bar[data-state=done]")
        context.close()

        link = json.loads(daemon.cli("web", "--json").stdout)["url"]
        context = browser.new_context()
        tab = context.new_page()
        tab.goto(link)  # the one-time link: signed in by cookie, no key asked
        tab.wait_for_selector("#status[data-state=ok]")
        assert tab.url == f"{daemon.url}/#ask"
        assert not tab.locator("#login-dialog").is_visible()
        cookie = next(c for c in context.cookies() if c["name"].startswith("localresearch_"))
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        tab.goto(link)  # used up
        tab.wait_for_selector("#notice:not([hidden])")
        context.close()
    finally:
        _stop(daemon)
