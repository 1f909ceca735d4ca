"""The research-sessions API against the letter of specs/research-sessions-api.md, on the real
app: the spec's browser examples (a JSON string body that fetch sends as text/plain) work while
a cross-site form still cannot write; an unconfigured cloud model provider is refused before
any connection; only the spec's statuses (400 for a call out of order, 500 for a failing
provider); refine at every stage; unknown paths are not "session not found"."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from localresearch.loopback import is_loopback_host
from localresearch.server.keys import RUNTIME
from localresearch.server.security import GUARD
from tests.fakes.servers import FakeServer, json_reply

API = "/api/research/sessions"
TOPIC = "How does SQLite keep readers and a writer apart?"
PLAIN = "text/plain;charset=UTF-8"  # what fetch sends for a string body without Content-Type


def _notes(tmp_path: Path) -> str:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "sqlite.md").write_text(
        "# SQLite\n\nSQLite keeps a whole database in one file.\n\n"
        "## WAL\n\nWAL mode lets readers continue while one writer commits.\n\n"
        "## Locking\n\nIn rollback mode a writer takes an exclusive lock on the file.\n",
        encoding="utf-8",
    )
    return f"[memory]\npaths = [{json.dumps(str(notes))}]\nwatch = false\n"


async def _client(make_client: Any, tmp_path: Path, write_config: Any, extra: str = "") -> Any:
    write_config(_notes(tmp_path) + extra)
    client = await make_client()
    await client.app[RUNTIME].memory.wait_ready()
    return client


def _origin(client: Any) -> str:
    return f"http://127.0.0.1:{client.app[GUARD].port}"


async def _session(client: Any, settings: dict[str, Any] | None = None) -> str:
    created = await (await client.post(API, json={"settings": settings or {}})).json()
    assert created["success"], created
    return str(created["data"]["sessionId"])


async def _detail(client: Any, session: str) -> dict[str, Any]:
    answer = await (await client.get(f"{API}/{session}")).json()
    return dict(answer["data"])


async def _refused(response: Any, status: int, code: str) -> dict[str, Any]:
    body = await response.json()
    assert (response.status, body["success"]) == (status, False), body
    assert set(body["error"]) == {"message", "code", "details"}, body
    assert body["error"]["code"] == code and body["error"]["message"], body
    return dict(body["error"])


# -- 1. text/plain bodies -------------------------------------------------------------------


async def test_the_specs_browser_examples_send_text_plain_and_are_accepted(
    tmp_path: Path, write_config: Any, make_client: Any
) -> None:
    client = await _client(make_client, tmp_path, write_config)
    same_site = {"Origin": _origin(client), "Content-Type": PLAIN}
    # "After (Session-based)": create and submit the topic with a string body.
    created = await client.post(API, data=json.dumps({"settings": {"provider": "builtin"}}),
                                headers=same_site)  # fmt: skip
    assert created.status == 201, await created.text()
    session = (await created.json())["data"]["sessionId"]
    asked = await client.post(f"{API}/{session}/questions", data=json.dumps({"topic": TOPIC}),
                              headers=same_site)  # fmt: skip
    assert asked.status == 200, await asked.text()
    assert (await asked.json())["data"]["phase"] == "questions"
    # A key header is as good a sign as an Origin that no HTML form sent it.
    local = (client.app[RUNTIME].paths.state_dir / "credential").read_text().strip()
    keyed = {"Authorization": f"Bearer {local}", "Content-Type": "text/plain"}
    fed = await client.post(f"{API}/{session}/feedback", data=json.dumps({"feedback": "WAL"}),
                            headers=keyed)  # fmt: skip
    assert fed.status == 200, await fed.text()
    # "Before (Legacy)": POST /api/sse with a string body streams the whole flow.
    legacy = await client.post("/api/sse", data=json.dumps({"query": TOPIC}), headers=same_site)
    assert legacy.status == 200, await legacy.text()
    text = (await legacy.read()).decode()
    assert text.startswith("event: connected") and "event: final-report" in text
    # The byte-level checks stay: strict UTF-8, a UTF-8 charset, a JSON object, the size limit.
    at = f"{API}/{session}/feedback"
    latin = await client.post(at, data='{"feedback": "caf\xe9"}'.encode("latin-1"),
                              headers=same_site)  # fmt: skip
    await _refused(latin, 400, "INVALID_REQUEST")
    other_charset = {**same_site, "Content-Type": "text/plain;charset=iso-8859-1"}
    await _refused(await client.post(at, data=b'{"feedback": "x"}', headers=other_charset),
                   415, "INVALID_REQUEST")  # fmt: skip
    await _refused(await client.post(at, data=b"feedback=x", headers=same_site),
                   400, "INVALID_REQUEST")  # fmt: skip
    huge = io.BytesIO(json.dumps({"feedback": "x" * (1024 * 1024)}).encode())
    await _refused(await client.post(at, data=huge, headers=same_site), 413, "INVALID_REQUEST")
    assert (await _detail(client, session))["feedback"] == "WAL"
    # Other APIs keep requiring application/json.
    chat = await client.post("/api/chat", data=json.dumps({"message": "hi"}), headers=same_site)
    assert chat.status == 415, await chat.text()


async def test_a_cross_site_text_plain_post_is_still_refused(
    tmp_path: Path, write_config: Any, make_client: Any
) -> None:
    """The classic CSRF form (enctype=text/plain, no preflight) cannot write a session."""
    client = await _client(make_client, tmp_path, write_config)
    session = await _session(client)
    body = json.dumps({"topic": TOPIC})
    at = f"{API}/{session}/questions"
    for headers in (
        {"Origin": "https://evil.example", "Content-Type": "text/plain"},
        {"Origin": "null", "Content-Type": PLAIN},
        {"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
    ):
        await _refused(await client.post(at, data=body, headers=headers), 403, "ACCESS_DENIED")
    # A form from a browser that sends neither Origin nor Sec-Fetch-Site: not read as JSON.
    bare = await client.post(at, data=body, headers={"Content-Type": "text/plain"})
    await _refused(bare, 415, "INVALID_REQUEST")
    legacy = await client.post("/api/sse", data=json.dumps({"query": TOPIC}),
                               headers={"Origin": "https://evil.example",
                                        "Content-Type": "text/plain"})  # fmt: skip
    await _refused(legacy, 403, "ACCESS_DENIED")
    detail = await _detail(client, session)
    assert detail["phase"] == "topic" and detail["topic"] == ""


# -- 2. model providers ---------------------------------------------------------------------


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every host name the daemon looks up; one beyond this machine fails as if offline."""
    seen: list[str] = []
    original = asyncio.base_events.BaseEventLoop.getaddrinfo

    async def getaddrinfo(self: Any, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host or "")
        seen.append(name)
        if name and not is_loopback_host(name):
            raise OSError(f"test: no network to {name}")
        return await original(self, host, port, *args, **kwargs)

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "getaddrinfo", getaddrinfo)
    return seen


