"""The enrolment quality gate over real HTTP: small, uncertain and blurred faces are refused, with the reason."""

from __future__ import annotations

import base64

import cv2
import numpy as np
import pytest
import requests

from tests.conftest import PACKAGE_PHOTOS
from tests.photos import read

YAO = PACKAGE_PHOTOS / "yaoming.jpg"  # one face, about 105 px wide, detection score about 0.84


def jpeg_uri(image: np.ndarray) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(cv2.imencode(".jpg", image)[1].tobytes()).decode()


def enrol(url: str, sample_id: str, image: np.ndarray) -> dict:
    item = {"id": sample_id, "name": sample_id, "image": jpeg_uri(image), "metadata": "", "action": ""}
    response = requests.post(url + "/update-samples", json=[item], timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


def refusal(report: dict) -> dict:
    assert report["success"] == [] and len(report["fail"]) == 1, report
    [error] = report["errors"]
    return error


def blurred(sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(read(YAO), (0, 0), sigma)


@pytest.fixture(scope="module")
def strict_service(start_detection):
    """face_detection with a higher score minimum (0.7) and the sharpness check on (50)."""
    service = start_detection("fd-strict", FACEREC_MIN_DET_SCORE="0.7", FACEREC_MIN_SHARPNESS="50")
    yield service.url
    service.stop()


def test_a_face_under_the_minimum_size_is_refused(api):
    small = cv2.resize(read(YAO), None, fx=0.2, fy=0.2, interpolation=cv2.INTER_AREA)  # face about 21 px
    error = refusal(enrol(api, "small", small))
    assert error["id"] == "small" and error["reason"] == "face_too_small"
    assert "FACEREC_MIN_FACE_PX" in error["message"] and "21 px" in error["message"]


def test_recognition_is_not_gated(api):
    small = cv2.resize(read(YAO), None, fx=0.2, fy=0.2, interpolation=cv2.INTER_AREA)
    response = requests.post(api + "/face-recognition", json={"image": jpeg_uri(small)}, timeout=120)
    assert response.status_code == 200 and len(response.json()) == 1


def test_a_sharp_certain_face_passes_the_strict_gate(strict_service):
    assert enrol(strict_service, "sharp", read(YAO))["success"] == ["sharp"]


def test_an_uncertain_detection_is_refused(strict_service):
    error = refusal(enrol(strict_service, "uncertain", blurred(13)))  # score about 0.55
    assert error["reason"] == "low_detection_score"
    assert "FACEREC_MIN_DET_SCORE" in error["message"] and "0.7" in error["message"]


def test_a_blurred_face_is_refused(strict_service):
    error = refusal(enrol(strict_service, "blurred", blurred(3)))  # score still about 0.84, sharpness about 7
    assert error["reason"] == "too_blurry"
    assert "FACEREC_MIN_SHARPNESS" in error["message"] and "Laplacian" in error["message"]
