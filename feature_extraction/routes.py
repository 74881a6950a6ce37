"""POST /extract_feature and GET /health."""

from __future__ import annotations

import time

import numpy as np
from flask import Blueprint, Response, current_app, jsonify, request

import facerec
from facerec.auth import public
from facerec.errors import BadRequest, LimitExceeded
from facerec.images import decode_base64, decode_image, split_data_uri
from facerec.inference.recognizers import Recognizer
from facerec.web import INVALID_REQUEST, json_body, record_timing, require_object
from facerec.wire import NPY_MEDIA_TYPE, from_npy, to_npy

blueprint = Blueprint("feature_extraction", __name__)


def _recognizer() -> Recognizer:
    return current_app.extensions["recognizer"]


@blueprint.get("/health")
@blueprint.get("/health/live")
@blueprint.get("/health/ready")
@public
def health():
    """The model is loaded before a worker serves, so a worker that answers is ready."""
    recognizer = _recognizer()
    return jsonify(
        status="ok",
        version=facerec.__version__,
        **recognizer.spec.to_dict(),
        weights_sha256=recognizer.weights_sha256,
        provider=recognizer.provider,
    )


@blueprint.post("/extract_feature")
def extract_feature():
    """Crops in (binary .npy N x S x S x 3 uint8 BGR, or JSON), unit vectors out, in order."""
    if request.mimetype == NPY_MEDIA_TYPE:
        crops = from_npy(request.get_data(), np.dtype(np.uint8), ndim=4)
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
    spec = _recognizer().spec
    settings = current_app.extensions["settings"]
    if len(crops) == 0:
        raise BadRequest("the batch holds no crop", reason="empty_batch")
    if len(crops) > settings.max_batch_crops:
        raise LimitExceeded(
            f"{len(crops)} crops exceed the limit of {settings.max_batch_crops} (setting FACEREC_MAX_BATCH)",
            reason="max_batch",
        )
    if crops.shape[1:] != (spec.crop_size, spec.crop_size, 3):
        raise BadRequest(
            f"crops must be {spec.crop_size}x{spec.crop_size}x3 uint8 BGR, aligned with the "
            f"{spec.alignment} template; got {'x'.join(map(str, crops.shape[1:]))}",
            reason="wrong_crop_size",
        )
    started = time.perf_counter()
    vectors = current_app.extensions["batcher"].embed(crops)
    record_timing("model", started)
    return vectors


def _crops_from_json(body) -> tuple[list, np.ndarray]:
    items = require_object(body).get("crops")
    if not isinstance(items, list):
        raise BadRequest(INVALID_REQUEST, reason="expected_crops_list")
    max_pixels = current_app.extensions["settings"].max_image_pixels
    ids, images = [], []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("image"), str):
            raise BadRequest(f"crop {index} needs an 'image' string", reason="invalid_crop")
        image = item["image"]
        data = split_data_uri(image) if image.startswith("data:") else decode_base64(image)
        ids.append(item.get("id", index))
        images.append(decode_image(data, max_pixels))
    if len({image.shape for image in images}) > 1:
        raise BadRequest("all crops of a batch must have the same size", reason="wrong_crop_size")
    crops = np.stack(images) if images else np.empty((0, 0, 0, 3), dtype=np.uint8)
    return ids, crops
