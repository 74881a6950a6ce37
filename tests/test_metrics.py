"""GET /metrics on both services under gunicorn: Prometheus text, summed over every worker."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from facerec.cores import usable_cores
from facerec.inference.sessions import _other_runnable_tasks
from tests.conftest import data_uri
from tests.test_face_detection_api import YAO, enrol, recognise, sample


def scrape(url: str, request_id: str = "") -> dict[tuple, float]:
    """Every sample of /metrics, keyed by (name, sorted labels)."""
    response = requests.get(url + "/metrics", headers={"X-Request-Id": request_id or uuid.uuid4().hex}, timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(metrics: dict, name: str, **labels) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def served_by(log_path, request_ids: set[str]) -> set[int]:
    """The worker pids whose access log lines carry these request ids."""
    pids = set()
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("request_id") in request_ids:
                pids.add(entry["pid"])
    return pids


def scrape_elsewhere(service, workers: set[int], timeout: float = 90.0) -> dict[tuple, float]:
    """/metrics as answered by a worker outside `workers`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request_id = uuid.uuid4().hex
        try:
            metrics = scrape(service.url, request_id)
        except requests.ConnectionError:
            continue
        if not served_by(service.log_path, {request_id}) & workers:
            return metrics
        time.sleep(0.2)
    raise AssertionError(f"no other worker answered within {timeout}s")


def test_counts_are_summed_over_workers_and_outlive_them(detection_service):
    """Requests served by workers that then exit still count in /metrics, whichever worker answers."""
    live = {"endpoint": "/health/live", "method": "GET", "status": "200"}
    before = value(scrape(detection_service.url), "facerec_http_request_duration_seconds_count", **live)
    request_ids = [uuid.uuid4().hex for _ in range(30)]
    for request_id in request_ids:
        response = requests.get(detection_service.url + "/health/live", headers={"X-Request-Id": request_id})
        assert response.status_code == 200
    workers = served_by(detection_service.log_path, set(request_ids))
    for pid in workers:
        os.kill(pid, signal.SIGTERM)  # gunicorn's master starts new workers in their place
    after = value(scrape_elsewhere(detection_service, workers), "facerec_http_request_duration_seconds_count", **live)
    assert after - before == len(request_ids)


def test_methods_the_client_invents_share_one_series(detection_service):
    """Else each new word would be a series that every worker keeps (26,352 of them for 1,500 requests)."""
    other = {"endpoint": "unmatched", "method": "other", "status": "405"}  # no rule matched the method
    before = value(scrape(detection_service.url), "facerec_http_request_duration_seconds_count", **other)
    for index in range(5):
        response = requests.request(f"XMETHOD{index}", detection_service.url + "/health/live", timeout=30)
        assert response.status_code == 405
    metrics = scrape(detection_service.url)
    assert value(metrics, "facerec_http_request_duration_seconds_count", **other) - before == 5
    assert not any("XMETHOD" in str(labels) for _, labels in metrics)


def test_enrolment_and_recognition_are_measured(api, detection_service, extraction_service):
    fd_before, fe_before = scrape(detection_service.url), scrape(extraction_service.url)
    assert enrol(api, [sample("a"), sample("b")]).json()["success"] == ["a", "b"]
    assert len(recognise(api).json()) >= 18
    fd, fe = scrape(detection_service.url), scrape(extraction_service.url)

    def grew(before: dict, after: dict, name: str, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew(fd_before, fd, "facerec_faces_enrolled_total", mode="replace") == 2
    assert grew(fd_before, fd, "facerec_db_query_duration_seconds_count", operation="replace") == 1
    assert grew(fd_before, fd, "facerec_db_query_duration_seconds_count", operation="match") == 1
    assert grew(fd_before, fd, "facerec_model_duration_seconds_count", model="scrfd_500m") >= 2
    assert grew(fd_before, fd, "facerec_model_batch_size_sum", model="scrfd_500m") >= 3, "three photos"
    update = {"endpoint": "/update-samples", "method": "POST", "status": "200"}
    assert grew(fd_before, fd, "facerec_http_request_duration_seconds_count", **update) == 1
    assert grew(fe_before, fe, "facerec_model_duration_seconds_count", model="arcface_mbf") >= 2
    crops = grew(fe_before, fe, "facerec_model_batch_size_sum", model="arcface_mbf")
    assert crops >= 2 + 18, "two enrolled faces and every face of players.jpg"
    extract = {"endpoint": "/extract_feature", "method": "POST", "status": "200"}
    assert grew(fe_before, fe, "facerec_http_request_duration_seconds_count", **extract) == 2


def runs_by_threads(before: dict, after: dict, model: str) -> dict[str, float]:
    name = "facerec_model_cpu_threads_total"
    labels = {dict(key[1])["threads"] for key in after if key[0] == name and dict(key[1])["model"] == model}
    return {n: value(after, name, model=model, threads=n) - value(before, name, model=model, threads=n) for n in labels}


def wait_until_the_machine_is_idle(timeout: float = 60.0) -> None:
    """Until no other task is runnable for half a second (e.g. gunicorn's new workers loading their models)."""
    deadline, quiet = time.monotonic() + timeout, 0
    while quiet < 10:
        assert time.monotonic() < deadline, "the machine did not come to rest"
        quiet = quiet + 1 if _other_runnable_tasks() == 0 else 0
        time.sleep(0.05)


def test_a_lone_request_runs_each_model_on_every_core(api, detection_service, extraction_service):
    """One request at a time on an otherwise idle machine: each model call takes all the cores. The thread
    that handed a call its work is not counted as busy (it was, for 6 to 67% of the recogniser's calls)."""
    cores = usable_cores()
    if cores < 2:
        pytest.skip("one core: one thread whatever the load")
    wait_until_the_machine_is_idle()
    fd_before, fe_before = scrape(detection_service.url), scrape(extraction_service.url)
    client, body, count = requests.Session(), {"image": data_uri(YAO)}, 60
    for _ in range(count):
        assert client.post(api + "/face-recognition", json=body, timeout=60).status_code == 200
    fd, fe = scrape(detection_service.url), scrape(extraction_service.url)
    for runs in (runs_by_threads(fd_before, fd, "scrfd_500m"), runs_by_threads(fe_before, fe, "arcface_mbf")):
        assert sum(runs.values()) == count
        assert runs[str(cores)] >= 0.9 * count, runs
