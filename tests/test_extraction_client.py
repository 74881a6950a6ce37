"""face_detection's HTTP client of feature_extraction: keep-alive connections, and what it does when one breaks.

Against the real service where it can show the behaviour (reuse, a restart); against a scripted TCP
server where only a server that misbehaves on cue can (a connection closed as a request goes out,
a request never answered).
"""

from __future__ import annotations

import io
import json
import socket
import sys
import threading
import time

import numpy as np
import pytest

from face_detection.extraction_client import ExtractionClient
from facerec.errors import ExtractionUnavailable, InvalidSetting
from facerec.inference.weights import vectron_model_dir
from facerec.settings import Settings
from facerec.wire import to_npy
from tests.photos import aligned_crops
from tests.servers import Service, free_port

CROPS = np.zeros((2, 112, 112, 3), np.uint8)
HEALTH = {
    "model": "scripted",
    "dim": 4,
    "crop_size": 112,
    "default_min_similarity": 0.3,
    "alignment": "arcface",
    "channel_order": "BGR",
}


def client_of(url: str, **settings) -> ExtractionClient:
    return ExtractionClient(Settings(feature_extraction_url=url, **settings))


def test_one_connection_carries_requests_one_after_another(extraction_service):
    client = client_of(extraction_service.url)
    client.embed(CROPS)
    (connection,) = client.connections._idle
    first_socket = connection.sock
    for _ in range(3):
        assert client.embed(CROPS).shape == (2, 512)
    assert [kept.sock for kept in client.connections._idle] == [first_socket]


def test_a_restarted_service_is_reached_on_a_new_connection(work_dir):
    port = free_port()
    service = Service("feature_extraction", env={}, port=port, log_path=work_dir / "fe-restart.log")
    client = client_of(service.url, extraction_retries=0)
    try:
        service.start()
        client.embed(CROPS)
        service.stop()  # closes the connection the client keeps
        service.start()
        assert client.embed(CROPS).shape == (2, 512)  # no error, not even with retries off
    finally:
        service.stop()


def test_more_crops_than_the_service_takes_in_a_call_go_in_several(work_dir, extraction_service):
    """feature_extraction refuses a call of more than its FACEREC_MAX_BATCH crops (413); its /health
    says the limit, and the client sends the crops in calls within it (all 22 faces of a photo were
    a 503 for every such photo)."""
    crops = aligned_crops(vectron_model_dir() / "players.jpg")
    assert len(crops) > 10
    small = Service("feature_extraction", env={"FACEREC_MAX_BATCH": "5"}, log_path=work_dir / "fe-small.log")
    try:
        small.start()
        vectors = client_of(small.url).embed(crops)
    finally:
        small.stop()
    expected = client_of(extraction_service.url).embed(crops)
    assert vectors.shape == expected.shape
    assert np.sum(vectors * expected, axis=1).min() > 0.9999  # each face's vector, in order


