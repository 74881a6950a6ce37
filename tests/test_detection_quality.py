"""Detection where SCRFD alone fails or overshoots: faces that fill the frame, faces cut by the edge."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from insightface.model_zoo.scrfd import SCRFD

from facerec.inference.alignment import align_faces
from facerec.inference.detector import DETECTOR_FILE
from facerec.inference.recognizers import ArcFaceMBF
from facerec.settings import Settings
from tests.conftest import PACKAGE_PHOTOS
from tests.photos import detector, read

YAO = PACKAGE_PHOTOS / "yaoming.jpg"
CLOSE_UP_PX = 640


@pytest.fixture(scope="module")
def single_pass() -> SCRFD:
    """insightface's SCRFD on the same weights: one pass, as the original ran it."""
    return SCRFD(str(PACKAGE_PHOTOS / DETECTOR_FILE))


def single_pass_boxes(scrfd: SCRFD, image: np.ndarray) -> np.ndarray:
    settings = Settings.from_env()
    size = settings.det_size
    return scrfd.detect(image, input_size=(size, size), det_thresh=settings.det_threshold)[0]


def close_up(image: np.ndarray, margin: float) -> np.ndarray:
    """The largest face cropped to its box plus margin (a fraction of the box) on each side, at 640x640."""
    face = max(detector().predict(image), key=lambda f: f.area)
    x1, y1, x2, y2 = face.box
    dx, dy = margin * (x2 - x1), margin * (y2 - y1)
    crop = image[int(max(y1 - dy, 0)) : int(y2 + dy), int(max(x1 - dx, 0)) : int(x2 + dx)]
    return cv2.resize(crop, (CLOSE_UP_PX, CLOSE_UP_PX))


@pytest.mark.parametrize("margin", [0.1, 0.0])
def test_a_face_filling_the_frame_is_found_by_the_second_pass(single_pass, margin):
    image = close_up(read(YAO), margin)
    assert len(single_pass_boxes(single_pass, image)) == 0  # SCRFD's own pass misses it: the retry is needed
    [face] = detector().predict(image)
    assert face.width > 0.7 * CLOSE_UP_PX and face.height > 0.7 * CLOSE_UP_PX
    assert np.all((face.landmarks >= 0) & (face.landmarks <= CLOSE_UP_PX))


def test_the_close_up_embeds_as_the_same_person():
    """The second pass's landmarks map back onto the close-up: alignment and embedding still work."""
    arcface = ArcFaceMBF(Settings.from_env())
    original = read(YAO)
    zoomed = close_up(original, 0.1)
    [whole] = arcface.embed(align_faces(original, [detector().predict(original)[0].landmarks], 112))
    [closer] = arcface.embed(align_faces(zoomed, [detector().predict(zoomed)[0].landmarks], 112))
    assert float(whole @ closer) > 0.8


def test_a_face_cut_by_the_image_edge_gets_a_clipped_box(single_pass):
    image = read(YAO)[:150]  # the chin is below the new bottom edge
    [raw] = single_pass_boxes(single_pass, image)
    assert raw[3] > image.shape[0] + 20
    [face] = detector().predict(image)
    x1, y1, x2, y2 = face.box
    assert 0 <= x1 < x2 <= image.shape[1] and 0 <= y1 < y2 == image.shape[0]
    _, y, w, h = face.xywh()  # the README's bbox: inside the image
    assert y + h == image.shape[0] and w > 0 and h > 0
