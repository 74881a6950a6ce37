"""The ONNX graphs as onnxruntime runs them on a GPU: uint8 BGR pixels in, in half precision if asked.

with_pixel_input: the model takes uint8 BGR pixels (N x H x W x 3) instead of its normalised RGB
NCHW floats. The cast, the normalisation and the layout change run as the graph's first nodes, on
the GPU: the upload is the pixels, a quarter of the floats' bytes, and the host no longer makes a
float copy of every image (3 ms of CPU for a 640x640 canvas). On the CPU it ran no faster than
OpenCV's blob and kept 40 MB more in feature_extraction's arena (its float copies of a 64-crop
batch), so CPU sessions take the blob (bench/RESULTS.md). The swap of blue and red costs nothing
where the model starts with a convolution: its weights' input channels are reversed instead;
elsewhere a Gather node swaps them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from facerec.errors import ModelUnavailable

if TYPE_CHECKING:
    import onnx

PIXELS = "pixels"


@dataclass(frozen=True)
class PixelScaling:
    """What a model takes: RGB, channels first, (pixel - mean) * scale."""

    mean: float
    scale: float


def with_pixel_input(model: onnx.ModelProto, scaling: PixelScaling) -> onnx.ModelProto:
    """A copy of model whose one image input is PIXELS: uint8 BGR, N x H x W x 3."""
    import onnx  # only where a graph is edited: a GPU's sessions (12 MB a process)
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    image_input = next(value for value in graph.input if value.name not in initializers)
    normalised = image_input.name
    graph.input.remove(image_input)
    graph.input.insert(0, helper.make_tensor_value_info(PIXELS, TensorProto.UINT8, ["N", "H", "W", 3]))
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(scaling.mean, np.float32), "pixels_mean"),
            numpy_helper.from_array(np.array(scaling.scale, np.float32), "pixels_scale"),
        ]
    )
    rgb_order = "pixels_rgb" if not _reverse_first_convolution(graph, normalised, initializers) else None
    nodes = [
        helper.make_node("Cast", [PIXELS], ["pixels_float"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["pixels_float", "pixels_mean"], ["pixels_centred"]),
        helper.make_node("Mul", ["pixels_centred", "pixels_scale"], ["pixels_scaled"]),
        helper.make_node("Transpose", ["pixels_scaled"], [rgb_order or normalised], perm=[0, 3, 1, 2]),
    ]
    if rgb_order:
        graph.initializer.append(numpy_helper.from_array(np.array([2, 1, 0], np.int64), "pixels_bgr_to_rgb"))
        nodes.append(helper.make_node("Gather", [rgb_order, "pixels_bgr_to_rgb"], [normalised], axis=1))
    for index, node in enumerate(nodes):
        graph.node.insert(index, node)
    return model


def _reverse_first_convolution(graph: onnx.GraphProto, name: str, initializers: dict) -> bool:
    """Reverse the input channels of the weights of the convolution that alone reads `name`, so that
    it takes BGR where it took RGB; False (nothing changed) where the graph does not start so."""
    from onnx import numpy_helper

    readers = [node for node in graph.node if name in node.input]
    if len(readers) != 1 or readers[0].op_type != "Conv" or readers[0].input[0] != name:
        return False
    weights_name = readers[0].input[1]
    weight_readers = [node for node in graph.node if weights_name in node.input]
    if weights_name not in initializers or len(weight_readers) != 1:
        return False
    weights = numpy_helper.to_array(initializers[weights_name])
    if weights.ndim != 4 or weights.shape[1] != 3:  # grouped or not an image convolution
        return False
    reversed_weights = np.ascontiguousarray(weights[:, ::-1])
    initializers[weights_name].CopyFrom(numpy_helper.from_array(reversed_weights, weights_name))
    return True


def in_half_precision(model: onnx.ModelProto) -> onnx.ModelProto:
    """Weights and activations in float16, the inputs and outputs as they were (onnxconverter-common,
    requirements_gpu.txt): the CUDA provider then runs tensor-core kernels."""
    try:
        from onnxconverter_common import float16
    except ImportError:
        message = "FACEREC_FP16 with onnxruntime needs onnxconverter-common (requirements_gpu.txt)"
        raise ModelUnavailable(message) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # one per weight below float16's range, clamped as it should be
        return float16.convert_float_to_float16(model, keep_io_types=True)
