"""feature_extraction: real models in-process and the service over real HTTP."""

from __future__ import annotations

import base64
import io

import cv2
import numpy as np
import pytest
import requests
from numpy.lib import format as npy_format
from PIL import Image

from facerec.inference.recognizers import ArcFaceMBF
from facerec.settings import Settings
from facerec.wire import NPY_MEDIA_TYPE, from_npy, to_npy
from tests.conftest import PACKAGE_PHOTOS
from tests.photos import aligned_crops


@pytest.fixture(scope="module")
def arcface() -> ArcFaceMBF:
    return ArcFaceMBF(Settings.from_env())


@pytest.fixture(scope="module")
def yao_and_players(arcface):
    yao = arcface.embed(aligned_crops(PACKAGE_PHOTOS / "yaoming.jpg"))
    players = arcface.embed(aligned_crops(PACKAGE_PHOTOS / "players.jpg"))
    return yao, players


def test_vectors_are_unit_length_float32(yao_and_players):
    yao, players = yao_and_players
    assert yao.shape == (1, 512) and players.shape[1] == 512 and len(players) >= 18
    assert yao.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(players, axis=1), 1.0, atol=1e-5)


def test_same_person_far_more_similar_than_others(yao_and_players):
    """Yao Ming appears once among the players: he, and only he, is close to his portrait."""
    yao, players = yao_and_players
    similarities = np.sort(players @ yao[0])[::-1]
    assert similarities[0] > 0.5
    assert similarities[1] < 0.3
    assert similarities[0] - similarities[1] > 0.3


def test_flipped_crop_stays_close(arcface):
    crop = aligned_crops(PACKAGE_PHOTOS / "yaoming.jpg")
    vectors = arcface.embed(np.concatenate([crop, crop[:, :, ::-1]]))
    assert float(vectors[0] @ vectors[1]) > 0.8


def test_same_input_same_vector(arcface):
    crops = aligned_crops(PACKAGE_PHOTOS / "gdp.jpg")
    first, second = arcface.embed(crops), arcface.embed(crops)
    np.testing.assert_array_equal(first, second)


def test_batch_equals_one_by_one(arcface):
    crops = aligned_crops(PACKAGE_PHOTOS / "gdp.jpg")
    batched = arcface.embed(crops)
    single = np.concatenate([arcface.embed(crops[i : i + 1]) for i in range(len(crops))])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_shared_gallery_identities_separate(arcface, shared_faces, manifest):
    """Photos of one person are more alike than any two photos of different people."""
    vectors = {}
    for person, files in manifest["gallery"].items():
        crops = np.concatenate([aligned_crops(shared_faces / "gallery" / person / f) for f in files])
        vectors[person] = arcface.embed(crops)
    genuine = [float(v[i] @ v[j]) for v in vectors.values() for i in range(len(v)) for j in range(i + 1, len(v))]
    people = list(vectors)
    impostor = [
        float(a @ b) for i, p in enumerate(people) for q in people[i + 1 :] for a in vectors[p] for b in vectors[q]
    ]
    assert min(genuine) > max(impostor) + 0.2


# --- the service over HTTP ---------------------------------------------------------------


def post_npy(url: str, crops: np.ndarray) -> requests.Response:
    return requests.post(
        url + "/extract_feature", data=to_npy(crops), headers={"Content-Type": NPY_MEDIA_TYPE}, timeout=60
    )


def test_health_reports_model(extraction_service):
    health = requests.get(extraction_service.url + "/health", timeout=10).json()
    assert health["status"] == "ok"
    assert health["model"] == "arcface_mbf" and health["dim"] == 512 and health["crop_size"] == 112
    assert health["weights_sha256"].startswith("9cc6e4a7")
    assert health["provider"] == "cpu"
    assert health["alignment"] == "arcface_5pt" and health["channel_order"] == "BGR"


def test_binary_batch_matches_in_process(extraction_service, arcface):
    crops = aligned_crops(PACKAGE_PHOTOS / "players.jpg")
    response = post_npy(extraction_service.url, crops)
    assert response.status_code == 200
    assert response.headers["X-Embedding-Model"] == "arcface_mbf"
    vectors = from_npy(response.content, np.dtype(np.float32), ndim=2)
    np.testing.assert_allclose(vectors, arcface.embed(crops), atol=1e-5)


