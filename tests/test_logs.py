"""Logs: one JSON line per request with its id, status and timings; never a key, a password or image bytes."""

from __future__ import annotations

import base64
import json
import re
import uuid
from functools import cache
from pathlib import Path

import cv2
import pytest
import requests

from tests.conftest import ADMIN_KEY, CLIENT_KEY, PACKAGE_PHOTOS, data_uri
from tests.photos import aligned_crops

RUN = uuid.uuid4().hex[:8]
PASSWORD = f"pw-{RUN}-never-logged"
WRONG_KEY = f"wrong-key-{RUN}"
QUERY_SECRET = f"query-secret-{RUN}"
EXTRACTION_KEY = f"extraction-key-{RUN}"
YAO = data_uri(PACKAGE_PHOTOS / "yaoming.jpg")


@cache
def crop_base64() -> str:
    """An aligned face crop as feature_extraction's JSON form takes it."""
    return base64.b64encode(cv2.imencode(".png", aligned_crops(PACKAGE_PHOTOS / "yaoming.jpg")[0])[1]).decode()


def log_lines(path: Path) -> list[dict]:
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def secrets_and_images(crop: str) -> list[str]:
    """What must never reach a log: keys, the password, and pieces of every image sent."""
    images = [YAO.split(",", 1)[1], crop]
    pieces = [image[start : start + 40] for image in images for start in (0, len(image) // 2, len(image) - 40)]
    return [ADMIN_KEY, CLIENT_KEY, WRONG_KEY, PASSWORD, QUERY_SECRET, EXTRACTION_KEY, *pieces]


@pytest.fixture(scope="module")
def answered(secured_service, extraction_service) -> dict[str, requests.Response]:
    """Requests that carry keys, a password and images, answered, by request id."""
    detection, extraction = secured_service.url, extraction_service.url
    client = {"Authorization": f"Bearer {CLIENT_KEY}"}
    admin = {"X-API-Key": ADMIN_KEY}
    config = {"host": "127.0.0.1", "port": 1, "db_name": "none", "username": "u", "password": PASSWORD}
    calls = {
        "recognise": ("POST", detection + "/face-recognition", client, {"json": {"image": YAO}}),
        "enrol": ("POST", detection + "/update-samples", client, {"json": [{"id": "y", "image": YAO}]}),
        "bad-image": ("POST", detection + "/update-samples", client, {"json": [{"id": "b", "image": YAO[:-9]}]}),
        "wrong-key": ("POST", detection + "/face-recognition", {"X-API-Key": WRONG_KEY}, {"json": {"image": YAO}}),
        "config": ("POST", detection + "/config-database", admin, {"json": config}),
        "config-broken-json": ("POST", detection + "/config-database", admin, {"data": f'{{"password": "{PASSWORD}"'}),
        "clear": ("GET", detection + "/clear-samples", admin, {}),
        "query-secret": ("GET", detection + f"/health/live?api_key={QUERY_SECRET}", {}, {}),
        "extract": (
            "POST",
            extraction + "/extract_feature",
            {"X-API-Key": EXTRACTION_KEY},
            {"json": {"crops": [{"id": "c", "image": crop_base64()}]}},
        ),
    }
    answers = {}
    for name, (method, url, headers, body) in calls.items():
        request_id = f"{RUN}-{name}"
        answers[request_id] = requests.request(
            method, url, headers={**headers, "X-Request-Id": request_id}, timeout=60, **body
        )
    return answers


def test_the_requests_were_answered_as_expected(answered):
    statuses = {request_id.split("-", 1)[1]: response.status_code for request_id, response in answered.items()}
    assert statuses == {
        "recognise": 200,
        "enrol": 200,
        "bad-image": 200,
        "wrong-key": 401,
        "config": 400,
        "config-broken-json": 400,
        "clear": 200,
        "query-secret": 200,
        "extract": 200,
    }


def test_one_json_line_per_request_with_id_status_and_timings(answered, secured_service, extraction_service):
    lines = log_lines(secured_service.log_path) + log_lines(extraction_service.log_path)
    for request_id, response in answered.items():
        # the access line; a refusal's reason may be logged under the same id (/config-database)
        [line] = [line for line in lines if line.get("request_id") == request_id and line["message"] == "request"]
        assert line["status"] == response.status_code
        assert response.headers["X-Request-Id"] == request_id
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])  # UTC, to the ms
        assert line["method"] in ("GET", "POST") and line["path"].startswith("/")
        assert isinstance(line["ms"], float) and line["ms"] >= 0


def test_no_key_password_or_image_bytes_in_any_log(answered, secured_service, extraction_service):
    logs = "".join(service.log_path.read_text(errors="replace") for service in (secured_service, extraction_service))
    leaked = [secret for secret in secrets_and_images(crop_base64()) if secret in logs]
    assert leaked == []
