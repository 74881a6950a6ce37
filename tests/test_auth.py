"""API keys: admin and client roles on face_detection, a shared key on feature_extraction."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

from facerec.auth import ApiKeys
from facerec.settings import PROJECT_ROOT
from tests.conftest import PACKAGE_PHOTOS, data_uri
from tests.servers import Service

ADMIN_KEY, CLIENT_KEY, EXTRACTION_KEY = "admin-key-123", "client-key-456", "between-services-789"


def detection_behind(extraction: Service, work_dir, db_url: str, name: str, **env: str) -> Service:
    """face_detection on the test database, calling this feature_extraction; not started."""
    return Service(
        "face_detection",
        env={
            "DATABASE_URL": db_url,
            "FEATURE_EXTRACTION_URL": extraction.url,
            "FACEREC_STATE_DIR": str(work_dir / f"{name}-state"),
            **env,
        },
        log_path=work_dir / f"{name}.log",
    )


@pytest.fixture(scope="module")
def secured(work_dir, detection_db_url):
    keys_file = work_dir / "keys.json"
    keys_file.write_text(json.dumps({"client": ["client-from-file"]}))
    extraction = Service(
        "feature_extraction", env={"FACEREC_EXTRACTION_KEY": EXTRACTION_KEY}, log_path=work_dir / "fe-auth.log"
    ).start()
    detection = detection_behind(
        extraction,
        work_dir,
        detection_db_url,
        "auth",
        FACEREC_EXTRACTION_KEY=EXTRACTION_KEY,
        FACEREC_ADMIN_KEYS=ADMIN_KEY,
        FACEREC_CLIENT_KEYS=CLIENT_KEY,
        FACEREC_API_KEYS_FILE=str(keys_file),
    ).start()
    yield detection, extraction
    detection.stop()
    extraction.stop()


def recognise(url: str, headers: dict) -> requests.Response:
    body = {"image": data_uri(PACKAGE_PHOTOS / "yaoming.jpg")}
    return requests.post(url + "/face-recognition", json=body, headers=headers, timeout=60)


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {CLIENT_KEY}"},
        {"X-API-Key": CLIENT_KEY},
        {"X-API-Key": "client-from-file"},
        {"Authorization": f"bearer {ADMIN_KEY}"},
    ],
)
def test_client_and_admin_keys_may_recognise(secured, headers):
    assert recognise(secured[0].url, headers).status_code == 200


@pytest.mark.parametrize(
    "headers, status, reason",
    [({}, 401, "api_key_required"), ({"X-API-Key": "wrong"}, 401, "invalid_api_key")],
)
def test_missing_or_wrong_key(secured, headers, status, reason):
    response = recognise(secured[0].url, headers)
    assert response.status_code == status and response.json()["reason"] == reason


def test_admin_endpoints_need_an_admin_key(secured):
    url = secured[0].url + "/clear-samples"
    assert requests.get(url, headers={"X-API-Key": CLIENT_KEY}, timeout=30).status_code == 403
    assert requests.get(url, timeout=30).status_code == 401
    assert requests.get(url, headers={"X-API-Key": ADMIN_KEY}, timeout=30).status_code == 200
    config = requests.get(secured[0].url + "/config-database", json={}, headers={"X-API-Key": CLIENT_KEY}, timeout=30)
    assert config.status_code == 403


def test_head_with_an_admin_key_changes_nothing(secured, detection_db_url):
    """Flask answers HEAD with the GET view; GET /clear-samples clears, as the original's did."""
    admin = {"X-API-Key": ADMIN_KEY}
    enrolled = requests.post(
        secured[0].url + "/update-samples",
        json=[{"id": "kept", "image": data_uri(PACKAGE_PHOTOS / "yaoming.jpg")}],
        headers=admin,
        timeout=60,
    )
    assert enrolled.json()["success"] == ["kept"]
    assert requests.head(secured[0].url + "/clear-samples", headers=admin, timeout=30).status_code == 200
    assert requests.head(secured[0].url + "/config-database", headers=admin, timeout=30).status_code == 200
    listing = requests.get(secured[0].url + "/samples", params={"id": "kept"}, headers=admin, timeout=30)
    assert listing.json()["total"] == 1
    assert requests.head(secured[0].url + "/clear-samples", timeout=30).status_code == 401