def test_json_batch_keeps_ids_and_order(extraction_service, arcface):
    crops = aligned_crops(PACKAGE_PHOTOS / "gdp.jpg")[:3]
    items = []
    for index, crop in enumerate(crops):
        buffer = io.BytesIO()
        Image.fromarray(crop[:, :, ::-1]).save(buffer, format="PNG")
        encoded = base64.b64encode(buffer.getvalue()).decode()
        items.append({"id": f"face-{index}", "image": encoded if index else "data:image/png;base64," + encoded})
    response = requests.post(extraction_service.url + "/extract_feature", json={"crops": items}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "arcface_mbf" and body["dim"] == 512
    assert [e["id"] for e in body["embeddings"]] == ["face-0", "face-1", "face-2"]
    np.testing.assert_allclose(np.array([e["embedding"] for e in body["embeddings"]]), arcface.embed(crops), atol=1e-5)


BAD_REQUESTS = {
    "empty binary batch": (NPY_MEDIA_TYPE, to_npy(np.zeros((0, 112, 112, 3), np.uint8)), 400, "empty_batch"),
    "wrong crop size": (NPY_MEDIA_TYPE, to_npy(np.zeros((1, 160, 160, 3), np.uint8)), 400, "wrong_crop_size"),
    "wrong dtype": (NPY_MEDIA_TYPE, to_npy(np.zeros((1, 112, 112, 3), np.float32)), 400, "invalid_npy"),
    "not npy": (NPY_MEDIA_TYPE, b"hello", 400, "invalid_npy"),
    "too many crops": (NPY_MEDIA_TYPE, to_npy(np.zeros((257, 112, 112, 3), np.uint8)), 413, "max_batch"),
    "invalid json": ("application/json", b"{not json", 400, "invalid_json"),
    "no crops": ("application/json", b'{"crops": []}', 400, "empty_batch"),
    "crops not a list": ("application/json", b'{"crops": 3}', 400, "expected_crops_list"),
    "crop without image": ("application/json", b'{"crops": [{"id": 1}]}', 400, "invalid_crop"),
    "not base64": ("application/json", b'{"crops": [{"image": "%%%"}]}', 400, "invalid_base64"),
    "not an image": ("application/json", b'{"crops": [{"image": "aGVsbG8gd29ybGQ="}]}', 400, "not_an_image"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
def test_bad_requests_get_json_4xx(extraction_service, case):
    content_type, body, status, reason = BAD_REQUESTS[case]
    response = requests.post(
        extraction_service.url + "/extract_feature", data=body, headers={"Content-Type": content_type}, timeout=30
    )
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["reason"] == reason
    assert requests.get(extraction_service.url + "/health", timeout=10).status_code == 200


def test_wrong_size_json_crop_is_refused(extraction_service):
    image = cv2.imencode(".png", np.zeros((50, 60, 3), np.uint8))[1].tobytes()
    crops = [{"id": 1, "image": base64.b64encode(image).decode()}]
    response = requests.post(extraction_service.url + "/extract_feature", json={"crops": crops}, timeout=30)
    assert response.status_code == 400 and response.json()["reason"] == "wrong_crop_size"


def test_json_crops_are_counted_and_sized_before_decoding(extraction_service):
    """Each of these PNGs is 4 KB that decode to 2000x2000 pixels."""
    buffer = io.BytesIO()
    Image.new("L", (2000, 2000)).save(buffer, format="PNG")
    bomb = base64.b64encode(buffer.getvalue()).decode()
    url = extraction_service.url + "/extract_feature"
    too_many = requests.post(url, json={"crops": [{"image": bomb}] * 257}, timeout=30)
    too_large = requests.post(url, json={"crops": [{"image": bomb}]}, timeout=30)
    assert too_many.status_code == 413 and too_many.json()["reason"] == "max_batch"
    assert too_large.status_code == 400 and too_large.json()["reason"] == "wrong_crop_size"
    assert "a larger crop at index 0" in too_large.json()["error"]


def test_negative_sizes_in_an_npy_header_are_refused(extraction_service):
    header = io.BytesIO()  # two negative sizes: their product is the body's length, as if valid
    npy_format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (-1, -112, 112, 3)})
    forged = header.getvalue() + bytes(112 * 112 * 3)
    response = requests.post(
        extraction_service.url + "/extract_feature", data=forged, headers={"Content-Type": NPY_MEDIA_TYPE}, timeout=30
    )
    assert response.status_code == 400 and response.json()["reason"] == "invalid_npy"


def test_unknown_route_is_json_404(extraction_service):
    response = requests.get(extraction_service.url + "/nope", timeout=10)
    assert response.status_code == 404 and response.json()["reason"] == "not_found"
    wrong_method = requests.delete(extraction_service.url + "/extract_feature", timeout=10)
    assert wrong_method.status_code == 405 and wrong_method.json()["reason"] == "method_not_allowed"
