"""The `facerec` command, run as a subprocess against a service that needs API keys, and the Python client."""

from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from facerec_client import FaceRecClient, FaceRecError
from tests.conftest import ADMIN_KEY, CLIENT_KEY, PACKAGE_PHOTOS, insightface_photo

FACEREC = str(Path(sys.executable).parent / "facerec")  # the console script of pyproject.toml
YAO = PACKAGE_PHOTOS / "yaoming.jpg"
PLAYERS = PACKAGE_PHOTOS / "players.jpg"
TOM_HANKS = insightface_photo("Tom_Hanks_54745.png")


def facerec(url: str, *args: str, key: str | None = CLIENT_KEY) -> subprocess.CompletedProcess:
    """Run the command with the URL and key in the environment, as a remote user would set them."""
    env = {k: v for k, v in os.environ.items() if k not in ("FACEREC_URL", "FACEREC_API_KEY")}
    env["FACEREC_URL"] = url
    if key is not None:
        env["FACEREC_API_KEY"] = key
    return subprocess.run([FACEREC, *map(str, args)], env=env, capture_output=True, text=True, timeout=180)


def as_json(result: subprocess.CompletedProcess):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_enrol_recognise_verify_list_delete(secured_api, tmp_path):
    enrolled = facerec(secured_api, "enroll", "yao", YAO, "--name", "Yao Ming", "--metadata", "demo")
    assert enrolled.returncode == 0, enrolled.stderr
    assert enrolled.stdout.strip() == "enrolled yao"

    faces = as_json(facerec(secured_api, "recognize", PLAYERS, "--json", "--top-k", "1"))
    [yao] = [face for face in faces if face["matched"]]
    assert (yao["id"], yao["name"], yao["metadata"]) == ("yao", "Yao Ming", "demo")
    assert yao["candidates"][0]["id"] == "yao"

    annotated = tmp_path / "annotated.jpg"
    human = facerec(secured_api, "recognize", PLAYERS, "--annotate", annotated)
    assert human.returncode == 0 and f"Yao Ming (id yao)  similarity {yao['similarity']:.3f}" in human.stdout
    assert human.stdout.count("unknown") == len(faces) - 1
    assert Image.open(annotated).size == Image.open(PLAYERS).size

    same = facerec(secured_api, "verify", YAO, "--id", "yao")
    assert same.returncode == 0 and same.stdout.startswith("same person: similarity")
    different = facerec(secured_api, "verify", YAO, TOM_HANKS, "--json")
    assert different.returncode == 1 and json.loads(different.stdout)["match"] is False

    page = as_json(facerec(secured_api, "list", "--json", "--name", "Yao Ming"))
    assert page["total"] == 1 and page["samples"][0]["id"] == "yao"
    assert "samples 1-1 of 1" in facerec(secured_api, "list").stdout
    assert facerec(secured_api, "enroll", "yao2", YAO).returncode == 0
    first = facerec(secured_api, "list", "--limit", "1").stdout
    assert first.startswith("yao\t") and "samples 1-1 of 2; next page: the same command with --after " in first
    cursor = first.rsplit("--after ", 1)[1].strip()
    second = facerec(secured_api, "list", "--limit", "1", "--after", cursor).stdout
    assert second.startswith("yao2\t") and second.rstrip().endswith("samples: 1 more")
    assert facerec(secured_api, "delete", "yao2", "--api-key", ADMIN_KEY).returncode == 0

    refused = facerec(secured_api, "delete", "yao")
    assert refused.returncode == 3 and "admin key" in refused.stderr
    deleted = facerec(secured_api, "delete", "yao", "--api-key", ADMIN_KEY)
    assert deleted.returncode == 0, deleted.stderr
    assert as_json(facerec(secured_api, "--json", "list"))["total"] == 0


def test_detect_prints_every_face(secured_api):
    faces = as_json(facerec(secured_api, "detect", PLAYERS, "--json"))
    assert len(faces) >= 15 and all(len(face["landmarks"]) == 5 for face in faces)
    assert len(facerec(secured_api, "detect", PLAYERS).stdout.splitlines()) == len(faces)


