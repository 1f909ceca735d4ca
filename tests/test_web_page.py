"""The page at `/` on the real app: its files and headers, the file view's confinement, and
sign-in with a one-time link (no browser needed; tests/test_web_browser.py drives one)."""

from __future__ import annotations

import json
import tomllib
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from localresearch.config import load_config
from localresearch.server.app import make_app
from localresearch.server.keys import RUNTIME
from localresearch.server.routes.web import bundle_version
from localresearch.server.websession import WEB_SESSIONS
from tests.daemon_fixture import DaemonHandle

STATIC = resources.files("localresearch.web").joinpath("static")
PAGE_FILES = ["index.html", "app.js", "app.css", "api.js", "md.js", "icon.svg"]


def _assert_page_headers(headers: Any) -> None:
    csp = headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no other origin
    assert "unsafe" not in csp and "http" not in csp
    assert directives["frame-ancestors"] == "'none'"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"


async def test_the_page_and_its_files_come_with_strict_headers(make_client: Any) -> None:
    client = await make_client()
    page = await client.get("/")
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    _assert_page_headers(page.headers)
    assert page.headers["Cache-Control"] == "no-cache"
    html = await page.text()
    version = bundle_version()
    assert f'<script type="module" src="/static/{version}/app.js">' in html
    assert "__VERSION__" not in html
    # This version's files may be kept for good; another version's are checked each time.
    kept = await client.get(f"/static/{version}/app.css")
    assert kept.status == 200 and "immutable" in kept.headers["Cache-Control"]
    _assert_page_headers(kept.headers)
    old = await client.get("/static/0123456789ab/app.css")
    assert old.status == 200 and old.headers["Cache-Control"] == "no-cache"
    assert await old.read() == await kept.read()
    # No inline script and nothing loaded from another origin.
    assert "<script>" not in html and "onclick=" not in html and "//cdn" not in html
    for name, kind in [("app.js", "text/javascript"), ("app.css", "text/css"), ("md.js", "text/")]:
        resp = await client.get(f"/static/{name}")
        assert resp.status == 200, name
        assert resp.headers["Content-Type"].startswith(kind)
        _assert_page_headers(resp.headers)
        assert await resp.read() == STATIC.joinpath(name).read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/static/nope.js",
        "/static/..%2Fapp.py",
        "/static/.hidden.js",
        "/static/app.py",
        "/static/x/..%2F..%2Fapp.py",
        "/static/x/__init__.py",
    ],
)
async def test_unknown_or_escaping_page_files_are_404_envelopes(
    make_client: Any, path: str
) -> None:
    client = await make_client()
    resp = await client.get(path)
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"


def test_the_page_is_small_and_has_no_inline_script() -> None:
    names = [p.name for p in STATIC.iterdir()]
    code = [n for n in names if n.endswith((".js", ".css"))]
    assert {"app.js", "app.css"} <= set(code)
    total = sum(len(STATIC.joinpath(n).read_bytes()) for n in code)
    assert total <= 300 * 1024, total
    for name in code:
        text = STATIC.joinpath(name).read_text()
        assert "http://" not in text and "https://cdn" not in text, name
        assert "eval(" not in text and "new Function" not in text, name


def test_package_data_declares_every_page_file() -> None:
    """`pip install .` (not editable) ships what pyproject's package-data globs match."""
    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["localresearch"]
    package = root / "localresearch"
    shipped = {p for pattern in patterns for p in package.glob(pattern)}
    files = [p for p in (package / "web" / "static").iterdir() if p.is_file()]
    assert {p.name for p in files} >= set(PAGE_FILES)
    assert set(files) <= shipped


# -- the file view ---------------------------------------------------------------------------


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "wal.md").write_text("".join(f"line {n}\n" for n in range(1, 101)), encoding="utf-8")
    return folder


async def _with_source(make_client: Any, folder: Path) -> Any:
    client = await make_client()
    resp = await client.post("/api/memory/sources", json={"path": str(folder)})
    assert resp.status == 201
    return client


async def test_the_file_view_shows_the_cited_lines_with_context(
    make_client: Any, notes: Path
) -> None:
    client = await _with_source(make_client, notes)
    resp = await client.get(
        "/api/memory/file", params={"path": str(notes / "wal.md"), "line": "50", "end": "52"}
    )
    assert resp.status == 200
    view = await resp.json()
    assert view["file"] == "wal.md" and view["source"] == str(notes)
    assert (view["line_start"], view["line_end"], view["total_lines"]) == (50, 52, 100)
    assert view["first_line"] == 10 and len(view["lines"]) == 83  # 40 lines either side
    assert view["lines"][50 - view["first_line"]] == "line 50"
    # A path relative to a source works too; the window is cut at the file's ends.
    near_end = await (
        await client.get(
            "/api/memory/file", params={"path": "wal.md", "line": "99", "context": "5"}
        )
    ).json()
    assert near_end["first_line"] == 94 and near_end["lines"][-1] == "line 100"


