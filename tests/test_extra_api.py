"""/verify, /detect, top_k and the annotated photo of /face-recognition, the API reference page."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser

import numpy as np
import pytest
import requests
from PIL import Image

from face_detection.annotation import MATCHED_COLOUR, UNKNOWN_COLOUR
from tests.conftest import PACKAGE_PHOTOS, data_uri, insightface_photo
from tests.test_face_detection_api import png_uri

YAO = PACKAGE_PHOTOS / "yaoming.jpg"
PLAYERS = PACKAGE_PHOTOS / "players.jpg"
TOM_HANKS = insightface_photo("Tom_Hanks_54745.png")
BBOX = re.compile(r"^\d+, \d+, \d+, \d+$")
BLANK = png_uri(np.full((200, 200, 3), 128, np.uint8))


def post(api: str, path: str, body) -> requests.Response:
    return requests.post(api + path, json=body, timeout=120)


def enrol(api: str, sample_id: str, image_uri: str) -> None:
    item = {"id": sample_id, "name": sample_id.title(), "image": image_uri, "metadata": "", "action": ""}
    assert post(api, "/update-samples", [item]).json()["success"] == [sample_id]


def xywh(bbox: str) -> tuple[int, ...]:
    return tuple(int(v) for v in bbox.split(", "))


def face_crop_uri(path, bbox: str, margin: float = 0.6) -> str:
    """A data URI of one face of a photo, with a margin of its size around it."""
    x, y, w, h = xywh(bbox)
    pad = margin * max(w, h)
    photo = Image.open(path).convert("RGB")
    crop = photo.crop((max(0, x - pad), max(0, y - pad), min(photo.width, x + w + pad), min(photo.height, y + h + pad)))
    buffer = io.BytesIO()
    crop.save(buffer, format="JPEG", quality=95)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture()
def yao_in_players(api) -> dict:
    """With Yao Ming enrolled from yaoming.jpg: his face among the players, and another player's."""
    enrol(api, "yao", data_uri(YAO))
    faces = post(api, "/face-recognition", {"image": data_uri(PLAYERS)}).json()
    [yao] = [face for face in faces if face["id"] == "yao"]
    other = max((face for face in faces if not face["matched"]), key=lambda face: xywh(face["bbox"])[2])
    return {"yao": face_crop_uri(PLAYERS, yao["bbox"]), "other": face_crop_uri(PLAYERS, other["bbox"]), "faces": faces}


# --- /detect -------------------------------------------------------------------------------------


def test_detect_gives_boxes_scores_and_five_landmarks(api):
    [face] = post(api, "/detect", {"image": data_uri(YAO)}).json()
    assert BBOX.match(face["bbox"])
    x1, y1, x2, y2 = face["box"]
    assert xywh(face["bbox"]) == (round(x1), round(y1), round(x2) - round(x1), round(y2) - round(y1))
    assert 0.5 <= face["score"] <= 1
    assert len(face["landmarks"]) == 5
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face["landmarks"])
    left_eye, right_eye, nose, mouth_left, _ = face["landmarks"]
    assert left_eye[0] < nose[0] < right_eye[0] and max(left_eye[1], right_eye[1]) < nose[1] < mouth_left[1]


def test_detect_finds_the_faces_that_recognition_finds_left_to_right(api):
    detected = post(api, "/detect", {"image": data_uri(PLAYERS)}).json()
    recognised = post(api, "/face-recognition", {"image": data_uri(PLAYERS)}).json()
    assert len(detected) >= 15
    assert [face["bbox"] for face in detected] == [face["bbox"] for face in recognised]


def test_detect_no_face_and_bad_input(api):
    assert post(api, "/detect", {"image": BLANK}).json() == []
    for body, reason in [
        ({}, "missing_image"),
        ({"image": "not an image"}, "not_a_data_uri"),
        ([], "expected_json_object"),
    ]:
        response = post(api, "/detect", body)
        assert response.status_code == 400 and response.json()["reason"] == reason


# --- /verify -------------------------------------------------------------------------------------


