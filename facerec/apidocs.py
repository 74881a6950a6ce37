"""The API reference page: a service's OpenAPI description rendered as one HTML page, no external assets."""

from __future__ import annotations

import json
import re
from html import escape

METHODS = ("get", "post", "put", "patch", "delete")
_SCHEMA_REF = re.compile(r"&quot;#/components/schemas/([\w.-]+)&quot;")

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem 2rem; color: #1f2933; }
h1 { margin-bottom: 0; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #d9e2ec; }
code, pre { font: 13px/1.4 ui-monospace, monospace; }
pre { background: #f5f7fa; border: 1px solid #e4e7eb; padding: .6rem; overflow-x: auto; }
.method { display: inline-block; min-width: 4rem; padding: 0 .4rem; border-radius: 4px; color: #fff;
          text-transform: uppercase; font-size: 13px; text-align: center; }
.get { background: #2f80ed; } .post { background: #27ae60; } .delete { background: #d64545; }
.put, .patch { background: #f2994a; }
table { border-collapse: collapse; } td, th { text-align: left; vertical-align: top; padding: .2rem .8rem .2rem 0; }
a { color: #1d4ed8; }
"""


def render(spec: dict) -> str:
    """The whole page; every text taken from the spec is escaped."""
    info = spec.get("info", {})
    operations = list(_operations(spec))
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(info.get('title', 'API'))} API reference</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(info.get('title', 'API'))} <small>{escape(str(info.get('version', '')))}</small></h1>",
        "<p>Generated from this service's <a href='openapi.json'>OpenAPI description</a>. "
        "Send the API key as <code>Authorization: Bearer KEY</code> or <code>X-API-Key: KEY</code> "
        "when the service has keys; errors are JSON <code>{error, reason, request_id}</code>.</p>",
        "<h2>Endpoints</h2><table>",
        *(
            f"<tr><td>{_method(method)}</td><td><a href='#{_anchor(method, path)}'><code>{escape(path)}</code></a>"
            f"</td><td>{escape(operation.get('summary', ''))}</td></tr>"
            for path, method, operation in operations
        ),
        "</table>",
        *(_operation(path, method, operation) for path, method, operation in operations),
        "<h2>Schemas</h2>",
        *(
            f"<h3 id='schema-{escape(name)}'>{escape(name)}</h3>{_schema_block(schema)}"
            for name, schema in spec.get("components", {}).get("schemas", {}).items()
        ),
        "</body></html>",
    ]
    return "\n".join(parts)


def _operations(spec: dict):
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _anchor(method: str, path: str) -> str:
    return method + re.sub(r"[^\w]+", "-", path).rstrip("-")


def _method(method: str) -> str:
    return f"<span class='method {method}'>{method}</span>"


def _operation(path: str, method: str, operation: dict) -> str:
    parts = [
        f"<h2 id='{_anchor(method, path)}'>{_method(method)} <code>{escape(path)}</code></h2>",
        f"<p>{escape(operation.get('summary', ''))}</p>",
    ]
    if operation.get("security") == [{}]:
        parts.append("<p><em>Public: no API key needed.</em></p>")
    if operation.get("parameters"):
        parts.append("<h4>Parameters</h4><table>")
        parts.extend(
            f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p.get('in', ''))}</td>"
            f"<td>{escape(p.get('description', ''))}</td><td>{_schema_block(p.get('schema', {}))}</td></tr>"
            for p in operation["parameters"]
        )
        parts.append("</table>")
    body = operation.get("requestBody")
    if body:
        parts.append("<h4>Request body</h4>")
        parts.extend(_content(body))
    parts.append("<h4>Responses</h4><table>")
    for status, response in operation.get("responses", {}).items():
        parts.append(f"<tr><td><b>{escape(status)}</b></td><td>{escape(response.get('description', ''))}")
        parts.extend(_content(response))
        parts.append("</td></tr>")
    parts.append("</table>")
    return "\n".join(parts)


def _content(holder: dict) -> list[str]:
    return [
        f"<div><code>{escape(media_type)}</code>{_schema_block(media.get('schema', {}))}</div>"
        for media_type, media in holder.get("content", {}).items()
    ]


def _schema_block(schema: dict) -> str:
    text = escape(json.dumps(schema, indent=2))
    return "<pre>" + _SCHEMA_REF.sub(r"<a href='#schema-\1'>\1</a>", text) + "</pre>"
