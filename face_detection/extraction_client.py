"""HTTP client of the feature_extraction service: pooled keep-alive connections, time-limited,
retried on connect errors.

The standard library's http.client rather than urllib3, whose layers (pool manager, retry objects,
its response class) cost about 1 ms of CPU per recognition: without them, requests/s at concurrency
4 rose 4% (bench/RESULTS.md). A connection serves one request at a time and is kept for the next
while the server keeps it open.
"""

from __future__ import annotations

import io
import json
import threading
import time
from dataclasses import dataclass
from email.message import Message
from http.client import HTTPConnection, HTTPException, HTTPSConnection, RemoteDisconnected
from typing import Any
from urllib.parse import SplitResult, urlsplit

import numpy as np

from facerec.auth import split_keys
from facerec.errors import ExtractionUnavailable, InvalidSetting
from facerec.inference.recognizers import EmbeddingSpec
from facerec.settings import Settings
from facerec.wire import NPY_MEDIA_TYPE, to_npy

DOWN = "the feature_extraction service is unavailable"
KEY_REFUSED = "feature_extraction refuses this service's key: give both services the same FACEREC_EXTRACTION_KEY"
# /health asks feature_extraction each time, but no longer than a load balancer's check waits.
HEALTH_CHECK_TIMEOUT_S = 2.0
MALFORMED_HEALTH = f"{DOWN}: malformed /health answer"
RETRY_BACKOFF_S = 0.2  # before the second retry; doubled for each one after it
MAX_IDLE_CONNECTIONS = 16


@dataclass
class Answer:
    status: int
    headers: Message
    data: bytes

    def json(self) -> Any:
        return json.loads(self.data)


