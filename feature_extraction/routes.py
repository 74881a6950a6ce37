"""POST /extract_feature and GET /health."""

from __future__ import annotations

import time

import numpy as np
from flask import Blueprint, Response, current_app, jsonify, request

import facerec
from facerec import auth
from facerec.auth import public
from facerec.errors import BadRequest, LimitExceeded
from facerec.images import decode_base64, decode_image, split_data_uri
from facerec.inference.recognizers import Recognizer
from facerec.web import INVALID_REQUEST, json_body, record_timing, request_body, require_object
from facerec.wire import NPY_MEDIA_TYPE, from_npy, to_npy

blueprint = Blueprint("feature_extraction", __name__)


def _recognizer() -> Recognizer:
    return current_app.extensions["recognizer"]


@blueprint.get("/health")
@blueprint.get("/health/live")
@blueprint.get("/health/ready")
@public
def health():
    """The model is loaded before a worker serves, so a worker that answers is ready. It also says
    whether the key presented, if any, would be taken: face_detection's readiness asks so."""
    recognizer = _recognizer()
    return jsonify(
        status="ok",
        version=facerec.__version__,
        **recognizer.spec.to_dict(),
        weights_sha256=recognizer.weights_sha256,
        provider=recognizer.provider,
        max_batch=current_app.extensions["settings"].max_batch_crops,
        key=_presented_key_state(),
    )


def _presented_key_state() -> str:
    keys: auth.ApiKeys = current_app.extensions["api_keys"]
    if not keys.enabled:
        return "not required"
    return "accepted" if keys.role_of(auth.presented_key()) else "refused"


@blueprint.post("/extract_feature")
def extract_feature():
    """Crops in (binary .npy N x S x S x 3 uint8 BGR, or JSON), unit vectors out, in order."""
    if request.mimetype == NPY_MEDIA_TYPE:
        crops = from_npy(request_body(), np.dtype(np.uint8), ndim=4)
        vectors = _embed(crops)
        response = Response(to_npy(vectors), mimetype=NPY_MEDIA_TYPE)
        response.headers["X-Embedding-Model"] = _recognizer().spec.model
        return response
    ids, crops = _crops_from_json(json_body())
    vectors = _embed(crops)
    return jsonify(
        model=_recognizer().spec.model,
        dim=int(vectors.shape[1]),
        embeddings=[{"id": i, "embedding": v.tolist()} for i, v in zip(ids, vectors, strict=True)],
    )


def _embed(crops: np.ndarray) -> np.ndarray:
    _check_count(len(crops))
    if crops.shape[1:] != _crop_shape():
        raise _wrong_crop_size("x".join(map(str, crops.shape[1:])))
    started = time.perf_counter()
    vectors = current_app.extensions["batcher"].embed(crops)
    record_timing("model", started)
    return vectors


def _check_count(count: int) -> None:
    limit = current_app.extensions["settings"].max_batch_crops
    if count == 0:
        raise BadRequest("the batch holds no crop", reason="empty_batch")
    if count > limit:
        message = f"{count} crops exceed the limit of {limit} (setting FACEREC_MAX_BATCH)"
        raise LimitExceeded(message, reason="max_batch")


def _crop_shape() -> tuple[int, int, int]:
    size = _recognizer().spec.crop_size
    return size, size, 3


def _wrong_crop_size(got: str) -> BadRequest:
    spec = _recognizer().spec
    return BadRequest(
        f"crops must be {spec.crop_size}x{spec.crop_size}x3 uint8 BGR, aligned with the {spec.alignment} template; "
        f"got {got}",
        reason="wrong_crop_size",
    )


def _crops_from_json(body) -> tuple[list, np.ndarray]:
    """Counted, then each decoded no larger than a crop: a 4 KB PNG can hold 2000x2000 pixels."""
    items = require_object(body).get("crops")
    if not isinstance(items, list):
        raise BadRequest(INVALID_REQUEST, reason="expected_crops_list")
    _check_count(len(items))
    height, width, _ = _crop_shape()
    ids, images = [], []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("image"), str):
            raise BadRequest(f"crop {index} needs an 'image' string", reason="invalid_crop")
        image = item["image"]
        data = split_data_uri(image) if image.startswith("data:") else decode_base64(image)
        ids.append(item.get("id", index))
        try:
            images.append(decode_image(data, max_pixels=height * width))
        except LimitExceeded:
            raise _wrong_crop_size(f"a larger crop at index {index}") from None
    if len({image.shape for image in images}) > 1:
        raise BadRequest("all crops of a batch must have the same size", reason="wrong_crop_size")
    return ids, np.stack(images)
