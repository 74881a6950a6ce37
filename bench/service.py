"""Benchmarks 1 and 2: recognition and enrolment through both services over HTTP, against raw model time.

Starts its own embedded PostgreSQL and both services under gunicorn with their default
configuration, then measures, in one run:
  1. recognition of a 1-face photo (yaoming.jpg) and a ~20-face photo (players.jpg) at
     concurrency 1, 4 and 16: p50/p95 latency and requests/s; the raw model time of the same
     photos in-process (detection + alignment + embedding), single-stream and with one stream
     per core; the service overhead ratio (service p50 at concurrency 1 / raw p50) and the
     share of the cores' raw capacity served at concurrency 4. Raw and service cells alternate
     in --rounds short slices, pooled at the end, so that a machine whose speed drifts from
     minute to minute (a VM's does, by tens of percent) weighs on both sides of each ratio;
  2. enrolment: faces per second for batches of 1, 10 and 50 samples per request.

    .venv/bin/python bench/service.py [--seconds 10] [--rounds 5] [--json bench/out/service.json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import requests
import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facerec.cores import usable_cores
from facerec.db import embedded
from facerec.db.cli import main as init_db
from facerec.images import decode_image
from facerec.inference.alignment import align_faces
from facerec.inference.detector import FaceDetector
from facerec.inference.recognizers import ArcFaceMBF
from facerec.inference.weights import vectron_model_dir
from facerec.settings import Settings
from tests.servers import Service, scratch_dir

PHOTOS = {"1 face": vectron_model_dir() / "yaoming.jpg", "~20 faces": vectron_model_dir() / "players.jpg"}
ENROL_BATCHES = (1, 10, 50)


def data_uri(path: Path) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class RawPipeline:
    """Detection + alignment + embedding called in-process, as the services run them."""

    def __init__(self, threads: int):
        settings = Settings(threads=threads)
        self.detector, self.recognizer = FaceDetector(settings), ArcFaceMBF(settings)
        self.detector.warm_up()
        self.recognizer.warm_up()

    def run(self, image) -> int:
        faces = self.detector.predict(image)
        self.recognizer.embed(align_faces(image, [f.landmarks for f in faces], 112))
        return len(faces)


def raw_capacity(pipelines: list[RawPipeline], image, seconds: float) -> tuple[int, float]:
    """Pipelines run and seconds taken, one single-threaded pipeline per core, all cores busy."""
    counts = [0] * len(pipelines)
    began = time.perf_counter()
    stop = time.monotonic() + seconds

    def work(index: int) -> None:
        while time.monotonic() < stop:
            pipelines[index].run(image)
            counts[index] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(pipelines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts), time.perf_counter() - began


def timed_loop(call, seconds: float) -> list[float]:
    call()
    times, stop = [], time.monotonic() + seconds
    while time.monotonic() < stop:
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def load(url: str, body: dict, concurrency: int, seconds: float) -> dict:
    return summary(*timed_load(url, body, concurrency, seconds))


def timed_load(url: str, body: dict, concurrency: int, seconds: float) -> tuple[list[float], float]:
    """Latencies and elapsed seconds of `concurrency` clients sending `body` for `seconds`.

    Keep-alive clients on urllib3, whose CPU per request (on the cores being measured) is
    below requests': the body is encoded once."""
    http = urllib3.PoolManager(maxsize=concurrency)
    encoded, headers = json.dumps(body).encode(), {"Content-Type": "application/json"}

    def one() -> float:
        started = time.perf_counter()
        response = http.request("POST", url, body=encoded, headers=headers, timeout=120)
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}: {response.data[:200]!r}")
        return time.perf_counter() - started

    latencies: list[float] = []
    stop = time.monotonic() + seconds

    def worker() -> None:
        latencies.append(one())
        while time.monotonic() < stop:
            latencies.append(one())

    one()
    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(worker) for _ in range(concurrency)]
    for future in futures:
        future.result()
    return latencies, time.perf_counter() - began


def summary(latencies: list[float], elapsed: float) -> dict:
    return {
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p95_ms": percentile(latencies, 0.95) * 1000,
        "rps": len(latencies) / elapsed,
        "n": len(latencies),
    }


def enrolment(url: str, size: int, rounds: int) -> float:
    image = data_uri(PHOTOS["1 face"])
    faces, began = 0, time.perf_counter()
    for round_ in range(rounds):
        items = [{"id": f"b{size}-{round_}-{i}", "name": "n", "image": image} for i in range(size)]
        response = requests.post(url + "/update-samples", json=items, timeout=600)
        response.raise_for_status()
        faces += len(response.json()["success"])
    return faces / (time.perf_counter() - began)


