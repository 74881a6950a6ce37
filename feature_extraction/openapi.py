"""OpenAPI 3 description of feature_extraction, served at /openapi.json."""

from __future__ import annotations

import facerec
from facerec.openapi import ERROR_RESPONSES, ERROR_SCHEMA, METRICS_PATH, json_content, ref
from facerec.wire import NPY_MEDIA_TYPE

CROPS = {
    "type": "object",
    "required": ["crops"],
    "properties": {
        "crops": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["image"],
                "properties": {
                    "id": {},
                    "image": {"type": "string", "description": "base64 (or a data URI) of an aligned crop"},
                },
            },
        }
    },
}
EMBEDDINGS = {
    "type": "object",
    "required": ["model", "dim", "embeddings"],
    "properties": {
        "model": {"type": "string"},
        "dim": {"type": "integer"},
        "embeddings": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"id": {}, "embedding": {"type": "array", "items": {"type": "number"}}},
            },
        },
    },
}
BINARY = {"schema": {"type": "string", "format": "binary"}}
HEALTH = {
    "type": "object",
    "required": ["status", "model", "dim", "crop_size", "provider"],
    "properties": {
        "status": {"const": "ok"},
        "version": {"type": "string"},
        "model": {"type": "string"},
        "dim": {"type": "integer"},
        "crop_size": {"type": "integer"},
        "default_min_similarity": {"type": "number"},
        "alignment": {"type": "string"},
        "channel_order": {"type": "string"},
        "weights_sha256": {"type": ["string", "null"]},
        "provider": {"type": "string"},
        "max_batch": {"type": "integer", "description": "crops per /extract_feature call (FACEREC_MAX_BATCH)"},
        "key": {"enum": ["not required", "accepted", "refused"], "description": "the X-API-Key presented, if any"},
    },
}

SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "feature_extraction", "version": facerec.__version__},
    "components": {
        "schemas": {
            "Error": ERROR_SCHEMA,
            "Crops": CROPS,
            "Embeddings": EMBEDDINGS,
        },
        "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
    },
    "security": [{"apiKey": []}, {}],
    "paths": {
        "/extract_feature": {
            "post": {
                "summary": "Embed a batch of aligned face crops, in order",
                "description": (
                    f"Binary: {NPY_MEDIA_TYPE}, an N x S x S x 3 uint8 BGR array, answered with an N x dim "
                    "float32 array. JSON: base64 crops, answered with ids and vectors. S is /health's crop_size."
                ),
                "requestBody": {"content": {"application/json": {"schema": ref("Crops")}, NPY_MEDIA_TYPE: BINARY}},
                "responses": {
                    "200": {
                        "description": "unit-length vectors",
                        "content": {"application/json": {"schema": ref("Embeddings")}, NPY_MEDIA_TYPE: BINARY},
                    },
                    **ERROR_RESPONSES,
                },
            }
        },
        "/metrics": METRICS_PATH,
        **{
            path: {
                "get": {
                    "summary": "Model, dimension, crop size, weights sha256, provider (a worker that answers is ready)",
                    "security": [{}],
                    "responses": {"200": json_content(HEALTH, "the model")},
                }
            }
            for path in ("/health", "/health/live", "/health/ready")
        },
    },
}