def test_errors_exit_3_with_the_services_message(secured_api, tmp_path):
    no_key = facerec(secured_api, "list", key=None)
    assert no_key.returncode == 3 and "an API key is required" in no_key.stderr
    wrong_key = facerec(secured_api, "list", "--api-key", "wrong")
    assert wrong_key.returncode == 3 and "not valid" in wrong_key.stderr
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("hello")
    bad = facerec(secured_api, "recognize", not_an_image)
    assert bad.returncode == 3 and "not_an_image" in bad.stderr
    refused = facerec(secured_api, "enroll", "notes", not_an_image)
    assert refused.returncode == 3 and "failed notes" in refused.stderr and refused.stdout == ""
    unreachable = facerec("http://127.0.0.1:9", "list")
    assert unreachable.returncode == 3 and "cannot reach" in unreachable.stderr


def test_usage_errors_exit_2(secured_api, tmp_path):
    both = facerec(secured_api, "verify", YAO, YAO, "--id", "yao")
    assert both.returncode == 2 and "not allowed" in both.stderr
    assert facerec(secured_api, "verify", YAO).returncode == 2
    assert facerec(secured_api, "frobnicate").returncode == 2
    missing = tmp_path / "missing.jpg"  # never 1, which is verify's "not the same person"
    for args in (("verify", missing, YAO), ("enroll", "x", missing), ("recognize", YAO, "--annotate", missing / "x")):
        result = facerec(secured_api, *args)
        assert result.returncode == 2 and "No such file or directory" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    local_mistakes = [
        (("--url", "127.0.0.1:6337", "list"), "must start with http:// or https://"),
        (("--api-key", "ключ", "list"), "must be ASCII"),
        (("--timeout", "0", "list"), "positive number of seconds"),
        (("recognize", YAO, "--min-similarity", "nan"), "cannot send this request"),
    ]
    for args, message in local_mistakes:  # were a traceback and exit 1, or "cannot reach" and exit 3
        result = facerec(secured_api, *args)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_an_answer_that_is_not_the_service_s_is_said_so(tmp_path):
    import http.server
    import threading

    (tmp_path / "samples").write_text("<html>a web page</html>")
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        result = facerec(url, "list")
        assert result.returncode == 3 and "is it the face_detection service?" in result.stderr, result.stderr
        with pytest.raises(FaceRecError) as not_json:
            FaceRecClient(url).list_samples()
        assert (not_json.value.status, not_json.value.reason) == (200, "not_json")
    finally:
        server.shutdown()


def test_python_client(secured_api):
    client = FaceRecClient(secured_api, api_key=CLIENT_KEY, timeout=60)
    assert client.enroll("yao", YAO.read_bytes(), name="Yao Ming")["success"] == ["yao"]
    assert client.verify(YAO, sample_id="yao")["match"] is True
    client.enroll("yao2", YAO)
    assert client.enroll("yao2", YAO, append=True)["success"] == ["yao2"]
    assert client.list_samples(sample_id="yao2")["total"] == 2  # the id's photos kept
    client.enroll("yao2", YAO)  # replaces them
    assert [photo["id"] for photo in client.iter_samples(page_size=1)] == ["yao", "yao2"]
    assert client.list_samples(limit=1, after=client.list_samples(limit=1)["next"])["samples"][0]["id"] == "yao2"
    assert len(client.detect(YAO)) == 1
    with pytest.raises(FaceRecError) as refused:
        client.delete_sample("yao")
    assert (refused.value.status, refused.value.reason) == (403, "admin_key_required")
    admin = FaceRecClient(secured_api, api_key=ADMIN_KEY)
    assert admin.delete_sample("yao")["removed"] == 1
    assert admin.delete_sample("yao2")["removed"] == 1
    with pytest.raises(FaceRecError) as missing:
        admin.delete_sample("yao")
    assert missing.value.status == 404 and len(missing.value.request_id) == 16
    assert pickle.loads(pickle.dumps(missing.value)).__dict__ == missing.value.__dict__  # process pools pickle errors
    error = missing.value
    assert str(copy.copy(error)) == str(error) == f"{error.message} (sample_not_found, HTTP 404)"
    with pytest.raises(ValueError):
        client.verify(YAO)