async def test_an_unconfigured_cloud_provider_is_refused_before_any_connection(
    tmp_path: Path, write_config: Any, make_client: Any, lookups: list[str]
) -> None:
    client = await _client(make_client, tmp_path, write_config)
    for settings in ({"provider": "openai"}, {"provider": "anthropic"},
                     {"provider": "openai", "thinkingModel": "gpt-4o"}):  # fmt: skip
        error = await _refused(await client.post(API, json={"settings": settings}),
                               400, "INVALID_REQUEST")  # fmt: skip
        assert error["details"]["field"] == "settings.provider", error
        assert "builtin" in error["details"]["choices"]
        assert "openai" not in error["details"]["choices"]
        assert "anthropic" not in error["details"]["choices"]
    assert "not configured" in error["message"] and "api.openai.com" in error["message"]
    assert not [host for host in lookups if not is_loopback_host(host)], lookups
    assert await (await client.get(API)).json() == {"success": True, "data": []}


async def test_a_provider_unconfigured_after_the_session_was_made_is_refused_before_use(
    tmp_path: Path,
    write_config: Any,
    make_client: Any,
    fake_server: FakeServer,
    lookups: list[str],
    paths: Any,
) -> None:
    openai = f'\n[llm]\nprovider = "openai"\nmodel = "gpt-4o"\nbase_url = "{fake_server.url}/v1"\n'
    fake_server.queue("/v1/models", json_reply({"data": [{"id": "gpt-4o"}]}))
    client = await _client(make_client, tmp_path, write_config, openai)
    session = await _session(client, {"provider": "openai"})
    from localresearch.config import load_config

    write_config(_notes_again(tmp_path))  # [llm] back to the builtin default
    client.app[RUNTIME].apply_config(load_config(paths.config_file))
    error = await _refused(
        await client.post(f"{API}/{session}/questions", json={"topic": TOPIC}),
        400, "INVALID_REQUEST",
    )  # fmt: skip
    assert error["details"]["field"] == "settings.provider"
    assert not [r for r in fake_server.requests if r.path.endswith("/chat/completions")]
    assert not [host for host in lookups if not is_loopback_host(host)], lookups
    assert (await _detail(client, session))["phase"] == "topic"


