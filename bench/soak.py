"""Soak: mixed enrolment and recognition at concurrency 8 for 10 minutes after a warm-up, then a verdict.

Starts its own embedded PostgreSQL and both services under gunicorn with their default workers
(face_detection 2, feature_extraction 1). Client threads loop over recognition of three photos
(1, ~6 and ~20 faces) and enrolment of 1 to 5 samples whose ids cycle over a fixed set, so the
table stays bounded while every enrolment rewrites rows. The first half of the warm-up sends only
the heaviest of these requests (the ~20-face photo, 5-sample enrolments), so that every worker
reaches the memory its busiest moments need; the second half is the mixed load, as after it.

The RSS of every gunicorn worker of both services (VmRSS in /proc/PID/status) is read every 5 s
under load, and at rest (10 s after the last request of a phase) at the end of the warm-up and at
the end. Under load a worker's RSS follows the requests in flight (photos, bodies, crops); what a
worker keeps is its RSS at rest (each worker gives freed heap memory back every 5 s:
facerec/memory.py). Passes when no request failed, no worker was replaced, and every
worker's RSS at rest grew by less than 5%. Also printed: the peaks under load in the first and
last --window minutes, the least-squares trend of the readings under load in MiB per hour, the
peak of each minute. The services' logs are kept in the scratch folder it prints, pass or fail.
Ctrl-C stops it after the requests in flight; a service that exits mid-soak stops it too.

    .venv/bin/python bench/soak.py [--minutes 10] [--warmup-minutes 4] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import base64
import math
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.service import running_stack
from facerec.inference.weights import vectron_model_dir
from tests.conftest import insightface_photo
from tests.servers import Service

# The last photo is the heaviest, sent alone during the warm-up.
RECOGNITION_PHOTOS = [
    vectron_model_dir() / "yaoming.jpg",
    insightface_photo("t1.jpg"),
    vectron_model_dir() / "players.jpg",
]
ENROLMENT_PHOTOS = [vectron_model_dir() / "yaoming.jpg", vectron_model_dir() / "gdp.jpg"]
ENROL_SHARE = 0.3
ID_POOL = 200
MAX_RSS_GROWTH = 0.05
READING_INTERVAL_S = 5
REST_S = 10  # after the last request of a phase, before the at-rest reading


def data_uri(path: Path) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode()


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms) or [0.0]
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class MixedLoad:
    """Client threads that recognise or enrol until the deadline, tallying each kind of request."""

    def __init__(self, url: str, heaviest_until: float):
        self.url = url
        self.heaviest_until = heaviest_until
        self.recognition = [{"image": data_uri(path)} for path in RECOGNITION_PHOTOS]
        self.enrolment = [data_uri(path) for path in ENROLMENT_PHOTOS]
        self.tallies = {"recognise": Tally(), "enrol": Tally()}
        self.lock = threading.Lock()
        self.stopped = threading.Event()  # before the deadline: Ctrl-C, or a service gone

    def run(self, seed: int, deadline: float) -> None:
        chooser = random.Random(seed)
        while time.monotonic() < deadline and not self.stopped.is_set():
            heaviest = time.monotonic() < self.heaviest_until
            if chooser.random() < ENROL_SHARE:
                self.call("enrol", "/update-samples", self.enrolment_body(chooser, heaviest))
            else:
                body = self.recognition[-1] if heaviest else chooser.choice(self.recognition)
                self.call("recognise", "/face-recognition", body)

    def enrolment_body(self, chooser: random.Random, heaviest: bool) -> list[dict]:
        ids = chooser.sample(range(ID_POOL), 5 if heaviest else chooser.randint(1, 5))
        return [{"id": f"soak-{i}", "name": f"n{i}", "image": chooser.choice(self.enrolment)} for i in ids]

    def call(self, kind: str, path: str, body: object) -> None:
        """One request on a new connection: kept-alive connections would stay with one gunicorn worker."""
        started = time.perf_counter()
        try:
            response = requests.post(self.url + path, json=body, timeout=120)
            error = None if response.status_code == 200 else f"{response.status_code} {response.text[:200]}"
            if error is None and kind == "enrol" and response.json()["fail"]:
                error = f"enrolment failed: {response.json()['errors']}"
        except requests.RequestException as exception:
            error = f"{type(exception).__name__}: {exception}"
        elapsed_ms = (time.perf_counter() - started) * 1000
        with self.lock:
            tally = self.tallies[kind]
            tally.latencies_ms.append(elapsed_ms)
            if error:
                tally.errors.append(error)


def worker_rss_kib(services: dict[str, Service]) -> dict[tuple[str, int], int]:
    """VmRSS of every gunicorn worker, by (service, pid)."""
    sizes = {}
    for name, service in services.items():
        for pid in sorted(service.worker_pids()):
            status = Path(f"/proc/{pid}/status").read_text()
            [line] = [line for line in status.splitlines() if line.startswith("VmRSS:")]
            sizes[(name, pid)] = int(line.split()[1])
    return sizes


def run_load(load: MixedLoad, concurrency: int, deadline: float) -> None:
    threads = [threading.Thread(target=load.run, args=(seed, deadline)) for seed in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@dataclass
class Readings:
    """RSS readings (KiB) of every worker, with the seconds since the start of the soak."""

    times: list[float] = field(default_factory=list)
    rss: list[dict[tuple[str, int], int]] = field(default_factory=list)

    def peak(self, worker: tuple[str, int], since: float, until: float) -> int:
        return max(r.get(worker, 0) for t, r in zip(self.times, self.rss, strict=True) if since <= t <= until)

    def trend_mib_per_hour(self, worker: tuple[str, int], since: float) -> float:
        points = [(t, r[worker]) for t, r in zip(self.times, self.rss, strict=True) if t >= since and worker in r]
        times, sizes = np.array(points, dtype=float).T
        return float(np.polyfit(times / 3600, sizes / 1024, 1)[0])


def soak(services: dict[str, Service], args: argparse.Namespace) -> tuple[dict, Readings, list[dict], float]:
    """Warm up, rest, run the mixed load, rest: RSS read every few seconds under load and once at
    each rest (no request in flight). Returns the tallies, the readings, the two at-rest readings."""
    started = time.monotonic()
    load = MixedLoad(services["face_detection"].url, heaviest_until=started + args.warmup_minutes * 60 / 2)
    readings, at_rest = Readings(), []
    try:
        for minutes in (args.warmup_minutes, args.minutes):
            runner = threading.Thread(target=run_load, args=(load, args.concurrency, time.monotonic() + minutes * 60))
            runner.start()
            while runner.is_alive():
                _stop_if_a_service_exited(services)
                readings.times.append(time.monotonic() - started)
                readings.rss.append(worker_rss_kib(services))
                runner.join(timeout=READING_INTERVAL_S)
            time.sleep(REST_S)
            at_rest.append(worker_rss_kib(services))
    except BaseException:  # Ctrl-C, a service gone: the clients stop after their requests in flight
        load.stopped.set()
        raise
    return load.tallies, readings, at_rest, time.monotonic() - started


def _stop_if_a_service_exited(services: dict[str, Service]) -> None:
    """A soak against a dead service only tallies refused connections until its schedule ends."""
    for name, service in services.items():
        if service.process.poll() is not None:
            raise RuntimeError(f"{name} exited with {service.process.returncode} mid-soak: see its log")


def print_report(tallies: dict, readings: Readings, at_rest: list[dict], args: argparse.Namespace) -> list[str]:
    """Print both tables; return what failed."""
    seconds, window = readings.times[-1], args.window * 60
    warm = args.warmup_minutes * 60
    problems = []
    print(f"\n{'request':<10} {'count':>7} {'errors':>7} {'per s':>7} {'p50 ms':>8} {'p95 ms':>8}")
    for kind, tally in tallies.items():
        count = len(tally.latencies_ms)
        print(
            f"{kind:<10} {count:>7} {len(tally.errors):>7} {count / seconds:>7.1f} "
            f"{tally.percentile(0.5):>8.0f} {tally.percentile(0.95):>8.0f}"
        )
        problems += [f"{kind}: {error}" for error in tally.errors[:5]]
    print(
        f"\n{'worker':<26} {'at rest: after warm-up':>22} {'at end':>7} {'growth':>7} | under load: "
        f"{'first peak':>10} {'last peak':>9} {'trend MiB/h':>11} | peak MiB of each minute"
    )
    for worker, before in at_rest[0].items():
        name, pid = worker
        after = at_rest[1].get(worker)
        if after is None:
            problems.append(f"{name} worker {pid} was replaced during the soak")
            continue
        growth = after / before - 1
        first, last = readings.peak(worker, warm, warm + window), readings.peak(worker, seconds - window, seconds)
        minutes = " ".join(
            f"{readings.peak(worker, m * 60, (m + 1) * 60) / 1024:.0f}" for m in range(math.ceil(seconds / 60))
        )
        print(
            f"{name + ' ' + str(pid):<26} {before / 1024:>22.1f} {after / 1024:>7.1f} {growth:>+7.1%} | "
            f"{'':>12}{first / 1024:>10.1f} {last / 1024:>9.1f} {readings.trend_mib_per_hour(worker, warm):>+11.1f} | "
            f"{minutes}"
        )
        if growth >= MAX_RSS_GROWTH:
            problems.append(f"{name} worker {pid} grew by {growth:.1%} at rest")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="mixed load after the warm-up")
    parser.add_argument("--warmup-minutes", type=float, default=4.0, help="heaviest, then mixed load, before")
    parser.add_argument("--window", type=float, default=2.0, help="minutes whose peak RSS is compared")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    args = parser.parse_args()
    try:
        with running_stack("bench-soak-", keep_logs=lambda: True) as (extraction, detection):
            services = {"face_detection": detection, "feature_extraction": extraction}
            tallies, readings, at_rest, seconds = soak(services, args)
    except KeyboardInterrupt:
        print("soak interrupted: no verdict", file=sys.stderr)
        return 130
    print(f"soak: {seconds / 60:.1f} min at concurrency {args.concurrency}, warm-up {args.warmup_minutes:g} min")
    problems = print_report(tallies, readings, at_rest, args)
    print("\nPASS" if not problems else "\nFAIL\n" + "\n".join(problems))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
