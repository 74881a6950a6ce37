"""facenet: the real loading path with a weights file made here (vggface2 cannot be fetched offline).

These tests check shapes, normalisation, preprocessing and the errors; the weights are random,
so they say nothing about facenet's accuracy.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import requests
import torch

from facerec.errors import ModelUnavailable
from facerec.inference.recognizers import FaceNet, create_recognizer
from facerec.settings import Settings
from facerec.wire import NPY_MEDIA_TYPE, from_npy, to_npy
from tests.conftest import PACKAGE_PHOTOS
from tests.photos import aligned_crops
from tests.servers import Service


@pytest.fixture(scope="module")
def weights_file(work_dir):
    """A state dict laid out as facenet-pytorch's vggface2 file: backbone plus an 8631-way logits layer."""
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(0)
    model = InceptionResnetV1(pretrained=None, classify=True, num_classes=8631)
    path = work_dir / "facenet-test-weights.pt"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def facenet(weights_file) -> FaceNet:
    recognizer = create_recognizer(Settings(embedding_model="facenet", facenet_weights=str(weights_file)))
    assert isinstance(recognizer, FaceNet)
    return recognizer


def test_loads_and_embeds_160px_crops(facenet):
    crops = aligned_crops(PACKAGE_PHOTOS / "gdp.jpg", size=160)
    vectors = facenet.embed(crops)
    assert vectors.shape == (len(crops), 512) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert facenet.spec.crop_size == 160 and facenet.provider == "cpu"
    assert len(facenet.weights_sha256) == 64


def test_matches_facenet_pytorch_own_preprocessing(facenet, weights_file):
    """RGB, (x - 127.5) / 128, eval mode: the same numbers as facenet-pytorch used directly."""
    from facenet_pytorch import InceptionResnetV1, fixed_image_standardization

    crops = aligned_crops(PACKAGE_PHOTOS / "yaoming.jpg", size=160)
    reference = InceptionResnetV1(pretrained=None, classify=True, num_classes=8631)
    reference.load_state_dict(torch.load(weights_file, weights_only=True))
    reference.classify = False
    tensor = fixed_image_standardization(torch.from_numpy(crops[..., ::-1].copy()).permute(0, 3, 1, 2).float())
    with torch.inference_mode():
        expected = reference.eval()(tensor).numpy()
    np.testing.assert_allclose(facenet.embed(crops), expected, atol=1e-4)


def test_missing_weights_file_is_a_clear_error(work_dir):
    recognizer = create_recognizer(Settings(embedding_model="facenet", facenet_weights=str(work_dir / "nope.pt")))
    with pytest.raises(ModelUnavailable, match=r"FACEREC_FACENET_WEIGHTS=.*does not exist"):
        recognizer.load()


def test_not_a_state_dict_is_a_clear_error(work_dir):
    bogus = work_dir / "bogus.pt"
    torch.save({"conv": torch.zeros(3)}, bogus)
    recognizer = create_recognizer(Settings(embedding_model="facenet", facenet_weights=str(bogus)))
    with pytest.raises(ModelUnavailable, match="not a facenet InceptionResnetV1 state dict"):
        recognizer.load()


def test_unknown_model_name():
    with pytest.raises(ModelUnavailable, match="unknown FACEREC_EMBEDDING_MODEL"):
        create_recognizer(Settings(embedding_model="vgg"))


def test_service_serves_facenet(work_dir, weights_file):
    service = Service(
        "feature_extraction",
        env={"FACEREC_EMBEDDING_MODEL": "facenet", "FACEREC_FACENET_WEIGHTS": str(weights_file)},
        log_path=work_dir / "facenet-service.log",
    ).start()
    try:
        health = requests.get(service.url + "/health", timeout=10).json()
        assert health["model"] == "facenet" and health["crop_size"] == 160 and health["dim"] == 512
        crops = aligned_crops(PACKAGE_PHOTOS / "gdp.jpg", size=160)
        response = requests.post(
            service.url + "/extract_feature", data=to_npy(crops), headers={"Content-Type": NPY_MEDIA_TYPE}, timeout=60
        )
        assert response.status_code == 200 and response.headers["X-Embedding-Model"] == "facenet"
        assert from_npy(response.content, np.dtype(np.float32), 2).shape == (len(crops), 512)
    finally:
        service.stop()


@pytest.mark.parametrize("weights", ["missing-file", "offline-download"])
def test_service_refuses_to_start_without_weights(work_dir, weights):
    env = {"FACEREC_EMBEDDING_MODEL": "facenet", "TORCH_HOME": str(work_dir / "empty-torch-home")}
    if weights == "missing-file":
        env["FACEREC_FACENET_WEIGHTS"] = str(work_dir / "absent.pt")
    service = Service("feature_extraction", env=env, log_path=work_dir / f"facenet-{weights}.log").start(wait=False)
    try:
        service.process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        service.stop()
        pytest.fail("the service kept running without weights")
    assert service.process.returncode != 0
    lines = [line for line in service.log_tail(50).splitlines() if "cannot start" in line]
    assert len(lines) >= 1
    assert "FACEREC_FACENET_WEIGHTS" in lines[0]