async def test_the_file_view_refuses_everything_outside_the_sources(
    make_client: Any, notes: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password=hunter2\n", encoding="utf-8")
    (notes / "link.md").symlink_to(secret)
    (notes / "dirlink").symlink_to(tmp_path)
    client = await _with_source(make_client, notes)
    refused = {
        f"{notes}/../secret.txt": 403,  # `..` out of the source
        "../secret.txt": 403,  # relative, resolved against each source
        str(secret): 403,  # absolute, outside every source
        str(notes / "link.md"): 403,  # a symlink inside pointing out
        str(notes / "dirlink" / "secret.txt"): 403,  # through a symlinked folder
        "/etc/passwd": 403,
        str(notes / "missing.md"): 404,
        str(notes): 404,  # a folder is no file
    }
    for path, status in refused.items():
        resp = await client.get("/api/memory/file", params={"path": path})
        body = await resp.json()
        assert resp.status == status, (path, body)
        assert body["error"]["code"] == ("forbidden" if status == 403 else "not_found")
        assert "hunter2" not in json.dumps(body)
    for query in ({}, {"path": ""}, {"path": str(notes / "wal.md"), "line": "x"}):
        resp = await client.get("/api/memory/file", params=query)
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "invalid_request"


async def test_the_file_view_numbers_a_pdf_as_the_index_does(make_client: Any, notes: Path) -> None:
    from tests.memory_helpers import make_pdf

    (notes / "paper.pdf").write_bytes(make_pdf([["Alpha line", "Beta line"], ["Gamma line"]]))
    client = await _with_source(make_client, notes)
    memory = client.app[RUNTIME].memory
    await memory.reindex()
    hits = await memory.search("gamma", 1)
    assert hits and hits[0].file == "paper.pdf"
    assert hits[0].page == 2
    params = {"path": hits[0].path, "line": str(hits[0].line_start), "page": str(hits[0].page)}
    view = await (await client.get("/api/memory/file", params=params)).json()
    assert view["page"] == 2
    assert view["lines"][view["line_start"] - view["first_line"]].strip() == "Gamma line"
    params["page"] = "3"  # no such page
    assert (await client.get("/api/memory/file", params=params)).status == 404


# -- sign-in ---------------------------------------------------------------------------------


async def test_a_one_time_link_signs_in_once(make_client: Any) -> None:
    client = await make_client()
    issued = await client.post("/api/web/token")
    assert issued.status == 201
    url = (await issued.json())["url"]
    token = url.split("token=", 1)[1]
    first = await client.get(f"/web/signin?token={token}", allow_redirects=False)
    assert first.status == 303 and first.headers["Location"] == "/"
    _assert_page_headers(first.headers)
    assert first.headers["Referrer-Policy"] == "no-referrer"  # the token never leaks onward
    cookie = first.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    again = await client.get(f"/web/signin?token={token}", allow_redirects=False)
    assert again.status == 303 and again.headers["Location"] == "/?signin=expired"
    assert "Set-Cookie" not in again.headers
    forged = await client.get("/web/signin?token=forged", allow_redirects=False)
    assert forged.headers["Location"] == "/?signin=expired"


async def test_an_expired_link_does_not_sign_in(make_client: Any) -> None:
    client = await make_client()
    sessions = client.app[WEB_SESSIONS]
    token = sessions.issue()
    for key in list(sessions._pending):
        sessions._pending[key] = 0.0  # its two minutes are over
    assert sessions.redeem(token) is None


async def test_a_page_on_another_origin_cannot_get_a_sign_in_link(make_client: Any) -> None:
    client = await make_client()
    resp = await client.post("/api/web/token", headers={"Origin": "http://evil.example.com"})
    assert resp.status == 403
    assert "token" not in await resp.text()


async def test_with_an_api_key_the_page_loads_and_asks_for_it(
    aiohttp_client: Any, paths: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEB_TEST_KEY", "k3y-for-the-page")
    config = load_config(paths.config_file, env={"LOCALRESEARCH_API__KEY_ENV": "WEB_TEST_KEY"})
    client = await aiohttp_client(make_app(config, paths))
    assert (await client.get("/")).status == 200  # the page itself holds no data
    assert (await client.get("/static/app.js")).status == 200
    assert (await client.get("/api/status")).status == 401
    assert (await client.post("/api/web/token")).status == 401  # a link needs the key
    bearer = {"Authorization": "Bearer k3y-for-the-page"}
    url = (await (await client.post("/api/web/token", headers=bearer)).json())["url"]
    signed = await client.get(url.split(str(client.port), 1)[1], allow_redirects=False)
    assert signed.status == 303
    # The session cookie alone now opens the API (the client's cookie jar keeps it).
    assert (await client.get("/api/status")).status == 200
    client.session.cookie_jar.clear()
    assert (await client.get("/api/status")).status == 401
    bogus = {"Cookie": f"{client.app[WEB_SESSIONS].cookie}=99999999999.deadbeef"}
    assert (await client.get("/api/status", headers=bogus)).status == 401


def test_research_web_prints_a_working_link(daemon: DaemonHandle) -> None:
    result = daemon.cli("web", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["opened"] is False and info["expires_in"] == 120
    assert info["url"].startswith(f"{daemon.url}/web/signin?token=")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as answer:
        opener.open(info["url"], timeout=10)
    assert answer.value.code == 303
    assert "HttpOnly" in answer.value.headers["Set-Cookie"]
    answer.value.close()
    plain = daemon.cli("web", "--no-open")
    assert plain.returncode == 0 and "/web/signin?token=" in plain.stdout


async def test_the_signed_in_page_runs_a_guided_session_with_its_own_tasks(
    aiohttp_client: Any, paths: Any, monkeypatch: pytest.MonkeyPatch, notes: Path
) -> None:
    """With keys required, the page's cookie alone drives the research-sessions API and its
    stream; the plan editor's PUT replaces the tasks, checking them first."""
    (notes / "vitd.md").write_text(
        "# Vitamin D\n\nVitamin D deficiency raises the risk of bone fractures in the elderly.\n"
        "Calcium with vitamin D lowers hip fractures.\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("WEB_TEST_KEY", "k3y-for-the-page")
    config = load_config(paths.config_file, env={"LOCALRESEARCH_API__KEY_ENV": "WEB_TEST_KEY"})
    app = make_app(config, paths)
    client = await aiohttp_client(app)
    await app[RUNTIME].wait_started()
    bearer = {"Authorization": "Bearer k3y-for-the-page"}
    assert (
        await client.post("/api/memory/sources", json={"path": str(notes)}, headers=bearer)
    ).status == 201
    api = "/api/research/sessions"
    assert (await client.post(api)).status == 401  # no cookie yet
    url = (await (await client.post("/api/web/token", headers=bearer)).json())["url"]
    await client.get(url.split(str(client.port), 1)[1], allow_redirects=False)

    async def ok(method: str, path: str, body: Any = None) -> Any:
        resp = await client.request(method, path, json=body)
        payload = await resp.json()
        assert resp.status in (200, 201) and payload["success"], payload
        return payload["data"]

    sid = (await ok("POST", api))["sessionId"]
    assert (await ok("POST", f"{api}/{sid}/questions", {"topic": "vitamin D and fractures"}))[
        "questions"
    ]
    edit = f"{api}/{sid}/plan"
    early = await client.put(edit, json={"tasks": [{"query": "q", "focus": "f"}]})
    assert early.status == 400  # no plan yet (a call out of order)
    await ok("POST", f"{api}/{sid}/feedback", {"feedback": "a brief overview"})
    await ok("POST", edit)
    for bad in ({"tasks": []}, {"tasks": [{"query": " ", "focus": "x"}]}, {"tasks": "no"}):
        resp = await client.put(edit, json=bad)
        assert resp.status == 400, bad
        assert (await resp.json())["error"]["code"] == "INVALID_REQUEST"
    mine = [
        {"query": "vitamin D hip fractures", "focus": "Hip fractures"},
        {"query": "calcium vitamin D elderly", "focus": "Calcium"},
    ]
    plan = await ok("PUT", edit, {"tasks": mine})
    assert plan["tasks"] == mine and plan["phase"] == "planning"
    assert "## 1. Hip fractures" in plan["reportPlan"] and "## 2. Calcium" in plan["reportPlan"]
    done = await ok("POST", f"{api}/{sid}/execute")
    assert [r["query"] for r in done["results"]] == [t["query"] for t in mine]
    assert "fracture" in done["finalReport"].lower()
    stream = await client.get(f"{api}/{sid}/stream")  # the cookie opens the stream too
    assert stream.status == 200
    text = await stream.text()
    assert "Plan edited: 2 tasks" in text and "event: final-report" in text
