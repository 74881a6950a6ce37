"""Stateless nodes: two face_detection and two feature_extraction instances share one database.

Node 1 is the session's pair of services; node 2 is a second pair on other ports, with API keys
on, as nodes behind a load balancer would be. What one node writes, the other reads at once.
"""

from __future__ import annotations

import pytest
import requests

from tests.conftest import data_uri
from tests.servers import Service
from tests.test_face_detection_api import PLAYERS, YAO, enrol, sample
from tests.test_samples_api import append

ADMIN = {"X-API-Key": "node-admin-key"}
CLIENT = {"X-API-Key": "node-client-key"}


@pytest.fixture(scope="module")
def node2(work_dir, detection_db_url):
    extraction = Service("feature_extraction", env={}, log_path=work_dir / "fe-node2.log").start()
    detection = Service(
        "face_detection",
        env={
            "DATABASE_URL": detection_db_url,
            "FEATURE_EXTRACTION_URL": extraction.url,
            "FACEREC_STATE_DIR": str(work_dir / "node2-state"),
            "FACEREC_ADMIN_KEYS": ADMIN["X-API-Key"],
            "FACEREC_CLIENT_KEYS": CLIENT["X-API-Key"],
        },
        log_path=work_dir / "fd-node2.log",
    ).start()
    yield detection.url
    detection.stop()
    extraction.stop()


def recognised_ids(url: str, path=PLAYERS, headers: dict | None = None) -> list[str]:
    body = {"image": data_uri(path)}
    response = requests.post(url + "/face-recognition", json=body, headers=headers, timeout=120)
    assert response.status_code == 200, response.text
    return [face["id"] for face in response.json() if face["id"]]


def test_both_nodes_are_ready_on_their_own_extraction_service(api, node2):
    for url in (api, node2):
        assert requests.get(url + "/health/ready", timeout=30).json()["status"] == "ok"


def test_what_one_node_enrols_the_other_recognises_at_once(api, node2):
    assert enrol(api, [sample("yao_ming")]).json()["success"] == ["yao_ming"]
    assert recognised_ids(node2, headers=CLIENT) == ["yao_ming"]
    response = requests.post(node2 + "/samples", json=[sample("yao_ming")], headers=CLIENT, timeout=120)
    assert response.json()["success"] == ["yao_ming"]
    listed = requests.get(api + "/samples", params={"id": "yao_ming"}, timeout=30).json()
    assert listed["total"] == 2


def test_a_delete_on_one_node_applies_on_the_other(api, node2):
    append(api, [sample("yao_ming", path=YAO)])
    assert requests.delete(node2 + "/samples/yao_ming", headers=CLIENT, timeout=30).status_code == 403
    assert recognised_ids(api) == ["yao_ming"]
    assert requests.delete(node2 + "/samples/yao_ming", headers=ADMIN, timeout=30).status_code == 200
    assert recognised_ids(api) == []