def _notes_again(tmp_path: Path) -> str:
    notes = tmp_path / "notes"
    return f"[memory]\npaths = [{json.dumps(str(notes))}]\nwatch = false\n"


async def test_a_provider_failing_mid_flow_is_a_500_not_a_502(
    tmp_path: Path, write_config: Any, make_client: Any, port: int
) -> None:
    closed = f"http://127.0.0.1:{port}/v1"  # nothing listens there
    client = await _client(
        make_client, tmp_path, write_config,
        f'\n[llm]\nprovider = "openai"\nmodel = "m"\nbase_url = "{closed}"\nmax_retries = 0\n',
    )  # fmt: skip
    session = await _session(client, {"provider": "openai"})
    answer = await client.post(f"{API}/{session}/questions", json={"topic": TOPIC})
    error = await _refused(answer, 500, "INTERNAL_ERROR")
    assert error["message"].startswith("The model provider failed: ")
    assert "cannot connect" in error["message"]


# -- 3. phases and refine -------------------------------------------------------------------


async def test_calls_out_of_order_are_400_with_the_phases(
    tmp_path: Path, write_config: Any, make_client: Any
) -> None:
    client = await _client(make_client, tmp_path, write_config)
    session = await _session(client)
    for step, body in (("feedback", {"feedback": "x"}), ("plan", None), ("execute", None)):
        error = await _refused(await client.post(f"{API}/{session}/{step}", json=body),
                               400, "INVALID_REQUEST")  # fmt: skip
        assert error["details"]["phase"] == "topic" and error["details"]["expectedPhase"]
    refine = {"phase": "feedback", "refinement": "WAL only"}  # no questions to answer yet
    error = await _refused(await client.post(f"{API}/{session}/refine", json=refine),
                           400, "INVALID_REQUEST")  # fmt: skip
    assert error["details"] == {"phase": "topic",
                                "expectedPhase": ["questions", "feedback", "planning"]}  # fmt: skip
    assert (await _detail(client, session))["phase"] == "topic"


