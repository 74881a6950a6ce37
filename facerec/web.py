"""What both Flask apps share: JSON errors, request ids, one structured log line per request."""

from __future__ import annotations

import json
import logging
import math
import re
import sys
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from flask import Flask, Response, current_app, g, has_app_context, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import RequestRedirect

from facerec import metrics
from facerec.errors import ApiError, BadRequest, LimitExceeded, NotFound
from facerec.settings import Settings

log = logging.getLogger("facerec.access")

INVALID_REQUEST = "Invalid request."
_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonLogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            # UTC to the millisecond, offset written: log lines of several hosts and zones sort together
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging() -> None:
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonLogFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    root.handlers = [handler]
    root.setLevel(logging.INFO)


def create_base_app(import_name: str, settings: Settings) -> Flask:
    configure_logging()
    # No /static route: the console's files are served by their own route, with their policy headers.
    app = Flask(import_name, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False
    app.extensions["settings"] = settings
    app.before_request(_start_request)
    app.before_request(_no_redirect_for_writes)
    app.after_request(_json_redirect)
    app.after_request(_log_request)
    metrics.install(app)
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    return app


def _start_request() -> None:
    g.request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex[:16]
    g.started = time.perf_counter()


def _no_redirect_for_writes() -> None:
    """Werkzeug answers a path that is not a route's own (//, a missing trailing /) with a redirect
    to one that is. For a DELETE that other path can be another resource: /samples/%2Flead (the id
    '/lead') to /samples/lead, /samples/x%2Fphotos (the id 'x/photos') to the photo '' of x."""
    redirect = request.routing_exception
    if isinstance(redirect, RequestRedirect) and request.method not in ("GET", "HEAD"):
        raise NotFound(
            f"no {request.method} route at this exact path (it would be {redirect.new_url}); "
            "ids that hold '/' go in the query string: DELETE /samples?id=...",
            reason="non_canonical_path",
        )


def _json_redirect(response: Response) -> Response:
    """Werkzeug's redirects (/console to /console/) carry an HTML page: JSON, as every answer."""
    if 300 <= response.status_code < 400 and response.location and response.mimetype == "text/html":
        response.set_data(json.dumps({"location": response.location}))
        response.mimetype = "application/json"
    return response


def _log_request(response: Response) -> Response:
    response.headers["X-Request-Id"] = g.get("request_id", "")
    elapsed_ms = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
    fields = {
        "request_id": g.get("request_id"),
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
        "ms": round(elapsed_ms, 1),
        **g.get("timings", {}),
    }
    log.info("request", extra={"fields": fields})
    return response


def record_timing(name: str, started: float) -> None:
    """Add '<name>_ms' to this request's log line; outside a request (bench, tools) there is none."""
    if has_app_context():
        g.setdefault("timings", {})[f"{name}_ms"] = round((time.perf_counter() - started) * 1000, 1)


def _api_error(error: ApiError):
    body = error.body()
    body["request_id"] = g.get("request_id")
    return jsonify(body), error.status


def _http_error(error: HTTPException):
    message = error.description or error.name
    reason = re.sub(r"\W+", "_", error.name.lower())  # "Method Not Allowed": method_not_allowed
    if error.code == 413:
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        message = f"request body exceeds the limit of {limit} bytes (setting FACEREC_MAX_REQUEST_BYTES)"
        reason = "max_request_bytes"
    return jsonify({"error": message, "reason": reason, "request_id": g.get("request_id")}), error.code


def _unexpected_error(error: Exception):
    logging.getLogger("facerec").exception("unhandled error", extra={"fields": {"request_id": g.get("request_id")}})
    return jsonify({"error": "internal server error", "request_id": g.get("request_id")}), 500


def request_body() -> bytes:
    """The whole body, or a 413 past FACEREC_MAX_REQUEST_BYTES, or a 400 if it ended short.

    Flask refuses a Content-Length over the limit; a chunked body (no Content-Length) Werkzeug cuts
    at the limit without a word, so a body that reaches it is over it if its stream holds more."""
    data = request.get_data(cache=True)
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    declared = request.content_length
    if declared is None and limit is not None and len(data) >= limit and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()
    if declared is not None and len(data) < declared:  # the client went, or fell silent (FACEREC_CLIENT_TIMEOUT_S)
        raise BadRequest(f"the body ended after {len(data)} of its {declared} bytes", reason="incomplete_body")
    return data


def json_body() -> Any:
    """The request's JSON, whatever its Content-Type; a 400 'Invalid request.' otherwise."""
    data = request_body()
    try:
        value = json.loads(data) if data else None
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting too deep
        raise BadRequest(INVALID_REQUEST, reason="invalid_json") from None
    if _holds_lone_surrogate(value):
        raise BadRequest("strings must be valid Unicode: no lone surrogate escapes", reason="invalid_unicode")
    return value


def _holds_lone_surrogate(value: Any) -> bool:
    """True if a string of the parsed JSON holds half a surrogate pair ("\\ud800"): UTF-8 cannot encode it."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def require_object(value: Any) -> dict:
    if not isinstance(value, dict):
        raise BadRequest(INVALID_REQUEST, reason="expected_json_object")
    return value


def require_text(value: Any, name: str, max_chars: int, setting: str = "FACEREC_MAX_FIELD_CHARS") -> str:
    """A string field that PostgreSQL can store (no NUL), at most max_chars long (the limit's setting)."""
    if not isinstance(value, str):
        raise BadRequest(f"'{name}' must be a string", reason=f"invalid_{name}")
    if len(value) > max_chars:
        raise LimitExceeded(
            f"'{name}' is longer than {max_chars} characters (setting {setting})",
            reason=setting.removeprefix("FACEREC_").lower(),
        )
    if "\x00" in value:
        raise BadRequest(f"'{name}' holds a NUL character", reason="invalid_character")
    return value


def parse_unit_float(value: Any, name: str) -> float:
    """A number in [0, 1]; numeric strings are accepted as old clients send them."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadRequest(f"'{name}' must be a number in [0, 1]", reason=f"invalid_{name}")
    try:
        number = float(value)
    except ValueError:
        raise BadRequest(f"'{name}' must be a number in [0, 1]", reason=f"invalid_{name}") from None
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise BadRequest(f"'{name}' must be a number in [0, 1]", reason=f"invalid_{name}")
    return number


def parse_int_in_range(value: Any, name: str, low: int, high: int) -> int:
    """A JSON integer in [low, high]: no strings, floats or booleans."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"'{name}' must be an integer from {low} to {high}", reason=f"invalid_{name}")
    return value


def parse_flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"'{name}' must be true or false", reason=f"invalid_{name}")
    return value
