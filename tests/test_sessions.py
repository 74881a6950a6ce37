"""Sessions: onnxruntime and onnx2torch give the same outputs; the device choice is explicit and loud."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from facerec.cores import usable_cores
from facerec.inference.detector import DETECTOR_FILE, FaceDetector, _candidates, _letterbox_into
from facerec.inference.recognizers import ArcFaceMBF
from facerec.inference.sessions import SMALL_BATCH, CpuThreads, OrtSession, TorchSession, create_onnx_session
from facerec.inference.weights import vectron_model_dir
from facerec.settings import Settings
from tests.photos import read

ARCFACE = ArcFaceMBF.scaling
MODELS = [("w600k_mbf.onnx", ARCFACE, (4, 112, 112, 3)), (DETECTOR_FILE, FaceDetector.scaling, (2, 640, 640, 3))]


@pytest.mark.parametrize("name, scaling, shape", MODELS, ids=[m[0] for m in MODELS])
def test_onnx2torch_matches_onnxruntime(name, scaling, shape):
    onnx2torch = pytest.importorskip("onnx2torch")
    path = vectron_model_dir() / name
    images = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    torch_outputs = TorchSession(onnx2torch.convert(str(path)), "cpu", 2, scaling).run_images(images)
    ort_outputs = OrtSession(path, "cpu", CpuThreads.fixed(2), scaling).run_images(images)
    assert len(torch_outputs) == len(ort_outputs)
    for ours, theirs in zip(torch_outputs, ort_outputs, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_io_binding_picks_what_numpy_picks():
    """On a GPU a select runs by torch on outputs bound where the model ran; forced on the CPU here,
    it picks the same anchors, scores and distances as NumPy does from outputs copied out."""
    path, scaling, threshold = vectron_model_dir() / DETECTOR_FILE, FaceDetector.scaling, 0.5
    batch = np.zeros((2, 640, 640, 3), dtype=np.uint8)
    for canvas, photo in zip(batch, ("players.jpg", "yaoming.jpg"), strict=True):
        _letterbox_into(canvas, read(vectron_model_dir() / photo))
    select = lambda outputs, xp: _candidates(outputs, threshold, xp)  # noqa: E731
    copied = OrtSession(path, "cpu", CpuThreads.fixed(1), scaling).run_images(batch, select=select)
    bound = OrtSession(path, "cpu", CpuThreads.fixed(1), scaling, io_binding=True).run_images(batch, select=select)
    images_picked = np.concatenate(copied[0::5])  # per level: image and anchor indices, scores, boxes, landmarks
    assert set(images_picked) == {0, 1} and len(images_picked) > 40  # both photos' faces, not an empty pick
    assert len(bound) == len(copied)
    for ours, theirs in zip(bound, copied, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_cpu_is_onnxruntime():
    session = create_onnx_session(vectron_model_dir() / "w600k_mbf.onnx", Settings(device="cpu"), ARCFACE)
    assert isinstance(session, OrtSession) and session.provider == "cpu" and session.runtime == "onnxruntime"


def test_cuda_without_a_gpu_fails_with_a_clear_message():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="FACEREC_DEVICE=cuda"):
        create_onnx_session(vectron_model_dir() / "w600k_mbf.onnx", Settings(device="cuda"), ARCFACE)


def test_auto_without_a_gpu_warns(caplog):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with caplog.at_level(logging.WARNING):
        session = create_onnx_session(vectron_model_dir() / "w600k_mbf.onnx", Settings(device="auto"), ARCFACE)
    assert session.provider == "cpu"
    assert "runs on the CPU" in caplog.text


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="auto, cpu or cuda"):
        create_onnx_session(vectron_model_dir() / "w600k_mbf.onnx", Settings(device="tpu"), ARCFACE)


def test_detector_on_torch_finds_the_same_faces_as_on_onnxruntime():
    """The detector picks its candidate anchors where the model ran: with torch, in torch."""
    onnx2torch = pytest.importorskip("onnx2torch")
    import cv2

    photos = [cv2.imread(str(vectron_model_dir() / name)) for name in ("players.jpg", "yaoming.jpg", "gdp.jpg")]
    on_ort = FaceDetector(Settings(device="cpu")).detect_batch(photos)
    on_torch = FaceDetector(Settings(device="cpu"))
    on_torch._session = TorchSession(
        onnx2torch.convert(str(vectron_model_dir() / DETECTOR_FILE)), "cpu", 2, FaceDetector.scaling
    )
    assert on_torch.runtime == "torch"
    for ours, theirs in zip(on_torch.detect_batch(photos), on_ort, strict=True):
        assert len(ours) == len(theirs) > 0
        np.testing.assert_allclose([f.box for f in ours], [f.box for f in theirs], atol=0.05)
        np.testing.assert_allclose([f.landmarks for f in ours], [f.landmarks for f in theirs], atol=0.05)


def test_a_call_takes_the_threads_that_the_free_cores_allow(monkeypatch):
    from facerec.inference import sessions

    two_cores_two_workers = CpuThreads((1, 1, 2), share=1, cores=2)
    big_machine = CpuThreads((1, 8, 16), share=8, cores=16)
    for others, small, big in [(0, 2, 16), (1, 1, 8), (4, 1, 8), (8, 1, 8), (9, 1, 1), (40, 1, 1)]:
        monkeypatch.setattr(sessions, "_other_runnable_tasks", lambda others=others: others)
        assert (two_cores_two_workers.for_this_call(), big_machine.for_this_call()) == (small, big), others
    monkeypatch.setattr(sessions, "_other_runnable_tasks", lambda: None)
    assert big_machine.for_this_call() == 8  # unknown: the worker's share
    assert CpuThreads.fixed(3).for_this_call() == 3
    assert CpuThreads.for_settings(Settings(threads=3)).counts == (3,)


def test_busy_processes_are_counted_as_runnable_tasks():
    import subprocess
    import sys
    import time

    from facerec.inference.sessions import _other_runnable_tasks

    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
    try:
        time.sleep(0.5)
        assert max(_other_runnable_tasks() for _ in range(20)) >= 2
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


OPENCV_POOL_AFTER_A_RESIZE = """
import os, threading, time
import face_detection.app  # as gunicorn loads a service: the package first, then cv2
import cv2, numpy as np

