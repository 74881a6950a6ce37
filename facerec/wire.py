"""The compact binary form between the services: NumPy .npy arrays, never pickles."""

from __future__ import annotations

import io
import math

import numpy as np
from numpy.lib import format as npy_format

from facerec.errors import BadRequest

NPY_MEDIA_TYPE = "application/x-npy"
_HEADER_READERS = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}


def to_npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def from_npy(data: bytes, dtype: np.dtype, ndim: int) -> np.ndarray:
    """The array in data, which must be of dtype and ndim and hold exactly the bytes its header declares.

    The size is checked before anything is allocated: np.load would first allocate whatever shape a
    forged header declares (terabytes), then fail on the short body.
    """
    stream = io.BytesIO(data)
    try:
        version = npy_format.read_magic(stream)
        shape, fortran_order, stored_dtype = _HEADER_READERS[version](stream)
    except (ValueError, OSError, EOFError, KeyError):
        raise _invalid("body is not a valid .npy array") from None
    if any(size < 0 for size in shape):  # two negative sizes make a positive product
        raise _invalid("body is not a valid .npy array: a negative size in its shape")
    if stored_dtype != dtype or len(shape) != ndim:
        raise _invalid(f"expected a {ndim}-d {np.dtype(dtype).name} array, got {len(shape)}-d {stored_dtype.name}")
    if fortran_order or len(data) - stream.tell() != math.prod(shape) * stored_dtype.itemsize:
        raise _invalid("body is not a valid .npy array: its length does not match its header")
    return np.frombuffer(data, stored_dtype, offset=stream.tell()).reshape(shape).copy()


def _invalid(message: str) -> BadRequest:
    return BadRequest(message, reason="invalid_npy")
