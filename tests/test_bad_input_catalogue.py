"""A catalogue of bad input against the running services: each case gets its documented status and
JSON shape, nothing is stored, and afterwards the same workers still answer correctly."""

from __future__ import annotations

import base64
import io
import json
import socket
import struct
import zlib
from collections.abc import Callable
from functools import cache

import cv2
import numpy as np
import pytest
import requests
from PIL import Image

from tests.conftest import PACKAGE_PHOTOS, insightface_photo
from tests.photos import detector, read
from tests.test_face_detection_api import rows

YAO = PACKAGE_PHOTOS / "yaoming.jpg"
YAO_JPEG = YAO.read_bytes()
ERROR_KEYS = {"error", "reason", "request_id"}
REPORT_KEYS = {"success", "fail", "errors", "warnings"}


# --- building the bad input ---------------------------------------------------------------


def uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def yao_as(mode: str, fmt: str) -> bytes:
    image = Image.open(YAO).convert("L" if mode == "I;16" else mode)
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image).astype(np.uint16) * 257)
    return encoded(image, fmt)


TINY_PNG = encoded(Image.new("RGB", (1, 1), (200, 150, 120)), "PNG")


@cache
def bilevel_png(width: int, height: int) -> bytes:
    """A real, complete black PNG of 1 bit per pixel: 30000x30000 is 900 Mpx in about 110 KB."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@cache
def two_hundred_faces() -> bytes:
    """A 20 x 10 grid of face crops from the package photos: 200 faces, all found by the detector."""
    crops = []
    for path in (PACKAGE_PHOTOS / "players.jpg", insightface_photo("t1.jpg")):
        image = read(path)
        for face in detector().predict(image):
            x1, y1, x2, y2 = (int(v) for v in face.box)
            margin_x, margin_y = int(0.35 * (x2 - x1)), int(0.35 * (y2 - y1))
            crop = image[max(0, y1 - margin_y) : y2 + margin_y, max(0, x1 - margin_x) : x2 + margin_x]
            crops.append(cv2.resize(crop, (96, 96)))
    tiles = [crops[i % len(crops)] for i in range(200)]
    grid = np.vstack([np.hstack(tiles[row * 20 : (row + 1) * 20]) for row in range(10)])
    return cv2.imencode(".png", grid)[1].tobytes()


class Raw(bytes):
    """A body sent as these bytes, not as JSON."""


class Chunked(bytes):
    """A body sent in chunks of 64 KiB (Transfer-Encoding: chunked, no Content-Length)."""


def post(url: str, body) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if isinstance(body, Chunked):
        chunks = (body[start : start + 65536] for start in range(0, len(body), 65536))
        return requests.post(url, data=chunks, headers=headers, timeout=120)
    if isinstance(body, Raw):
        return requests.post(url, data=body, headers=headers, timeout=120)
    return requests.post(url, json=body, timeout=120)


def chunked_image(size: int) -> Chunked:
    return Chunked(json.dumps({"image": "data:image/png;base64," + "A" * size}).encode())


def expect_error(response: requests.Response, status: int, reason: str) -> dict:
    assert response.status_code == status, response.text[:300]
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == ERROR_KEYS and body["reason"] == reason, body
    assert body["request_id"] == response.headers["X-Request-Id"]
    return body


def case(name: str, body: Callable[[], object], status: int, reason: str):
    return pytest.param(body, status, reason, id=name)


def image_body(data: Callable[[], bytes], mime: str = "image/png", **fields) -> Callable[[], dict]:
    return lambda: {"image": uri(data(), mime), **fields}


def min_distance(value: str) -> Callable[[], Raw]:
    """A body with a readable image and min_distance written as raw JSON (NaN and Infinity are not JSON)."""
    return lambda: Raw(f'{{"image": "{uri(TINY_PNG)}", "min_distance": {value}}}'.encode())


NOT_IMAGES = {
    "truncated JPEG": lambda: YAO_JPEG[: len(YAO_JPEG) // 2],
    "JPEG header only": lambda: YAO_JPEG[:100],
    "text file": lambda: b"just some text\n" * 50,
    "SVG": lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    "PDF": lambda: b"%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n",
}
UNSUPPORTED_FORMATS = {  # formats Pillow can open but that are refused before decoding
    "EPS (would run Ghostscript)": lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n",
    "ICO": lambda: encoded(Image.new("RGB", (32, 32)), "ICO"),
}
NOT_DATA_URIS = [
    "/etc/passwd",
    "../../../../../../etc/passwd",
    "..\\..\\..\\windows\\win.ini",
    "file:///etc/passwd",
    "~/.ssh/id_rsa",
    "app.py",  # a file in face_detection's working directory
    "http://127.0.0.1:1/face.jpg",
    "data:image/jpeg,not-base64",
    "yaoming.jpg\x00.png",
]

RECOGNITION_ERRORS = [
    case("invalid JSON", lambda: Raw(b'{"image": '), 400, "invalid_json"),
    case("JSON nested 100000 deep", lambda: Raw(b"[" * 100_000 + b"]" * 100_000), 400, "invalid_json"),
    case("body not UTF-8", lambda: Raw(b'{"image": "\xff\xfe"}'), 400, "invalid_json"),
    case("lone surrogate", lambda: Raw(b'{"image": "\\ud800"}'), 400, "invalid_unicode"),
    case("empty body", lambda: Raw(b""), 400, "expected_json_object"),
    case("body null", lambda: Raw(b"null"), 400, "expected_json_object"),
    case("body a list", lambda: [], 400, "expected_json_object"),
    case("body a string", lambda: "image", 400, "expected_json_object"),
    case("image missing", lambda: {"min_distance": 0.3}, 400, "missing_image"),
    case("image null", lambda: {"image": None}, 400, "not_a_data_uri"),
    case("image a number", lambda: {"image": 42}, 400, "not_a_data_uri"),
    case("image a list", lambda: {"image": [uri(TINY_PNG)]}, 400, "not_a_data_uri"),
    *[case(f"image {path!r}", lambda path=path: {"image": path}, 400, "not_a_data_uri") for path in NOT_DATA_URIS],
    case("traversal as base64", lambda: {"image": "data:image/jpeg;base64,../../etc/passwd"}, 400, "invalid_base64"),
    case("invalid base64", lambda: {"image": "data:image/jpeg;base64,@@@@"}, 400, "invalid_base64"),
    case("base64 badly padded", lambda: {"image": "data:image/jpeg;base64,abc"}, 400, "invalid_base64"),
    case("0 bytes", lambda: {"image": "data:image/jpeg;base64,"}, 400, "empty_image"),
    case("chunked body", lambda: chunked_image(4), 400, "not_an_image"),  # read whole, as with a Content-Length
    *[case(name, image_body(data, "image/jpeg"), 400, "not_an_image") for name, data in NOT_IMAGES.items()],
    *[case(name, image_body(data), 400, "unsupported_format") for name, data in UNSUPPORTED_FORMATS.items()],
    *[
        case(f"min_distance {value}", min_distance(value), 400, "invalid_min_distance")
        for value in ("-0.1", "1.5", "NaN", "Infinity", '"NaN"', '"abc"', '""', "true", "[0.3]", "{}")
    ],
]
LIMITS = [
    case("30000x30000 PNG", image_body(lambda: bilevel_png(30_000, 30_000)), 413, "max_image_pixels"),
    case("10000x10000 PNG", image_body(lambda: bilevel_png(10_000, 10_000)), 413, "max_image_pixels"),
    case("200 faces", image_body(two_hundred_faces), 413, "max_faces"),
    case("body over 32 MiB", lambda: Raw(b" " * (32 * 1024 * 1024 + 1)), 413, "max_request_bytes"),
    case("chunked body over 32 MiB", lambda: chunked_image(32 * 1024 * 1024), 413, "max_request_bytes"),
]
LIMIT_SETTINGS = {
    "max_image_pixels": "FACEREC_MAX_IMAGE_PIXELS",
    "max_faces": "FACEREC_MAX_FACES",
    "max_request_bytes": "FACEREC_MAX_REQUEST_BYTES",
    "max_samples": "FACEREC_MAX_SAMPLES",
    "max_field_chars": "FACEREC_MAX_FIELD_CHARS",
    "max_id_chars": "FACEREC_MAX_ID_CHARS",
}
MAX_ID_CHARS = 256


@pytest.fixture(scope="module", autouse=True)
def workers_at_start(detection_service) -> set[int]:
    return detection_service.worker_pids()


# --- /face-recognition --------------------------------------------------------------------


@pytest.mark.parametrize("body, status, reason", RECOGNITION_ERRORS)
def test_recognition_refuses(api, body, status, reason):
    expect_error(post(api + "/face-recognition", body()), status, reason)


@pytest.mark.parametrize("body, status, reason", LIMITS)
def test_recognition_limits_are_413_naming_the_setting(api, body, status, reason):
    error = expect_error(post(api + "/face-recognition", body()), status, reason)
    assert LIMIT_SETTINGS[reason] in error["error"]


@pytest.mark.parametrize(
    "data, mime",
    [
        pytest.param(lambda: yao_as("L", "JPEG"), "image/jpeg", id="grayscale JPEG"),
        pytest.param(lambda: yao_as("CMYK", "JPEG"), "image/jpeg", id="CMYK JPEG"),
        pytest.param(lambda: yao_as("RGBA", "PNG"), "image/png", id="RGBA PNG"),
        pytest.param(lambda: yao_as("I;16", "PNG"), "image/png", id="16-bit PNG"),
        pytest.param(lambda: yao_as("P", "GIF"), "image/gif", id="GIF"),
        pytest.param(lambda: yao_as("RGB", "WEBP"), "image/webp", id="WebP"),
        pytest.param(lambda: yao_as("RGB", "TIFF"), "image/tiff", id="TIFF"),
        pytest.param(lambda: YAO_JPEG, "image/png", id="JPEG labelled PNG"),
    ],
)
def test_every_image_format_and_mode_finds_the_face(api, data, mime):
    response = post(api + "/face-recognition", {"image": uri(data(), mime), "min_distance": None})
    assert response.status_code == 200, response.text
    assert len(response.json()) == 1


def test_one_pixel_image_has_no_face(api):
    response = post(api + "/face-recognition", {"image": uri(TINY_PNG)})
    assert response.status_code == 200 and response.json() == []


# --- /update-samples ----------------------------------------------------------------------


def good_item(sample_id="good", **fields) -> dict:
    return {"id": sample_id, "name": "n", "image": uri(YAO_JPEG, "image/jpeg"), "metadata": "", "action": "", **fields}


LONG = "x" * 10_000
ITEM_FAILURES = [
    case("item a string", lambda: "good", 200, "invalid_item"),
    case("id missing", lambda: {"image": uri(YAO_JPEG)}, 200, "missing_id"),
    *[
        case(f"id {value!r}", lambda value=value: good_item(value), 200, "missing_id")
        for value in (None, "", [], True, 1.5, {"a": 1})
    ],
    case("image missing", lambda: {"id": "good", "name": "n"}, 200, "missing_image"),
    case("image null", lambda: good_item(image=None), 200, "not_a_data_uri"),
    *[case(f"image {p!r}", lambda p=p: good_item(image=p), 200, "not_a_data_uri") for p in NOT_DATA_URIS[:4]],
    case("invalid base64", lambda: good_item(image="data:image/png;base64,!!"), 200, "invalid_base64"),
    case("0 bytes", lambda: good_item(image="data:image/png;base64,"), 200, "empty_image"),
    *[case(name, lambda d=data: good_item(image=uri(d())), 200, "not_an_image") for name, data in NOT_IMAGES.items()],
    case("1x1 pixel", lambda: good_item(image=uri(TINY_PNG)), 200, "no_face"),
    *[
        case(f"{w}x{h} pixels", lambda w=w, h=h: good_item(image=uri(bilevel_png(w, h))), 200, "no_face")
        for w, h in ((2000, 1), (1, 2000), (12000, 100))  # letterboxed to no rows; framed in 870 MB
    ],
    case("30000x30000 PNG", lambda: good_item(image=uri(bilevel_png(30_000, 30_000))), 200, "max_image_pixels"),
    case("200 faces", lambda: good_item(image=uri(two_hundred_faces())), 200, "max_faces"),
    case("name a number", lambda: good_item(name=5), 200, "invalid_name"),
    case("metadata a list", lambda: good_item(metadata=["m"]), 200, "invalid_metadata"),
    case("action an object", lambda: good_item(action={"a": 1}), 200, "invalid_action"),
    case("NUL in name", lambda: good_item(name="a\x00b"), 200, "invalid_character"),
    case("10000-char id", lambda: good_item(LONG), 200, "max_id_chars"),
    *[
        case(f"10000-char {field}", lambda field=field: good_item(**{field: LONG}), 200, "max_field_chars")
        for field in ("name", "metadata", "action")
    ],
]


@pytest.mark.parametrize("item, status, reason", ITEM_FAILURES)
def test_a_bad_item_fails_with_its_reason_and_nothing_is_stored(api, detection_db_url, item, status, reason):
    sent = item()
    response = post(api + "/update-samples", [sent])
    assert response.status_code == status, response.text[:300]
    report = response.json()
    assert set(report) == REPORT_KEYS and report["success"] == []
    sent_id = sent.get("id") if isinstance(sent, dict) else None
    expected_id = sent_id if isinstance(sent_id, str) else None
    assert report["fail"] == [expected_id]
    [error] = report["errors"]
    assert error["reason"] == reason and error["id"] == expected_id
    if reason in LIMIT_SETTINGS:
        assert LIMIT_SETTINGS[reason] in error["message"]
    assert rows(detection_db_url) == []


@pytest.mark.parametrize(
    "body, status, reason",
    [
        case("invalid JSON", lambda: Raw(b'[{"id": "x",'), 400, "invalid_json"),
        case("an object, not a list", lambda: good_item(), 400, "expected_json_list"),
        case("lone surrogate in a name", lambda: Raw(b'[{"id": "x", "name": "\\udfff"}]'), 400, "invalid_unicode"),
        case("101 items", lambda: [good_item(str(i)) for i in range(101)], 413, "max_samples"),
    ],
)
def test_enrolment_request_refused(api, detection_db_url, body, status, reason):
    error = expect_error(post(api + "/update-samples", body()), status, reason)
    if status == 413:
        assert LIMIT_SETTINGS[reason] in error["error"]
    assert rows(detection_db_url) == []


@pytest.mark.parametrize(
    "value",
    [
        "'; DROP TABLE sample_face_vectors; --",
        'Robert"); DELETE FROM sample_face_vectors WHERE ("1"="1',
        "' OR '1'='1' --",
        "%s %(name)s {0} $1 \\x00 \\'",
        "名前 🙂 مرحبا e\u0301 \u202etxt.exe",
        "\t\r\n  ",
        "y" * 4096,
        "\U0001f642" * 4096,
    ],
    ids=["drop table", "double quotes", "or 1=1", "placeholders", "unicode", "whitespace", "4096 chars", "4096 emoji"],
)
def test_strings_up_to_the_limits_are_stored_verbatim(api, detection_db_url, value):
    sample_id = value[:MAX_ID_CHARS]  # the longest id, in 4-byte characters, still fits PostgreSQL's index
    response = post(api + "/update-samples", [good_item(sample_id, name=value, metadata=value, action=value)])
    assert response.json()["success"] == [sample_id]
    [row] = rows(detection_db_url)
    assert row[:4] == (sample_id, value, value, value)


@pytest.mark.parametrize("first, last", [("dup", "dup"), (7, "7")], ids=["same string", "number and string"])
def test_duplicate_ids_in_one_batch_keep_the_last(api, detection_db_url, first, last):
    report = post(api + "/update-samples", [good_item(first, name="first"), good_item(last, name="last")]).json()
    assert report["success"] == [last] and report["fail"] == [first]
    assert report["errors"][0]["reason"] == "duplicate_id"
    assert [row[1] for row in rows(detection_db_url)] == ["last"]


# --- afterwards ---------------------------------------------------------------------------


def raw_exchange(url: str, request: bytes) -> tuple[int, str, dict]:
    """Send bytes as they are (requests would refuse to), read the status, content type and JSON body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, body = answer.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers.get("Content-Type", ""), json.loads(body)


