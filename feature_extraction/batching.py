"""Coalesce crops from concurrent requests into micro-batches for one model call.

Request threads submit their crops and wait; one runner thread takes whatever is queued (up to
max_batch crops), optionally waits max_wait_ms for more, runs the model and hands each request
its rows. While the model runs, new requests queue up and form the next batch, so batches grow
with load without adding latency when the service is idle. No model call holds more than
max_batch crops (the rest go in further calls), so the model's memory is bounded by one call of
max_batch, which the service takes at start.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np


class MicroBatcher:
    def __init__(self, embed: Callable[[np.ndarray], np.ndarray], max_batch: int, max_wait_ms: float):
        self._embed = embed
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self._jobs: queue.SimpleQueue[tuple[np.ndarray, Future]] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="micro-batcher", daemon=True).start()

    def embed(self, crops: np.ndarray) -> np.ndarray:
        done: Future = Future()
        self._jobs.put((crops, done))
        return done.result()

    def _run(self) -> None:
        while True:
            jobs = self._collect()
            try:
                batch = np.concatenate([crops for crops, _ in jobs])
                vectors = np.concatenate(
                    [self._embed(batch[i : i + self.max_batch]) for i in range(0, len(batch), self.max_batch)]
                )
            except Exception as error:
                for _, done in jobs:
                    done.set_exception(error)
                continue
            start = 0
            for crops, done in jobs:
                done.set_result(vectors[start : start + len(crops)])
                start += len(crops)

    def _collect(self) -> list[tuple[np.ndarray, Future]]:
        jobs = [self._jobs.get()]
        size = len(jobs[0][0])
        deadline = time.monotonic() + self.max_wait_s
        while size < self.max_batch:
            try:
                job = self._jobs.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            jobs.append(job)
            size += len(job[0])
        return jobs
