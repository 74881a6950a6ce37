"""Fixtures: a real embedded PostgreSQL, both services under gunicorn, and test photos."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import requests

from facerec.db import embedded
from facerec.inference.weights import vectron_model_dir
from facerec.settings import PROJECT_ROOT
from tests.servers import Service, create_database, scratch_dir

SHARED_FACES = PROJECT_ROOT.parent / "shared" / "faces"
PACKAGE_PHOTOS = vectron_model_dir()
ADMIN_KEY, CLIENT_KEY = "test-admin-key", "test-client-key"


def data_uri(path: Path, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def insightface_photo(name: str) -> Path:
    import importlib.util

    return Path(importlib.util.find_spec("insightface").origin).parent / "data" / "images" / name


@pytest.fixture(scope="session")
def work_dir(request):
    with scratch_dir("facerec-tests-", keep_logs=lambda: request.session.testsfailed > 0) as path:
        yield path


@pytest.fixture(scope="session")
def pg_admin_url(work_dir):
    pgdata = work_dir / "pgdata"
    url = embedded.start(pgdata)
    yield url
    embedded.stop(pgdata)


@pytest.fixture(scope="session")
def pgdata(work_dir, pg_admin_url):
    return work_dir / "pgdata"


@pytest.fixture()
def fresh_db_url(pg_admin_url):
    """An empty database of its own, without schema."""
    return create_database(pg_admin_url)


@pytest.fixture(scope="session")
def extraction_service(work_dir):
    service = Service(
        "feature_extraction",
        env={"FACEREC_STATE_DIR": str(work_dir / "fe-state")},
        workers=1,
        log_path=work_dir / "feature_extraction.log",
    )
    yield service.start()
    service.stop()


def initialised_database(admin_url: str) -> str:
    """A new database with the schema, on the test server."""
    from facerec.db.cli import main as init_db

    url = create_database(admin_url)
    assert init_db(["--url", url]) == 0
    return url


@pytest.fixture(scope="session")
def detection_db_url(pg_admin_url):
    return initialised_database(pg_admin_url)


@pytest.fixture(scope="session")
def start_detection(work_dir, extraction_service, pg_admin_url):
    """Starts a face_detection of its own (its state folder, log and, unless given, a new database).

    start_detection(name, workers=1, database_url=None, **env) -> Service, with .database_url set;
    every one started is stopped at the end of the session.
    """
    started: list[Service] = []

    def start(name: str, workers: int = 1, database_url: str | None = None, **env: str) -> Service:
        url = database_url or initialised_database(pg_admin_url)
        service = Service(
            "face_detection",
            env={
                "DATABASE_URL": url,
                "FEATURE_EXTRACTION_URL": extraction_service.url,
                "FACEREC_STATE_DIR": str(work_dir / f"{name}-state"),
                **env,
            },
            workers=workers,
            log_path=work_dir / f"{name}.log",
        )
        service.database_url = url
        started.append(service)
        return service.start()

    yield start
    for service in started:
        service.stop()


@pytest.fixture(scope="session")
def detection_service(start_detection, detection_db_url):
    return start_detection("face_detection", workers=2, database_url=detection_db_url)


@pytest.fixture()
def api(detection_service):
    """The face_detection URL, with no sample enrolled."""
    response = requests.get(detection_service.url + "/clear-samples", timeout=30)
    assert response.status_code == 200, response.text
    return detection_service.url


@pytest.fixture(scope="session")
def secured_service(start_detection):
    """A face_detection that needs API keys (ADMIN_KEY, CLIENT_KEY), with a database of its own."""
    return start_detection("secured", FACEREC_ADMIN_KEYS=ADMIN_KEY, FACEREC_CLIENT_KEYS=CLIENT_KEY)


@pytest.fixture()
def secured_api(secured_service):
    """The URL of the face_detection that needs API keys, with no sample enrolled."""
    response = requests.get(secured_service.url + "/clear-samples", headers={"X-API-Key": ADMIN_KEY}, timeout=30)
    assert response.status_code == 200, response.text
    return secured_service.url


@pytest.fixture(scope="session")
def shared_faces() -> Path:
    if not (SHARED_FACES / "manifest.json").is_file():
        pytest.skip("../shared/faces is absent (it sits beside the checkout, not in it)")
    return SHARED_FACES


@pytest.fixture(scope="session")
def manifest(shared_faces) -> dict:
    return json.loads((shared_faces / "manifest.json").read_text())