def test_verify_two_photos_of_one_person_and_of_two(api, yao_in_players, extraction_service):
    default_threshold = requests.get(extraction_service.url + "/health", timeout=30).json()["default_min_similarity"]
    same = post(api, "/verify", {"image1": data_uri(YAO), "image2": yao_in_players["yao"]}).json()
    assert same["match"] is True and same["similarity"] > same["threshold"] == default_threshold
    assert same["model"] == "arcface_mbf" and len(same["faces"]) == 2
    assert all(BBOX.match(face["bbox"]) for face in same["faces"])
    different = post(api, "/verify", {"image1": data_uri(YAO), "image2": yao_in_players["other"]}).json()
    assert different["match"] is False and different["similarity"] < default_threshold
    assert post(api, "/verify", {"image1": data_uri(YAO), "image2": data_uri(TOM_HANKS)}).json()["match"] is False


def test_verify_against_an_enrolled_id(api, yao_in_players):
    same = post(api, "/verify", {"image": yao_in_players["yao"], "id": "yao"}).json()
    assert same["match"] is True and (same["id"], same["name"]) == ("yao", "Yao")
    assert len(same["faces"]) == 1
    assert post(api, "/verify", {"image": yao_in_players["other"], "id": "yao"}).json()["match"] is False
    unknown = post(api, "/verify", {"image": yao_in_players["yao"], "id": "nobody"})
    assert unknown.status_code == 404 and unknown.json()["reason"] == "sample_not_found"


def test_verify_threshold_decides(api, yao_in_players):
    body = {"image1": data_uri(YAO), "image2": yao_in_players["yao"]}
    similarity = post(api, "/verify", body).json()["similarity"]
    strict = post(api, "/verify", {**body, "threshold": min(1.0, similarity + 0.01)}).json()
    assert strict["match"] is False and strict["similarity"] == similarity
    assert post(api, "/verify", {**body, "threshold": similarity - 0.01}).json()["match"] is True


@pytest.mark.parametrize(
    "body, reason",
    [
        ({}, "missing_image"),
        ({"image1": "IMAGE"}, "missing_image"),
        ({"image": "IMAGE"}, "missing_id"),
        ({"image": "IMAGE", "id": ""}, "missing_id"),
        ({"image": "IMAGE", "id": ["yao"]}, "invalid_id"),
        ({"image": "IMAGE", "id": "yao\u0000"}, "invalid_character"),
        ({"image1": "IMAGE", "image2": "IMAGE", "threshold": 2}, "invalid_threshold"),
        ({"image1": "IMAGE", "image2": "BLANK"}, "no_face"),
        ({"image1": "IMAGE", "image2": "data:image/jpeg;base64,AAAA"}, "not_an_image"),
    ],
)
def test_verify_bad_input_is_a_json_400(api, body, reason):
    photos = {"IMAGE": data_uri(YAO), "BLANK": BLANK}
    body = {key: photos.get(value, value) if isinstance(value, str) else value for key, value in body.items()}
    response = post(api, "/verify", body)
    assert response.status_code == 400, response.text
    assert response.json()["reason"] == reason


# --- /face-recognition: top_k and annotate -------------------------------------------------------


def test_top_k_lists_candidates_and_changes_nothing_else(api, yao_in_players):
    enrol(api, "other", yao_in_players["other"])
    plain = post(api, "/face-recognition", {"image": data_uri(PLAYERS)}).json()
    assert all("candidates" not in face for face in plain)
    ranked = post(api, "/face-recognition", {"image": data_uri(PLAYERS), "top_k": 2}).json()
    assert [{k: v for k, v in face.items() if k != "candidates"} for face in ranked] == plain
    for face in ranked:
        candidates = face["candidates"]
        assert {c["id"] for c in candidates} == {"yao", "other"}
        assert [c["similarity"] for c in candidates] == sorted((c["similarity"] for c in candidates), reverse=True)
        assert candidates[0]["similarity"] == face["similarity"]
    [yao] = [face for face in ranked if face["id"] == "yao"]
    assert yao["candidates"][0] == {"id": "yao", "name": "Yao", "metadata": "", "similarity": yao["similarity"]}
    one = post(api, "/face-recognition", {"image": data_uri(PLAYERS), "top_k": 1}).json()
    assert all(len(face["candidates"]) == 1 for face in one)


@pytest.mark.parametrize("top_k", [0, 11, "2", 2.5, True])
def test_top_k_out_of_range(api, top_k):
    response = post(api, "/face-recognition", {"image": data_uri(YAO), "top_k": top_k})
    assert response.status_code == 400 and response.json()["reason"] == "invalid_top_k"