@contextmanager
def running_stack(
    prefix: str,
    extraction_env: dict | None = None,
    detection_env: dict | None = None,
    keep_logs: Callable[[], bool] = lambda: False,
) -> Iterator[tuple[Service, Service]]:
    """Embedded PostgreSQL and both services in a scratch folder, each with its default configuration
    plus its env; all stopped, and the folder removed (see scratch_dir), afterwards."""
    with scratch_dir(prefix, keep_logs) as work, ExitStack() as started:
        pgdata = work / "pgdata"
        url = embedded.start(pgdata)
        started.callback(embedded.stop, pgdata)
        init_db(["--url", url])
        extraction = Service(
            "feature_extraction",
            env={"FACEREC_STATE_DIR": str(work), **(extraction_env or {})},
            log_path=work / "fe.log",
        )
        started.callback(extraction.stop)
        extraction.start()
        detection = Service(
            "face_detection",
            env={
                "DATABASE_URL": url,
                "FEATURE_EXTRACTION_URL": extraction.url,
                "FACEREC_STATE_DIR": str(work),
                **(detection_env or {}),
            },
            workers=int(os.environ.get("FACE_DETECTION_WORKERS", "2")),
            log_path=work / "fd.log",
        )
        started.callback(detection.stop)
        detection.start()
        yield extraction, detection


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement, over all rounds")
    parser.add_argument("--rounds", type=int, default=5, help="slices each measurement is taken in, alternating")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated client counts")
    parser.add_argument("--raw-streams", type=int, default=usable_cores(), help="parallel raw pipelines")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    results: dict = {"cores": usable_cores(), "seconds": args.seconds, "recognition": {}, "enrolment": {}}
    with running_stack("bench-service-") as (_, detection):
        requests.post(detection.url + "/update-samples", json=[{"id": "yao", "image": data_uri(PHOTOS["1 face"])}])
        for label, path in PHOTOS.items():
            results["recognition"][label] = recognition_row(detection.url, path, levels, args)
        for size in ENROL_BATCHES:
            results["enrolment"][size] = enrolment(detection.url, size, rounds=max(1, 50 // size))
    print_table(results, levels)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def recognition_row(url: str, path: Path, levels: list[int], args: argparse.Namespace) -> dict:
    """Raw latency, service at each concurrency, raw capacity, alternated in args.rounds slices."""
    image = decode_image(path.read_bytes(), Settings().max_image_pixels)  # as the service decodes it
    single = RawPipeline(threads=usable_cores())
    parallel = [RawPipeline(threads=1) for _ in range(args.raw_streams)]
    body = {"image": data_uri(path)}
    load(url + "/face-recognition", body, max(levels), min(args.seconds, 3.0))  # every worker thread warm
    part = args.seconds / args.rounds
    raw: list[float] = []
    ran, ran_seconds = 0, 0.0
    latencies: dict[int, list[float]] = {c: [] for c in levels}
    elapsed = dict.fromkeys(levels, 0.0)
    rounds = []
    for _ in range(args.rounds):
        raw_part = timed_loop(lambda: single.run(image), part)
        count, seconds = raw_capacity(parallel, image, part)
        parts = {c: timed_load(url + "/face-recognition", body, c, part) for c in levels}
        raw += raw_part
        ran, ran_seconds = ran + count, ran_seconds + seconds
        for c, (part_latencies, part_elapsed) in parts.items():
            latencies[c] += part_latencies
            elapsed[c] += part_elapsed
        raw_rps = count / seconds
        c1 = statistics.median(parts[1][0]) / statistics.median(raw_part) if 1 in parts else None
        c4 = len(parts[4][0]) / parts[4][1] / raw_rps if 4 in parts else None
        rounds.append({"overhead_ratio_c1": c1, "share_of_raw_capacity_c4": c4})
    row = {"raw_p50_ms": statistics.median(raw) * 1000, "raw_capacity_rps": ran / ran_seconds, "rounds": rounds}
    for c in levels:
        row[f"c{c}"] = summary(latencies[c], elapsed[c])
    row["overhead_ratio_c1"] = row["c1"]["p50_ms"] / row["raw_p50_ms"] if 1 in levels else None
    row["share_of_raw_capacity"] = {c: row[f"c{c}"]["rps"] / row["raw_capacity_rps"] for c in levels}
    return row


def print_table(results: dict, levels: list[int]) -> None:
    print(f"\nRecognition over HTTP ({results['cores']} cores, {results['seconds']:.0f} s per cell)")
    print(f"{'photo':10} {'raw p50':>8} {'raw cap':>8} | " + " | ".join(f"c={c}: p50 / p95 ms, req/s" for c in levels))
    for label, row in results["recognition"].items():
        cells = " | ".join(
            f"{row[f'c{c}']['p50_ms']:7.1f} / {row[f'c{c}']['p95_ms']:7.1f}, {row[f'c{c}']['rps']:5.1f}" for c in levels
        )
        print(f"{label:10} {row['raw_p50_ms']:7.1f}ms {row['raw_capacity_rps']:6.1f}/s | {cells}")
    for label, row in results["recognition"].items():
        shares = ", ".join(f"c={c}: {share:.0%}" for c, share in row["share_of_raw_capacity"].items())
        ratio = row["overhead_ratio_c1"]
        print(
            f"{label}: overhead ratio at c=1 {ratio or float('nan'):.2f} (target <= 1.3); "
            f"share of raw capacity served: {shares} (target at c=4 >= 80%)"
        )
        print(f"  each round: {round_spread(row['rounds'])}")
    print("\nEnrolment: " + ", ".join(f"batch {size}: {fps:.1f} faces/s" for size, fps in results["enrolment"].items()))


def round_spread(rounds: list[dict]) -> str:
    ratios = [r["overhead_ratio_c1"] for r in rounds if r["overhead_ratio_c1"] is not None]
    shares = [r["share_of_raw_capacity_c4"] for r in rounds if r["share_of_raw_capacity_c4"] is not None]
    parts = []
    if ratios:
        parts.append("ratio at c=1 " + " ".join(f"{r:.2f}" for r in ratios))
    if shares:
        parts.append("share at c=4 " + " ".join(f"{s:.0%}" for s in shares))
    return "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
