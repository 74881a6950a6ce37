"""One settings object for both services and every tool, read from the environment."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path

from facerec.cores import usable_cores
from facerec.errors import InvalidSetting

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _setting(env: str, default, doc: str, **allowed):
    """allowed: what the variable may hold beyond its type (minimum, maximum, multiple_of, choices,
    above: more than that), where another value would make every request fail or do nothing."""
    return field(default=default, metadata={"env": env, "doc": doc, **allowed})


@dataclass(frozen=True)
class Settings:
    # Database
    database_url: str = _setting("DATABASE_URL", "", "libpq URI of PostgreSQL with pgvector")
    state_dir: Path = _setting(
        "FACEREC_STATE_DIR", PROJECT_ROOT / "var", "where the embedded database and saved config live"
    )
    db_pool_size: int = _setting("FACEREC_DB_POOL_SIZE", 4, "connections per worker", minimum=1)
    db_timeout_s: float = _setting("FACEREC_DB_TIMEOUT_S", 5.0, "wait for a connection", above=0)
    db_statement_timeout_s: float = _setting(
        "FACEREC_DB_STATEMENT_TIMEOUT_S", 30.0, "longest SQL statement (PostgreSQL statement_timeout); 0 = no limit"
    )
    # pgvector takes 1 to 1000; it warned of another value in the server's log only, and used 40.
    hnsw_ef_search: int = _setting(
        "FACEREC_HNSW_EF_SEARCH", 100, "HNSW candidate list size at query", minimum=1, maximum=1000
    )

    # Models
    embedding_model: str = _setting("FACEREC_EMBEDDING_MODEL", "arcface_mbf", "arcface_mbf or facenet")
    device: str = _setting("FACEREC_DEVICE", "auto", "auto, cpu or cuda", choices=("auto", "cpu", "cuda"))
    fp16: bool = _setting("FACEREC_FP16", False, "half precision on CUDA (ignored on the CPU)")
    threads: int = _setting("FACEREC_THREADS", 0, "intra-op threads per model call; 0 = by the machine's load")
    detector_weights: str = _setting("FACEREC_DETECTOR_WEIGHTS", "", "path to scrfd_500m_bnkps.onnx")
    arcface_weights: str = _setting("FACEREC_ARCFACE_WEIGHTS", "", "path to w600k_mbf.onnx")
    facenet_weights: str = _setting("FACEREC_FACENET_WEIGHTS", "", "path to facenet vggface2 .pt")
    batch_max: int = _setting("FACEREC_BATCH_MAX", 64, "crops per model call, across concurrent requests", minimum=1)
    batch_wait_ms: float = _setting("FACEREC_BATCH_WAIT_MS", 0.0, "wait for more crops before a model call")
    # The detector's coarsest stride is 32: another size gave its anchor grids the wrong shape (faces
    # that are not there, boxes in the wrong places).
    det_size: int = _setting("FACEREC_DET_SIZE", 640, "detector input size (square)", minimum=64, multiple_of=32)
    det_batch: int = _setting(
        "FACEREC_DET_BATCH", 0, "images per detector call when detecting many; 0 = 8 on a GPU, 1 on the CPU"
    )
    det_threshold: float = _setting("FACEREC_DET_THRESHOLD", 0.5, "minimum detection score", maximum=1)

    # Enrolment quality gate (recognition is not gated); see bench/RESULTS.md for the measurements
    min_face_px: int = _setting("FACEREC_MIN_FACE_PX", 32, "enrolment: shorter side of the face box, pixels")
    min_det_score: float = _setting("FACEREC_MIN_DET_SCORE", 0.6, "enrolment: minimum detection score", maximum=1)
    min_sharpness: float = _setting(
        "FACEREC_MIN_SHARPNESS", 0.0, "enrolment: minimum variance of the Laplacian of the aligned face; 0 = off"
    )

    # Services
    feature_extraction_url: str = _setting(
        "FEATURE_EXTRACTION_URL", "http://127.0.0.1:5000", "base URL of the feature_extraction service"
    )
    extraction_timeout_s: float = _setting(
        "FACEREC_EXTRACTION_TIMEOUT_S", 30.0, "longest silence of feature_extraction within a call", above=0
    )
    extraction_retries: int = _setting("FACEREC_EXTRACTION_RETRIES", 2, "retries on connection errors")
    gunicorn_timeout_s: int = _setting("FACEREC_GUNICORN_TIMEOUT", 120, "gunicorn restarts a worker silent this long")
    client_timeout_s: float = _setting(
        "FACEREC_CLIENT_TIMEOUT_S", 15.0, "a request thread gives up on a client silent this long; 0 = never"
    )
    malloc_trim_s: float = _setting(
        "FACEREC_MALLOC_TRIM_S", 5.0, "each worker gives freed heap memory back to the system this often; 0 = never"
    )

    # Access
    admin_keys: str = _setting("FACEREC_ADMIN_KEYS", "", "comma-separated admin API keys")
    client_keys: str = _setting("FACEREC_CLIENT_KEYS", "", "comma-separated client API keys")
    api_keys_file: str = _setting("FACEREC_API_KEYS_FILE", "", 'JSON file {"admin": [...], "client": [...]}')
    extraction_key: str = _setting(
        "FACEREC_EXTRACTION_KEY", "", "shared key that feature_extraction requires and face_detection sends"
    )

    # Limits
    max_request_bytes: int = _setting("FACEREC_MAX_REQUEST_BYTES", 32 * 1024 * 1024, "request body", minimum=1)
    max_image_pixels: int = _setting("FACEREC_MAX_IMAGE_PIXELS", 40_000_000, "decoded width x height", minimum=1)
    max_samples_per_request: int = _setting("FACEREC_MAX_SAMPLES", 100, "items per /update-samples", minimum=1)
    max_faces_per_image: int = _setting("FACEREC_MAX_FACES", 100, "faces kept per image", minimum=1)
    max_batch_crops: int = _setting("FACEREC_MAX_BATCH", 256, "crops per /extract_feature call", minimum=1)
    max_field_chars: int = _setting("FACEREC_MAX_FIELD_CHARS", 4096, "name, metadata, action")
    max_id_chars: int = _setting(
        "FACEREC_MAX_ID_CHARS",
        256,
        "sample id; at most 600, as it must fit a PostgreSQL index entry (2704 bytes)",
        minimum=1,
        maximum=600,
    )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Unset or empty variables keep their defaults; a value that is not what its setting takes
        stops the start with the variable named (a float of "abc", "nan" or "-1" would not)."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(f.metadata["env"])
            if raw is None or raw == "":
                continue
            kind = Path if isinstance(f.default, Path) else type(f.default)
            values[f.name] = _allowed(f.metadata, raw, _parsed(f.metadata["env"], raw, kind))
        return cls(**values)

    @property
    def database_config_file(self) -> Path:
        return Path(self.state_dir) / "database.json"

    @property
    def embedded_pgdata(self) -> Path:
        return Path(self.state_dir) / "pgdata"

    def intra_op_threads(self) -> int:
        if self.threads > 0:
            return self.threads
        return max(1, usable_cores() // int(os.environ.get("FACEREC_WORKERS", "1")))


_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _parsed(env: str, raw: str, kind: type):
    if kind is bool:
        if raw.strip().lower() not in _BOOLEANS:
            raise InvalidSetting(f"{env}={raw!r}: expected one of 1, true, yes, on, 0, false, no, off")
        return _BOOLEANS[raw.strip().lower()]
    if kind not in (int, float):
        return kind(raw)
    try:
        value = kind(raw)
    except ValueError:
        raise InvalidSetting(f"{env}={raw!r}: expected {'an integer' if kind is int else 'a number'}") from None
    if not (math.isfinite(value) and value >= 0):  # every count, size, limit and time here
        raise InvalidSetting(f"{env}={raw!r}: expected a finite number, 0 or more")
    return value


def _allowed(metadata: dict, raw: str, value):
    """The value, where its setting allows it; else its variable is named with what it takes."""
    if "choices" in metadata:
        expected = None if value in metadata["choices"] else "one of " + ", ".join(metadata["choices"])
    elif type(value) in (int, float):
        expected = _outside(metadata, value)
    else:
        expected = None
    if expected:
        raise InvalidSetting(f"{metadata['env']}={raw!r}: expected {expected}")
    return value


def _outside(metadata: dict, value: float) -> str | None:
    """What the number should have been, if its setting's bounds rule it out (every number is 0 or more)."""
    low, high, step = metadata.get("minimum", 0), metadata.get("maximum"), metadata.get("multiple_of")
    if step is not None and (value % step or value < low):
        return f"a multiple of {step}, {low} or more"
    if high is not None and not low <= value <= high:
        return f"{low} to {high}"
    if value < low:
        return f"{low} or more"
    if "above" in metadata and not value > metadata["above"]:
        return f"more than {metadata['above']}"
    return None


@cache
def get_settings() -> Settings:
    return Settings.from_env()
