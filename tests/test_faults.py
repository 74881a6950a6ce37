"""Faults: no database, a database restart under load, a statement over its timeout, and
feature_extraction down, killed or stalled. JSON 503s meanwhile, then recovery by the same workers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import requests

from facerec.db import embedded
from facerec.db.cli import main as init_db
from tests.conftest import PACKAGE_PHOTOS, data_uri
from tests.servers import Service, free_port
from tests.test_face_detection_api import rows

YAO = {"id": "yao", "name": "Yao", "image": data_uri(PACKAGE_PHOTOS / "yaoming.jpg")}


def enrol(service: Service, sample_id: str = "yao") -> requests.Response:
    return requests.post(service.url + "/update-samples", json=[{**YAO, "id": sample_id}], timeout=60)


def recognise(service: Service) -> requests.Response:
    return requests.post(service.url + "/face-recognition", json={"image": YAO["image"]}, timeout=60)


def expect_503(response: requests.Response, reason: str) -> dict:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["reason"] == reason, body
    return body


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def without_database(work_dir, extraction_service, name: str, **env: str) -> Service:
    """face_detection with no database configured (none saved, no DATABASE_URL), started."""
    return Service(
        "face_detection",
        env={
            "DATABASE_URL": "",
            "FEATURE_EXTRACTION_URL": extraction_service.url,
            "FACEREC_STATE_DIR": str(work_dir / f"{name}-state"),
            **env,
        },
        log_path=work_dir / f"{name}.log",
    ).start()


def test_no_database_configured_is_503(work_dir, extraction_service):
    service = without_database(work_dir, extraction_service, "no-db")
    try:
        response = enrol(service)
        assert response.status_code == 503
        assert "no database configured" in response.json()["error"]
        cleared = requests.get(service.url + "/clear-samples", timeout=30)
        assert cleared.status_code == 503 and "no database configured" in cleared.json()["fail"]
        assert cleared.json()["request_id"] == cleared.headers["X-Request-Id"]
        assert requests.get(service.url + "/health", timeout=30).status_code == 503
        assert requests.get(service.url + "/health/live", timeout=30).status_code == 200
    finally:
        service.stop()


def test_clients_silent_mid_request_do_not_hold_the_threads(work_dir, extraction_service):
    """Eight half-sent requests took face_detection's 2 x 4 request threads for as long as they
    stayed open; each thread now gives up after FACEREC_CLIENT_TIMEOUT_S of silence."""
    service = without_database(work_dir, extraction_service, "silent-clients", FACEREC_CLIENT_TIMEOUT_S="2")
    host, port = service.url.removeprefix("http://").split(":")
    stalled = []
    try:
        for _ in range(12):
            connection = socket.create_connection((host, int(port)))
            connection.sendall(b"POST /face-recognition HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            stalled.append(connection)
        time.sleep(0.5)  # every request thread is now waiting on one of them
        started = time.monotonic()
        assert requests.get(service.url + "/health/live", timeout=30).status_code == 200
        assert time.monotonic() - started < 10
        stalled[0].settimeout(30)
        answer = b""
        while not answer.endswith(b"}\n") and (chunk := stalled[0].recv(4096)):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 400") and b'"reason":"incomplete_body"' in answer
        log = service.log_path.read_text()
        assert "silent for 2.0 s mid-request" in log and "Traceback" not in log
    finally:
        for connection in stalled:
            connection.close()
        service.stop()


@pytest.fixture(scope="module")
def own_database(work_dir):
    pgdata = work_dir / f"restart-{time.monotonic_ns()}"
    url = embedded.start(pgdata)
    assert init_db(["--url", url]) == 0
    yield pgdata, url
    embedded.stop(pgdata)


@pytest.fixture(scope="module")
def own_service(work_dir, extraction_service, own_database):
    service = Service(
        "face_detection",
        env={
            "DATABASE_URL": own_database[1],
            "FEATURE_EXTRACTION_URL": extraction_service.url,
            "FACEREC_STATE_DIR": str(work_dir / "restart-state"),
            "FACEREC_DB_TIMEOUT_S": "2",
            "FACEREC_DB_STATEMENT_TIMEOUT_S": "2",
        },
        workers=2,
        log_path=work_dir / "restart.log",
    ).start()
    yield service
    service.stop()


class EnrolmentLoad:
    """Threads that enrol a new id per request until stopped, recording each id's answer."""

    def __init__(self, service: Service):
        self.service = service
        self.answers: list[tuple[str, int, dict]] = []
        self.stopped = threading.Event()

    def run(self, thread: int) -> None:
        for number in range(10_000):
            if self.stopped.is_set():
                return
            sample_id = f"load-{thread}-{number}"
            response = enrol(self.service, sample_id)
            self.answers.append((sample_id, response.status_code, response.json()))

    def count(self, status: int) -> int:
        return sum(1 for _, answered, _ in self.answers if answered == status)

    def acknowledged(self) -> set[str]:
        return {sample_id for sample_id, status, body in self.answers if status == 200 and body["success"]}


