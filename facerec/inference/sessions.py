"""Execution sessions (onnxruntime, torch), kept apart from the models that use them.

Every session's run_images() takes uint8 BGR images (N x H x W x 3) and returns the model's outputs
as NumPy arrays. The normalised RGB NCHW input is made where the model runs (on a GPU: onnxruntime
by nodes added in front of its graph, torch on its device), so that only bytes travel to a GPU; a
model that needs only part of its outputs passes select(outputs, xp), run where the outputs are
(xp: numpy or torch), so that only that part leaves the device.
A session says which device it really runs on; asking for CUDA where there is none fails,
and 'auto' falling back to the CPU is logged as a warning, never silent.
On the CPU, an onnxruntime session picks each call's intra-op thread count (CpuThreads).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facerec import metrics
from facerec.cores import usable_cores
from facerec.errors import ModelUnavailable
from facerec.inference.onnx_graphs import PixelScaling, in_half_precision, with_pixel_input

log = logging.getLogger(__name__)

# select(outputs, xp) -> the arrays to return, computed with xp (numpy or torch) where the outputs are
Select = Callable[[list[Any], Any], list[Any]]

# Calls of more images than this always run on the widest session: each session holds an arena of
# its own, and one of the recogniser's 64-crop batches takes ~125 MB. One thread saves the most
# CPU on small calls (one crop: 19 against 25 ms).
SMALL_BATCH = 8

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


class CpuThreads:
    """The intra-op thread counts a model may run with on the CPU, and which one a call gets.

    Threads speed one call up but cost CPU: one crop through the recogniser took 19 ms of CPU on
    one thread and 25 on two (15 ms instead of 19 of waiting), a detection 26 and 30 (18 ms
    instead of 26). So a call takes the most threads that the cores free right now allow:
    all of them when nothing else is runnable (one request at a time: the latency of the whole
    machine), the worker's share (cores / workers) when that many are free, else one, where the
    requests' own concurrency keeps the cores busy (bench/RESULTS.md, CPU). "Free" counts the
    runnable tasks of the whole machine, other processes included (/proc/loadavg); where that is
    unknown, the share. FACEREC_THREADS fixes one count.
    """

    def __init__(self, counts: tuple[int, ...], share: int | None = None, cores: int | None = None):
        self.counts = tuple(sorted(set(counts)))
        self.share = share or self.counts[-1]
        self.cores = cores or usable_cores()

    @classmethod
    def fixed(cls, count: int) -> CpuThreads:
        return cls((count,))

    @classmethod
    def for_settings(cls, settings) -> CpuThreads:
        if settings.threads > 0:
            return cls.fixed(settings.threads)
        share, cores = settings.intra_op_threads(), usable_cores()
        return cls((1, share, cores), share, cores)

    def for_this_call(self) -> int:
        if len(self.counts) == 1:
            return self.counts[0]
        # The thread that handed this call its work (gunicorn's poller to a request thread, a request
        # thread to feature_extraction's batcher) is often still queued on this core, preempted by
        # the thread it woke, and would count as busy: at one request at a time, 6 to 67% of the
        # recogniser's calls took one thread for it. Yielding lets it reach its wait first.
        os.sched_yield()
        others = _other_runnable_tasks()
        if others is None:
            return self.share
        free = self.cores - others
        return max((count for count in self.counts if count <= free), default=1)


def _other_runnable_tasks() -> int | None:
    """Tasks (threads) of the whole machine running or ready to run, the caller not counted."""
    try:
        with open("/proc/loadavg") as loadavg:
            return int(loadavg.read().split()[3].split("/")[0]) - 1
    except (OSError, ValueError, IndexError):
        return None


def _onnxruntime_providers(device: str, model_name: str) -> list[str]:
    """CUDA then the CPU where onnxruntime has CUDA and it is not refused; a missing CUDA fails
    where it was asked for and is a warning under 'auto'."""
    import onnxruntime as ort

    _check_device(device)
    available = ort.get_available_providers()
    if device == "cuda" and CUDA not in available:
        raise ModelUnavailable(
            f"FACEREC_DEVICE=cuda but onnxruntime offers only {available}: install onnxruntime-gpu "
            "(requirements_gpu.txt) and the CUDA libraries"
        )
    if device == "cpu" or CUDA not in available:
        if device == "auto":
            log.warning("no CUDA provider in onnxruntime; %s runs on the CPU", model_name)
        return [CPU]
    _load_cuda_libraries(ort)
    return [CUDA, CPU]


def _load_cuda_libraries(ort) -> None:
    """onnxruntime-gpu loads CUDA and cuDNN when its first CUDA session starts, from the library path
    only; where they came as pip wheels (nvidia-*, torch's dependencies) it finds them once torch has
    loaded them or preload_dlls() has (onnxruntime's "Compatibility with PyTorch")."""
    if importlib.util.find_spec("torch") is not None:
        import torch  # noqa: F401  (its CUDA libraries, loaded first, are the ones both then use)
    if hasattr(ort, "preload_dlls"):
        ort.preload_dlls()


def _check_device(device: str) -> None:
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")


class OrtSession:
    """An onnxruntime InferenceSession on the requested device.

    On the CPU its runs take memory from onnxruntime's arena, which keeps it for reuse: the callers
    run one call at a time (the detector behind a lock, the recogniser from feature_extraction's one
    batcher thread) and warm up at their largest call, so the arena takes its size at start; with
    concurrent calls it kept the peak of their busiest overlap, rising in steps over a soak
    (bench/RESULTS.md).
    On a GPU the graph takes the pixels and normalises them there (onnx_graphs.with_pixel_input),
    so that only bytes travel; on the CPU OpenCV makes the float blob the graph takes: as fast, and
    the blob, being the graph's input, takes nothing from the arena, where the graph's own float
    copies kept 40 MB more in feature_extraction (bench/RESULTS.md).
    A call with a select binds the outputs where the model runs (IO binding) on a GPU where torch is
    installed, and runs the select there on torch's view of them (DLPack, no copy), so that, as on
    the torch route, only what it picks leaves the GPU: the detector's candidate anchors, not the
    ~1 MB of anchors a 640x640 image has.
    """

    runtime = "onnxruntime"

    def __init__(
        self,
        model_path: Path,
        device: str,
        threads: CpuThreads,
        scaling: PixelScaling,
        name: str = "",
        fp16: bool = False,
        pixels_in_graph: bool | None = None,
        io_binding: bool | None = None,
    ):
        self._providers = _onnxruntime_providers(device, model_path.name)
        on_cuda = CUDA in self._providers
        self.scaling, self.threads = scaling, threads
        self.fp16 = fp16 and on_cuda  # as torch sessions: half precision on a GPU only
        self._pixels_in_graph = on_cuda if pixels_in_graph is None else pixels_in_graph
        graph = self._graph(model_path)
        widest = self._create(graph, threads.counts[-1])
        if on_cuda and widest.get_providers()[0] != CUDA:
            if device == "cuda":
                raise ModelUnavailable(
                    f"FACEREC_DEVICE=cuda but onnxruntime's CUDA provider failed to initialise for {model_path.name} "
                    "(onnxruntime's error, logged above, names the CUDA or cuDNN library it could not load)"
                )
            log.warning("onnxruntime's CUDA provider failed to initialise; %s runs on the CPU", model_path.name)
            self._providers, self.fp16, self._pixels_in_graph = [CPU], False, bool(pixels_in_graph)
            graph = self._graph(model_path)
            widest = self._create(graph, threads.counts[-1])
        self._device = "cuda" if widest.get_providers()[0] == CUDA else "cpu"  # where it runs, outputs too
        # One session per thread count (onnxruntime fixes a session's pool); on a GPU one is enough.
        self._sessions = {threads.counts[-1]: widest}
        if self._device == "cpu":
            self._sessions.update({count: self._create(graph, count) for count in threads.counts[:-1]})
        self._input_name = widest.get_inputs()[0].name
        self._output_names = [output.name for output in widest.get_outputs()]
        self._bound_torch = self._torch_for_binding(io_binding)
        self._warming_up = False
        runs, label = metrics.MODEL_CPU_THREADS, name or model_path.stem
        on_cpu = self.provider == "cpu"
        self._runs_by_threads = {n: runs.labels(label, str(n)) for n in self._sessions} if on_cpu else {}
        counts = "/".join(map(str, sorted(self._sessions)))
        log.info("%s runs on %s (intra-op threads: %s)", model_path.name, self.provider, counts)

    def _torch_for_binding(self, io_binding: bool | None) -> Any:
        """torch, where selects run on outputs bound where the model runs; None where they run on
        NumPy copies (the CPU, or a GPU without torch, as the default; io_binding forces it)."""
        if io_binding is False or (io_binding is None and self._device != "cuda"):
            return None
        if importlib.util.find_spec("torch") is None:
            if io_binding:
                raise RuntimeError("io_binding needs torch, which is not installed")
            log.info("torch is not installed: outputs come back from the GPU whole, to be picked on the CPU")
            return None
        import torch

        return torch

    def _graph(self, model_path: Path) -> str | bytes:
        """The model file as it is, or its graph taking pixels, in float16 if asked: read and edited
        once for all thread counts' sessions, and not kept once they are made."""
        if not self._pixels_in_graph:
            return str(model_path)
        import onnx

        model = onnx.load(str(model_path))
        return with_pixel_input(in_half_precision(model) if self.fp16 else model, self.scaling).SerializeToString()

    def _create(self, graph: str | bytes, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # batch sizes other than the graph's nominal 1 warn on every run
        # Several processes share the cores (gunicorn workers of both services): idle pool threads
        # that spin waiting for work would take CPU from the others.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.enable_cpu_mem_arena = True
        # onnxruntime plans one block per input shape, made on the first run of that shape; with
        # the arena, first runs of new batch sizes grew it in steps. Without the plans every run
        # allocates alike, within what the warm-up at the largest batch took.
        options.enable_mem_pattern = False
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(graph, options, providers=self._providers)

    @property
    def _widest(self):
        return self._sessions[self.threads.counts[-1]]

    @property
    def provider(self) -> str:
        return self._device + ("-fp16" if self.fp16 else "")

    @contextmanager
    def warming_up(self) -> Iterator[None]:
        """Runs inside go through every thread count's session, so that each takes its memory now."""
        self._warming_up = True
        try:
            yield
        finally:
            self._warming_up = False

    def run_images(self, images: np.ndarray, select: Select | None = None) -> list[np.ndarray]:
        feed = self._feed(images)
        if self._warming_up:
            for narrower in (session for session in self._sessions.values() if session is not self._widest):
                narrower.run(None, {self._input_name: feed[:SMALL_BATCH]})
        session = self._widest if self._warming_up else self._session_for(len(feed))
        if select and self._bound_torch is not None:
            return self._run_bound(session, feed, select)
        outputs = session.run(None, {self._input_name: feed})
        return select(outputs, np) if select else outputs

    def _run_bound(self, session, feed: np.ndarray, select: Select) -> list[np.ndarray]:
        """The outputs left where the model ran, select run there by torch, only its picks copied."""
        torch = self._bound_torch
        binding = session.io_binding()
        binding.bind_cpu_input(self._input_name, feed)
        for name in self._output_names:
            binding.bind_output(name, self._device)
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()  # done on onnxruntime's CUDA stream before torch's reads them
        with torch.inference_mode():
            return _host_arrays(select([torch.from_dlpack(value) for value in binding.get_outputs()], torch))

    def _feed(self, images: np.ndarray) -> np.ndarray:
        """What the graph takes: the pixels themselves, or OpenCV's normalised RGB NCHW blob of them."""
        if self._pixels_in_graph:
            return np.ascontiguousarray(images)
        size, mean = (images.shape[2], images.shape[1]), self.scaling.mean
        return cv2.dnn.blobFromImages(list(images), self.scaling.scale, size, (mean, mean, mean), swapRB=True)

    def _session_for(self, batch: int):
        if len(self._sessions) == 1 or batch > SMALL_BATCH:
            count = self.threads.counts[-1]
        else:
            count = self.threads.for_this_call()
        if count in self._runs_by_threads:
            self._runs_by_threads[count].inc()
        return self._sessions[count]


class TorchSession:
    """A torch module in eval mode on the requested device."""

    runtime = "torch"

    def __init__(self, module, device: str, threads: int, scaling: PixelScaling, fp16: bool = False):
        import torch

        _check_device(device)
        has_cuda = torch.cuda.is_available()
        if device == "cuda" and not has_cuda:
            raise ModelUnavailable("FACEREC_DEVICE=cuda but torch sees no CUDA device")
        if device == "auto" and not has_cuda:
            log.warning("torch sees no CUDA device; %s runs on the CPU", type(module).__name__)
        self.device = torch.device("cuda" if has_cuda and device != "cpu" else "cpu")
        if self.device.type == "cpu":
            torch.set_num_threads(threads)
        # No cudnn.benchmark: its autotuning cache is per thread and per shape, and under gthread
        # workers and micro-batches of every size it stalled requests for seconds (seen on an H200).
        self.dtype = torch.float16 if fp16 and self.device.type == "cuda" else torch.float32
        self.module = module.eval().to(self.device, self.dtype)
        self.scaling = scaling
        self._torch = torch

    @property
    def provider(self) -> str:
        return self.device.type + ("-fp16" if self.dtype != self._torch.float32 else "")

    def warming_up(self):
        """One module, one thread count: a warm-up run is an ordinary run."""
        return nullcontext()

    def run_images(self, images: np.ndarray, select: Select | None = None) -> list[np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            pixels = torch.from_numpy(np.ascontiguousarray(images)).to(self.device)
            rgb = pixels.flip(-1).permute(0, 3, 1, 2).to(self.dtype)
            outputs = self.module((rgb - self.scaling.mean) * self.scaling.scale)
            outputs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
            return _host_arrays(select(outputs, torch) if select else outputs)


def _host_arrays(tensors: list) -> list[np.ndarray]:
    """torch tensors (on any device, in any precision) as NumPy arrays, floats in float32."""
    return [(tensor.float() if tensor.is_floating_point() else tensor).cpu().numpy() for tensor in tensors]


def _torch_cuda_available(device: str) -> bool:
    """Whether onnx2torch can run ONNX models on CUDA. torch (hundreds of MB per process) is imported
    only where onnx2torch is installed and, unless CUDA was asked for, an NVIDIA driver is present."""
    if importlib.util.find_spec("onnx2torch") is None:
        return False
    if device == "auto" and not Path("/dev/nvidiactl").exists():
        return False
    import torch

    return torch.cuda.is_available()


def create_onnx_session(model_path: Path, settings, scaling: PixelScaling, name: str = ""):
    """onnxruntime's CUDA provider, else onnx2torch on torch CUDA, else onnxruntime on the CPU."""
    import onnxruntime as ort

    _check_device(settings.device)
    if settings.device != "cpu" and CUDA not in ort.get_available_providers():
        if _torch_cuda_available(settings.device):
            from onnx2torch import convert

            log.info("onnxruntime has no CUDA provider: %s runs on torch CUDA through onnx2torch", model_path.name)
            module = convert(str(model_path))
            return TorchSession(module, "cuda", settings.intra_op_threads(), scaling, fp16=settings.fp16)
        if settings.device == "cuda":
            raise ModelUnavailable(
                f"FACEREC_DEVICE=cuda but neither onnxruntime ({ort.get_available_providers()}) nor torch with "
                "onnx2torch can use CUDA here: install requirements_gpu.txt on a machine with an NVIDIA GPU"
            )
    threads = CpuThreads.for_settings(settings)
    return OrtSession(model_path, settings.device, threads, scaling, name, fp16=settings.fp16)
