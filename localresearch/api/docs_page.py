"""GET /docs: the OpenAPI document rendered server-side as one HTML page (no script, no CDN)."""

from __future__ import annotations

import json
from html import escape
from typing import Any

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem;color:#222}
h2{border-bottom:1px solid #ddd;margin-top:2.5rem}
.op{border:1px solid #ddd;border-radius:6px;margin:1rem 0;padding:.5rem 1rem}
.m{display:inline-block;min-width:4.5rem;font-weight:700;font-family:monospace}
.GET{color:#2a7}.POST{color:#27c}.DELETE{color:#c33}
code,pre{font-family:ui-monospace,monospace;font-size:13px}
pre{background:#f6f6f6;padding:.5rem;overflow:auto;max-height:24rem}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left}
details{margin:.3rem 0}
"""


def render(document: dict[str, Any]) -> str:
    """The page: one section per tag, each operation with parameters, body and responses."""
    info = document.get("info", {})
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{escape(info.get('title', 'API'))}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(info.get('title', 'API'))} <small>{escape(info.get('version', ''))}</small>"
        "</h1>",
        f"<p>{escape(info.get('description', ''))}</p>",
        '<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>',
    ]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in document.get("paths", {}).items():
        for method, op in methods.items():
            tag = (op.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append((method.upper(), path, op))
    for tag, ops in by_tag.items():
        parts.append(f"<h2 id='{escape(tag)}'>{escape(tag)}</h2>")
        for method, path, op in ops:
            parts.append(_operation(method, path, op))
    schemas = document.get("components", {}).get("schemas", {})
    parts.append("<h2 id=schemas>Schemas</h2>")
    for name, schema in schemas.items():
        parts.append(
            f"<details id='schema-{escape(name)}'><summary><code>{escape(name)}</code></summary>"
            f"<pre>{escape(json.dumps(schema, indent=2))}</pre></details>"
        )
    parts.append("</body></html>")
    return "".join(parts)


def _operation(method: str, path: str, op: dict[str, Any]) -> str:
    out = [
        f"<div class=op><span class='m {method}'>{method}</span> <code>{escape(path)}</code>",
        f" — {escape(op.get('summary', ''))}",
        f" <small>(permission <code>{escape(op.get('x-permission', ''))}</code>)</small>",
    ]
    params = op.get("parameters", [])
    if params:
        out.append("<table><tr><th>name</th><th>in</th><th>required</th><th>schema</th></tr>")
        for p in params:
            out.append(
                f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td>"
                f"<td>{'yes' if p.get('required') else 'no'}</td>"
                f"<td><code>{escape(json.dumps(p.get('schema', {})))}</code></td></tr>"
            )
        out.append("</table>")
    body = op.get("requestBody")
    if body:
        schema = body["content"]["application/json"]["schema"]
        out.append(f"<p>Body ({'required' if body.get('required') else 'optional'}): ")
        out.append(f"{_ref(schema)}</p>")
    rows = []
    for status, response in op.get("responses", {}).items():
        if not status.startswith("2") and status != "101":
            continue
        kinds = ", ".join(
            f"{escape(media)} {_ref(c.get('schema', {}))}"
            for media, c in response.get("content", {}).items()
        )
        rows.append(f"<li><b>{escape(status)}</b> {kinds}</li>")
    out.append(f"<ul>{''.join(rows)}</ul></div>")
    return "".join(out)


def _ref(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref", "")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        return f"<a href='#schema-{escape(name)}'><code>{escape(name)}</code></a>"
    return f"<code>{escape(json.dumps(schema))}</code>"
