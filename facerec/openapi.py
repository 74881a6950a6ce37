"""Small helpers to write the services' OpenAPI descriptions, and the /openapi.json route."""

from __future__ import annotations

from flask import Flask, Response, jsonify

from facerec import apidocs
from facerec.auth import public


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict, description: str = "") -> dict:
    return {"description": description or "JSON", "content": {"application/json": {"schema": schema}}}


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "reason": {"type": "string"}},
}
ERROR_RESPONSES = {
    status: json_content(ref("Error"), meaning)
    for status, meaning in {
        "400": "invalid request",
        "401": "API key missing or wrong",
        "403": "admin key required",
        "413": "over a limit (named in the message)",
        "414": "request line over gunicorn's limit (4094 bytes)",
        "431": "request headers over gunicorn's limits (100 fields, 8190 bytes each)",
        "503": "database or feature_extraction unavailable",
    }.items()
}

METRICS_PATH = {
    "get": {
        "summary": "Prometheus metrics in the text format, summed over the gunicorn workers (public)",
        "security": [{}],
        "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}},
    }
}


def serve_openapi(app: Flask, spec: dict) -> None:
    """The description at /openapi.json and, rendered once as HTML, the API reference at /docs."""
    reference_page = apidocs.render(spec)

    @public
    def openapi_json():
        return jsonify(spec)

    @public
    def api_reference():
        return Response(reference_page, mimetype="text/html")

    app.add_url_rule("/openapi.json", "openapi_json", openapi_json)
    app.add_url_rule("/docs", "api_reference", api_reference)
