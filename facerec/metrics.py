"""Prometheus metrics of both services, served at GET /metrics.

Under gunicorn every worker writes its samples to files in PROMETHEUS_MULTIPROC_DIR (set up by
facerec/gunicorn_defaults.py), and /metrics, whichever worker answers it, sums all of them.
Without that variable (a single process) the default in-process registry is served.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from facerec.auth import public

SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

REQUEST_SECONDS = Histogram(
    "facerec_http_request_duration_seconds",
    "HTTP requests by endpoint (the URL rule), method and status",
    ["endpoint", "method", "status"],
    buckets=SECONDS,
)
MODEL_SECONDS = Histogram("facerec_model_duration_seconds", "One run of a model on a batch", ["model"], buckets=SECONDS)
BATCH_SIZE = Histogram(
    "facerec_model_batch_size",
    "Inputs per model run (images for the detector, crops for an embedding model)",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
MODEL_CPU_THREADS = Counter(
    "facerec_model_cpu_threads",
    "Model runs on the CPU by the intra-op threads each was given: every core when the machine was otherwise "
    "idle, fewer when busy (FACEREC_THREADS fixes the count)",
    ["model", "threads"],
)
DB_QUERY_SECONDS = Histogram(
    "facerec_db_query_duration_seconds",
    "Sample store operations, waiting for a pooled connection included",
    ["operation"],
    buckets=SECONDS,
)
FACES_ENROLLED = Counter("facerec_faces_enrolled", "Faces stored by enrolment", ["mode"])


class TimedSession:
    """Wraps an inference session: each of its run methods (run, run_images, ...) records the
    model's time and the batch size, the length of its first argument."""

    def __init__(self, session: Any, model: str):
        self._session = session
        self._seconds = MODEL_SECONDS.labels(model)
        self._batch_size = BATCH_SIZE.labels(model)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._session, name)
        if not (name.startswith("run") and callable(attribute)):
            return attribute

        def timed_run(batch: np.ndarray, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return attribute(batch, *args, **kwargs)
            finally:
                self._seconds.observe(time.perf_counter() - started)
                self._batch_size.observe(len(batch))

        return timed_run


HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def install(app: Flask) -> None:
    """Time every request and serve /metrics, public like /health: expose it to your network only."""
    app.after_request(_observe_request)
    app.add_url_rule("/metrics", "metrics", _metrics)


def _observe_request(response: Response) -> Response:
    endpoint = request.url_rule.rule if request.url_rule else "unmatched"
    # The client names the method: any other word would be a new series, kept for the process's life.
    method = request.method if request.method in HTTP_METHODS else "other"
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    REQUEST_SECONDS.labels(endpoint, method, str(response.status_code)).observe(elapsed)
    return response


@public
def _metrics() -> Response:
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
