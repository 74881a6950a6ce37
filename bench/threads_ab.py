"""Paired runs: model threads fixed at the old counts against threads chosen by the machine's load.

Each round starts the whole stack twice, once per configuration, alternating, and measures the
one-face photo at concurrency 1 (p50) and 4 (requests/s) and enrolment in batches of 10 (faces/s).
Alternating pairs, because this machine's speed drifts by tens of percent from minute to minute.
"fixed" is what the services ran before: face_detection's 2 workers on 1 thread each,
feature_extraction's one on 2 (FACEREC_THREADS per service).

    .venv/bin/python bench/threads_ab.py [--rounds 3] [--seconds 8]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.service import PHOTOS, data_uri, load, running_stack

CONFIGURATIONS = {
    "fixed (face_detection 1, feature_extraction 2 threads)": ({"FACEREC_THREADS": "1"}, {"FACEREC_THREADS": "2"}),
    "by load": ({}, {}),
}


def measure(detection_env: dict, extraction_env: dict, seconds: float) -> dict:
    with running_stack("threads-ab-", extraction_env, detection_env) as (_, detection):
        body = {"image": data_uri(PHOTOS["1 face"])}
        requests.post(detection.url + "/update-samples", json=[{"id": "yao", **body}]).raise_for_status()
        recognise = detection.url + "/face-recognition"
        load(recognise, body, 1, 2)  # warm-up
        result = {
            "c1_p50_ms": load(recognise, body, 1, seconds)["p50_ms"],
            "c4_rps": load(recognise, body, 4, seconds)["rps"],
        }
        batch = [{"id": f"e{i}", **body} for i in range(10)]
        began = time.perf_counter()
        for _ in range(3):
            requests.post(detection.url + "/update-samples", json=batch, timeout=600).raise_for_status()
        result["enrol10_faces_per_s"] = 3 * len(batch) / (time.perf_counter() - began)
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="per measurement")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    results: dict[str, list[dict]] = {name: [] for name in CONFIGURATIONS}
    for _ in range(args.rounds):
        for name, (detection_env, extraction_env) in CONFIGURATIONS.items():
            results[name].append(measure(detection_env, extraction_env, args.seconds))
    for name, rounds in results.items():
        print(name)
        for key in rounds[0]:
            print(f"  {key}: " + " / ".join(f"{r[key]:.1f}" for r in rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