GUNICORN_REFUSALS = {
    "request line over 4094 bytes": (b"GET /health?q=" + b"x" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    "header over 8190 bytes": (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"x" * 9000 + b"\r\n\r\n", 431),
    "malformed request line": (b"NOT HTTP AT ALL\r\n\r\n", 400),
}


@pytest.mark.parametrize("name", GUNICORN_REFUSALS)
@pytest.mark.parametrize("service", ["face_detection", "feature_extraction"])
def test_what_gunicorn_refuses_before_the_app_is_json_too(detection_service, extraction_service, service, name):
    request, status = GUNICORN_REFUSALS[name]
    url = (detection_service if service == "face_detection" else extraction_service).url
    answer_status, content_type, body = raw_exchange(url, request)
    assert (answer_status, content_type) == (status, "application/json")
    assert set(body) == {"error", "reason"} and body["error"] and body["reason"].isidentifier()


def test_the_same_workers_still_answer_correctly(api, detection_service, workers_at_start):
    assert post(api + "/update-samples", [good_item("yao")]).json()["success"] == ["yao"]
    faces = post(api + "/face-recognition", {"image": uri((PACKAGE_PHOTOS / "players.jpg").read_bytes())}).json()
    assert [face["id"] for face in faces if face["id"]] == ["yao"]
    assert detection_service.worker_pids() == workers_at_start, "a worker died or was replaced"
