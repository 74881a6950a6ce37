"""The compact binary form between the services: NumPy .npy arrays, never pickles."""

from __future__ import annotations

import io

import numpy as np

from facerec.errors import BadRequest

NPY_MEDIA_TYPE = "application/x-npy"


def to_npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def from_npy(data: bytes, dtype: np.dtype, ndim: int) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise BadRequest("body is not a valid .npy array", reason="invalid_npy") from None
    if array.dtype != dtype or array.ndim != ndim:
        raise BadRequest(
            f"expected a {ndim}-d {np.dtype(dtype).name} array, got {array.ndim}-d {array.dtype.name}",
            reason="invalid_npy",
        )
    return array
