"""Property-based tests of both services against the OpenAPI description each serves at /openapi.json.

schemathesis generates requests for every operation the description holds, valid and invalid; every
answer must be no 5xx and must match the description (status, content type, body schema).
(Its pytest plugin does not run under this pytest, so each operation runs as a Hypothesis test here.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from face_detection.openapi import SPEC as DETECTION_SPEC
from feature_extraction.openapi import SPEC as EXTRACTION_SPEC

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = settings(max_examples=50, deadline=None, database=None, suppress_health_check=list(HealthCheck))
METHODS = {"get", "put", "post", "delete", "patch"}
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


def operations(spec: dict) -> list:
    """(path, method) of every operation in a description, read when the tests are collected."""
    return [
        pytest.param(path, method, id=f"{method.upper()} {path}")
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    ]


def fuzz(schema, path: str, method: str, mode: GenerationMode) -> None:
    @given(case=schema[path][method].as_strategy(generation_mode=mode))
    @EXAMPLES
    def call_and_validate(case) -> None:
        case.call_and_validate(checks=CHECKS, timeout=60)

    try:
        call_and_validate()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        pytest.skip("the description leaves no way to send this operation invalid input")


@pytest.fixture(scope="module")
def fuzzed_detection(start_detection):
    """A face_detection of its own: fuzzing calls /config-database and /clear-samples too."""
    service = start_detection("fuzz", FACEREC_DB_TIMEOUT_S="1")
    yield service
    service.stop()


@pytest.fixture(scope="module")
def detection_schema(fuzzed_detection):
    return schemathesis.openapi.from_url(fuzzed_detection.url + "/openapi.json")


@pytest.fixture(scope="module")
def extraction_schema(extraction_service):
    return schemathesis.openapi.from_url(extraction_service.url + "/openapi.json")


@pytest.mark.parametrize("mode", MODES, ids=lambda mode: mode.value)
@pytest.mark.parametrize("path, method", operations(DETECTION_SPEC))
def test_face_detection_matches_its_description(detection_schema, path, method, mode):
    fuzz(detection_schema, path, method, mode)


@pytest.mark.parametrize("mode", MODES, ids=lambda mode: mode.value)
@pytest.mark.parametrize("path, method", operations(EXTRACTION_SPEC))
def test_feature_extraction_matches_its_description(extraction_schema, path, method, mode):
    fuzz(extraction_schema, path, method, mode)
