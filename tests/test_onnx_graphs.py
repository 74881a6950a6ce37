"""The graphs as onnxruntime runs them: from uint8 BGR pixels the same outputs as insightface's float
blob fed to the original graph; in half precision, the same embeddings to a cosine of 0.9999."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from facerec.inference.detector import DETECTOR_FILE, FaceDetector
from facerec.inference.onnx_graphs import PIXELS, PixelScaling, in_half_precision, with_pixel_input
from facerec.inference.recognizers import ArcFaceMBF
from facerec.inference.sessions import CpuThreads, OrtSession
from facerec.inference.weights import vectron_model_dir
from tests.photos import aligned_crops

MODELS = [
    ("w600k_mbf.onnx", ArcFaceMBF.scaling, (3, 112, 112, 3)),
    (DETECTOR_FILE, FaceDetector.scaling, (2, 640, 640, 3)),
]


def cpu_session(model: onnx.ModelProto | str) -> ort.InferenceSession:
    source = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


def blob(images: np.ndarray, scaling: PixelScaling) -> np.ndarray:
    """insightface's input: cv2.dnn.blobFromImages, RGB, (pixel - mean) * scale."""
    size = images.shape[2], images.shape[1]
    mean = (scaling.mean,) * 3
    return cv2.dnn.blobFromImages(list(images), scaling.scale, size, mean, swapRB=True)


@pytest.mark.parametrize("name, scaling, shape", MODELS, ids=[m[0] for m in MODELS])
def test_the_models_give_the_same_outputs_from_pixels(name, scaling, shape):
    path = vectron_model_dir() / name
    images = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    original = cpu_session(str(path))
    expected = original.run(None, {original.get_inputs()[0].name: blob(images, scaling)})
    model = with_pixel_input(onnx.load(str(path)), scaling)
    assert "Gather" not in {node.op_type for node in model.graph.node[:5]}  # the swap went into the weights
    outputs = cpu_session(model).run(None, {PIXELS: images})
    for ours, theirs in zip(outputs, expected, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-4)


def tiny_model(first_op: str) -> onnx.ModelProto:
    """x (N x 3 x 4 x 4, normalised RGB) through a 3x3 convolution, or first through a Relu."""
    weights = np.random.default_rng(2).normal(size=(2, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["conv_in", "w"], ["y"], pads=[1, 1, 1, 1])]
    if first_op == "Relu":
        nodes.insert(0, helper.make_node("Relu", ["x"], ["conv_in"]))
    else:
        nodes[0].input[0] = "x"
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weights, "w")],
    )
    # IR 10: what onnx writes by default (14 with onnx 1.23), onnxruntime-gpu 1.31 refuses
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=10)


@pytest.mark.parametrize("first_op, swap", [("Conv", "weights"), ("Relu", "Gather")])
def test_blue_and_red_swap_in_the_weights_or_else_in_a_node(first_op, swap):
    scaling = PixelScaling(mean=100.0, scale=0.02)
    images = np.random.default_rng(3).integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    model = tiny_model(first_op)
    expected = cpu_session(model).run(None, {"x": blob(images, scaling)})[0]
    with_pixels = with_pixel_input(model, scaling)
    assert ("Gather" in {node.op_type for node in with_pixels.graph.node}) == (swap == "Gather")
    np.testing.assert_allclose(cpu_session(with_pixels).run(None, {PIXELS: images})[0], expected, atol=1e-5)
    assert model.graph.input[0].name == "x"  # the model passed in is left as it was


def test_half_precision_embeddings_agree_with_single_precision():
    """Checked on the CPU, which runs the float16 graph too: on a GPU it is what FACEREC_FP16 runs."""
    path = vectron_model_dir() / "w600k_mbf.onnx"
    crops = aligned_crops(vectron_model_dir() / "players.jpg")  # ~20 real faces
    single = cpu_session(with_pixel_input(onnx.load(str(path)), ArcFaceMBF.scaling)).run(None, {PIXELS: crops})[0]
    half_model = with_pixel_input(in_half_precision(onnx.load(str(path))), ArcFaceMBF.scaling)
    assert TensorProto.FLOAT16 in {tensor.data_type for tensor in half_model.graph.initializer}
    half = cpu_session(half_model).run(None, {PIXELS: crops})[0]
    assert half.dtype == np.float32  # the outputs keep their type
    cosine = np.sum(single * half, axis=1) / np.linalg.norm(single, axis=1) / np.linalg.norm(half, axis=1)
    assert cosine.min() > 0.9999


def test_a_session_runs_the_pixel_graph_as_it_runs_the_original():
    """On a GPU the session feeds its graph the pixels; here, forced on the CPU, the same outputs."""
    path = vectron_model_dir() / DETECTOR_FILE
    images = np.random.default_rng(4).integers(0, 256, (2, 320, 320, 3), dtype=np.uint8)
    scaling = FaceDetector.scaling
    blob_fed = OrtSession(path, "cpu", CpuThreads.fixed(1), scaling).run_images(images)
    pixels_fed = OrtSession(path, "cpu", CpuThreads.fixed(1), scaling, pixels_in_graph=True).run_images(images)
    for ours, theirs in zip(pixels_fed, blob_fed, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_half_precision_is_for_gpus_only():
    path = vectron_model_dir() / "w600k_mbf.onnx"
    session = OrtSession(path, "cpu", CpuThreads.fixed(1), ArcFaceMBF.scaling, fp16=True)
    assert session.provider == "cpu" and not session.fp16


def test_half_precision_without_its_converter_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxconverter_common", None)
    with pytest.raises(RuntimeError, match="onnxconverter-common"):
        in_half_precision(onnx.load(str(vectron_model_dir() / "w600k_mbf.onnx")))