def colour_near(pixel, colour, tolerance: int = 60) -> bool:
    return all(abs(int(p) - c) <= tolerance for p, c in zip(pixel, colour, strict=True))


def test_annotate_answers_the_photo_with_boxes_drawn(api, yao_in_players):
    response = post(api, "/face-recognition", {"image": data_uri(PLAYERS), "annotate": True})
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/jpeg"
    annotated = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))
    original = np.asarray(Image.open(PLAYERS).convert("RGB"))
    assert annotated.shape == original.shape
    large_faces = [face for face in yao_in_players["faces"] if xywh(face["bbox"])[2] >= 30]
    assert len(large_faces) >= 10
    for face in large_faces:  # on small boxes JPEG's chroma subsampling blurs the colour of the line
        x, y, _, h = xywh(face["bbox"])
        left_edge = np.median(annotated[y + h // 4 : y + 3 * h // 4, x + 1], axis=0)
        assert colour_near(left_edge, MATCHED_COLOUR if face["matched"] else UNKNOWN_COLOUR), face
        assert not colour_near(original[y + h // 2, x + 1], MATCHED_COLOUR, 30)
    # the label band above Yao Ming's box is green
    [yao] = [face for face in yao_in_players["faces"] if face["matched"]]
    x, y, _, _ = xywh(yao["bbox"])
    assert colour_near(annotated[y - 3, x + 4], MATCHED_COLOUR)


def test_annotate_false_keeps_json_and_must_be_a_boolean(api):
    assert post(api, "/face-recognition", {"image": data_uri(YAO), "annotate": False}).json()[0]["matched"] is False
    response = post(api, "/face-recognition", {"image": data_uri(YAO), "annotate": "yes"})
    assert response.status_code == 400 and response.json()["reason"] == "invalid_annotate"


# --- OpenAPI and the reference page --------------------------------------------------------------


def test_openapi_describes_the_new_endpoints(api):
    spec = requests.get(api + "/openapi.json", timeout=30).json()
    assert {"/verify", "/detect"} <= set(spec["paths"])
    recognition = spec["paths"]["/face-recognition"]["post"]
    request_schema = recognition["requestBody"]["content"]["application/json"]["schema"]
    assert {"top_k", "annotate"} <= set(request_schema["properties"])
    assert set(recognition["responses"]["200"]["content"]) == {"application/json", "image/jpeg"}
    assert "candidates" in spec["components"]["schemas"]["RecognisedFace"]["properties"]


def test_real_answers_match_the_described_schemas(api, yao_in_players):
    """Fuzzing cannot make faces; these answers come from real photos."""
    jsonschema = pytest.importorskip("jsonschema_rs", reason="jsonschema_rs comes with schemathesis")
    spec = requests.get(api + "/openapi.json", timeout=30).json()

    def assert_described(path: str, body: dict) -> None:
        response = post(api, path, body)
        assert response.status_code == 200, response.text
        schema = spec["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        jsonschema.validate({**schema, "components": spec["components"]}, response.json())

    assert_described("/detect", {"image": data_uri(PLAYERS)})
    assert_described("/face-recognition", {"image": data_uri(PLAYERS), "top_k": 3})
    assert_described("/verify", {"image1": data_uri(YAO), "image2": yao_in_players["yao"]})
    assert_described("/verify", {"image": yao_in_players["yao"], "id": "yao", "threshold": 0.5})


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.hrefs, self.sources = set(), [], []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.ids.add(attributes.get("id"))
        if "href" in attributes:
            self.hrefs.append(attributes["href"])
        if "src" in attributes:
            self.sources.append(attributes["src"])


@pytest.mark.parametrize("service", ["detection_service", "extraction_service"])
def test_api_reference_page_lists_every_operation_offline(request, service):
    url = request.getfixturevalue(service).url
    spec = requests.get(url + "/openapi.json", timeout=30).json()
    response = requests.get(url + "/docs", timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    page = response.text
    for path, item in spec["paths"].items():
        for method in item:
            assert f"<code>{path}</code>" in page and f"method {method}" in page
    links = _Links()
    links.feed(page)
    assert links.sources == []
    assert all(not href.startswith(("http:", "https:", "//")) for href in links.hrefs)
    assert {href[1:] for href in links.hrefs if href.startswith("#")} <= links.ids
