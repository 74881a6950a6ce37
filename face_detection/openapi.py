"""OpenAPI 3 description of face_detection, served at /openapi.json."""

from __future__ import annotations

import facerec
from facerec.openapi import ERROR_RESPONSES, json_content, ref

SAMPLE = {
    "type": "object",
    "required": ["id", "image"],
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 4096},
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
        "success": {"type": "array", "items": {"type": "string"}},
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
    },
}
DATABASE_CONFIG = {
    "type": "object",
    "required": ["host", "db_name", "username", "password"],
    "properties": {
        "host": {"type": "string"},
        "port": {"type": ["integer", "string"]},
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
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}, "reason": {"type": "string"}},
            },
            "Sample": SAMPLE,
            "EnrolmentReport": ENROLMENT_REPORT,
            "RecognisedFace": RECOGNISED_FACE,
            "DatabaseConfig": DATABASE_CONFIG,
        },
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        },
    },
    "security": [{"bearer": []}, {"apiKey": []}, {}],
    "paths": {
        "/config-database": {
            "post": {
                "summary": "Point the service at a PostgreSQL database (admin); GET with a body works too",
                "requestBody": json_content(ref("DatabaseConfig")),
                "responses": {
                    "200": {"description": "Database configuration is done.", "content": TEXT},
                    "400": {"description": "a field is missing (text) or the database failed (JSON)"},
                    **ERROR_RESPONSES,
                },
            }
        },
        "/clear-samples": {
            "get": {
                "summary": "Remove every sample (admin)",
                "responses": {"200": json_content({"type": "object"}, "removed"), **ERROR_RESPONSES},
            }
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
                        },
                    }
                ),
                "responses": {
                    "200": json_content({"type": "array", "items": ref("RecognisedFace")}, "faces, left to right"),
                    **ERROR_RESPONSES,
                },
            }
        },
        "/health": {
            "get": {
                "summary": "Readiness",
                "security": [{}],
                "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}},
            }
        },
        "/health/live": {
            "get": {"summary": "Liveness", "security": [{}], "responses": {"200": {"description": "alive"}}}
        },
    },
}
