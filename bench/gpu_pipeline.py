"""GPU benchmark: the models and the in-process pipeline on CUDA, with the numbers the issue asks for.

    python bench/gpu_pipeline.py [--seconds 5] [--json out.json]

Measures, on whatever device the sessions pick (it says which):
  - feature_extraction's model: embeddings/s at batch 1, 64, 256 and 1024, fp32 and fp16, and the
    cosine between fp16, fp32 and onnxruntime on the CPU for real aligned crops;
  - the detector alone: images/s at batch 1, 16 and 64 (640x640);
  - the pipeline in-process (detection + alignment + embedding) on one-face photos, batched,
    with CPU threads preparing and decoding while the GPU runs: images/s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facerec.images import decode_image
from facerec.inference.alignment import align_faces
from facerec.inference.detector import FaceDetector, _candidates, _decode, _letterbox_into
from facerec.inference.recognizers import ArcFaceMBF
from facerec.inference.weights import vectron_model_dir
from facerec.settings import Settings


def package_photo(name: str) -> np.ndarray:
    """Decoded as the services decode it (and with OpenCV set up as they have it: facerec came first)."""
    return decode_image((vectron_model_dir() / name).read_bytes(), Settings().max_image_pixels)


def rate(call, items: int, seconds: float) -> float:
    call()
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        call()
        done += items
    return done / (time.perf_counter() - began)


def real_crops(detector: FaceDetector, count: int) -> np.ndarray:
    image = package_photo("players.jpg")
    faces = detector.predict(image)
    crops = align_faces(image, [f.landmarks for f in faces], 112)
    return np.resize(crops, (count, 112, 112, 3))


def recogniser_numbers(detector: FaceDetector, args: argparse.Namespace, precisions: list[bool]) -> dict:
    reference = ArcFaceMBF(Settings(device="cpu"))
    crops = real_crops(detector, max(args.batches))
    expected = reference.embed(crops[:64])
    results: dict = {}
    for fp16 in precisions:
        model = ArcFaceMBF(Settings(device=args.device, fp16=fp16))
        model.load()
        label = f"{model.runtime} {model.provider}"
        agreement = float(np.min(np.sum(model.embed(crops[:64]) * expected, axis=1)))
        results[label] = {
            "min_cosine_vs_onnxruntime_cpu": agreement,
            "faces_per_s": {b: rate(lambda b=b, m=model: m.embed(crops[:b]), b, args.seconds) for b in args.batches},
        }
    return results


def detector_numbers(detector: FaceDetector, seconds: float) -> dict:
    image = package_photo("yaoming.jpg")
    sizes = sorted({1, max(1, detector.batch_size // 4), detector.batch_size})
    return {b: rate(lambda b=b: detector.detect_batch([image] * b), b, seconds) for b in sizes}


def detector_stages(detector: FaceDetector, seconds: float) -> dict:
    """Milliseconds per image of each step of one batched detector call, on one thread: where the time goes."""
    image = package_photo("yaoming.jpg")
    size, count, threshold = detector.settings.det_size, detector.batch_size, detector.settings.det_threshold
    batch = np.zeros((count, size, size, 3), dtype=np.uint8)
    placed = np.zeros((count, 2))
    session = detector._session

    def letterbox() -> None:
        for index in range(count):
            placed[index] = _letterbox_into(batch[index], image)

    letterbox()
    select = lambda outputs, xp: _candidates(outputs, threshold, xp)  # noqa: E731
    candidates = session.run_images(batch, select=select)
    steps = {
        "letterbox": letterbox,
        "model, candidates picked on the device": lambda: session.run_images(batch, select=select),
        "model, every anchor copied back": lambda: session.run_images(batch),
        "decode and NMS": lambda: _decode(candidates, size, placed, [image.shape[:2]] * count, threshold),
        "detect_batch, all of it": lambda: detector.detect_batch([image] * count),
    }
    return {name: round(1000 / rate(step, count, seconds), 3) for name, step in steps.items()}


def pipeline_numbers(
    detector: FaceDetector, recognizer: ArcFaceMBF, seconds: float, threads: int, start: Barrier | None = None
) -> dict:
    """One-face photos through detection, alignment and embedding, chunk by chunk on `threads` threads;
    timing starts when every thread has run once (and every process, when start is given)."""
    photo = package_photo("yaoming.jpg")
    chunk = [photo] * detector.batch_size

    def one_chunk(_: int) -> int:
        found = detector.detect_batch(chunk)
        crops = np.concatenate(
            [align_faces(img, [f.landmarks for f in faces], 112) for img, faces in zip(chunk, found, strict=True)]
        )
        recognizer.embed(crops)
        return sum(len(faces) for faces in found)

    images, faces = 0, 0
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one_chunk, range(threads)))
        if start is not None:
            start.wait()
        began = time.perf_counter()
        while time.perf_counter() - began < seconds:
            counts = list(pool.map(one_chunk, range(threads)))
            images += len(counts) * len(chunk)
            faces += sum(counts)
    elapsed = time.perf_counter() - began
    return {"images_per_s": images / elapsed, "faces_per_image": faces / images, "threads": threads}


def _pipeline_process(settings: Settings, seconds: float, threads: int, start: Barrier, results: Queue) -> None:
    detector, recognizer = FaceDetector(settings), ArcFaceMBF(settings)
    detector.warm_up()
    recognizer.warm_up()
    results.put(pipeline_numbers(detector, recognizer, seconds, threads, start))


def pipeline_in_processes(settings: Settings, seconds: float, threads: int, processes: int) -> dict:
    """The pipeline in several processes sharing the GPU (no GIL between them), timed together."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=_pipeline_process, args=(settings, seconds, threads, start, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    each = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
    return {
        "images_per_s": sum(r["images_per_s"] for r in each),
        "faces_per_image": min(r["faces_per_image"] for r in each),
        "processes": processes,
        "threads_each": threads,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", default="8,16", help="pipeline threads, one measurement each")
    parser.add_argument("--processes", default="2,4", help="pipeline processes (8 threads each), one measurement each")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--device", default="cuda", help="cpu for a smoke test of this script")
    parser.add_argument("--det-batch", type=int, default=64, help="images per detector call")
    parser.add_argument("--batches", default="1,64,256,1024", help="recogniser batch sizes")
    parser.add_argument("--fp16", default="0,1", help="0, 1 or both: fp32 and/or fp16 on CUDA")
    parser.add_argument("--pipeline-only", action="store_true", help="skip the detector and recogniser numbers")
    args = parser.parse_args()
    args.batches = [int(b) for b in args.batches.split(",")]
    threads = [int(t) for t in args.threads.split(",") if t]
    processes = [int(p) for p in args.processes.split(",") if p]
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    results: dict = {"device": device}

    def report(name: str, value) -> None:
        results[name] = value
        print(json.dumps({name: value}), flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))

    precisions = [flag == "1" for flag in args.fp16.split(",")]
    if args.device == "cpu":
        precisions = [False]  # half precision is for GPUs: the same run twice, its numbers overwritten
    for fp16 in precisions:
        settings = Settings(device=args.device, fp16=fp16, det_batch=args.det_batch)
        detector, recognizer = FaceDetector(settings), ArcFaceMBF(settings)
        detector.warm_up()
        recognizer.warm_up()
        key = f"{detector.runtime} {detector.provider}"
        if not args.pipeline_only:
            report(f"detector {key} images/s", detector_numbers(detector, args.seconds))
            report(f"detector {key} ms per image at batch {args.det_batch}", detector_stages(detector, args.seconds))
        for count in threads:
            report(f"pipeline {key} {count} threads", pipeline_numbers(detector, recognizer, args.seconds, count))
        for count in processes:
            report(f"pipeline {key} {count} processes", pipeline_in_processes(settings, args.seconds, 8, count))
    if not args.pipeline_only:
        report("recogniser", recogniser_numbers(FaceDetector(Settings(device="cpu")), args, precisions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