async def test_refine_at_every_stage_redoes_that_stage_with_the_refinement(
    tmp_path: Path, write_config: Any, make_client: Any
) -> None:
    client = await _client(make_client, tmp_path, write_config)
    session = await _session(client)

    async def refine(phase: str, refinement: str) -> dict[str, Any]:
        body = {"phase": phase, "refinement": refinement}
        answer = await (await client.post(f"{API}/{session}/refine", json=body)).json()
        assert answer["success"], (phase, answer)
        assert answer["data"] == {"sessionId": session, "phase": phase,
                                  "message": "Session refined successfully"}  # fmt: skip
        return await _detail(client, session)

    # The spec's own example on a new session: questions about the refinement.
    detail = await refine("questions", "SQLite WAL mode and readers")
    assert detail["phase"] == "questions" and detail["topic"] == "SQLite WAL mode and readers"
    assert detail["questions"].startswith("1. ")
    # Feedback while the session is in questions: the refinement is the feedback.
    detail = await refine("feedback", "Focus on WAL")
    assert (detail["phase"], detail["feedback"]) == ("feedback", "Focus on WAL")
    # Planning while the session is in feedback: the plan, written with the refinement.
    detail = await refine("planning", "exclude locking")
    assert detail["phase"] == "planning" and detail["reportPlan"].startswith("# Research Plan")
    assert detail["feedback"] == "Focus on WAL\nexclude locking"
    first_plan = detail["reportPlan"]
    detail = await refine("planning", "a brief overview")
    assert detail["reportPlan"] != first_plan and "a brief overview" in detail["feedback"]
    # Back to the questions from planning: asked again with the refinement as guidance; the
    # steps after it are taken again (plan needs feedback first).
    before = detail["questions"]
    detail = await refine("questions", "rollback journal locking")
    assert detail["phase"] == "questions" and detail["questions"] != before
    assert detail["topic"] == "SQLite WAL mode and readers"
    error = await _refused(await client.post(f"{API}/{session}/plan"), 400, "INVALID_REQUEST")
    assert error["details"]["expectedPhase"] == ["feedback", "planning"]
    # And then the flow goes on as usual to the report.
    for step, body in (("feedback", {"feedback": "Focus on WAL"}), ("plan", None),
                       ("execute", None)):  # fmt: skip
        answer = await (await client.post(f"{API}/{session}/{step}", json=body)).json()
        assert answer["success"], (step, answer)
    assert (await _detail(client, session))["phase"] == "completed"


# -- 4. unknown paths and methods -----------------------------------------------------------


async def test_an_unknown_path_is_not_a_missing_session(
    tmp_path: Path, write_config: Any, make_client: Any
) -> None:
    client = await _client(make_client, tmp_path, write_config)
    session = await _session(client)
    error = await _refused(await client.get(f"{API}/{session}/bogus"), 404, "NOT_FOUND")
    assert "Unknown path" in error["message"] and "/bogus" in error["message"]
    error = await _refused(await client.get(f"{API}/no-such-session"), 404, "SESSION_NOT_FOUND")
    wrong = await client.patch(f"{API}/{session}", json={})
    error = await _refused(wrong, 405, "METHOD_NOT_ALLOWED")
    assert "PATCH" in error["message"] and set(wrong.headers["Allow"].split(",")) == {
        "GET",
        "DELETE",
    }
    assert (await _detail(client, session))["phase"] == "topic"


# -- 5. languageNote ------------------------------------------------------------------------


async def test_the_language_note_does_not_claim_a_language_was_sent(
    tmp_path: Path, write_config: Any, make_client: Any
) -> None:
    client = await _client(make_client, tmp_path, write_config)
    created = await (await client.post(API, json={})).json()
    note = created["data"]["languageNote"]
    assert "cannot translate" in note and "not in settings.language" not in note
    assert "'en' by default" in note
    german = await (await client.post(API, json={"settings": {"language": "de"}})).json()
    assert "not in settings.language 'de'" in german["data"]["languageNote"]


# -- /openapi.json --------------------------------------------------------------------------


async def test_openapi_describes_text_plain_bodies_and_only_the_specs_statuses(
    make_client: Any,
) -> None:
    client = await make_client()
    document = await (await client.get("/openapi.json")).json()
    ops: Callable[[str], dict[str, Any]] = lambda path: document["paths"][path]  # noqa: E731
    questions = ops(f"{API}/{{sessionId}}/questions")["post"]
    assert set(questions["requestBody"]["content"]) == {"application/json", "text/plain"}
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            if "research-sessions" in op["tags"]:
                assert not {"409", "502"} & set(op["responses"]), (method, path)
    chat = ops("/api/chat")["post"]
    assert set(chat["requestBody"]["content"]) == {"application/json"}
    assert "502" in chat["responses"]