class ExtractionClient:
    def __init__(self, settings: Settings):
        self.base_url = settings.feature_extraction_url.rstrip("/")
        self.timeout = settings.extraction_timeout_s
        self.retries = settings.extraction_retries
        # feature_extraction takes any of a comma-separated list (to rotate it); this side sends the first.
        keys = split_keys(settings.extraction_key)
        self.headers = {"X-API-Key": keys[0]} if keys else {}
        self.connections = ConnectionPool(self.base_url)
        self._spec: EmbeddingSpec | None = None
        self._max_batch: int | None = None  # crops per call it takes (FACEREC_MAX_BATCH there), if it says
        self._lock = threading.Lock()

    def spec(self) -> EmbeddingSpec:
        """The model behind the service (crop size, name, default threshold), asked once, and again
        after the service refused crops or named another model (it came back with another one)."""
        spec = self._spec  # read once: another thread may set it to None meanwhile
        if spec is None:
            with self._lock:
                spec = self._spec
                if spec is None:
                    health = self._health(retries=None)
                    self._max_batch = _max_batch_of(health)
                    spec = self._spec = _spec_of(health)
        return spec

    def check(self) -> str:
        """The model feature_extraction runs, asked now (requests use the spec asked once) and without
        retries; a model other than the spec's makes the next request ask again."""
        answer = self._health(retries=0, timeout=min(self.timeout, HEALTH_CHECK_TIMEOUT_S))
        model, key = str(answer["model"]), answer.get("key")
        if key == "refused":
            raise ExtractionUnavailable(KEY_REFUSED, reason="extraction_key_refused")
        spec = self._spec
        if spec is not None and spec.model != model:
            self._spec = None
        return model

    def _health(self, retries: int | None, timeout: float | None = None) -> dict:
        response = self._request("GET", "/health", timeout=timeout, retries=retries)
        try:
            answer = response.json()
        except ValueError:  # not JSON
            answer = None
        if not (isinstance(answer, dict) and "model" in answer):
            raise ExtractionUnavailable(MALFORMED_HEALTH, reason="extraction_failed")
        return answer

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """N x dim unit vectors, in order: one round trip for all the crops, or one per as many as
        feature_extraction takes in a call (its FACEREC_MAX_BATCH, which it refuses more than)."""
        spec = self.spec()
        step = self._max_batch or len(crops)
        parts = [self._embed_batch(crops[start : start + step], spec) for start in range(0, len(crops), step)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _embed_batch(self, crops: np.ndarray, spec: EmbeddingSpec) -> np.ndarray:
        try:
            response = self._request(
                "POST", "/extract_feature", body=to_npy(crops), headers={"Content-Type": NPY_MEDIA_TYPE}
            )
        except ExtractionUnavailable as error:
            if error.reason == "extraction_failed":
                # It answered, but refused the crops: restarted with a model of another crop size, it
                # answers 400 before it names its model. Ask /health again, or it never recovers.
                self._spec = None
            raise
        if response.headers.get("X-Embedding-Model") != spec.model:
            self._spec = None  # the service was restarted with another model: ask again next time
            raise ExtractionUnavailable(f"{DOWN}: its embedding model changed; retry", reason="model_changed")
        try:
            vectors = np.load(io.BytesIO(response.data), allow_pickle=False)
        except (ValueError, OSError, EOFError):
            vectors = None
        if vectors is None or vectors.shape != (len(crops), spec.dim):
            raise ExtractionUnavailable(f"{DOWN}: malformed response", reason="extraction_failed")
        return vectors

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> Answer:
        """One exchange; a connection that cannot be made is tried again `retries` times (embedding is
        idempotent), an answer that does not come is not."""
        headers = {**self.headers, **(headers or {})}
        timeout = timeout or self.timeout
        response = self._exchange(method, path, body, headers, timeout, self.retries if retries is None else retries)
        if response.status == 401:
            raise ExtractionUnavailable(KEY_REFUSED, reason="extraction_key_refused")
        if response.status != 200:
            raise ExtractionUnavailable(f"{DOWN}: it answered {response.status}", reason="extraction_failed")
        return response

    def _exchange(self, method, path, body, headers, timeout: float, retries: int) -> Answer:
        attempt = 0
        while True:
            try:
                return self.connections.exchange(method, path, body, headers, timeout)
            except ConnectFailed as failed:
                if attempt == retries:
                    raise self._unavailable(failed.cause, timeout) from None
            except (OSError, HTTPException) as error:
                raise self._unavailable(error, timeout) from None
            attempt += 1
            if attempt > 1:
                time.sleep(RETRY_BACKOFF_S * 2 ** (attempt - 2))

    def _unavailable(self, cause: BaseException, timeout: float) -> ExtractionUnavailable:
        if isinstance(cause, TimeoutError):
            setting = " (setting FACEREC_EXTRACTION_TIMEOUT_S)" if timeout == self.timeout else ""
            return ExtractionUnavailable(
                f"{DOWN}: no answer within {timeout:g} s{setting}", reason="extraction_timeout"
            )
        return ExtractionUnavailable(
            f"{DOWN} at {self.base_url} ({type(cause).__name__})", reason="extraction_unavailable"
        )


class ConnectFailed(Exception):
    """No connection could be made: nothing was sent, so the request may be tried again."""

    def __init__(self, cause: OSError):
        super().__init__(str(cause))
        self.cause = cause


class ConnectionPool:
    """Keep-alive connections to one server; each serves one exchange at a time, then waits idle for the next."""

    def __init__(self, base_url: str):
        try:
            parts = urlsplit(base_url)
        except ValueError as error:  # an unclosed [IPv6 address
            raise InvalidSetting(f"FEATURE_EXTRACTION_URL={base_url!r}: {error}") from None
        if problem := _url_problem(parts):
            raise InvalidSetting(f"FEATURE_EXTRACTION_URL={base_url!r}: {problem}")
        self.connection_class = HTTPSConnection if parts.scheme == "https" else HTTPConnection
        self.host, self.port, self.prefix = parts.hostname, parts.port, parts.path.rstrip("/")
        self._idle: list[HTTPConnection] = []
        self._lock = threading.Lock()

    def exchange(self, method: str, path: str, body: bytes | None, headers: dict[str, str], timeout: float) -> Answer:
        """Send and read one request. An idle connection that the server closed in the meantime (its
        keep-alive ran out, it restarted) is replaced by a new one and the request sent again."""
        connection = self._take_idle()
        if connection is not None:
            try:
                return self._send(connection, method, path, body, headers, timeout)
            except (RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                pass  # _send closed it; the request goes again on a new connection
        connection = self.connection_class(self.host, self.port, timeout=timeout)
        try:
            connection.connect()
        except OSError as error:
            connection.close()
            raise ConnectFailed(error) from None
        return self._send(connection, method, path, body, headers, timeout)

    def _send(self, connection: HTTPConnection, method, path, body, headers, timeout: float) -> Answer:
        try:
            connection.sock.settimeout(timeout)
            connection.request(method, self.prefix + path, body=body, headers=headers)
            response = connection.getresponse()
            answer = Answer(response.status, response.msg, response.read())
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            self._give_back(connection)
        return answer

    def _take_idle(self) -> HTTPConnection | None:
        with self._lock:
            return self._idle.pop() if self._idle else None

    def _give_back(self, connection: HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE_CONNECTIONS:
                self._idle.append(connection)
                return
        connection.close()


def _url_problem(parts: SplitResult) -> str | None:
    """Why a URL cannot be connected to (checked at start: at the first request it was a 500)."""
    if parts.scheme not in ("http", "https"):
        return "expected an http:// or https:// URL"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return "its port must be a number from 1 to 65535"
    if not parts.hostname:
        return "it names no host"
    try:
        parts.hostname.encode("idna")
    except UnicodeError:
        return f"{parts.hostname!r} is not a valid host name"
    return None


def _max_batch_of(health: dict) -> int | None:
    """The crops per call that feature_extraction takes; None where it does not say (an older version)."""
    value = health.get("max_batch")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _spec_of(health: dict) -> EmbeddingSpec:
    try:
        return EmbeddingSpec(
            model=health["model"],
            dim=int(health["dim"]),
            crop_size=int(health["crop_size"]),
            default_min_similarity=float(health["default_min_similarity"]),
            alignment=health["alignment"],
            channel_order=health["channel_order"],
        )
    except (KeyError, TypeError, ValueError):
        raise ExtractionUnavailable(MALFORMED_HEALTH, reason="extraction_failed") from None
