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
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facerec.inference.alignment import align_faces
from facerec.inference.detector import FaceDetector
from facerec.inference.recognizers import ArcFaceMBF
from facerec.inference.weights import vectron_model_dir
from facerec.settings import Settings


def rate(call, items: int, seconds: float) -> float:
    call()
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        call()
        done += items
    return done / (time.perf_counter() - began)


def real_crops(detector: FaceDetector, count: int) -> np.ndarray:
    image = cv2.imread(str(vectron_model_dir() / "players.jpg"))
    faces = detector.predict(image)
    crops = align_faces(image, [f.landmarks for f in faces], 112)
    return np.resize(crops, (count, 112, 112, 3))


def recogniser_numbers(detector: FaceDetector, args: argparse.Namespace) -> dict:
    reference = ArcFaceMBF(Settings(device="cpu"))
    crops = real_crops(detector, max(args.batches))
    expected = reference.embed(crops[:64])
    results: dict = {}
    for fp16 in (False, True):
        model = ArcFaceMBF(Settings(device=args.device, fp16=fp16))
        model.load()
        label = model.provider
        agreement = float(np.min(np.sum(model.embed(crops[:64]) * expected, axis=1)))
        results[label] = {
            "min_cosine_vs_onnxruntime_cpu": agreement,
            "faces_per_s": {b: rate(lambda b=b, m=model: m.embed(crops[:b]), b, args.seconds) for b in args.batches},
        }
    return results


def detector_numbers(detector: FaceDetector, seconds: float) -> dict:
    image = cv2.imread(str(vectron_model_dir() / "yaoming.jpg"))
    sizes = sorted({1, max(1, detector.settings.det_batch // 4), detector.settings.det_batch})
    return {b: rate(lambda b=b: detector.detect_batch([image] * b), b, seconds) for b in sizes}


def pipeline_numbers(detector: FaceDetector, recognizer: ArcFaceMBF, seconds: float, threads: int) -> dict:
    """One-face photos through detection, alignment and embedding, chunk by chunk on `threads` threads."""
    photo = cv2.imread(str(vectron_model_dir() / "yaoming.jpg"))
    chunk = [photo] * detector.settings.det_batch

    def one_chunk(_: int) -> int:
        found = detector.detect_batch(chunk)
        crops = np.concatenate(
            [align_faces(img, [f.landmarks for f in faces], 112) for img, faces in zip(chunk, found, strict=True)]
        )
        recognizer.embed(crops)
        return sum(len(faces) for faces in found)

    began, images, faces = time.perf_counter(), 0, 0
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one_chunk, range(threads)))  # every thread warm before timing
        began = time.perf_counter()
        while time.perf_counter() - began < seconds:
            counts = list(pool.map(one_chunk, range(threads)))
            images += len(counts) * len(chunk)
            faces += sum(counts)
    elapsed = time.perf_counter() - began
    return {"images_per_s": images / elapsed, "faces_per_image": faces / images, "threads": threads}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--device", default="cuda", help="cpu for a smoke test of this script")
    parser.add_argument("--det-batch", type=int, default=64, help="images per detector call")
    parser.add_argument("--batches", default="1,64,256,1024", help="recogniser batch sizes")
    parser.add_argument("--skip-recogniser", action="store_true", help="measure detection and pipeline only")
    args = parser.parse_args()
    args.batches = [int(b) for b in args.batches.split(",")]
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    results: dict = {"device": device}
    for fp16 in (False, True):
        settings = Settings(device=args.device, fp16=fp16, det_batch=args.det_batch)
        detector, recognizer = FaceDetector(settings), ArcFaceMBF(settings)
        detector.warm_up()
        recognizer.warm_up()
        key = detector.provider
        results[f"detector {key} images/s"] = detector_numbers(detector, args.seconds)
        results[f"pipeline {key}"] = pipeline_numbers(detector, recognizer, args.seconds, args.threads)
    if not args.skip_recogniser:
        results["recogniser"] = recogniser_numbers(FaceDetector(Settings(device="cpu")), args)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
