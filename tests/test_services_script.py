"""scripts/services.sh: what an operator relies on when running the stack in the background."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
import requests

from facerec.settings import PROJECT_ROOT
from tests.servers import free_port

SCRIPT = PROJECT_ROOT / "scripts" / "services.sh"


@pytest.fixture()
def stack(tmp_path):
    env = {
        **os.environ,
        "FACEREC_STATE_DIR": str(tmp_path / "state"),
        "FACE_DETECTION_BIND": f"127.0.0.1:{free_port()}",
        "FEATURE_EXTRACTION_BIND": f"127.0.0.1:{free_port()}",
    }
    env.pop("DATABASE_URL", None)

    def services(command: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(SCRIPT), command], env=env, capture_output=True, text=True, timeout=180)

    yield services, env, tmp_path / "state"
    services("stop")


def test_the_app_s_own_log_lines_reach_the_log_file(stack):
    services, _env, state = stack
    assert services("start").returncode == 0
    assert services("status").returncode == 0
    log = (state / "log" / "face_detection.log").read_text()
    assert '"message": "request"' in log and "no API key configured" in log  # were lost: the workers' stderr


def test_a_pid_file_naming_another_program_is_not_it(stack):
    services, _env, state = stack
    (state / "run").mkdir(parents=True)
    other = subprocess.Popen(["sleep", "60"])
    try:
        (state / "run" / "face_detection.pid").write_text(str(other.pid))
        status = services("status")
        assert status.returncode == 3 and "face_detection stopped" in status.stdout
        services("stop")
        assert other.poll() is None, "stop killed a process that was not the service"
    finally:
        other.kill()
        other.wait()


def test_start_fails_soon_when_another_program_holds_the_port(stack):
    services, env, _state = stack
    host, port = env["FACE_DETECTION_BIND"].split(":")
    other = subprocess.Popen(["python3", "-m", "http.server", port, "--bind", host], stderr=subprocess.DEVNULL)
    try:
        started = time.monotonic()
        result = services("start")
        assert result.returncode == 1 and "face_detection did not start" in result.stderr
        assert "Connection in use" in result.stderr and time.monotonic() - started < 45
    finally:
        other.kill()
        other.wait()


def test_a_state_folder_with_a_space_is_refused_in_one_line(tmp_path):
    env = {**os.environ, "FACEREC_STATE_DIR": str(tmp_path / "with space")}
    env.pop("DATABASE_URL", None)
    result = subprocess.run([str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "may not hold spaces" in result.stderr and "Traceback" not in result.stderr


def test_restart_replaces_both_services_with_new_ones_and_keeps_the_database(stack):
    services, env, state = stack
    assert services("start").returncode == 0
    names = ("feature_extraction", "face_detection")
    before = {name: int((state / "run" / f"{name}.pid").read_text()) for name in names}
    env["FACEREC_ADMIN_KEYS"] = "a-key-set-before-the-restart"
    restarted = services("restart")
    assert restarted.returncode == 0, restarted.stderr
    assert "stopped face_detection" in restarted.stdout and "face_detection ready" in restarted.stdout
    after = {name: int((state / "run" / f"{name}.pid").read_text()) for name in names}
    assert all(not os.path.exists(f"/proc/{before[name]}") and after[name] != before[name] for name in names)
    status = services("status")
    assert status.returncode == 0 and "postgresql://" in status.stdout
    url = "http://" + env["FACE_DETECTION_BIND"] + "/samples"
    assert requests.get(url, timeout=10).status_code == 401  # the new environment's key is asked for
    assert requests.get(url, headers={"X-API-Key": "a-key-set-before-the-restart"}, timeout=10).status_code == 200


def test_restart_fails_when_another_stack_answers_on_its_ports(stack, tmp_path):
    services, env, _state = stack
    assert services("start").returncode == 0
    other = {**env, "FACEREC_STATE_DIR": str(tmp_path / "other-state")}  # same ports, another state folder
    try:
        result = subprocess.run([str(SCRIPT), "restart"], env=other, capture_output=True, text=True, timeout=180)
        # It answered /health there (the first stack) while this one's gunicorn retried the port: "ready", exit 0.
        assert result.returncode == 1 and "did not start" in result.stderr
        assert "ready" not in result.stdout
    finally:
        subprocess.run([str(SCRIPT), "stop"], env=other, capture_output=True, timeout=180)
