"""Settings from the environment: defaults, and a value a setting cannot take named at start."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from facerec.db.connection import Database
from facerec.settings import PROJECT_ROOT, Settings
from tests.servers import Service


def test_unset_and_empty_variables_keep_the_defaults():
    assert Settings.from_env({}) == Settings()
    assert Settings.from_env({"FACEREC_MAX_FACES": "", "FACEREC_FP16": ""}) == Settings()


def test_values_are_parsed_by_their_setting():
    settings = Settings.from_env({"FACEREC_MAX_FACES": " 7 ", "FACEREC_DB_TIMEOUT_S": "2.5", "FACEREC_FP16": "Yes"})
    assert (settings.max_faces_per_image, settings.db_timeout_s, settings.fp16) == (7, 2.5, True)
    assert Settings.from_env({"FACEREC_FP16": "off"}).fp16 is False


@pytest.mark.parametrize(
    "variable, value, expected",
    [
        ("FACEREC_MAX_SAMPLES", "ten", "an integer"),
        ("FACEREC_MAX_SAMPLES", "2.5", "an integer"),
        ("FACEREC_MIN_DET_SCORE", "60%", "a number"),
        ("FACEREC_MIN_DET_SCORE", "nan", "a finite number, 0 or more"),
        ("FACEREC_DB_TIMEOUT_S", "inf", "a finite number, 0 or more"),
        ("FACEREC_MIN_FACE_PX", "-1", "a finite number, 0 or more"),
        ("FACEREC_FP16", "ture", "one of 1, true, yes, on, 0, false, no, off"),
        # started, these served: faces that are not there (333), a crash at the first photo (0), a 500
        # from every database route (0 connections), pgvector's 40 instead of what was set (0, 1001)
        ("FACEREC_DET_SIZE", "333", "a multiple of 32, 64 or more"),
        ("FACEREC_DET_SIZE", "0", "a multiple of 32, 64 or more"),
        ("FACEREC_DB_POOL_SIZE", "0", "1 or more"),
        ("FACEREC_HNSW_EF_SEARCH", "0", "1 to 1000"),
        ("FACEREC_HNSW_EF_SEARCH", "1001", "1 to 1000"),
        ("FACEREC_BATCH_MAX", "0", "1 or more"),
        ("FACEREC_MAX_BATCH", "0", "1 or more"),
        ("FACEREC_DEVICE", "gpu", "one of auto, cpu, cuda"),
        # every request failed: a non-blocking socket (0), no wait for a connection (0), nothing found (1.5)
        ("FACEREC_EXTRACTION_TIMEOUT_S", "0", "more than 0"),
        ("FACEREC_DB_TIMEOUT_S", "0", "more than 0"),
        ("FACEREC_DET_THRESHOLD", "1.5", "0 to 1"),
        ("FACEREC_MAX_ID_CHARS", "601", "1 to 600"),  # a longer id may not fit its index entry
    ],
)
def test_a_value_the_setting_cannot_take_is_refused_by_name(variable, value, expected):
    with pytest.raises(ValueError) as refused:
        Settings.from_env({variable: value})
    assert str(refused.value) == f"{variable}={value!r}: expected {expected}"


def test_the_edges_of_what_a_setting_takes_are_taken():
    settings = Settings.from_env({"FACEREC_DET_SIZE": "64", "FACEREC_HNSW_EF_SEARCH": "1000", "FACEREC_DEVICE": "cpu"})
    assert (settings.det_size, settings.hnsw_ef_search, settings.device) == (64, 1000, "cpu")
    assert Settings.from_env({"FACEREC_HNSW_EF_SEARCH": "1", "FACEREC_DET_SIZE": "352"}).det_size == 352


@pytest.mark.parametrize("limit_s, shown", [(0, "0"), (0.25, "250ms")])
def test_no_statement_limit_is_postgresqls_own_0(detection_db_url, limit_s, shown):
    """0 made every statement's limit 1 ms, and every request a 503."""
    database = Database(Settings(database_url=detection_db_url, db_statement_timeout_s=limit_s, db_pool_size=1))
    try:
        with database.connection() as conn:
            assert conn.execute("SHOW statement_timeout").fetchone()[0] == shown
    finally:
        database.close()


def test_a_service_does_not_start_with_such_a_value_and_says_which_in_one_line(tmp_path):
    service = Service("feature_extraction", env={"FACEREC_BATCH_MAX": "lots"}, log_path=tmp_path / "fe.log")
    with pytest.raises(RuntimeError, match="exited"):
        service.start()
    log = service.log_tail(60)
    assert "gunicorn cannot start: FACEREC_BATCH_MAX='lots': expected an integer" in log
    assert "Traceback" not in log  # gunicorn printed its config file's error after one


def test_cuda_asked_for_where_there_is_none_stops_the_start_in_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    service = Service("feature_extraction", env={"FACEREC_DEVICE": "cuda"}, log_path=tmp_path / "fe.log")
    with pytest.raises(RuntimeError, match="exited"):
        service.start()
    log = service.log_tail(60)
    assert "feature_extraction cannot start: FACEREC_DEVICE=cuda but" in log
    assert "Traceback" not in log


def test_a_worker_count_that_is_not_one_stops_the_start_and_says_which(tmp_path):
    service = Service("feature_extraction", env={"FEATURE_EXTRACTION_WORKERS": "two"}, log_path=tmp_path / "fe.log")
    with pytest.raises(RuntimeError, match="exited"):
        service.start()
    assert "FEATURE_EXTRACTION_WORKERS='two': expected a whole number, 1 or more" in service.log_tail(60)


@pytest.mark.parametrize(
    "command, code", [(["init_db.py"], 1), (["-m", "facerec.db.embedded", "url"], 2)], ids=["init_db", "embedded"]
)
def test_the_command_line_tools_refuse_such_a_value_in_one_line(command, code):
    """scripts/services.sh starts the embedded database first: its traceback was all a user saw."""
    env = {**os.environ, "FACEREC_DET_SIZE": "333"}
    done = subprocess.run([sys.executable, *command], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == code
    assert done.stderr.strip().endswith("FACEREC_DET_SIZE='333': expected a multiple of 32, 64 or more")
    assert "Traceback" not in done.stderr
