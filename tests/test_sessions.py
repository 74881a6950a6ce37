"""Sessions: onnxruntime and onnx2torch give the same outputs; the device choice is explicit and loud."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from facerec.inference.sessions import OrtSession, TorchSession, create_onnx_session
from facerec.inference.weights import vectron_model_dir
from facerec.settings import Settings

MODELS = [("w600k_mbf.onnx", 1 / 127.5, (4, 112, 112, 3)), ("scrfd_500m_bnkps.onnx", 1 / 128, (2, 640, 640, 3))]


@pytest.mark.parametrize("name, scale, shape", MODELS, ids=[m[0] for m in MODELS])
def test_onnx2torch_matches_onnxruntime(name, scale, shape):
    onnx2torch = pytest.importorskip("onnx2torch")
    path = vectron_model_dir() / name
    images = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    torch_outputs = TorchSession(onnx2torch.convert(str(path)), "cpu", 2).run_images(images, 127.5, scale)
    ort_outputs = OrtSession(path, "cpu", 2).run_images(images, 127.5, scale)
    assert len(torch_outputs) == len(ort_outputs)
    for ours, theirs in zip(torch_outputs, ort_outputs, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_cpu_is_onnxruntime():
    session = create_onnx_session(vectron_model_dir() / "w600k_mbf.onnx", Settings(device="cpu"))
    assert isinstance(session, OrtSession) and session.provider == "cpu"


def test_cuda_without_a_gpu_fails_with_a_clear_message():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="FACEREC_DEVICE=cuda"):
        create_onnx_session(vectron_model_dir() / "w600k_mbf.onnx", Settings(device="cuda"))


def test_auto_without_a_gpu_warns(caplog):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with caplog.at_level(logging.WARNING):
        session = create_onnx_session(vectron_model_dir() / "w600k_mbf.onnx", Settings(device="auto"))
    assert session.provider == "cpu"
    assert "runs on the CPU" in caplog.text


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="auto, cpu or cuda"):
        create_onnx_session(vectron_model_dir() / "w600k_mbf.onnx", Settings(device="tpu"))


def test_detector_on_torch_finds_the_same_faces_as_on_onnxruntime():
    """The detector picks its candidate anchors where the model ran: with torch, in torch."""
    onnx2torch = pytest.importorskip("onnx2torch")
    import cv2

    from facerec.inference.detector import DETECTOR_FILE, FaceDetector

    photos = [cv2.imread(str(vectron_model_dir() / name)) for name in ("players.jpg", "yaoming.jpg", "gdp.jpg")]
    on_ort = FaceDetector(Settings(device="cpu")).detect_batch(photos)
    on_torch = FaceDetector(Settings(device="cpu"))
    on_torch._session = TorchSession(onnx2torch.convert(str(vectron_model_dir() / DETECTOR_FILE)), "cpu", 2)
    for ours, theirs in zip(on_torch.detect_batch(photos), on_ort, strict=True):
        assert len(ours) == len(theirs) > 0
        np.testing.assert_allclose([f.box for f in ours], [f.box for f in theirs], atol=0.05)
        np.testing.assert_allclose([f.landmarks for f in ours], [f.landmarks for f in theirs], atol=0.05)
