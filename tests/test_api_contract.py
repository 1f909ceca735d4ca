"""The typed contract: every route is described, bad fields are named, /openapi.json is valid
OpenAPI 3.1 and matches docs/api.md, /docs renders offline."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from localresearch.api.base import convert, error_message
from localresearch.api.chat import ChatRequest
from localresearch.api.operations import PERMISSIONS, all_operations
from localresearch.errors import InvalidRequest

ROOT = Path(__file__).resolve().parents[1]


def test_every_route_is_an_operation_and_back(paths: Any, config: Any) -> None:
    from localresearch.server.app import make_app

    app = make_app(config, paths)
    served = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.method != "HEAD" and r.resource is not None
    }
    operations = all_operations()  # imported first or alone, the table is still whole
    described = {op.key for op in operations}
    assert served == described
    assert {op.permission for op in operations} <= set(PERMISSIONS)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Missing required parameter: message"),
        ({"message": None}, "Missing required parameter: message"),
        ({"message": 3}, "Parameter message must be a string (got int)"),
        ({"message": "hi", "include_memory": "yes"}, "Parameter include_memory must be a boolean"),
        ({"message": "hi", "session_id": ["x"]}, "Parameter session_id must be a string"),
    ],
)
def test_decode_errors_name_the_field(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        convert(body, ChatRequest)
    assert caught.value.message.startswith(message)


def test_query_values_convert_and_bounds_are_named() -> None:
    from localresearch.api.memory import SearchQuery

    assert convert({"q": "x", "limit": "7"}, SearchQuery, strict=False).limit == 7
    with pytest.raises(InvalidRequest, match=r"Parameter limit must be <= 1000"):
        convert({"q": "x", "limit": "5000"}, SearchQuery, strict=False)
    import msgspec

    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert({"q": "x", "limit": "many"}, SearchQuery, strict=False)
    assert error_message(caught.value) == "Parameter limit must be an integer (got str)"


async def test_bad_fields_over_http_are_400_in_the_envelope(make_client: Any) -> None:
    client = await make_client()
    cases = [
        ("POST", "/api/research/deep", {"query": "q", "dimensions": "four"}, "dimensions"),
        ("POST", "/api/research/deep", {"query": 5}, "query"),
        ("POST", "/api/schedules", {"every": "1d"}, "question"),
        ("POST", "/api/memory/sources", {"path": "/tmp", "glob": [1]}, "glob[0]"),
        ("POST", "/api/memory/reindex", {"force": "yes"}, "force"),
        ("POST", "/api/sessions", {"title": 7}, "title"),
    ]
    for method, path, body, name in cases:
        response = await client.request(method, path, json=body)
        assert response.status == 400, (path, body)
        error = (await response.json())["error"]
        assert error["code"] == "invalid_request" and name in error["message"], error
    for path, name in (
        ("/api/sessions?limit=abc", "limit"),
        ("/api/research/deep?status=sleeping", "status"),
        ("/api/research/deep?limit=0", "limit"),
        ("/api/research/deep/res_x/report?format=pdf", "format"),
    ):
        response = await client.get(path)
        assert response.status == 400, path
        assert name in (await response.json())["error"]["message"]


async def test_openapi_document_is_valid_3_1(make_client: Any) -> None:
    client = await make_client()
    response = await client.get("/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"] == "3.1.0"
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(document)
    chat = document["paths"]["/api/chat"]["post"]
    assert chat["x-permission"] == "chat"
    schema = document["components"]["schemas"]["ChatRequest"]
    assert schema["required"] == ["message"]
    job = document["components"]["schemas"]["JobStatus"]["properties"]
    assert "researchId" in job and "dimensionsTotal" in job  # the jobs API's wire names


async def test_docs_md_lists_exactly_the_documented_operations(make_client: Any) -> None:
    """docs/api.md and /openapi.json describe the same operations."""
    client = await make_client()
    document = await (await client.get("/openapi.json")).json()
    in_openapi = {
        (method.upper(), path) for path, methods in document["paths"].items() for method in methods
    }
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    in_docs: set[tuple[str, str]] = set()
    for heading in re.findall(r"^### (.+)$", text, flags=re.M):
        for method, path in re.findall(r"`(GET|POST|DELETE|PUT|PATCH) ([^`?]+)", heading):
            in_docs.add((method, path))
    assert in_docs == in_openapi


async def test_docs_page_renders_offline(make_client: Any) -> None:
    client = await make_client()
    response = await client.get("/docs")
    assert response.status == 200 and response.content_type == "text/html"
    page = await response.text()
    assert "/api/research/deep/{id}/status" in page and "JobStatus" in page
    assert not re.search(r"""(src|href)=["']?https?://""", page)  # nothing from a CDN
    assert "<script" not in page


def test_models_answer_item_access_with_wire_names() -> None:
    """Scripts written against the dicts of earlier clients keep working on the typed objects."""
    from localresearch.api.base import UNSET
    from localresearch.api.research import JobStarted, JobStatus

    started = JobStarted(research_id="res_1", status="started")
    assert started["researchId"] == started.research_id == "res_1"
    assert started.to_dict() == {"researchId": "res_1", "status": "started"}
    status = JobStatus(
        research_id="res_1", status="error", phase="done", dimensions_total=4,
        dimensions_complete=1, source_count=3, query="q", created_at="t", updated_at="t",
        finished_at=None, last_event_id=9, cancel_requested=False, error="boom",
    )  # fmt: skip
    assert status["dimensionsTotal"] == 4 and status.get("error") == "boom"
    assert "report" not in status and "error" in status and status.report is UNSET
    assert "report" not in status.to_dict() and status.to_dict()["finishedAt"] is None
    with pytest.raises(KeyError):
        status["nope"]
