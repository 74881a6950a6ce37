"""Micro-batching in feature_extraction: concurrent requests share model calls, results stay in order."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from facerec.inference.recognizers import ArcFaceMBF
from facerec.settings import Settings
from feature_extraction.batching import MicroBatcher
from tests.conftest import PACKAGE_PHOTOS
from tests.photos import aligned_crops


class CountingModel:
    """The real recogniser, counting its calls and their batch sizes."""

    def __init__(self):
        self.recognizer = ArcFaceMBF(Settings.from_env())
        self.batch_sizes: list[int] = []
        self._lock = threading.Lock()

    def embed(self, crops: np.ndarray) -> np.ndarray:
        with self._lock:
            self.batch_sizes.append(len(crops))
        return self.recognizer.embed(crops)


@pytest.fixture(scope="module")
def model() -> CountingModel:
    return CountingModel()


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    return aligned_crops(PACKAGE_PHOTOS / "players.jpg")


def test_concurrent_requests_are_coalesced_and_answered_in_order(model, crops):
    batcher = MicroBatcher(model.embed, max_batch=64, max_wait_ms=50)
    requests = [crops[i : i + 2] for i in range(0, 16, 2)]
    model.batch_sizes.clear()
    barrier = threading.Barrier(len(requests))

    def submit(part: np.ndarray) -> np.ndarray:
        barrier.wait()
        return batcher.embed(part)

    with ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(submit, requests))
    expected = model.recognizer.embed(crops[:16])
    np.testing.assert_allclose(np.concatenate(answers), expected, atol=1e-5)
    assert len(model.batch_sizes) < len(requests), model.batch_sizes
    assert max(model.batch_sizes) > 2


def test_model_calls_never_exceed_max_batch(model, crops):
    batcher = MicroBatcher(model.embed, max_batch=4, max_wait_ms=30)
    model.batch_sizes.clear()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: batcher.embed(crops[i : i + 3]), range(8)))
    assert sum(model.batch_sizes) == 24 and max(model.batch_sizes) <= 4


def test_a_request_larger_than_max_batch_is_split_and_answered_in_order(model, crops):
    batcher = MicroBatcher(model.embed, max_batch=4, max_wait_ms=0)
    model.batch_sizes.clear()
    vectors = batcher.embed(crops[:10])
    assert model.batch_sizes == [4, 4, 2]
    np.testing.assert_allclose(vectors, model.recognizer.embed(crops[:10]), atol=1e-5)


def test_a_failing_batch_fails_its_callers_and_the_batcher_goes_on(model, crops):
    batcher = MicroBatcher(model.embed, max_batch=64, max_wait_ms=0)
    with pytest.raises(Exception):  # noqa: B017 - whatever onnxruntime raises for a wrong shape
        batcher.embed(np.zeros((1, 50, 50, 3), np.uint8))
    assert batcher.embed(crops[:1]).shape == (1, 512)
