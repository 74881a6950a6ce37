"""The batched SCRFD detector gives insightface's own SCRFD answers, one image or many at a time."""

from __future__ import annotations

import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

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


def square(path, left: int, right: int, size: int) -> np.ndarray:
    """A square cut of the photo at a size whose letterbox float arithmetic lands just under 640."""
    return cv2.resize(cv2.imread(str(path))[:, left:right], (size, size), interpolation=cv2.INTER_CUBIC)


IMAGES = {
    **{path.name: lambda path=path: cv2.imread(str(path)) for path in PHOTOS},
    "t1 square 1212": lambda: square(insightface_photo("t1.jpg"), 197, 1083, 1212),
    "players square 2424": lambda: square(PACKAGE_PHOTOS / "players.jpg", 218, 1018, 2424),
}


@pytest.mark.parametrize("make", IMAGES.values(), ids=IMAGES.keys())
def test_same_faces_as_insightface_scrfd(detector, make):
    image = make()
    reference = SCRFD(str(PACKAGE_PHOTOS / DETECTOR_FILE))
    boxes, landmarks = reference.detect(image, input_size=(640, 640), det_thresh=0.5)
    ours = detector.predict(image)
    assert len(ours) == len(boxes) > 0
    np.testing.assert_allclose(np.array([f.box for f in ours]), boxes[:, :4], atol=0.5)
    np.testing.assert_allclose(np.array([f.landmarks for f in ours]), landmarks, atol=0.5)
    np.testing.assert_allclose([f.score for f in ours], boxes[:, 4], atol=1e-4)


@pytest.mark.parametrize("size", [320, 352, 800])
def test_same_faces_as_insightface_scrfd_at_other_input_sizes(size):
    """FACEREC_DET_SIZE takes multiples of 32, the detector's coarsest stride (333 found faces that
    were not there); at those, the faces insightface finds at that size."""
    image = cv2.imread(str(PACKAGE_PHOTOS / "players.jpg"))
    reference = SCRFD(str(PACKAGE_PHOTOS / DETECTOR_FILE))
    boxes, _ = reference.detect(image, input_size=(size, size), det_thresh=0.5)
    ours = FaceDetector(Settings(device="cpu", det_size=size)).predict(image)
    assert len(ours) == len(boxes) > 10
    np.testing.assert_allclose(np.array([f.box for f in ours]), boxes[:, :4], atol=0.5)


@pytest.mark.parametrize("shape", [(120, 90, 4), (120, 90)], ids=["BGRA", "grey"])
def test_an_image_that_is_not_bgr_is_refused_not_blank(detector, shape):
    with pytest.raises(ValueError, match="expected a BGR image"):
        detector.predict(np.full(shape, 128, dtype=np.uint8))


@pytest.mark.parametrize("shape", [(100, 12000, 3), (12000, 100, 3), (1, 2000, 3), (2000, 1, 3), (1, 1, 3)])
def test_extreme_shapes_find_nothing_and_take_no_more_than_the_canvas(detector, shape):
    """An image with no face is looked at again as if framed by black: a 12000x100 one, framed so,
    took 870 MB; a 2000x1 one letterboxed to no rows at all."""
    detector.load()
    image = np.full(shape, 128, np.uint8)
    tracemalloc.start()
    try:
        faces = detector.predict(image)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert faces == []
    assert peak < 4 * image.nbytes + 20 * 2**20, f"{peak / 2**20:.0f} MB"


def test_a_batch_equals_one_image_at_a_time(detector):
    images = [cv2.imread(str(path)) for path in PHOTOS]
    batched = FaceDetector(Settings(device="cpu", det_batch=len(PHOTOS))).detect_batch(images)
    for image, faces in zip(images, batched, strict=True):
        single = detector.predict(image)
        np.testing.assert_allclose([f.box for f in faces], [f.box for f in single], atol=1e-3)


class RunSpy:
    """A session that records the batch sizes it ran and how many of its runs overlapped."""

    def __init__(self, session):
        self.session, self.batches, self.running, self.most_at_once = session, [], 0, 0
        self.counting = threading.Lock()

    def run_images(self, images, *args, **kwargs):
        with self.counting:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.batches.append(len(images))
        time.sleep(0.01)  # room for another thread to come in, were runs not one at a time
        try:
            return self.session.run_images(images, *args, **kwargs)
        finally:
            with self.counting:
                self.running -= 1


def test_model_calls_are_one_at_a_time_and_at_most_the_batch_size():
    """What bounds the detector's memory: one call's worth in onnxruntime's arena, the warm-up's."""
    assert FaceDetector(Settings(device="cpu")).batch_size == 1  # a batch is no faster per image on the CPU
    detector = FaceDetector(Settings(device="cpu", det_batch=3))
    detector.warm_up()
    spy = detector._session = RunSpy(detector._session)
    image = cv2.imread(str(PACKAGE_PHOTOS / "yaoming.jpg"))
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda _: detector.detect_batch([image] * 7), range(4)))
    assert all(len(faces) == 1 for image_faces in found for faces in image_faces)
    assert sorted(spy.batches) == [1] * 4 + [3] * 8 and spy.most_at_once == 1
