"""The four endpoints of the original README, with their request and response shapes kept."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable

import numpy as np
import psycopg
from flask import Blueprint, Response, current_app, g, jsonify, request
from psycopg.conninfo import make_conninfo

import facerec
from face_detection.annotation import annotated_jpeg
from face_detection.enrolment import enrol
from face_detection.pipeline import FacePipeline
from facerec.auth import ADMIN, public, requires
from facerec.db import schema
from facerec.db.cli import EXIT_AUTH, EXIT_NO_DATABASE, classify_connection_error
from facerec.db.connection import Database
from facerec.db.samples import Match, SampleStore
from facerec.errors import ApiError, BadRequest, DatabaseUnavailable
from facerec.images import decode_data_uri_image
from facerec.inference.detector import DetectedFace
from facerec.web import json_body, parse_flag, parse_int_in_range, parse_unit_float, require_object, require_text

blueprint = Blueprint("face_detection", __name__)
log = logging.getLogger(__name__)

CONFIG_FIELDS = ("host", "db_name", "username", "password")
UNMATCHED = {"id": "", "name": "", "metadata": ""}
_PORT = re.compile("[0-9]{1,5}")  # ASCII digits only: str.isdigit() accepts '²', which int() refuses
MAX_TOP_K = 10


def _pipeline() -> FacePipeline:
    return current_app.extensions["pipeline"]


def _store() -> SampleStore:
    return current_app.extensions["store"]


def _text(body: str, status: int) -> Response:
    return Response(body, status=status, mimetype="text/plain")


def _head_changes_nothing(view: Callable) -> Callable:
    """Flask answers HEAD with a route's GET view, and these GETs act, as the original's did: a
    HEAD (a link checker, a monitor) must not wipe the samples or switch the database."""

    @functools.wraps(view)
    def guarded(*args, **kwargs):
        return Response(status=200) if request.method == "HEAD" else view(*args, **kwargs)

    return guarded


@blueprint.route("/config-database", methods=["GET", "POST"])
@_head_changes_nothing
@requires(ADMIN)
def config_database():
    body = require_object(json_body())
    for key in CONFIG_FIELDS:
        value = body.get(key)
        if value is None or (value == "" and key != "password"):
            return _text(f'"{key}" is missing.', 400)
        require_text(value, key, current_app.extensions["settings"].max_field_chars)
    target = {
        "host": body["host"],
        "port": _port(body.get("port")),
        "dbname": body["db_name"],
        "user": body["username"],
    }
    conninfo = make_conninfo(**target, password=body["password"])
    _prepare_database(conninfo, target)
    database: Database = current_app.extensions["database"]
    database.saved.save(conninfo)
    return _text("Database configuration is done.", 200)


def _port(value) -> int:
    if value is None or value == "":  # the original ignored the port; clients sent placeholders
        return 5432
    text = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise BadRequest("'port' must be an integer between 1 and 65535", reason="invalid_port")
    return int(text)


def _prepare_database(conninfo: str, target: dict) -> None:
    """Connect and create the schema if needed; a database that fails is never saved.

    The caller learns what failed in our words and its own values; the server's text, which names
    its sockets, addresses and roles, goes to the log only."""
    timeout = max(1, int(current_app.extensions["settings"].db_timeout_s))
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=timeout) as conn:
            set_aside = schema.migrate(conn).set_aside
    except psycopg.OperationalError as error:
        code, detail = classify_connection_error(error)
        _log_refusal(detail)
        raise BadRequest(_connection_failure(code, target), reason="database_connection_failed") from None
    except schema.ExtensionMissing as error:
        raise BadRequest(f"database not usable: {error}", reason="database_unusable") from None
    except psycopg.Error as error:
        _log_refusal(f"creating the schema failed: {str(error).strip()}")
        message = f"database not usable: creating the schema failed (SQLSTATE {error.sqlstate}); see the service's log"
        raise BadRequest(message, reason="database_unusable") from None
    except ValueError:  # e.g. a host name that IDNA cannot encode
        raise BadRequest("'host' is not a valid host name or socket directory", reason="invalid_host") from None
    if set_aside:
        log.warning(schema.set_aside_message(set_aside), extra={"fields": {"request_id": g.get("request_id")}})


def _connection_failure(code: int, target: dict) -> str:
    if code == EXIT_AUTH:
        return f"authentication failed for user {target['user']!r}"
    if code == EXIT_NO_DATABASE:
        return f"unknown database {target['dbname']!r}: create it first (createdb NAME)"
    return f"cannot reach the database server at {target['host']!r}, port {target['port']}"


def _log_refusal(detail: str) -> None:
    log.warning("config-database refused: %s", detail, extra={"fields": {"request_id": g.get("request_id")}})


@blueprint.route("/clear-samples", methods=["GET", "POST", "DELETE"])
@_head_changes_nothing
@requires(ADMIN)
def clear_samples():
    try:
        removed = _store().clear()
    except DatabaseUnavailable as error:
        body = {"fail": error.message, "error": error.message, "reason": error.reason}
        return jsonify(**body, request_id=g.get("request_id")), error.status
    return jsonify(success="Samples have been removed successfully", removed=removed)


@blueprint.post("/update-samples")
def update_samples():
    settings = current_app.extensions["settings"]
    report = enrol(json_body(), settings, _pipeline(), _store())
    return jsonify(report.to_dict())


@blueprint.post("/face-recognition")
def face_recognition():
    body = require_object(json_body())
    settings = current_app.extensions["settings"]
    pipeline = _pipeline()
    if "image" not in body:
        raise BadRequest("Invalid request.", reason="missing_image")
    image = decode_data_uri_image(body["image"], settings.max_image_pixels)
    min_similarity = body.get("min_distance")
    if min_similarity is None:
        min_similarity = pipeline.extraction.spec().default_min_similarity
    else:
        min_similarity = parse_unit_float(min_similarity, "min_distance")
    top_k = None if body.get("top_k") is None else parse_int_in_range(body["top_k"], "top_k", 1, MAX_TOP_K)
    annotate = parse_flag(body.get("annotate", False), "annotate")
    faces = pipeline.detect(image)
    entries = _recognise_faces(image, faces, min_similarity, top_k) if faces else []
    if annotate:
        return Response(annotated_jpeg(image, faces, entries), mimetype="image/jpeg")
    return jsonify(entries)


def _recognise_faces(
    image: np.ndarray, faces: list[DetectedFace], min_similarity: float, top_k: int | None
) -> list[dict]:
    pipeline = _pipeline()
    (vectors,) = pipeline.embed([(image, faces)])
    matches = _store().match(vectors, pipeline.extraction.spec().model, top_k=top_k or 1)
    return [_recognised(face, nearest, min_similarity, top_k) for face, nearest in zip(faces, matches, strict=True)]


def _recognised(face: DetectedFace, candidates: list[Match], min_similarity: float, top_k: int | None) -> dict:
    """The README's entry; with top_k, also the k most similar samples, whatever min_distance."""
    entry = {"bbox": face.bbox_text(), **UNMATCHED}
    best = candidates[0] if candidates else None
    if best is not None and best.similarity > min_similarity:
        entry.update(id=best.sample_id, name=best.name, metadata=best.metadata)
    entry["similarity"] = round(best.similarity, 4) if best is not None else None
    entry["matched"] = bool(entry["id"])
    entry["det_score"] = round(face.score, 4)
    if top_k:
        entry["candidates"] = [_candidate(match) for match in candidates[:top_k]]
    return entry


def _candidate(match: Match) -> dict:
    return {
        "id": match.sample_id,
        "name": match.name,
        "metadata": match.metadata,
        "similarity": round(match.similarity, 4),
    }


@blueprint.get("/health/live")
@public
def live():
    return jsonify(status="ok")


@blueprint.get("/health")
@blueprint.get("/health/ready")
@public
def ready():
    """Ready when the detector is loaded and the database and feature_extraction answer."""
    pipeline = _pipeline()
    checks = {"detector": pipeline.detector.provider}
    try:
        checks["embedding_model"] = pipeline.extraction.check()
        checks["feature_extraction"] = "ok"
    except ApiError as error:
        checks["feature_extraction"] = error.message
    try:
        _store().ping()
        checks["database"] = "ok"
    except ApiError as error:
        checks["database"] = error.message
    checks["database_source"] = _store().database.source()
    ok = checks["feature_extraction"] == "ok" and checks["database"] == "ok"
    return jsonify(status="ok" if ok else "unavailable", version=facerec.__version__, **checks), 200 if ok else 503
