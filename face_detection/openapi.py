"""OpenAPI 3 description of face_detection, served at /openapi.json."""

from __future__ import annotations

import facerec
from facerec.openapi import ERROR_RESPONSES, ERROR_SCHEMA, METRICS_PATH, json_content, ref

SAMPLE = {
    "type": "object",
    "required": ["id", "image"],
    "properties": {
        "id": {"type": ["string", "integer"], "minLength": 1, "maxLength": 256, "description": "7 and '7' are one id"},
        "name": {"type": "string", "maxLength": 4096},
        "image": {"type": "string", "description": "base64 data URI: data:image/jpeg;base64,..."},
        "metadata": {"type": "string", "maxLength": 4096},
        "action": {"type": "string", "maxLength": 4096},
    },
}
ENROLMENT_REPORT = {
    "type": "object",
    "required": ["success", "fail"],
    "properties": {
        "success": {"type": "array", "items": {"type": ["string", "integer"]}, "description": "ids as sent"},
        "fail": {"type": "array", "items": {"type": ["string", "integer", "null"]}},
        "errors": {"type": "array", "items": {"type": "object"}},
        "warnings": {"type": "array", "items": {"type": "object"}},
    },
}
RECOGNISED_FACE = {
    "type": "object",
    "required": ["bbox", "id", "name", "metadata"],
    "properties": {
        "bbox": {"type": "string", "pattern": r"^-?\d+, -?\d+, \d+, \d+$", "description": "x, y, w, h"},
        "id": {"type": "string"},
        "name": {"type": "string"},
        "metadata": {"type": "string"},
        "similarity": {"type": ["number", "null"]},
        "matched": {"type": "boolean"},
        "det_score": {"type": "number"},
        "candidates": {
            "type": "array",
            "maxItems": 10,
            "items": ref("Candidate"),
            "description": "only with top_k: the most similar samples, whatever min_distance",
        },
    },
}
CANDIDATE = {
    "type": "object",
    "required": ["id", "name", "metadata", "similarity"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "metadata": {"type": "string"},
        "similarity": {"type": "number"},
    },
}
POINT = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
DETECTED_FACE = {
    "type": "object",
    "required": ["bbox", "box", "score", "landmarks"],
    "properties": {
        "bbox": RECOGNISED_FACE["properties"]["bbox"],
        "box": {
            "type": "array",
            "items": {"type": "number"},
            "minItems": 4,
            "maxItems": 4,
            "description": "x1, y1, x2, y2",
        },
        "score": {"type": "number"},
        "landmarks": {
            "type": "array",
            "items": POINT,
            "minItems": 5,
            "maxItems": 5,
            "description": "[x, y] of the eyes, the nose and the mouth corners",
        },
    },
}
IMAGE = {"type": "string", "description": "base64 data URI: data:image/jpeg;base64,..."}
UNIT = {"type": "number", "minimum": 0, "maximum": 1}
VERIFY_REQUEST = {
    "type": "object",
    "description": "two photos, or a photo and an enrolled id; the largest face of each photo is compared",
    "anyOf": [{"required": ["image1", "image2"]}, {"required": ["image", "id"]}],
    "properties": {
        "image1": IMAGE,
        "image2": IMAGE,
        "image": IMAGE,
        "id": {"type": ["string", "integer"], "minLength": 1},
        "threshold": {**UNIT, "description": "default: the embedding model's default min_distance"},
    },
}
FACE_SUMMARY = {
    "type": "object",
    "required": ["bbox", "det_score"],
    "properties": {"bbox": RECOGNISED_FACE["properties"]["bbox"], "det_score": {"type": "number"}},
}
VERIFICATION = {
    "type": "object",
    "required": ["similarity", "match", "threshold", "model", "faces"],
    "properties": {
        "similarity": {"type": "number", "description": "cosine similarity (with an id: of its nearest photo)"},
        "match": {"type": "boolean", "description": "similarity > threshold"},
        "threshold": UNIT,
        "model": {"type": "string"},
        "faces": {"type": "array", "items": FACE_SUMMARY, "minItems": 1, "maxItems": 2},
        "id": {"type": "string"},
        "name": {"type": "string"},
    },
}
PHOTO_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$"}
SAMPLE_PHOTO = {
    **SAMPLE,
    "properties": {
        **SAMPLE["properties"],
        "photo_id": {**PHOTO_ID, "description": "optional: makes the call idempotent (sent again, replaces it)"},
    },
}
APPEND_REPORT = {
    **ENROLMENT_REPORT,
    "required": ["success", "fail", "photos"],
    "properties": {
        **ENROLMENT_REPORT["properties"],
        "photos": {
            "type": "array",
            "description": "the stored photos, in the order of success",
            "items": {
                "type": "object",
                "required": ["id", "photo_id"],
                "properties": {"id": {"type": ["string", "integer"]}, "photo_id": {"type": "string"}},
            },
        },
    },
}
STORED_PHOTO = {
    "type": "object",
    "required": ["id", "photo_id", "name", "metadata", "action", "model", "created_at", "modified_at"],
    "properties": {
        "id": {"type": "string"},
        "photo_id": {"type": "string", "description": "'' for the photo that /update-samples writes"},
        "name": {"type": "string"},
        "metadata": {"type": "string"},
        "action": {"type": "string"},
        "model": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "modified_at": {"type": "string", "format": "date-time"},
    },
}
SAMPLE_PAGE = {
    "type": "object",
    "required": ["total", "offset", "limit", "samples", "next"],
    "properties": {
        "total": {
            "type": ["integer", "null"],
            "minimum": 0,
            "description": "photos matching the filters; null for a page asked with 'after' (not counted)",
        },
        "offset": {"type": ["integer", "null"], "minimum": 0, "description": "null for a page asked with 'after'"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
        "samples": {"type": "array", "items": ref("StoredPhoto"), "maxItems": 1000},
        "next": {
            "type": ["string", "null"],
            "description": "the cursor of the page after this one ('after'), null on the last page",
        },
    },
}
DELETED = {
    "type": "object",
    "required": ["id", "removed"],
    "properties": {
        "id": {"type": "string"},
        "photo_id": {"type": "string"},
        "removed": {"type": "integer", "minimum": 1, "description": "photos deleted"},
    },
}


def _path_parameter(name: str, schema: dict) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query_parameter(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


SAMPLE_ID_PARAMETER = _path_parameter("id", {"type": "string", "minLength": 1})
DELETE_RESPONSES = {
    "200": json_content(ref("Deleted"), "deleted"),
    "404": json_content(ref("Error"), "no such sample or photo"),
    **ERROR_RESPONSES,
}
CLEARED = {
    "type": "object",
    "required": ["success"],
    "properties": {"success": {"type": "string"}, "removed": {"type": "integer", "minimum": 0}},
}
READINESS = {
    "type": "object",
    "required": ["status", "detector", "feature_extraction", "database"],
    "properties": {
        "status": {"enum": ["ok", "unavailable"]},
        "version": {"type": "string"},
        "detector": {"type": "string", "description": "where it runs: cpu, cuda, cuda-fp16"},
        "embedding_model": {"type": "string"},
        "feature_extraction": {"type": "string", "description": "ok, or why not"},
        "database": {"type": "string", "description": "ok, or why not"},
        "database_source": {
            "enum": ["config-database", "DATABASE_URL", "embedded"],
            "description": "which setting chose the database: /config-database's saved one wins over DATABASE_URL",
        },
    },
}
DATABASE_CONFIG = {
    "type": "object",
    "required": ["host", "db_name", "username", "password"],
    "properties": {
        "host": {"type": "string"},
        "port": {"type": ["integer", "string", "null"], "description": "default 5432, also for null and ''"},
        "db_name": {"type": "string"},
        "username": {"type": "string"},
        "password": {"type": "string"},
    },
}
TEXT = {"text/plain": {"schema": {"type": "string"}}}

SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "face_detection", "version": facerec.__version__},
    "components": {
        "schemas": {
            "Error": ERROR_SCHEMA,
            "Sample": SAMPLE,
            "EnrolmentReport": ENROLMENT_REPORT,
            "RecognisedFace": RECOGNISED_FACE,
            "DatabaseConfig": DATABASE_CONFIG,
            "SamplePhoto": SAMPLE_PHOTO,
            "AppendReport": APPEND_REPORT,
            "StoredPhoto": STORED_PHOTO,
            "SamplePage": SAMPLE_PAGE,
            "Deleted": DELETED,
            "Candidate": CANDIDATE,
            "DetectedFace": DETECTED_FACE,
            "VerifyRequest": VERIFY_REQUEST,
            "Verification": VERIFICATION,
        },
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        },
    },
    "security": [{"bearer": []}, {"apiKey": []}, {}],
    "paths": {
        "/config-database": {
            method: {
                "summary": "Point the service at a PostgreSQL database (admin); GET with a body, as the original",
                "requestBody": json_content(ref("DatabaseConfig")),
                "responses": {
                    **ERROR_RESPONSES,
                    "200": {"description": "Database configuration is done.", "content": TEXT},
                    "400": {
                        "description": "a field is missing (text, as the original answered) or invalid, "
                        "or the database failed (JSON)",
                        "content": {**TEXT, "application/json": {"schema": ref("Error")}},
                    },
                },
            }
            for method in ("get", "post")
        },
        "/clear-samples": {
            method: {
                "summary": "Remove every sample (admin); GET as the original README, POST and DELETE too",
                "responses": {"200": json_content(CLEARED, "removed"), **ERROR_RESPONSES},
            }
            for method in ("get", "post", "delete")
        },
        "/update-samples": {
            "post": {
                "summary": "Enrol samples; re-enrolling an id replaces its vector",
                "requestBody": json_content({"type": "array", "items": ref("Sample")}),
                "responses": {"200": json_content(ref("EnrolmentReport"), "report"), **ERROR_RESPONSES},
            }
        },
        "/face-recognition": {
            "post": {
                "summary": "Find every face and the most similar sample above min_distance",
                "requestBody": json_content(
                    {
                        "type": "object",
                        "required": ["image"],
                        "properties": {
                            "image": {"type": "string"},
                            "min_distance": {"type": "number", "minimum": 0, "maximum": 1},
                            "top_k": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": 10,
                                "description": "add each face's k most similar samples as 'candidates'",
                            },
                            "annotate": {
                                "type": "boolean",
                                "default": False,
                                "description": "answer the photo as JPEG with every face boxed and named",
                            },
                        },
                    }
                ),
                "responses": {
                    "200": {
                        "description": "faces, left to right (JSON); with annotate, the annotated photo",
                        "content": {
                            "application/json": {"schema": {"type": "array", "items": ref("RecognisedFace")}},
                            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                        },
                    },
                    **ERROR_RESPONSES,
                },
            }
        },
        "/verify": {
            "post": {
                "summary": "1:1 verification: similarity and decision for two photos, or a photo and an id",
                "requestBody": json_content(ref("VerifyRequest")),
                "responses": {
                    "200": json_content(ref("Verification"), "the decision"),
                    "404": json_content(ref("Error"), "no sample has this id"),
                    **ERROR_RESPONSES,
                },
            }
        },
        "/detect": {
            "post": {
                "summary": "Detection only: boxes, scores and 5 landmarks, left to right; nothing is embedded",
                "requestBody": json_content({"type": "object", "required": ["image"], "properties": {"image": IMAGE}}),
                "responses": {
                    "200": json_content({"type": "array", "items": ref("DetectedFace")}, "faces, left to right"),
                    **ERROR_RESPONSES,
                },
            }
        },
        "/samples": {
            "post": {
                "summary": "Add photos to sample ids (several photos per person); /update-samples replaces instead",
                "requestBody": json_content({"type": "array", "items": ref("SamplePhoto")}),
                "responses": {"200": json_content(ref("AppendReport"), "report"), **ERROR_RESPONSES},
            },
            "get": {
                "summary": "List the stored photos, ordered by id then photo_id",
                "parameters": [
                    _query_parameter("offset", {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}, "skip"),
                    _query_parameter(
                        "after",
                        {"type": "string"},
                        "a page's 'next': the photos after its last (not with offset; holds its place under writes)",
                    ),
                    _query_parameter("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "default 100"),
                    _query_parameter("id", {"type": "string"}, "only this sample id"),
                    _query_parameter("name", {"type": "string"}, "only this exact name"),
                ],
                "responses": {"200": json_content(ref("SamplePage"), "one page"), **ERROR_RESPONSES},
            },
            "delete": {
                "summary": "Delete a sample id with all its photos, or one photo (admin); any id, '/' included",
                "parameters": [
                    {**_query_parameter("id", {"type": "string", "minLength": 1}, "the sample id"), "required": True},
                    _query_parameter("photo_id", {"type": "string"}, "only this photo ('' : the /update-samples one)"),
                ],
                "responses": DELETE_RESPONSES,
            },
        },
        "/samples/{id}": {
            "delete": {
                "summary": "Delete a sample id with all its photos (admin)",
                "parameters": [SAMPLE_ID_PARAMETER],
                "responses": DELETE_RESPONSES,
            }
        },
        "/samples/{id}/photos/": {
            "delete": {
                "summary": "Delete the photo that /update-samples wrote (photo id '') of a sample id (admin)",
                "parameters": [SAMPLE_ID_PARAMETER],
                "responses": DELETE_RESPONSES,
            }
        },
        "/samples/{id}/photos/{photo_id}": {
            "delete": {
                "summary": "Delete one photo of a sample id (admin)",
                "parameters": [SAMPLE_ID_PARAMETER, _path_parameter("photo_id", {"type": "string", "minLength": 1})],
                "responses": DELETE_RESPONSES,
            }
        },
        "/metrics": METRICS_PATH,
        **{
            path: {
                "get": {
                    "summary": "Readiness: the detector loaded, the database and feature_extraction answering",
                    "security": [{}],
                    "responses": {"200": json_content(READINESS, "ready"), "503": json_content(READINESS, "not ready")},
                }
            }
            for path in ("/health", "/health/ready")
        },
        "/health/live": {
            "get": {"summary": "Liveness", "security": [{}], "responses": {"200": {"description": "alive"}}}
        },
    },
}
