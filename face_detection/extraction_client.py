"""HTTP client of the feature_extraction service: pooled, time-limited, retried on connect errors.

urllib3 rather than requests, which reads the proxy settings from the whole environment and
prepares each request in layers: a one-crop call took 1.35 ms of the caller's CPU against 1.84.
"""

from __future__ import annotations

import io
import threading

import numpy as np
import urllib3
from urllib3.exceptions import HTTPError, MaxRetryError, NewConnectionError, TimeoutError
from urllib3.util.retry import Retry

from facerec.auth import split_keys
from facerec.errors import ExtractionUnavailable
from facerec.inference.recognizers import EmbeddingSpec
from facerec.settings import Settings
from facerec.wire import NPY_MEDIA_TYPE, to_npy

DOWN = "the feature_extraction service is unavailable"
KEY_REFUSED = "feature_extraction refuses this service's key: give both services the same FACEREC_EXTRACTION_KEY"
# /health asks feature_extraction each time, but no longer than a load balancer's check waits.
HEALTH_CHECK_TIMEOUT_S = 2.0


class ExtractionClient:
    def __init__(self, settings: Settings):
        self.base_url = settings.feature_extraction_url.rstrip("/")
        self.timeout = settings.extraction_timeout_s
        retry = Retry(
            total=settings.extraction_retries,
            connect=settings.extraction_retries,
            read=False,  # re-raise a read timeout as itself: read=0 would wrap it as a ConnectionError
            status=0,
            other=0,
            backoff_factor=0.2,
            allowed_methods=None,  # embedding is idempotent: a POST may be resent
        )
        # feature_extraction takes any of a comma-separated list (to rotate it); this side sends the first.
        keys = split_keys(settings.extraction_key)
        self.headers = {"X-API-Key": keys[0]} if keys else {}
        self.http = urllib3.PoolManager(maxsize=16, retries=retry)
        self._spec: EmbeddingSpec | None = None
        self._lock = threading.Lock()

    def spec(self) -> EmbeddingSpec:
        """The model behind the service (crop size, name, default threshold), asked once."""
        if self._spec is None:
            with self._lock:
                if self._spec is None:
                    health = self._request("GET", "/health").json()
                    self._spec = EmbeddingSpec(
                        model=health["model"],
                        dim=int(health["dim"]),
                        crop_size=int(health["crop_size"]),
                        default_min_similarity=float(health["default_min_similarity"]),
                        alignment=health["alignment"],
                        channel_order=health["channel_order"],
                    )
        return self._spec

    def check(self) -> str:
        """The model feature_extraction runs, asked now (requests use the spec asked once) and without
        retries; a model other than the spec's makes the next request ask again."""
        health = self._request("GET", "/health", timeout=min(self.timeout, HEALTH_CHECK_TIMEOUT_S), retries=False)
        try:
            answer = health.json()
            model, key = str(answer["model"]), answer.get("key")
        except (ValueError, KeyError, TypeError):
            raise ExtractionUnavailable(f"{DOWN}: malformed /health answer", reason="extraction_failed") from None
        if key == "refused":
            raise ExtractionUnavailable(KEY_REFUSED, reason="extraction_key_refused")
        if self._spec is not None and self._spec.model != model:
            self._spec = None
        return model

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """One round trip for the whole batch; returns N x dim unit vectors in order."""
        spec = self.spec()
        response = self._request(
            "POST", "/extract_feature", body=to_npy(crops), headers={"Content-Type": NPY_MEDIA_TYPE}
        )
        if response.headers.get("X-Embedding-Model") != spec.model:
            self._spec = None  # the service was restarted with another model: ask again next time
            raise ExtractionUnavailable(f"{DOWN}: its embedding model changed; retry", reason="model_changed")
        vectors = np.load(io.BytesIO(response.data), allow_pickle=False)
        if vectors.shape != (len(crops), spec.dim):
            raise ExtractionUnavailable(f"{DOWN}: malformed response", reason="extraction_failed")
        return vectors

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        retries: Retry | bool | None = None,
    ) -> urllib3.BaseHTTPResponse:
        headers = {**self.headers, **(headers or {})}
        timeout = timeout or self.timeout
        try:
            response = self.http.request(
                method, self.base_url + path, body=body, headers=headers, timeout=timeout, retries=retries
            )
        except HTTPError as error:
            cause = error.reason if isinstance(error, MaxRetryError) else error
            # A connect or read timeout; a refused connection is a NewConnectionError, also a timeout to urllib3.
            if isinstance(cause, TimeoutError) and not isinstance(cause, NewConnectionError):
                setting = " (setting FACEREC_EXTRACTION_TIMEOUT_S)" if timeout == self.timeout else ""
                raise ExtractionUnavailable(
                    f"{DOWN}: no answer within {timeout:g} s{setting}", reason="extraction_timeout"
                ) from None
            raise ExtractionUnavailable(
                f"{DOWN} at {self.base_url} ({type(cause).__name__})", reason="extraction_unavailable"
            ) from None
        if response.status == 401:
            raise ExtractionUnavailable(KEY_REFUSED, reason="extraction_key_refused")
        if response.status != 200:
            raise ExtractionUnavailable(f"{DOWN}: it answered {response.status}", reason="extraction_failed")
        return response
