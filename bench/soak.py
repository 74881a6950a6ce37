"""Soak: mixed enrolment and recognition at concurrency 8 for 10 minutes after a warm-up, then a verdict.

Starts its own embedded PostgreSQL and both services under gunicorn with their default workers
(face_detection 2, feature_extraction 1). Client threads loop over recognition of three photos
(1, ~6 and ~20 faces) and enrolment of 1 to 5 samples whose ids cycle over a fixed set, so the
table stays bounded while every enrolment rewrites rows. The warm-up sends only the heaviest of
these requests (the ~20-face photo, 5-sample enrolments), so that every worker reaches the memory
its busiest moments need (it took up to 4 minutes: bench/RESULTS.md); the mixed load follows.
Passes when no request failed, no worker was replaced, and the RSS of every gunicorn worker of
both services (VmRSS in /proc/PID/status) grew by less than 5% between the end of the warm-up
and the end.

    .venv/bin/python bench/soak.py [--minutes 10] [--warmup-minutes 4] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import base64
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facerec.db import embedded
from facerec.db.cli import main as init_db
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

    def __init__(self, url: str, warmup_until: float):
        self.url = url
        self.warmup_until = warmup_until
        self.recognition = [{"image": data_uri(path)} for path in RECOGNITION_PHOTOS]
        self.enrolment = [data_uri(path) for path in ENROLMENT_PHOTOS]
        self.tallies = {"recognise": Tally(), "enrol": Tally()}
        self.lock = threading.Lock()

    def run(self, seed: int, deadline: float) -> None:
        chooser = random.Random(seed)
        while time.monotonic() < deadline:
            heaviest = time.monotonic() < self.warmup_until
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


def start_stack(work: Path) -> tuple[dict[str, Service], Path]:
    pgdata = work / "pgdata"
    url = embedded.start(pgdata)
    init_db(["--url", url])
    extraction = Service(
        "feature_extraction", env={"FACEREC_STATE_DIR": str(work)}, workers=1, log_path=work / "fe.log"
    ).start()
    detection = Service(
        "face_detection",
        env={"DATABASE_URL": url, "FEATURE_EXTRACTION_URL": extraction.url, "FACEREC_STATE_DIR": str(work)},
        workers=2,
        log_path=work / "fd.log",
    ).start()
    return {"face_detection": detection, "feature_extraction": extraction}, pgdata


def run_load(load: MixedLoad, concurrency: int, deadline: float) -> None:
    threads = [threading.Thread(target=load.run, args=(seed, deadline)) for seed in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def soak(services: dict[str, Service], args: argparse.Namespace) -> tuple[dict, list[dict], float]:
    """Run the load; return its tallies, the workers' RSS after the warm-up, each minute and at the end."""
    started = time.monotonic()
    load = MixedLoad(services["face_detection"].url, warmup_until=started + args.warmup_minutes * 60)
    deadline = started + (args.warmup_minutes + args.minutes) * 60
    runner = threading.Thread(target=run_load, args=(load, args.concurrency, deadline))
    runner.start()
    time.sleep(args.warmup_minutes * 60)
    samples = [worker_rss_kib(services)]
    while runner.is_alive():
        runner.join(timeout=60)
        samples.append(worker_rss_kib(services))
    return load.tallies, samples, time.monotonic() - started


def print_report(tallies: dict, samples: list[dict], seconds: float) -> list[str]:
    """Print both tables; return what failed."""
    after_warmup, at_end = samples[0], samples[-1]
    problems = []
    print(f"\n{'request':<10} {'count':>7} {'errors':>7} {'per s':>7} {'p50 ms':>8} {'p95 ms':>8}")
    for kind, tally in tallies.items():
        count = len(tally.latencies_ms)
        print(
            f"{kind:<10} {count:>7} {len(tally.errors):>7} {count / seconds:>7.1f} "
            f"{tally.percentile(0.5):>8.0f} {tally.percentile(0.95):>8.0f}"
        )
        problems += [f"{kind}: {error}" for error in tally.errors[:5]]
    print(f"\n{'worker':<28} {'RSS after warm-up MiB':>22} {'RSS at end MiB':>15} {'growth':>8}  MiB each minute")
    for (name, pid), before in after_warmup.items():
        after = at_end.get((name, pid))
        if after is None:
            problems.append(f"{name} worker {pid} was replaced during the soak")
            continue
        growth = after / before - 1
        series = " ".join(f"{sample.get((name, pid), 0) / 1024:.0f}" for sample in samples)
        print(f"{name + ' ' + str(pid):<28} {before / 1024:>22.1f} {after / 1024:>15.1f} {growth:>+8.1%}  {series}")
        if growth >= MAX_RSS_GROWTH:
            problems.append(f"{name} worker {pid} grew by {growth:.1%}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="mixed load after the warm-up")
    parser.add_argument("--warmup-minutes", type=float, default=4.0, help="heaviest load, before the first RSS reading")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    work.chmod(0o755)  # the embedded server runs as user 'pgserver' when we are root
    services, pgdata = start_stack(work)
    try:
        tallies, samples, seconds = soak(services, args)
    finally:
        for service in services.values():
            service.stop()
        embedded.stop(pgdata)
    print(f"soak: {seconds / 60:.1f} min at concurrency {args.concurrency}, warm-up {args.warmup_minutes:g} min")
    problems = print_report(tallies, samples, seconds)
    print("\nPASS" if not problems else "\nFAIL\n" + "\n".join(problems))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
