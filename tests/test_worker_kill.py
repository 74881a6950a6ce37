"""A face_detection worker SIGKILLed in the middle of an enrolment: the batch is stored whole or not
at all, and the worker gunicorn starts in its place serves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import psycopg
import pytest
import requests

from facerec.settings import PROJECT_ROOT
from tests.conftest import PACKAGE_PHOTOS, data_uri
from tests.servers import Service

YAO = data_uri(PACKAGE_PHOTOS / "yaoming.jpg")
ZERO_VECTOR = "[" + ",".join(["0"] * 512) + "]"


@pytest.fixture(scope="module")
def one_worker(start_detection):
    """face_detection with a single worker (so the request is in the worker we kill) and its own database."""
    service = start_detection("worker-kill")
    yield service, service.database_url
    service.stop()


def batch(prefix: str, size: int) -> list[dict]:
    return [{"id": f"{prefix}-{i}", "name": prefix, "image": YAO} for i in range(size)]


def enrol(service: Service, items: list[dict]) -> requests.Response:
    return requests.post(service.url + "/update-samples", json=items, timeout=300)


def enrol_in_background(service: Service, items: list[dict]) -> Future:
    pool = ThreadPoolExecutor(1)
    future = pool.submit(enrol, service, items)
    pool.shutdown(wait=False)
    return future


def stored_ids(db_url: str, prefix: str) -> set[str]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT sample_id FROM sample_face_vectors WHERE sample_id LIKE %s", (prefix + "-%",))
        return {sample_id for (sample_id,) in rows}


def wait_until(condition: Callable[[], object], timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)
    return result


def kill_the_worker(service: Service) -> int:
    [worker] = service.worker_pids()
    os.kill(worker, signal.SIGKILL)
    return worker


def expect_a_new_worker_serving(service: Service, killed: int) -> None:
    wait_until(lambda: service.worker_pids() - {killed})
    service.wait_ready()
    response = requests.post(service.url + "/face-recognition", json={"image": YAO}, timeout=60)
    assert response.status_code == 200 and len(response.json()) == 1


def waiting_backends(db_url: str) -> list[int]:
    """Server processes of this database that wait for a lock."""
    with psycopg.connect(db_url) as conn:
        query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        return [pid for (pid,) in conn.execute(query)]


def backend_alive(db_url: str, pid: int) -> bool:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0] > 0


def test_killed_while_writing_the_batch_stores_none_of_it(one_worker):
    service, db_url = one_worker
    items = batch("mid-write", 20)
    # An uncommitted row with item 10's id: the worker's transaction, having written items 0-9,
    # waits on it, and is killed right there, half-way through writing.
    with psycopg.connect(db_url) as blocker:
        blocker.execute(
            "INSERT INTO sample_face_vectors (sample_id, photo_id, embedding, model) VALUES (%s, '', %s::vector, %s)",
            (items[10]["id"], ZERO_VECTOR, "arcface_mbf"),
        )
        request = enrol_in_background(service, items)
        [backend] = wait_until(lambda: waiting_backends(db_url))
        killed = kill_the_worker(service)
        with pytest.raises(requests.ConnectionError):
            request.result(timeout=60)
        blocker.rollback()
    wait_until(lambda: not backend_alive(db_url, backend))
    assert stored_ids(db_url, "mid-write") == set(), "a half-written batch was kept"
    expect_a_new_worker_serving(service, killed)
    assert enrol(service, items).json()["success"] == [item["id"] for item in items]
    assert stored_ids(db_url, "mid-write") == {item["id"] for item in items}


def test_killed_during_a_large_batch_stores_all_or_nothing(one_worker):
    service, db_url = one_worker
    items = batch("large", 100)
    request = enrol_in_background(service, items)
    time.sleep(0.5)
    assert not request.done(), "the batch must still be in flight when its worker is killed"
    killed = kill_the_worker(service)
    with pytest.raises(requests.ConnectionError):
        request.result(timeout=60)
    assert stored_ids(db_url, "large") in (set(), {item["id"] for item in items})
    expect_a_new_worker_serving(service, killed)


@pytest.mark.parametrize("folder", ["face_detection", "feature_extraction"])
def test_the_worker_timeout_is_a_setting(folder):
    """gunicorn reads the folder's gunicorn.conf.py; its timeout comes from FACEREC_GUNICORN_TIMEOUT."""
    read_timeout = "import runpy; print(runpy.run_path('gunicorn.conf.py')['timeout'])"
    env = {**os.environ, "FACEREC_GUNICORN_TIMEOUT": "17"}
    config = subprocess.run(
        [sys.executable, "-c", read_timeout], cwd=PROJECT_ROOT / folder, env=env, capture_output=True, text=True
    )
    assert config.stdout.strip() == "17", config.stderr