image, me, caller = np.zeros((2000, 2000, 3), np.uint8), os.getpid(), threading.get_native_id()

def others_runnable():
    count = 0
    for task in os.listdir(f"/proc/{me}/task"):
        if int(task) != caller:
            with open(f"/proc/{me}/task/{task}/stat") as stat:
                text = stat.read()
            count += text[text.rindex(")") + 2] == "R"
    return count

seen = 0
for _ in range(50):
    cv2.resize(image, (1000, 1000))
    time.sleep(0.0002)  # a worker that sleeps has gone to sleep by then; one that spins (~2 ms) has not
    seen += others_runnable()
print(seen)
"""


@pytest.mark.parametrize("active_wait", [None, "2000"])
def test_opencv_pool_threads_sleep_after_a_parallel_call(active_wait):
    """OpenCV's workers, spinning after each resize, were runnable threads to CpuThreads (its default
    of 2,000 turns is kept here to show what the check sees)."""
    import os
    import subprocess

    if usable_cores() < 2:
        pytest.skip("one core: OpenCV runs no pool")
    env = {key: value for key, value in os.environ.items() if key != "OPENCV_THREAD_POOL_ACTIVE_WAIT_WORKER"}
    if active_wait:
        env["OPENCV_THREAD_POOL_ACTIVE_WAIT_WORKER"] = active_wait
    run = subprocess.run([sys.executable, "-c", OPENCV_POOL_AFTER_A_RESIZE], env=env, capture_output=True, text=True)
    seen_runnable = int(run.stdout.split()[-1])
    if active_wait:
        assert seen_runnable >= 25, "the check no longer sees a spinning pool"
    else:  # on a busy machine a worker may wait for a core after its share (up to 14 of 50 seen); a spinning one: 49-50
        assert seen_runnable <= 30


class RunCounter:
    def __init__(self, session):
        self.session, self.runs = session, 0

    def run(self, *args):
        self.runs += 1
        return self.session.run(*args)

    def __getattr__(self, name):
        return getattr(self.session, name)


def test_warm_up_runs_every_thread_count_and_a_call_one(monkeypatch):
    from facerec.inference import sessions

    session = OrtSession(vectron_model_dir() / "w600k_mbf.onnx", "cpu", CpuThreads((1, 2), share=1, cores=2), ARCFACE)
    session._sessions = {count: RunCounter(one) for count, one in session._sessions.items()}
    images = np.random.default_rng(0).integers(0, 255, (2, 112, 112, 3), dtype=np.uint8)
    with session.warming_up():
        session.run_images(images)
    assert {count: counter.runs for count, counter in session._sessions.items()} == {1: 1, 2: 1}
    outputs = {}
    for others, count in [(0, 2), (3, 1)]:
        monkeypatch.setattr(sessions, "_other_runnable_tasks", lambda others=others: others)
        outputs[count] = session.run_images(images)[0]
        assert session._sessions[count].runs == 2
    np.testing.assert_allclose(outputs[1], outputs[2], atol=1e-5)
    big = np.repeat(images, SMALL_BATCH, axis=0)  # past SMALL_BATCH: the widest, whose arena took the warm-up's
    session.run_images(big)
    assert {count: counter.runs for count, counter in session._sessions.items()} == {1: 2, 2: 3}


def test_a_session_with_one_thread_count_warms_up_and_runs_on_it():
    """On a GPU there is one session whatever the thread counts: warm-up and calls both use it."""
    session = OrtSession(vectron_model_dir() / "w600k_mbf.onnx", "cpu", CpuThreads((1, 2), share=1, cores=2), ARCFACE)
    del session._sessions[1]  # the layout on a GPU: only the widest
    session._sessions = {2: RunCounter(session._sessions[2])}
    images = np.zeros((2, 112, 112, 3), dtype=np.uint8)
    with session.warming_up():
        session.run_images(images)
    session.run_images(images)
    assert session._sessions[2].runs == 2


def test_onnxruntime_gets_the_cuda_libraries_before_a_cuda_session(monkeypatch):
    """onnxruntime-gpu finds pip-installed CUDA and cuDNN once torch has loaded them and preload_dlls() has run."""
    import onnxruntime

    from facerec.inference import sessions

    preloads = []
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [sessions.CUDA, sessions.CPU])
    monkeypatch.setattr(onnxruntime, "preload_dlls", lambda: preloads.append(1), raising=False)
    assert sessions._onnxruntime_providers("cpu", "w600k_mbf.onnx") == [sessions.CPU]
    assert preloads == []
    assert sessions._onnxruntime_providers("auto", "w600k_mbf.onnx") == [sessions.CUDA, sessions.CPU]
    assert preloads == [1] and "torch" in sys.modules