class ScriptedServer:
    """Answers /health with its `health` (then closes that connection), and each /extract_feature
    request as its script says: "answer" (a keep-alive 200 with N x 4 zeros), "refuse" (400, as a
    service whose crops are of another size) or "close" (the connection closed, nothing answered)."""

    def __init__(self, script: list[str]):
        self.script = list(script)
        self.health: bytes = json.dumps(HEALTH).encode()
        self.requests: list[tuple[int, str]] = []  # (connection number, request line)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        number = 0
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._converse, args=(connection, number), daemon=True).start()
            number += 1

    def _converse(self, connection: socket.socket, number: int) -> None:
        with connection, connection.makefile("rb") as stream:
            while line := stream.readline():
                headers = {}
                while (header := stream.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = stream.read(int(headers.get("content-length", 0)))
                self.requests.append((number, line.decode().strip()))
                if b"/health" in line:
                    self._answer(connection, self.health, "application/json", "Connection: close\r\n")
                    return
                action = self.script.pop(0)
                if action == "answer":
                    count = len(np.load(io.BytesIO(body)))
                    self._answer(connection, to_npy(np.zeros((count, 4), np.float32)), "application/x-npy")
                elif action == "refuse":
                    self._answer(
                        connection, b'{"reason": "wrong_crop_size"}', "application/json", status="400 Bad Request"
                    )
                else:
                    return

    @staticmethod
    def _answer(
        connection: socket.socket, body: bytes, media_type: str, extra: str = "", status: str = "200 OK"
    ) -> None:
        head = f"HTTP/1.1 {status}\r\nContent-Type: {media_type}\r\nContent-Length: {len(body)}\r\n{extra}"
        connection.sendall(f"{head}X-Embedding-Model: scripted\r\n\r\n".encode() + body)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture()
def scripted():
    servers: list[ScriptedServer] = []

    def start(script: list[str]) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_calls_within_the_limit_that_health_says(scripted):
    server = scripted(["answer"] * 3)
    server.health = json.dumps({**HEALTH, "max_batch": 5}).encode()
    assert client_of(server.url).embed(np.zeros((12, 112, 112, 3), np.uint8)).shape == (12, 4)
    assert [line for _, line in server.requests if "extract_feature" in line] == ["POST /extract_feature HTTP/1.1"] * 3


def test_a_kept_connection_that_breaks_as_a_request_goes_out_is_replaced(scripted):
    server = scripted(["answer", "close", "answer"])
    client = client_of(server.url, extraction_retries=0)
    client.embed(CROPS)
    assert client.embed(CROPS).shape == (2, 4)  # sent again, on a new connection
    assert [number for number, line in server.requests if "extract" in line] == [1, 1, 2]


def test_a_request_unanswered_on_a_new_connection_is_not_sent_again(scripted):
    server = scripted(["close", "answer"])
    client = client_of(server.url, extraction_retries=2)
    client.spec()
    with pytest.raises(ExtractionUnavailable) as raised:
        client.embed(CROPS)
    assert raised.value.reason == "extraction_unavailable"
    assert "RemoteDisconnected" in str(raised.value)
    assert sum("extract" in line for _, line in server.requests) == 1


def test_the_url_path_prefixes_every_request(scripted):
    server = scripted(["answer"])
    client_of(server.url + "/fe/").embed(CROPS)
    assert [line for _, line in server.requests] == ["GET /fe/health HTTP/1.1", "POST /fe/extract_feature HTTP/1.1"]


def test_no_server_is_unavailable_after_the_retries():
    client = client_of(f"http://127.0.0.1:{free_port()}", extraction_retries=2)
    with pytest.raises(ExtractionUnavailable) as raised:
        client.check()
    assert raised.value.reason == "extraction_unavailable"
    assert "ConnectionRefusedError" in str(raised.value)


def test_crops_refused_after_a_restart_with_another_model_make_it_ask_the_model_again(scripted):
    server = scripted(["answer", "refuse"])
    client = client_of(server.url)
    client.embed(CROPS)
    server.health = json.dumps({**HEALTH, "model": "another", "crop_size": 160}).encode()
    with pytest.raises(ExtractionUnavailable):
        client.embed(CROPS)  # 112 px crops, refused by a service that now takes 160
    assert client.spec().crop_size == 160  # asked again: it was asked once only, and never recovered
    assert sum("health" in line for _, line in server.requests) == 2


@pytest.mark.parametrize("health", [b"<html>not json</html>", b'{"status": "ok"}', b'{"model": "m", "dim": "x"}'])
def test_a_malformed_health_answer_is_unavailable_not_a_crash(scripted, health):
    server = scripted([])
    server.health = health
    with pytest.raises(ExtractionUnavailable) as raised:
        client_of(server.url).spec()
    assert raised.value.reason == "extraction_failed"


def test_the_model_is_never_none_while_other_threads_forget_it(scripted):
    client = client_of(scripted([]).url)
    seen, stop = [], threading.Event()

    def forget() -> None:  # as a failed call or check() does
        while not stop.is_set():
            client._spec = None

    def ask() -> None:  # as request threads do
        while not stop.is_set():
            seen.append(client.spec())

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns as often as they can
    threads = [threading.Thread(target=forget)] + [threading.Thread(target=ask) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        sys.setswitchinterval(interval)
    assert seen and None not in seen


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:99999", "port must be a number"),
        ("http://127.0.0.1:abc", "port must be a number"),
        ("http://no..such:5000", "not a valid host name"),
        ("http://[::1", "Invalid IPv6 URL"),
        ("127.0.0.1:5000", "expected an http:// or https:// URL"),
        ("http://:5000", "names no host"),
    ],
)
def test_a_url_that_cannot_be_reached_is_refused_naming_the_variable(url, problem):
    with pytest.raises(InvalidSetting, match=problem) as raised:
        client_of(url)
    assert str(raised.value).startswith("FEATURE_EXTRACTION_URL=")


def test_face_detection_with_an_unusable_url_stops_naming_it(work_dir, detection_db_url):
    service = Service(
        "face_detection",
        env={"DATABASE_URL": detection_db_url, "FEATURE_EXTRACTION_URL": "http://127.0.0.1:99999"},
        log_path=work_dir / "bad-extraction-url.log",
    )
    with pytest.raises(RuntimeError, match="exited") as raised:
        service.start()
    assert "face_detection cannot start: FEATURE_EXTRACTION_URL='http://127.0.0.1:99999'" in str(raised.value)
