"""Validation helpers shared by the converters: integer parameters, sensor sizes, integer arrays."""

from __future__ import annotations

import numbers
from typing import Any, Optional, Tuple

import numpy as np

from ..errors import DTypeError, InputError, ParameterError


_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT64_MAX = 2**63 - 1
_MAX_SENSOR = 2**20  # largest sensor width / height and downsample factor (engine limit)




def _int_param(value: Any, name: str, low: int, high: Optional[int] = None, owner: str = "") -> int:
    """An integer parameter in [low, high]; bools and non-integers raise ParameterError."""
    where = f"{owner}: " if owner else ""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ParameterError(f"{where}{name} must be an integer, got {value!r}")
    result = int(value)
    if result < low or (high is not None and result > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ParameterError(f"{where}{name} must be {bound}, got {result}")
    return result


def _sensor_size(sensor_size: Any) -> Tuple[int, int]:
    """(width, height) from (width, height) or tonic's (width, height, polarities)."""
    try:
        items = tuple(sensor_size)
    except TypeError:
        raise ParameterError(
            f"sensor_size must be (width, height) or (width, height, polarities), got {sensor_size!r}"
        ) from None
    if len(items) not in (2, 3):
        raise ParameterError(
            f"sensor_size must be (width, height) or (width, height, polarities), got {sensor_size!r}"
        )
    width = _int_param(items[0], "sensor_size width", 1, _MAX_SENSOR)
    height = _int_param(items[1], "sensor_size height", 1, _MAX_SENSOR)
    if len(items) == 3:
        _int_param(items[2], "sensor_size polarities", 1)
    return width, height


def _polarity_channels(polarity: Any) -> int:
    if polarity == "split":
        return 2
    if polarity == "merge":
        return 1
    raise ParameterError(f"polarity must be 'split' or 'merge', got {polarity!r}")


def _integer_array(values: Any, name: str) -> np.ndarray:
    """A 1-D array of an integer (or bool) dtype; anything else raises DTypeError / InputError."""
    array = np.asarray(values)
    if array.dtype.kind not in "iub":
        raise DTypeError(
            f"event field {name!r} must have an integer dtype, got {array.dtype} "
            f"(convert it first, e.g. with .astype(np.int64))"
        )
    if array.ndim != 1:
        raise InputError(f"event field {name!r} must be 1-D, got shape {array.shape}")
    return array


def _int64_in_place(array: np.ndarray) -> np.ndarray:
    """`array` as native int64 the engine can read without a copy: the array itself when it is
    native int64 with aligned, whole-element strides (fields of unpadded records included),
    otherwise a converted copy."""
    if (
        array.dtype == np.dtype(np.int64)
        and array.dtype.isnative
        and array.ctypes.data % 8 == 0
        and array.strides[0] % 8 == 0
    ):
        return array
    return np.ascontiguousarray(array, dtype=np.int64)


def _first_outside(values: np.ndarray, limit: int) -> int:
    """Index of the first value outside [0, limit)."""
    return int(np.flatnonzero((values < 0) | (values >= limit))[0])
