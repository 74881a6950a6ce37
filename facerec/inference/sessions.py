"""Execution sessions (onnxruntime, torch), kept apart from the models that use them.

A session says which device it really runs on; asking for CUDA where there is none fails,
and 'auto' falling back to the CPU is logged as a warning, never silent.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def _check_device(device: str) -> None:
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")


class OrtSession:
    """An onnxruntime InferenceSession on the requested device."""

    def __init__(self, model_path: Path, device: str, threads: int):
        import onnxruntime as ort

        _check_device(device)
        available = ort.get_available_providers()
        if device == "cuda" and CUDA not in available:
            raise RuntimeError(
                f"FACEREC_DEVICE=cuda but onnxruntime offers only {available}: install onnxruntime-gpu "
                "(requirements_gpu.txt) and the CUDA libraries"
            )
        providers = [CUDA, CPU] if device != "cpu" and CUDA in available else [CPU]
        if device == "auto" and CUDA not in available:
            log.warning("no CUDA provider in onnxruntime; %s runs on the CPU", model_path.name)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # batch sizes other than the graph's nominal 1 warn on every run
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(model_path), options, providers=providers)
        if device == "cuda" and self.session.get_providers()[0] != CUDA:
            raise RuntimeError(f"CUDA provider failed to initialise for {model_path.name}")
        self.input_name = self.session.get_inputs()[0].name
        log.info("%s runs on %s", model_path.name, self.provider)

    @property
    def provider(self) -> str:
        return "cuda" if self.session.get_providers()[0] == CUDA else "cpu"

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]


class TorchSession:
    """A torch module in eval mode on the requested device."""

    def __init__(self, module, device: str, threads: int):
        import torch

        _check_device(device)
        has_cuda = torch.cuda.is_available()
        if device == "cuda" and not has_cuda:
            raise RuntimeError("FACEREC_DEVICE=cuda but torch sees no CUDA device")
        if device == "auto" and not has_cuda:
            log.warning("torch sees no CUDA device; %s runs on the CPU", type(module).__name__)
        self.device = torch.device("cuda" if has_cuda and device != "cpu" else "cpu")
        if self.device.type == "cpu":
            torch.set_num_threads(threads)
        self.module = module.eval().to(self.device)
        self._torch = torch

    @property
    def provider(self) -> str:
        return self.device.type

    def run(self, batch: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            output = self.module(self._torch.from_numpy(batch).to(self.device))
        return output.float().cpu().numpy()
