"""Faults: no database, a database restart, feature_extraction down. JSON 503s, then recovery."""

from __future__ import annotations

import time

import pytest
import requests

from facerec.db import embedded
from facerec.db.cli import main as init_db
from tests.conftest import PACKAGE_PHOTOS, data_uri
from tests.servers import Service, free_port

YAO = {"id": "yao", "name": "Yao", "image": data_uri(PACKAGE_PHOTOS / "yaoming.jpg")}


def enrol(service: Service) -> requests.Response:
    return requests.post(service.url + "/update-samples", json=[YAO], timeout=60)


def test_no_database_configured_is_503(work_dir, extraction_service):
    service = Service(
        "face_detection",
        env={
            "DATABASE_URL": "",
            "FEATURE_EXTRACTION_URL": extraction_service.url,
            "FACEREC_STATE_DIR": str(work_dir / "no-db-state"),
        },
        log_path=work_dir / "no-db.log",
    ).start()
    try:
        response = enrol(service)
        assert response.status_code == 503
        assert "no database configured" in response.json()["error"]
        cleared = requests.get(service.url + "/clear-samples", timeout=30)
        assert cleared.status_code == 503 and "no database configured" in cleared.json()["fail"]
        assert requests.get(service.url + "/health", timeout=30).status_code == 503
        assert requests.get(service.url + "/health/live", timeout=30).status_code == 200
    finally:
        service.stop()


@pytest.fixture()
def own_database(work_dir):
    pgdata = work_dir / f"restart-{time.monotonic_ns()}"
    url = embedded.start(pgdata)
    assert init_db(["--url", url]) == 0
    yield pgdata, url
    embedded.stop(pgdata)


def test_database_restart_is_recovered_without_restarting_the_service(work_dir, extraction_service, own_database):
    pgdata, url = own_database
    service = Service(
        "face_detection",
        env={
            "DATABASE_URL": url,
            "FEATURE_EXTRACTION_URL": extraction_service.url,
            "FACEREC_STATE_DIR": str(work_dir / "restart-state"),
            "FACEREC_DB_TIMEOUT_S": "2",
        },
        workers=2,
        log_path=work_dir / "restart.log",
    ).start()
    try:
        assert enrol(service).json()["success"] == ["yao"]
        embedded.stop(pgdata)
        down = enrol(service)
        assert down.status_code == 503 and down.json()["reason"] == "database_unavailable"
        embedded.start(pgdata)
        recovered = [enrol(service).status_code for _ in range(6)]
        assert recovered[-4:] == [200] * 4, recovered
        faces = requests.post(service.url + "/face-recognition", json={"image": YAO["image"]}, timeout=60).json()
        assert faces[0]["id"] == "yao", "the acknowledged enrolment survived the restart"
    finally:
        service.stop()


def test_feature_extraction_down_is_503_then_recovers(work_dir, detection_db_url):
    port = free_port()
    detection = Service(
        "face_detection",
        env={
            "DATABASE_URL": detection_db_url,
            "FEATURE_EXTRACTION_URL": f"http://127.0.0.1:{port}",
            "FACEREC_STATE_DIR": str(work_dir / "fe-down-state"),
            "FACEREC_EXTRACTION_RETRIES": "1",
        },
        log_path=work_dir / "fe-down.log",
    ).start()
    extraction = Service("feature_extraction", env={}, port=port, log_path=work_dir / "fe-restarted.log")
    try:
        response = requests.post(detection.url + "/face-recognition", json={"image": YAO["image"]}, timeout=60)
        assert response.status_code == 503
        assert "feature_extraction service is unavailable" in response.json()["error"]
        extraction.start()
        response = requests.post(detection.url + "/face-recognition", json={"image": YAO["image"]}, timeout=60)
        assert response.status_code == 200 and len(response.json()) == 1
    finally:
        extraction.stop()
        detection.stop()
