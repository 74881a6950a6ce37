"""/config-database: validated, tested, saved safely, and seen by every gunicorn worker."""

from __future__ import annotations

import json
import stat
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlparse

import psycopg
import pytest
import requests

from facerec.db.cli import main as init_db
from tests.conftest import PACKAGE_PHOTOS, data_uri
from tests.servers import Service, create_database
from tests.test_init_db import ORIGINAL_TABLE

SECRET = "s3cret-password-never-logged"


@pytest.fixture(scope="module")
def databases(pg_admin_url):
    first, second = create_database(pg_admin_url), create_database(pg_admin_url)
    assert init_db(["--url", first]) == 0
    return first, second  # the second has no schema: /config-database creates it


@pytest.fixture(scope="module")
def service(work_dir, extraction_service, databases):
    state = work_dir / "config-state"
    svc = Service(
        "face_detection",
        env={
            "DATABASE_URL": databases[0],
            "FEATURE_EXTRACTION_URL": extraction_service.url,
            "FACEREC_STATE_DIR": str(state),
        },
        workers=2,
        log_path=work_dir / "config-service.log",
    ).start()
    svc.state = state
    yield svc
    svc.stop()


def config_body(db_url: str, **overrides) -> dict:
    parsed = urlparse(db_url)
    body = {
        "host": parse_qs(parsed.query)["host"][0],
        "db_name": parsed.path.lstrip("/"),
        "username": "postgres",
        "password": SECRET,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def configure(service, body: dict, method: str = "GET") -> requests.Response:
    return requests.request(method, service.url + "/config-database", json=body, timeout=30)


def sample_ids(db_url: str) -> set[str]:
    with psycopg.connect(db_url) as conn:
        if conn.execute("SELECT to_regclass('sample_face_vectors')").fetchone()[0] is None:
            return set()
        return {row[0] for row in conn.execute("SELECT sample_id FROM sample_face_vectors")}


@pytest.mark.parametrize("missing", ["host", "db_name", "username", "password"])
def test_missing_field_is_the_readme_text(service, databases, missing):
    response = configure(service, config_body(databases[1], **{missing: None}))
    assert response.status_code == 400
    assert response.text == f'"{missing}" is missing.'


@pytest.mark.parametrize("port", ["abc", 0, 70000, True, -1])
def test_invalid_port(service, databases, port):
    response = configure(service, config_body(databases[1], port=port))
    assert response.status_code == 400 and response.json()["reason"] == "invalid_port"


def test_failed_connection_is_not_saved(service, databases):
    response = configure(service, config_body(databases[1], db_name="no_such_database"))
    assert response.status_code == 400
    assert "unknown database" in response.json()["error"]
    assert not (service.state / "database.json").exists()
    enrolled = requests.post(
        service.url + "/update-samples", json=[{"id": "still-first", "image": data_uri(PACKAGE_PHOTOS / "yaoming.jpg")}]
    )
    assert enrolled.json()["success"] == ["still-first"]
    assert "still-first" in sample_ids(databases[0])


def test_switch_is_seen_by_every_worker(service, databases):
    response = configure(service, config_body(databases[1], port="5432"), method="POST")
    assert response.status_code == 200
    assert response.text == "Database configuration is done."
    saved = service.state / "database.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    mark = len(service.log_path.read_text().splitlines())
    assert requests.get(service.url + "/health", timeout=30).json()["database_source"] == "config-database"

    def enrol(index: int) -> list:
        item = {"id": f"after-{index}", "image": data_uri(PACKAGE_PHOTOS / "yaoming.jpg")}
        return requests.post(service.url + "/update-samples", json=[item], timeout=60).json()["success"]

    with ThreadPoolExecutor(6) as pool:
        assert all(pool.map(enrol, range(24)))
    assert sample_ids(databases[1]) == {f"after-{i}" for i in range(24)}
    assert not any(s.startswith("after-") for s in sample_ids(databases[0]))
    lines = [json.loads(line) for line in service.log_path.read_text().splitlines()[mark:] if line.startswith("{")]
    pids = {entry["pid"] for entry in lines if entry.get("path") == "/update-samples"}
    assert len(pids) == 2, "both workers served enrolments after the switch"


@pytest.mark.parametrize("port", [None, ""], ids=["null", "empty"])
def test_a_port_placeholder_means_the_default(service, databases, port):
    response = configure(service, {**config_body(databases[1]), "port": port})  # the original ignored the port
    assert response.status_code == 200, response.text


def test_refusals_say_what_failed_without_the_servers_text(service, databases):
    mark = len(service.log_path.read_text())
    unknown = configure(service, config_body(databases[1], db_name="no_such_database"))
    unreachable = configure(service, config_body(databases[1], host="127.0.0.1", port=1))
    assert unknown.json()["error"] == "unknown database 'no_such_database': create it first (createdb NAME)"
    assert unreachable.json()["error"] == "cannot reach the database server at '127.0.0.1', port 1"
    assert {unknown.json()["reason"], unreachable.json()["reason"]} == {"database_connection_failed"}
    logged = service.log_path.read_text()[mark:]  # the server's own words: for the operator only
    assert 'database \\"no_such_database\\" does not exist' in logged and "Connection refused" in logged


def test_the_original_services_table_is_set_aside(service, pg_admin_url, databases):
    original = create_database(pg_admin_url)
    with psycopg.connect(original, autocommit=True) as conn:
        conn.execute(ORIGINAL_TABLE)
    mark = len(service.log_path.read_text())
    response = configure(service, config_body(original))
    assert response.status_code == 200, response.text
    assert "renamed it sample_face_vectors_original with its 2 rows" in service.log_path.read_text()[mark:]
    assert sample_ids(original) == set()
    with psycopg.connect(original) as conn:
        assert conn.execute("SELECT count(*) FROM sample_face_vectors_original").fetchone()[0] == 2
    assert configure(service, config_body(databases[1])).status_code == 200  # back, for the tests after


def test_password_never_logged_or_echoed(service, databases):
    configure(service, config_body(databases[1], db_name="no_such_database"))
    assert SECRET not in service.log_path.read_text()


def test_a_damaged_saved_setting_is_a_503_that_says_so(service, databases):
    saved = service.state / "database.json"
    before = saved.read_bytes() if saved.exists() else None
    try:
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text('{"conninfo": "host=')  # cut short
        response = requests.get(service.url + "/samples", timeout=30)
        assert response.status_code == 503 and response.json()["reason"] == "database_setting_unreadable"
        assert str(service.state) not in response.text  # the path and the parser's text go to the log only
        assert "database.json" in service.log_tail(200) and "cannot be read" in service.log_tail(200)
    finally:
        if before is None:
            saved.unlink()
        else:
            saved.write_bytes(before)
    assert requests.get(service.url + "/samples", timeout=30).status_code == 200


def test_an_embedded_database_that_is_down_is_not_called_unconfigured(tmp_path, extraction_service):
    (tmp_path / "pgdata").mkdir()
    (tmp_path / "pgdata" / "PG_VERSION").write_text("18\n")  # set up once; no server runs on it now
    env = {"FACEREC_STATE_DIR": str(tmp_path), "FEATURE_EXTRACTION_URL": extraction_service.url, "DATABASE_URL": ""}
    service = Service("face_detection", env=env, log_path=tmp_path / "fd.log").start()
    try:
        response = requests.get(service.url + "/samples", timeout=30)
        assert response.status_code == 503 and "embedded database is not running" in response.json()["error"]
    finally:
        service.stop()