def test_database_restart_under_load_loses_no_acknowledged_enrolment(own_service, own_database):
    pgdata, url = own_database
    workers = own_service.worker_pids()
    load = EnrolmentLoad(own_service)
    with ThreadPoolExecutor(4) as pool:
        threads = [pool.submit(load.run, thread) for thread in range(4)]
        wait_until(lambda: load.count(200) >= 4)
        embedded.stop(pgdata)
        wait_until(lambda: load.count(503) >= 4)
        served_before_restart = load.count(200)
        embedded.start(pgdata)
        wait_until(lambda: load.count(200) >= served_before_restart + 8)
        load.stopped.set()
        for thread in threads:
            thread.result()
    assert {status for _, status, _ in load.answers} == {200, 503}
    assert {body["reason"] for _, status, body in load.answers if status == 503} == {"database_unavailable"}
    stored = {row[0] for row in rows(url)}
    assert load.acknowledged() <= stored, "an acknowledged enrolment was lost"
    assert own_service.worker_pids() == workers, "the same workers serve after the restart"
    faces = recognise(own_service).json()
    assert faces[0]["id"].startswith("load-")


def test_a_statement_over_its_timeout_is_503_naming_the_setting(own_service, own_database):
    with psycopg.connect(own_database[1]) as conn:  # holds the table locked: statements on it wait
        conn.execute("LOCK TABLE sample_face_vectors IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        body = expect_503(enrol(own_service), "db_statement_timeout")
        waited = time.monotonic() - started
    assert "FACEREC_DB_STATEMENT_TIMEOUT_S" in body["error"]
    assert 2 <= waited < 10
    assert enrol(own_service).status_code == 200


def kill(service: Service) -> None:
    """SIGKILL the arbiter, then its workers, as a crash or the OOM killer would."""
    workers = service.worker_pids()
    os.kill(service.process.pid, signal.SIGKILL)
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    service.process.wait()
    for folder in metrics_dirs(workers):  # the arbiter made it, and removes it on a clean exit
        shutil.rmtree(folder, ignore_errors=True)


def metrics_dirs(workers: set[int]) -> set[Path]:
    """The arbiter's temporary metrics folders: its workers' files are named after their pids."""
    made = Path(tempfile.gettempdir()).glob("facerec-metrics-*/*.db")
    return {path.parent for path in made if int(path.stem.rsplit("_", 1)[-1]) in workers}


def health(service: Service) -> tuple[int, str]:
    response = requests.get(service.url + "/health", timeout=30)
    return response.status_code, response.json()["feature_extraction"]


def test_feature_extraction_down_killed_or_stalled_is_503_then_recovers(work_dir, detection_db_url):
    port = free_port()
    detection = Service(
        "face_detection",
        env={
            "DATABASE_URL": detection_db_url,
            "FEATURE_EXTRACTION_URL": f"http://127.0.0.1:{port}",
            "FACEREC_STATE_DIR": str(work_dir / "fe-down-state"),
            "FACEREC_EXTRACTION_RETRIES": "1",
            "FACEREC_EXTRACTION_TIMEOUT_S": "2",
        },
        log_path=work_dir / "fe-down.log",
    ).start()
    extraction = Service("feature_extraction", env={}, port=port, log_path=work_dir / "fe-restarted.log")
    try:
        body = expect_503(recognise(detection), "extraction_unavailable")
        assert "feature_extraction service is unavailable" in body["error"]
        extraction.start()
        assert recognise(detection).status_code == 200

        assert health(detection) == (200, "ok")
        kill(extraction)
        expect_503(recognise(detection), "extraction_unavailable")
        status, state = health(detection)  # asked anew, though the model was known
        assert status == 503 and "unavailable" in state
        extraction.start()
        assert recognise(detection).status_code == 200

        stalled = extraction.worker_pids()
        for pid in stalled:
            os.kill(pid, signal.SIGSTOP)
        try:
            body = expect_503(recognise(detection), "extraction_timeout")
            assert "FACEREC_EXTRACTION_TIMEOUT_S" in body["error"]
            started = time.monotonic()
            status, state = health(detection)
            assert status == 503 and "no answer within 2 s" in state and time.monotonic() - started < 5
        finally:
            for pid in stalled:
                os.kill(pid, signal.SIGCONT)
        assert recognise(detection).status_code == 200
    finally:
        extraction.stop()
        detection.stop()
