"""Beyond the README: 1:1 verification, detection only, and the web console's files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from flask import Blueprint, Response, current_app, jsonify, send_from_directory

from face_detection.pipeline import FacePipeline
from facerec.auth import public
from facerec.db.samples import SampleStore
from facerec.errors import BadRequest, NoFace, NotFound
from facerec.images import decode_data_uri_image
from facerec.inference.detector import DetectedFace
from facerec.web import json_body, parse_unit_float, require_object, require_text

blueprint = Blueprint("extra", __name__)

CONSOLE_DIR = Path(__file__).parent / "static" / "console"
CONSOLE_POLICY = "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; frame-ancestors 'none'"


def _pipeline() -> FacePipeline:
    return current_app.extensions["pipeline"]


def _image(body: dict, field: str) -> np.ndarray:
    if field not in body:
        raise BadRequest(f"'{field}' is missing", reason="missing_image")
    return decode_data_uri_image(body[field], current_app.extensions["settings"].max_image_pixels)


def _largest_face(image: np.ndarray, field: str) -> DetectedFace:
    faces = _pipeline().detect(image)
    if not faces:
        raise NoFace(f"no face found in '{field}'", reason="no_face")
    return max(faces, key=lambda face: face.area)


def _face_summary(face: DetectedFace) -> dict:
    return {"bbox": face.bbox_text(), "det_score": round(face.score, 4)}


@blueprint.post("/verify")
def verify():
    """Same person or not: two photos, or a photo and an enrolled id; the largest face of each photo."""
    body = require_object(json_body())
    spec = _pipeline().extraction.spec()
    threshold = spec.default_min_similarity
    if body.get("threshold") is not None:
        threshold = parse_unit_float(body["threshold"], "threshold")
    if "image1" in body or "image2" in body:
        answer = _verify_photos(body)
    elif "image" in body:
        answer = _verify_against_sample(body, spec.model)
    else:
        raise BadRequest("send {'image1', 'image2'} or {'image', 'id'}", reason="missing_image")
    similarity = answer.pop("similarity")
    return jsonify(
        similarity=round(similarity, 4), match=similarity > threshold, threshold=threshold, model=spec.model, **answer
    )


def _verify_photos(body: dict) -> dict:
    images = {field: _image(body, field) for field in ("image1", "image2")}
    photos = [(image, [_largest_face(image, field)]) for field, image in images.items()]
    first, second = _pipeline().embed(photos)
    return {
        "similarity": float(np.dot(first[0], second[0])),
        "faces": [_face_summary(faces[0]) for _, faces in photos],
    }


def _sample_id(body: dict) -> str:
    sample_id = body.get("id")
    if sample_id is None or sample_id == "":
        raise BadRequest("'id' is missing: the id of an enrolled sample", reason="missing_id")
    if isinstance(sample_id, int) and not isinstance(sample_id, bool):
        sample_id = str(sample_id)  # /update-samples takes integer ids too
    return require_text(sample_id, "id", current_app.extensions["settings"].max_field_chars)


def _verify_against_sample(body: dict, model: str) -> dict:
    sample_id = _sample_id(body)
    image = _image(body, "image")
    face = _largest_face(image, "image")
    (vectors,) = _pipeline().embed([(image, [face])])
    store: SampleStore = current_app.extensions["store"]
    nearest = store.nearest_photo(sample_id, vectors[0], model)
    if nearest is None:
        raise NotFound("no sample has this id", reason="sample_not_found")
    return {
        "similarity": nearest.similarity,
        "faces": [_face_summary(face)],
        "id": nearest.sample_id,
        "name": nearest.name,
    }


@blueprint.post("/detect")
def detect():
    """Every face's box, score and 5 landmarks (eyes, nose, mouth corners), left to right; no embedding."""
    image = _image(require_object(json_body()), "image")
    return jsonify([_detected(face) for face in _pipeline().detect(image)])


def _detected(face: DetectedFace) -> dict:
    return {
        "bbox": face.bbox_text(),
        "box": [round(value, 1) for value in face.box],
        "score": round(face.score, 4),
        "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in face.landmarks],
    }


@blueprint.get("/console/")
@public
def console() -> Response:
    return _console_file("index.html")


@blueprint.get("/console/<name>")
@public
def console_asset(name: str) -> Response:
    return _console_file(name)


def _console_file(name: str) -> Response:
    response = send_from_directory(CONSOLE_DIR, name, max_age=0)
    response.headers["Content-Security-Policy"] = CONSOLE_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
