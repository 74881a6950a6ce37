"""scripts/bulk_enrol.py, run as a command against the real services."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest
import requests

from facerec.settings import PROJECT_ROOT
from tests.servers import free_port
from tests.test_face_detection_api import PLAYERS, YAO
from tests.test_samples_api import GDP, listing

SCRIPT = PROJECT_ROOT / "scripts" / "bulk_enrol.py"


def bulk_enrol(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPT), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.fixture()
def tree(tmp_path):
    """photos/<person>/<photo>: two photos of yao_ming, one of someone else, one broken file."""
    root = tmp_path / "photos"
    for person, name, source in [("yao_ming", "a.jpg", YAO), ("yao_ming", "b.jpg", YAO), ("other", "gdp.jpg", GDP)]:
        (root / person).mkdir(parents=True, exist_ok=True)
        shutil.copy(source, root / person / name)
    (root / "other" / "broken.jpg").write_text("not an image")
    (root / "other" / "notes.txt").write_text("not a photo: ignored")
    return root


def test_a_folder_tree_is_enrolled_with_a_summary_of_failures(api, tree, tmp_path):
    state = tmp_path / "state.jsonl"
    result = bulk_enrol(tree, "--url", api, "--state-file", state, "--workers", 2, "--batch", 2)
    assert result.returncode == 1, result.stderr
    assert "stored 3, failed 1, skipped 0 stored before" in result.stdout
    assert "not_an_image: 1" in result.stdout and "broken.jpg" in result.stdout
    photos = listing(api)["samples"]
    assert sorted(p["id"] for p in photos) == ["other", "yao_ming", "yao_ming"]

    again = bulk_enrol(tree, "--url", api, "--state-file", state)  # the refused photo is tried again
    assert again.returncode == 1 and "stored 0, failed 1, skipped 3 stored before" in again.stdout
    assert listing(api)["total"] == 3
    (tree / "other" / "broken.jpg").unlink()
    fixed = bulk_enrol(tree, "--url", api, "--state-file", state)
    assert fixed.returncode == 0 and "stored 0, failed 0, skipped 3 stored before" in fixed.stdout


def test_an_unavailable_service_leaves_the_photos_for_the_next_run(api, tree, tmp_path):
    state = tmp_path / "state.jsonl"
    down = bulk_enrol(tree, "--url", f"http://127.0.0.1:{free_port()}", "--state-file", state, "--retries", 0)
    assert down.returncode == 1 and "4 not sent (service unavailable; no answer (ConnectionError): 4)" in down.stdout
    assert listing(api)["total"] == 0
    resumed = bulk_enrol(tree, "--url", api, "--state-file", state)
    assert "stored 3, failed 1, skipped 0 stored before" in resumed.stdout
    assert listing(api)["total"] == 3


def test_sending_a_photo_again_does_not_duplicate_it(api, tree, tmp_path):
    bulk_enrol(tree, "--url", api, "--state-file", tmp_path / "first.jsonl")
    bulk_enrol(tree, "--url", api, "--state-file", tmp_path / "lost.jsonl")  # as if the state were lost
    assert listing(api)["total"] == 3


def test_a_csv_gives_ids_names_and_metadata(api, tmp_path):
    shutil.copy(YAO, tmp_path / "yao.jpg")
    table = tmp_path / "people.csv"
    table.write_text("\ufeffid,name,path,metadata\n42,Yao Ming,yao.jpg,nba\n", encoding="utf-8")  # Excel's BOM
    result = bulk_enrol("--csv", table, "--url", api, "--state-file", tmp_path / "state.jsonl")
    assert result.returncode == 0, result.stdout + result.stderr
    [photo] = listing(api)["samples"]
    assert (photo["id"], photo["name"], photo["metadata"]) == ("42", "Yao Ming", "nba")


def test_a_wrong_url_stops_the_run(api, tree, tmp_path):
    result = bulk_enrol(tree, "--url", api + "/nowhere", "--state-file", tmp_path / "state.jsonl")
    assert result.returncode == 2 and "answered 404" in result.stderr
    assert requests.get(api + "/samples", timeout=30).json()["total"] == 0


def test_what_is_left_out_is_said_and_an_empty_input_is_a_usage_error(api, tree, tmp_path):
    state = tmp_path / "state.jsonl"
    shutil.copy(YAO, tree / "loose.jpg")  # beside the person folders: whose would it be?
    result = bulk_enrol(tree, "--url", api, "--state-file", state)
    assert "left out, not a <person id>/<photo> image:" in result.stderr
    assert "loose.jpg" in result.stderr and "notes.txt" in result.stderr
    person_folder = bulk_enrol(tree / "yao_ming", "--url", api, "--state-file", state)  # not the tree: no photo
    assert person_folder.returncode == 2 and "no photos in" in person_folder.stderr  # was: "stored 0", exit 0
    assert bulk_enrol(tmp_path / "missing", "--url", api, "--state-file", state).returncode == 2
    table = tmp_path / "t.csv"
    table.write_text("ID,Name,Path\n1,a,a.jpg\n")
    wrong_header = bulk_enrol("--csv", table, "--url", api, "--state-file", state)
    assert wrong_header.returncode == 2 and "not ['ID', 'Name', 'Path']" in wrong_header.stderr


def test_the_url_and_key_come_from_the_environment_as_for_facerec(secured_api, tree, tmp_path):
    from tests.conftest import CLIENT_KEY

    env = {"FACEREC_URL": secured_api, "FACEREC_API_KEY": CLIENT_KEY, "PATH": "/usr/bin:/bin"}
    command = [sys.executable, str(SCRIPT), str(tree), "--state-file", str(tmp_path / "state.jsonl")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert "stored 3, failed 1" in result.stdout, result.stdout + result.stderr  # was: 127.0.0.1:6337, no key
    assert f"for {secured_api}" in result.stderr


def test_a_file_name_that_is_not_utf8_is_enrolled_and_warnings_are_reported(api, tree, tmp_path):
    odd = tree / "yao_ming" / "caf\udce9.jpg"  # the bytes "caf\xe9.jpg", as Latin-1 disks name files
    shutil.copy(YAO, odd)
    group = tree / "yao_ming" / "group.jpg"
    shutil.copy(PLAYERS, group)
    result = bulk_enrol(tree, "--url", api, "--state-file", tmp_path / "state.jsonl")
    assert "stored 5, failed 1" in result.stdout, result.stdout + result.stderr  # was a traceback before any photo
    assert "stored with a warning" in result.stdout and "group.jpg" in result.stdout and "faces found" in result.stdout


def test_a_batch_over_the_service_s_limit_is_halved(start_detection, tree, tmp_path):
    service = start_detection("bulk-small-batches", FACEREC_MAX_SAMPLES="2")
    result = bulk_enrol(tree, "--url", service.url, "--batch", 4, "--state-file", tmp_path / "state.jsonl")
    assert "stored 3, failed 1" in result.stdout, result.stdout + result.stderr
    posts = [line for line in service.log_path.read_text().splitlines() if '"path": "/samples"' in line]
    assert [json.loads(line)["status"] for line in posts] == [413, 200, 200]  # not 413 then one photo at a time


def test_what_kept_the_service_unavailable_is_said(tree, tmp_path):
    import http.server
    import threading

    class Busy(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b'{"error": "database unreachable", "reason": "database_unavailable"}'
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        result = bulk_enrol(tree, "--url", url, "--retries", 1, "--state-file", tmp_path / "state.jsonl")
    finally:
        server.shutdown()
    assert result.returncode == 1
    assert "4 not sent (service unavailable; HTTP 503 database_unavailable: 4)" in result.stdout, result.stdout


def test_ctrl_c_stops_at_once_even_when_the_service_does_not_answer(tree, tmp_path):
    import signal
    import socket

    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never answers
    command = [sys.executable, str(SCRIPT), str(tree), "--url", f"http://127.0.0.1:{silent.getsockname()[1]}"]
    command += ["--timeout", "120", "--state-file", str(tmp_path / "state.jsonl")]
    # As from a terminal: a test run started in the background (nohup ... &) ignores SIGINT, and so would the child.
    as_from_a_terminal = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    run = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=as_from_a_terminal
    )
    try:
        time.sleep(3)
        run.send_signal(signal.SIGINT)
        out, _ = run.communicate(timeout=20)  # waited for the 120-s timeout of the requests in flight
    finally:
        run.kill()
        silent.close()
    assert run.returncode == 130 and "interrupted: rerun the same command" in out


def test_the_state_file_skips_only_what_this_service_stored(api, start_detection, tree, tmp_path):
    state = tmp_path / "state.jsonl"
    assert "stored 3" in bulk_enrol(tree, "--url", api, "--state-file", state).stdout
    other = start_detection("bulk-second-service")
    second = bulk_enrol(tree, "--url", other.url, "--state-file", state)
    assert "stored 3, failed 1, skipped 0 stored before" in second.stdout  # was: skipped 3, stored nothing there
    assert listing(other.url)["total"] == 3


def test_one_photo_however_a_csv_spells_its_path_is_stored_once(api, tmp_path):
    (tmp_path / "pics").mkdir()
    shutil.copy(YAO, tmp_path / "pics" / "yao.jpg")
    table = tmp_path / "people.csv"
    spellings = ["pics/yao.jpg", "./pics/yao.jpg", str(tmp_path / "pics" / "yao.jpg"), "pics/../pics/yao.jpg"]
    table.write_text("id,name,path\n" + "".join(f"yao,Yao,{path}\n" for path in spellings))
    result = bulk_enrol("--csv", table, "--url", api, "--state-file", tmp_path / "state.jsonl")
    assert result.returncode == 0 and "stored 1," in result.stdout, result.stdout + result.stderr
    assert "3 rows name a photo of a row before them: sent once" in result.stderr
    assert listing(api, id="yao")["total"] == 1  # was 4: a photo id per spelling