@pytest.mark.parametrize("sent", ["wrong", ""], ids=["another key", "no key"])
def test_a_key_feature_extraction_refuses_is_named_and_not_ready(secured, work_dir, detection_db_url, sent):
    name = f"refused-{sent}"
    detection = detection_behind(secured[1], work_dir, detection_db_url, name, FACEREC_EXTRACTION_KEY=sent).start()
    try:
        health = requests.get(detection.url + "/health", timeout=30)
        assert health.status_code == 503 and "FACEREC_EXTRACTION_KEY" in health.json()["feature_extraction"]
        response = recognise(detection.url, {})
        assert response.status_code == 503 and response.json()["reason"] == "extraction_key_refused"
    finally:
        detection.stop()


def test_feature_extraction_takes_any_of_its_keys_and_face_detection_sends_the_first(work_dir, detection_db_url):
    """One value for both services, as the README says, holding a key being rotated in."""
    keys = "new-key, old-key"
    extraction = Service("feature_extraction", env={"FACEREC_EXTRACTION_KEY": keys}, log_path=work_dir / "rot.log")
    extraction.start()
    detection = detection_behind(extraction, work_dir, detection_db_url, "rotation", FACEREC_EXTRACTION_KEY=keys)
    try:
        detection.start()
        assert requests.get(detection.url + "/health", timeout=30).json()["feature_extraction"] == "ok"
        assert recognise(detection.url, {}).status_code == 200
        old = requests.get(extraction.url + "/health", headers={"X-API-Key": "old-key"}, timeout=30)
        assert old.json()["key"] == "accepted"
    finally:
        detection.stop()
        extraction.stop()


def test_health_is_public(secured):
    assert requests.get(secured[0].url + "/health/live", timeout=30).status_code == 200
    assert requests.get(secured[1].url + "/health", timeout=30).status_code == 200


def test_feature_extraction_requires_the_shared_key(secured):
    response = requests.post(secured[1].url + "/extract_feature", json={"crops": []}, timeout=30)
    assert response.status_code == 401


def test_keys_are_compared_whole():
    keys = ApiKeys(admin=("abc",), client=("xyz",))
    assert keys.role_of("abc") == "admin" and keys.role_of("xyz") == "client"
    assert keys.role_of("ab") is None and keys.role_of("abcd") is None and keys.role_of("") is None


def test_open_services_warn_at_start(detection_service, extraction_service):
    assert "face_detection: no API key configured" in detection_service.log_path.read_text()
    assert "feature_extraction: no API key configured" in extraction_service.log_path.read_text()


@pytest.mark.parametrize(
    "text",
    [
        '{"client": ["ok", 5]}',
        '{"admin": "not-a-list"}',
        '{"client": [" "]}',
        # no key at all: the service would be open to anyone, though its operator named a keys file
        "{}",
        '{"admin": [], "client": []}',
        '{"Admin": ["adm"], "clients": ["cli"]}',
        "[]",
        "null",
        "",
        "not json",
    ],
)
def test_a_keys_file_with_anything_but_key_strings_stops_the_start(tmp_path, text):
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(text)
    with pytest.raises(ValueError, match=f"FACEREC_API_KEYS_FILE {keys_file}"):
        ApiKeys.from_settings("", "", str(keys_file))


def test_feature_extraction_listens_on_loopback_by_default():
    read_bind = "import runpy; print(runpy.run_path('gunicorn.conf.py')['bind'])"
    env = {name: value for name, value in os.environ.items() if name != "FEATURE_EXTRACTION_BIND"}
    config = subprocess.run(
        [sys.executable, "-c", read_bind],
        cwd=PROJECT_ROOT / "feature_extraction",
        env=env,
        capture_output=True,
        text=True,
    )
    assert config.stdout.strip() == "127.0.0.1:5000", config.stderr
