"""Bounded fuzzing of the real daemon over HTTP with hypothesis: random bodies (JSON of any
shape, raw bytes, other encodings and content types), query strings, path ids and headers on
every route. Passes when no answer is a server error (5xx), every error is in the envelope,
and the daemon is healthy afterwards.

    python scripts/fuzz_http.py [--examples 400] [--seed 0]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any, ClassVar

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

ROUTES = [
    ("DELETE", "/api/memory/sources"),
    ("DELETE", "/api/research/deep/{id}"),
    ("DELETE", "/api/schedules/{id}"),
    ("DELETE", "/api/sessions/{id}"),
    ("GET", "/api/heartbeat"),
    ("GET", "/api/memory/search"),
    ("GET", "/api/memory/sources"),
    ("GET", "/api/memory/stats"),
    ("GET", "/api/models"),
    ("GET", "/api/research/deep"),
    ("GET", "/api/research/deep/{id}"),
    ("GET", "/api/research/deep/{id}/report"),
    ("GET", "/api/research/deep/{id}/status"),
    ("GET", "/api/schedules"),
    ("GET", "/api/sessions"),
    ("GET", "/api/sessions/{id}"),
    ("GET", "/api/status"),
    ("GET", "/health"),
    ("POST", "/api/chat"),
    ("POST", "/api/chat/stream"),
    ("POST", "/api/heartbeat/pause"),
    ("POST", "/api/heartbeat/resume"),
    ("POST", "/api/memory/reindex"),
    ("POST", "/api/memory/search"),
    ("POST", "/api/memory/sources"),
    ("POST", "/api/research/deep"),
    ("POST", "/api/schedules"),
    ("POST", "/api/sessions"),
    ("PUT", "/api/sessions"),
    ("PATCH", "/api/chat"),
]
FIELDS = [
    "message",
    "query",
    "path",
    "glob",
    "title",
    "model",
    "session_id",
    "sessionId",
    "dimensions",
    "rounds",
    "limit",
    "force",
    "every",
    "question",
    "kind",
    "priority",
    "include_memory",
    "type",
]
PARAMS = ["q", "limit", "offset", "status", "path", "format", "lastEventId"]

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=60),
    st.sampled_from(["", "\x00", "\ud800", "../../etc/passwd", "/tmp", "a" * 300, "💥"]),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
json_object = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), json_value, max_size=6)


@st.composite
def bodies(draw: Any) -> tuple[bytes | None, str | None]:
    kind = draw(
        st.sampled_from(["json", "json", "json", "bytes", "encoded", "deep", "bigint", "none"])
    )
    ctype = draw(
        st.sampled_from(
            [
                "application/json",
                "application/json",
                "application/json; charset=utf-8",
                "application/json; charset=latin-1",
                "text/plain",
                "application/x-www-form-urlencoded",
                None,
            ]
        )
    )
    if kind == "none":
        return None, ctype
    if kind == "bytes":
        return draw(st.binary(max_size=200)), ctype
    if kind == "deep":
        depth = draw(st.integers(60, 5000))
        return b'{"a": ' + b"[" * depth + b"]" * depth + b"}", ctype
    if kind == "bigint":
        digits = draw(st.integers(15, 6000))
        field = draw(st.sampled_from(FIELDS))
        return f'{{"{field}": {"9" * digits}}}'.encode(), ctype
    text = json.dumps(draw(json_object), ensure_ascii=draw(st.booleans()))
    if kind == "encoded":
        encoding = draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32", "latin-1"]))
        return text.encode(encoding, "replace"), ctype
    try:
        return text.encode("utf-8"), ctype
    except UnicodeEncodeError:  # a lone surrogate with ensure_ascii=False: send it raw
        return text.encode("utf-8", "surrogatepass"), ctype


path_ids = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=30),
    st.sampled_from(["res_0", "9" * 30, "a" * 3000, "%00", "..", "%2e%2e"]),
)
queries = st.dictionaries(
    st.sampled_from(PARAMS) | st.text(max_size=5),
    st.one_of(st.text(max_size=40), st.sampled_from(["\x00", "-1", "9" * 40, "1e3", ""])),
    max_size=4,
)
extra_headers = st.dictionaries(
    st.sampled_from(["Last-Event-ID", "Accept", "Origin", "X-Junk"]),
    st.one_of(
        st.sampled_from(["9223372036854775808", "-1", "text/event-stream", "http://evil.test"]),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
    ),
    max_size=3,
)


class Stats:
    requests = 0
    server_errors: ClassVar[list[str]] = []
    not_enveloped: ClassVar[list[str]] = []
    by_status: ClassVar[dict[int, int]] = {}


def _send(
    port: int, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        kind = response.getheader("Content-Type", "")
        if kind.startswith("text/event-stream"):
            return response.status, kind, b""  # a live stream: its headers are the answer
        return response.status, kind, response.read()
    finally:
        conn.close()


def run(port: int, examples: int, fuzz_seed: int) -> None:
    @seed(fuzz_seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        route=st.sampled_from(ROUTES),
        ident=path_ids,
        query=queries,
        body=bodies(),
        headers=extra_headers,
    )
    def one(
        route: tuple[str, str],
        ident: str,
        query: dict[str, str],
        body: tuple[bytes | None, str | None],
        headers: dict[str, str],
    ) -> None:
        method, template = route
        path = template.replace("{id}", urllib.parse.quote(ident, safe=""))
        if query:
            pairs = [
                (
                    urllib.parse.quote(k.encode("utf-8", "surrogatepass")),
                    urllib.parse.quote(v.encode("utf-8", "surrogatepass")),
                )
                for k, v in query.items()
            ]
            path += "?" + "&".join(f"{k}={v}" for k, v in pairs)
        data, ctype = body
        sent = dict(headers)
        if ctype and data is not None:
            sent["Content-Type"] = ctype
        status, kind, raw = _send(port, method, path, data, sent)
        Stats.requests += 1
        Stats.by_status[status] = Stats.by_status.get(status, 0) + 1
        what = f"{method} {path[:120]} body={(data or b'')[:80]!r} -> {status} {raw[:160]!r}"
        if status >= 500:
            Stats.server_errors.append(what)
        if status >= 400:
            try:
                error = json.loads(raw)["error"]
                ok = kind.startswith("application/json") and set(error) == {"code", "message"}
            except (ValueError, KeyError, TypeError):
                ok = False
            if not ok:
                Stats.not_enveloped.append(what)

    one()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=400, help="requests to generate")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed (reproducible)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lr-fuzz-") as home:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCALRESEARCH_")}
        env.update(
            LOCALRESEARCH_HOME=home,
            LOCALRESEARCH_SERVER__PORT=str(port),
            LOCALRESEARCH_HEARTBEAT__ENABLED="false",
        )
        workspace = Path(home) / "data" / "workspace"
        workspace.mkdir(parents=True)
        (workspace / "note.md").write_text("# Note\n\nSQLite runs in WAL mode.\n")
        cli = [sys.executable, "-m", "localresearch"]
        started = subprocess.run([*cli, "daemon", "start"], env=env, capture_output=True, text=True)
        if started.returncode != 0:
            print(started.stderr, file=sys.stderr)
            return 1
        began = time.monotonic()
        try:
            run(port, args.examples, args.seed)
            status, _, raw = _send(port, "GET", "/health", None, {})
            healthy = status == 200 and json.loads(raw).get("status") == "ok"
        finally:
            subprocess.run([*cli, "daemon", "stop"], env=env, capture_output=True)
    seconds = time.monotonic() - began
    statuses = dict(sorted(Stats.by_status.items()))
    print(f"{Stats.requests} requests in {seconds:.1f} s; statuses {statuses}")
    print(
        f"server errors: {len(Stats.server_errors)}; "
        f"not in the envelope: {len(Stats.not_enveloped)}; healthy after: {healthy}"
    )
    for line in (Stats.server_errors + Stats.not_enveloped)[:20]:
        print("  " + line)
    return 0 if healthy and not Stats.server_errors and not Stats.not_enveloped else 1


if __name__ == "__main__":
    sys.exit(main())
