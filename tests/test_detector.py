"""The batched SCRFD detector gives insightface's own SCRFD answers, one image or many at a time."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from insightface.model_zoo.scrfd import SCRFD

from facerec.inference.detector import DETECTOR_FILE, FaceDetector
from facerec.settings import Settings
from tests.conftest import PACKAGE_PHOTOS, insightface_photo

PHOTOS = [
    PACKAGE_PHOTOS / "players.jpg",
    PACKAGE_PHOTOS / "yaoming.jpg",
    PACKAGE_PHOTOS / "gdp.jpg",
    insightface_photo("t1.jpg"),
]


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(Settings.from_env())


@pytest.mark.parametrize("path", PHOTOS, ids=lambda p: p.name)
def test_same_faces_as_insightface_scrfd(detector, path):
    image = cv2.imread(str(path))
    reference = SCRFD(str(PACKAGE_PHOTOS / DETECTOR_FILE))
    boxes, landmarks = reference.detect(image, input_size=(640, 640), det_thresh=0.5)
    ours = detector.predict(image)
    assert len(ours) == len(boxes) > 0
    np.testing.assert_allclose(np.array([f.box for f in ours]), boxes[:, :4], atol=0.5)
    np.testing.assert_allclose(np.array([f.landmarks for f in ours]), landmarks, atol=0.5)
    np.testing.assert_allclose([f.score for f in ours], boxes[:, 4], atol=1e-4)


def test_a_batch_equals_one_image_at_a_time(detector):
    images = [cv2.imread(str(path)) for path in PHOTOS]
    batched = detector.detect_batch(images)
    for image, faces in zip(images, batched, strict=True):
        single = detector.predict(image)
        np.testing.assert_allclose([f.box for f in faces], [f.box for f in single], atol=1e-3)
