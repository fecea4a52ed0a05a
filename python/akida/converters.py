"""Converters from everyday data to the spikes an akida model takes.

Every converter returns ``uint8`` arrays shaped ``(N, H, W, C)`` (or :class:`akida.Events`),
ready for a model whose first layer is ``InputData(W, H, C, input_bits=...)`` or
``InputConvolutional``. The rules are exact and documented in ``docs/converters.md``.

- Event cameras: :func:`events_to_packets` (with :func:`packet_shape`), :func:`read_nmnist`,
  :func:`write_nmnist`, :func:`synthetic_saccade_events`.
- Pixels: :func:`pixels_to_spikes`, :func:`quantize`, :func:`edge_kernels`,
  :func:`edge_front_end`.
- Tabular data: :class:`QuantileOneHotEncoder`.

Event streams are numpy structured arrays with fields ``x``, ``y``, ``t``, ``p``: the convention
of the ``tonic`` library, so its datasets plug in directly.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any, Iterable, Optional, Sequence, Tuple, Union

import numpy as np

from . import _akida
from .errors import AkidaError, DTypeError, InputError, ParameterError

__all__ = [
    "EVENT_DTYPE",
    "NotFittedError",
    "QuantileOneHotEncoder",
    "edge_front_end",
    "edge_kernels",
    "events_to_packets",
    "packet_shape",
    "pixels_to_spikes",
    "quantize",
    "read_nmnist",
    "synthetic_saccade_events",
    "write_nmnist",
]

#: dtype of the event streams returned by :func:`read_nmnist` and :func:`synthetic_saccade_events`.
EVENT_DTYPE = np.dtype([("x", np.uint16), ("y", np.uint16), ("t", np.int64), ("p", np.uint8)])

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT64_MAX = 2**63 - 1
_MAX_SENSOR = 2**20  # largest sensor width / height and downsample factor (engine limit)


class NotFittedError(AkidaError, ValueError, AttributeError):
    """A converter that learns from data (:class:`QuantileOneHotEncoder`) is used before ``fit``."""


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Event cameras
# --------------------------------------------------------------------------------------------


def packet_shape(sensor_size: Any, polarity: str = "split", downsample: int = 1) -> Tuple[int, int, int]:
    """Shape ``(height, width, channels)`` of one packet made by :func:`events_to_packets`.

    Parameters
    ----------
    sensor_size : tuple
        ``(width, height)`` or tonic's ``(width, height, polarities)``.
    polarity : {"split", "merge"}
        ``"split"`` gives 2 channels (0 = OFF, 1 = ON), ``"merge"`` 1 channel.
    downsample : int
        Spatial reduction factor (>= 1): cell ``(y // downsample, x // downsample)``.

    Returns
    -------
    tuple of int
        ``(ceil(height / downsample), ceil(width / downsample), channels)``; build the model input
        as ``akida.InputData(width', height', channels, input_bits=...)``.

    Examples
    --------
    >>> packet_shape((34, 34, 2), "split", downsample=2)
    (17, 17, 2)
    """
    width, height = _sensor_size(sensor_size)
    channels = _polarity_channels(polarity)
    downsample = _int_param(downsample, "downsample", 1, _MAX_SENSOR)
    return (-(-height // downsample), -(-width // downsample), channels)


def events_to_packets(
    events: Optional[np.ndarray] = None,
    *,
    x: Any = None,
    y: Any = None,
    t: Any = None,
    p: Any = None,
    sensor_size: Any,
    packet_size: Optional[int] = None,
    time_window: Optional[int] = None,
    polarity: str = "split",
    downsample: int = 1,
    input_bits: int = 1,
    as_events: bool = False,
) -> Union[np.ndarray, "_akida.Events"]:
    """Accumulate an event-camera stream into dense spike packets.

    Parameters
    ----------
    events : numpy structured array, optional
        Events with fields ``x``, ``y``, ``t`` and ``p`` (tonic's convention; ``p`` may be
        missing with ``polarity="merge"``). Give either ``events`` or the separate arrays.
    x, y, t, p : array_like, optional
        The same fields as separate 1-D integer (``p``: integer or bool) arrays of one length.
    sensor_size : tuple
        ``(width, height)`` or tonic's ``(width, height, polarities)``. Every event must have
        ``0 <= x < width`` and ``0 <= y < height``.
    packet_size : int, optional
        Packets by count: consecutive runs of ``packet_size`` events in the given order; the last
        packet may be shorter.
    time_window : int, optional
        Packets by time (same unit as ``t``, which must be non-decreasing): packet ``k`` holds the
        events with ``t0 + k * time_window <= t < t0 + (k + 1) * time_window``, ``t0`` the first
        event's time. Empty windows between the first and last event give all-zero packets.
        Exactly one of ``packet_size`` and ``time_window`` is given.
    polarity : {"split", "merge"}
        ``"split"``: 2 channels, ``p > 0`` goes to channel 1 (ON), other events to channel 0
        (OFF). ``"merge"``: 1 channel holding both.
    downsample : int
        Event ``(x, y)`` lands in cell ``(y // downsample, x // downsample)``.
    input_bits : int
        1..8. A cell holds the number of its events in the packet, saturating at
        ``2**input_bits - 1`` (``input_bits=1`` gives binary spikes).
    as_events : bool
        Return :class:`akida.Events` (``Events.from_dense`` of the dense batch) instead.

    Returns
    -------
    numpy.ndarray or akida.Events
        ``uint8`` array ``(num_packets, H', W', C)`` with ``(H', W', C)`` given by
        :func:`packet_shape`, ready for ``akida.InputData(W', H', C, input_bits=input_bits)``.
        No events give 0 packets.

    Raises
    ------
    ParameterError
        Bad ``sensor_size``, ``packet_size``/``time_window`` (not exactly one, or < 1),
        ``polarity``, ``downsample`` or ``input_bits``.
    DTypeError
        A field that is not an integer array (``p`` may also be bool).
    InputError
        Missing fields, arrays of different lengths or not 1-D, an event outside the sensor
        (the message names the event index and the sensor size), decreasing timestamps with
        ``time_window``, or an output larger than 4 GiB (e.g. a ``time_window`` far shorter
        than the stream).

    Examples
    --------
    >>> ev = np.zeros(3, dtype=EVENT_DTYPE)
    >>> ev["x"], ev["y"], ev["t"], ev["p"] = [0, 1, 1], [0, 0, 0], [0, 5, 12], [1, 0, 1]
    >>> events_to_packets(ev, sensor_size=(2, 1), time_window=10)[:, 0]
    array([[[0, 1],
            [1, 0]],
    <BLANKLINE>
           [[0, 0],
            [0, 1]]], dtype=uint8)
    """
    width, height = _sensor_size(sensor_size)
    channels = _polarity_channels(polarity)
    downsample = _int_param(downsample, "downsample", 1, _MAX_SENSOR)
    input_bits = _int_param(input_bits, "input_bits", 1, 8)
    if (packet_size is None) == (time_window is None):
        raise ParameterError("give exactly one of packet_size and time_window")
    if packet_size is not None:
        packet_size = _int_param(packet_size, "packet_size", 1)
    else:
        time_window = _int_param(time_window, "time_window", 1, _INT64_MAX)

    separate = {"x": x, "y": y, "t": t, "p": p}
    fields: dict[str, Any]
    if events is not None:
        given = [k for k, v in separate.items() if v is not None]
        if given:
            raise ParameterError(f"give either events or the separate arrays, not both (got events and {given})")
        events = np.asarray(events)
        names = events.dtype.names
        if names is None:
            raise InputError(
                "events must be a structured array with fields x, y, t, p "
                f"(got a plain array of dtype {events.dtype}); or pass x=, y=, t=, p="
            )
        required = ("x", "y", "t") if channels == 1 else ("x", "y", "t", "p")
        missing = [k for k in required if k not in names]
        if missing:
            raise InputError(f"events has no field(s) {missing} (fields: {list(names)})")
        if events.ndim != 1:
            raise InputError(f"events must be 1-D, got shape {events.shape}")
        fields = {k: events[k] for k in ("x", "y", "t", "p") if k in names}
    else:
        required = ("x", "y", "t") if channels == 1 else ("x", "y", "t", "p")
        missing = [k for k in required if separate[k] is None]
        if missing:
            raise ParameterError(f"events_to_packets needs events or the arrays {missing}")
        fields = {k: v for k, v in separate.items() if v is not None}

    arrays = {k: _integer_array(v, k) for k, v in fields.items()}
    n = len(arrays["x"])
    for a in arrays.values():
        if len(a) != n:
            lengths = {name: len(arr) for name, arr in arrays.items()}
            raise InputError(f"event fields have different lengths: {lengths}")

    ax, ay = arrays["x"], arrays["y"]
    # uint64 coordinates beyond the int64 range are outside the sensor: report the first such
    # event here, as the engine would for any other event outside it.
    for a in (ax, ay):
        if a.dtype == np.uint64 and a.size and int(a.max()) > _INT64_MAX:
            outside = (ax < 0) | (ax >= width) | (ay < 0) | (ay >= height)
            i = int(np.flatnonzero(outside)[0])
            raise InputError(
                f"event {i} at x={int(ax[i])}, y={int(ay[i])} is outside the {width}x{height} sensor"
            )
    at = arrays["t"]
    if at.dtype == np.uint64 and at.size and int(at.max()) > _INT64_MAX:
        raise InputError(f"timestamps above {_INT64_MAX} are not supported")
    # The engine reads int64 arrays in place, strided ones too (a field of a tonic-style
    # structured array needs no copy); other integer types are converted once.
    x64, y64, t64 = (_int64_in_place(a) for a in (ax, ay, at))
    if channels == 1:
        p64 = np.zeros(n, dtype=np.int64)
    elif arrays["p"].dtype == np.int64:
        p64 = _int64_in_place(arrays["p"])
    else:  # only the sign matters: p > 0 is ON
        p64 = (arrays["p"] > 0).astype(np.int64)

    dense: np.ndarray = _akida.packetize(
        x64, y64, t64, p64, width, height, channels, packet_size, time_window, downsample, input_bits
    )
    if as_events:
        return _akida.Events.from_dense(dense)
    return dense


def read_nmnist(path: Union[str, os.PathLike[str]]) -> np.ndarray:
    """Read an event file in the N-MNIST binary format.

    Each event takes 40 bits (5 bytes, big-endian fields): byte 0 = x, byte 1 = y, bit 7 of byte 2
    = polarity (1 = ON), and the timestamp in microseconds (23 bits) =
    ``(byte2 & 0x7F) << 16 | byte3 << 8 | byte4``. Events are returned in file order; the
    timestamp-overflow marker events that some readers interpret for recordings longer than
    ``2**23`` µs are not interpreted (N-MNIST recordings are ~0.3 s).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.bin`` file.

    Returns
    -------
    numpy.ndarray
        Structured array of dtype :data:`EVENT_DTYPE`: ``x`` (uint16), ``y`` (uint16),
        ``t`` (int64, µs), ``p`` (uint8, 0 or 1).

    Raises
    ------
    InputError
        The file length is not a multiple of 5 (truncated or not an N-MNIST file).
    FileNotFoundError, PermissionError, IsADirectoryError
        File-system failures.
    """
    with open(path, "rb") as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8)
    if raw.size % 5:
        raise InputError(
            f"{os.fspath(path)!r} is not an N-MNIST event file: its length ({raw.size} bytes) "
            "is not a multiple of 5 (truncated?)"
        )
    rec = raw.reshape(-1, 5)
    events = np.empty(len(rec), dtype=EVENT_DTYPE)
    events["x"] = rec[:, 0]
    events["y"] = rec[:, 1]
    events["p"] = rec[:, 2] >> 7
    events["t"] = (
        ((rec[:, 2].astype(np.int64) & 0x7F) << 16) | (rec[:, 3].astype(np.int64) << 8) | rec[:, 4]
    )
    return events


def write_nmnist(path: Union[str, os.PathLike[str]], events: np.ndarray) -> None:
    """Write events in the N-MNIST binary format (see :func:`read_nmnist`).

    Parameters
    ----------
    path : str or os.PathLike
        Destination file (replaced if it exists).
    events : numpy structured array
        Fields ``x``, ``y``, ``t``, ``p`` (integer; ``p`` may be bool), in the order to write.
        ``x`` and ``y`` must be in 0..255, ``t`` in 0..2**23 - 1 µs; ``p > 0`` is written as ON.

    Raises
    ------
    InputError
        Missing fields or a value the format cannot hold (the message names the event index).
    DTypeError
        A field that is not an integer (or bool) array.
    """
    events = np.asarray(events)
    names = events.dtype.names or ()
    missing = [k for k in ("x", "y", "t", "p") if k not in names]
    if missing:
        raise InputError(f"events has no field(s) {missing} (fields: {list(names)})")
    if events.ndim != 1:
        raise InputError(f"events must be 1-D, got shape {events.shape}")
    fields = {k: _integer_array(events[k], k) for k in ("x", "y", "t", "p")}
    for name, limit in (("x", 256), ("y", 256), ("t", 2**23)):
        a = fields[name]
        if a.size and (int(a.min()) < 0 or int(a.max()) >= limit):
            i = _first_outside(a, limit)
            raise InputError(
                f"event {i}: {name}={int(a[i])} does not fit the N-MNIST format (0 <= {name} < {limit})"
            )
    out = np.empty((len(events), 5), dtype=np.uint8)
    t = fields["t"].astype(np.int64)
    out[:, 0] = fields["x"]
    out[:, 1] = fields["y"]
    out[:, 2] = ((fields["p"] > 0).astype(np.uint8) << 7) | ((t >> 16) & 0x7F).astype(np.uint8)
    out[:, 3] = (t >> 8) & 0xFF
    out[:, 4] = t & 0xFF
    with open(path, "wb") as f:
        f.write(out.tobytes())


# Log-intensity floor of the synthetic DVS pixel, as a fraction of full scale: a dark pixel
# sees log(0 + _LOG_FLOOR), so black-to-white edges give log(1 / _LOG_FLOOR + 1) of contrast.
_LOG_FLOOR = 0.1


def _shift_bilinear(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``out[y, x] = image[y - dy, x - dx]`` with bilinear interpolation; outside reads 0."""
    h, w = image.shape
    fx, fy = math.floor(dx), math.floor(dy)
    ax, ay = dx - fx, dy - fy

    def window(oy: int, ox: int) -> np.ndarray:
        # image[y - oy, x - ox] for the whole output grid, zero outside.
        out = np.zeros((h, w), dtype=np.float64)
        ys, yd = max(0, oy), max(0, -oy)
        xs, xd = max(0, ox), max(0, -ox)
        hh, ww = h - abs(oy), w - abs(ox)
        if hh > 0 and ww > 0:
            out[ys : ys + hh, xs : xs + ww] = image[yd : yd + hh, xd : xd + ww]
        return out

    return (
        (1 - ay) * (1 - ax) * window(fy, fx)
        + (1 - ay) * ax * window(fy, fx + 1)
        + ay * (1 - ax) * window(fy + 1, fx)
        + ay * ax * window(fy + 1, fx + 1)
    )


def synthetic_saccade_events(
    image: np.ndarray,
    num_saccades: int = 3,
    saccade_duration_us: int = 100_000,
    steps_per_saccade: int = 20,
    max_shift: float = 2,
    threshold: float = 0.15,
    seed: int = 0,
) -> np.ndarray:
    """SYNTHETIC event-camera stream of a still image moved in saccades (N-MNIST style).

    This is a simulation, not a recording: it imitates the way N-MNIST was recorded (a sensor
    moved in three saccades over a still digit) so that event pipelines can be developed and
    tested without downloads. Its statistics differ from a real sensor (no noise, no refractory
    period, ideal pixels).

    Method: the image is displaced along the triangle of vertices (in pixels, ``m = max_shift``)
    ``(dx, dy) = (-m, +m) -> (0, -m) -> (+m, +m) -> (-m, +m)``, saccade ``i`` following edge
    ``i % 3``, each edge in ``steps_per_saccade`` equal steps over ``saccade_duration_us``.
    Sub-pixel displacements use bilinear interpolation (content leaving the frame is lost,
    zeros come in: pad the image by ``ceil(max_shift)`` to keep it in view). Each pixel works
    like a DVS pixel: with ``L = log(I / 255 + 0.1)`` and ``R`` its level at its last event
    (initially ``L`` at the start position), a step that brings ``D = L - R`` to ``|D| >= n *
    threshold`` emits ``n = floor(|D| / threshold)`` events of polarity ON (``p = 1``) when
    ``D > 0`` or OFF (``p = 0``), and ``R`` moves by ``n * threshold`` toward ``L``. Their
    timestamps are drawn uniformly (seeded) within the step.

    Parameters
    ----------
    image : numpy.ndarray
        ``uint8`` grayscale image ``(H, W)``.
    num_saccades : int
        Number of saccades (>= 1).
    saccade_duration_us : int
        Duration of a saccade in microseconds (>= steps_per_saccade).
    steps_per_saccade : int
        Frames simulated per saccade (>= 1).
    max_shift : float
        Largest displacement along each axis, in pixels (>= 0).
    threshold : float
        Contrast threshold in log-intensity units (> 0).
    seed : int
        Seed of the timestamp draws; the same arguments give the same events.

    Returns
    -------
    numpy.ndarray
        Structured array of dtype :data:`EVENT_DTYPE` (fields x, y, t, p) sorted by ``t``, with
        ``0 <= x < W``, ``0 <= y < H`` and ``0 <= t < num_saccades * saccade_duration_us``;
        sensor size ``(W, H)``.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise DTypeError(f"image must be uint8, got {image.dtype}")
    if image.ndim != 2 or image.size == 0:
        raise InputError(f"image must be a non-empty 2-D grayscale array (H, W), got shape {image.shape}")
    owner = "synthetic_saccade_events"
    num_saccades = _int_param(num_saccades, "num_saccades", 1, owner=owner)
    steps = _int_param(steps_per_saccade, "steps_per_saccade", 1, owner=owner)
    duration = _int_param(saccade_duration_us, "saccade_duration_us", steps, owner=owner)
    if not isinstance(max_shift, numbers.Real) or not math.isfinite(max_shift) or max_shift < 0:
        raise ParameterError(f"{owner}: max_shift must be a finite number >= 0, got {max_shift!r}")
    if not isinstance(threshold, numbers.Real) or not math.isfinite(threshold) or threshold <= 0:
        raise ParameterError(f"{owner}: threshold must be a finite number > 0, got {threshold!r}")
    seed = _int_param(seed, "seed", 0, owner=owner)

    m = float(max_shift)
    vertices = [(-m, m), (0.0, -m), (m, m)]
    source = image.astype(np.float64)
    rng = np.random.default_rng(seed)

    def log_frame(dx: float, dy: float) -> np.ndarray:
        return np.log(_shift_bilinear(source, dx, dy) / 255.0 + _LOG_FLOOR)

    reference = log_frame(*vertices[0])
    step_len = duration / steps
    xs, ys, ts, ps = [], [], [], []
    for s in range(num_saccades):
        (x0, y0), (x1, y1) = vertices[s % 3], vertices[(s + 1) % 3]
        for j in range(steps):
            a = (j + 1) / steps
            level = log_frame(x0 + a * (x1 - x0), y0 + a * (y1 - y0))
            delta = level - reference
            count = np.floor(np.abs(delta) / threshold).astype(np.int64)
            iy, ix = np.nonzero(count)
            if iy.size == 0:
                continue
            n = count[iy, ix]
            on = delta[iy, ix] > 0
            reference[iy, ix] += np.where(on, n, -n) * threshold
            ex, ey, ep = np.repeat(ix, n), np.repeat(iy, n), np.repeat(on, n)
            start = (s * steps + j) * step_len
            et = np.floor(start + rng.random(ex.size) * step_len).astype(np.int64)
            xs.append(ex)
            ys.append(ey)
            ts.append(et)
            ps.append(ep)
    if not xs:
        return np.zeros(0, dtype=EVENT_DTYPE)
    ex, ey, et, ep = (np.concatenate(v) for v in (xs, ys, ts, ps))
    order = np.argsort(et, kind="stable")
    events = np.empty(ex.size, dtype=EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = ex[order], ey[order], et[order], ep[order]
    return events


# --------------------------------------------------------------------------------------------
# Pixels
# --------------------------------------------------------------------------------------------


def _images_nhwc(images: Any) -> np.ndarray:
    array: np.ndarray = np.asarray(images)
    if array.dtype != np.uint8:
        raise DTypeError(f"images must be uint8, got {array.dtype}")
    if array.ndim == 3:
        return array[..., None]
    if array.ndim != 4:
        raise InputError(f"images must be (N, H, W) or (N, H, W, C), got shape {array.shape}")
    return array


def pixels_to_spikes(images: Any, thresholds: Sequence[int] = (127,)) -> np.ndarray:
    """Multi-level threshold spikes from 8-bit images.

    The output value of a pixel is the number of thresholds it exceeds (strictly greater):
    one threshold gives binary spikes, ``k`` thresholds values ``0..k``.

    Parameters
    ----------
    images : numpy.ndarray
        ``uint8`` array ``(N, H, W, C)``, or ``(N, H, W)`` (a channel axis of 1 is added).
    thresholds : sequence of int
        1 to 255 strictly increasing thresholds in 0..255.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array ``(N, H, W, C)`` for ``akida.InputData(W, H, C, input_bits=b)`` with
        ``b = len(thresholds).bit_length()``.

    Examples
    --------
    >>> pixels_to_spikes(np.array([[[0, 100, 128, 255]]], np.uint8), thresholds=(99, 127))[..., 0]
    array([[[0, 1, 2, 2]]], dtype=uint8)
    """
    images = _images_nhwc(images)
    try:
        levels = [t for t in thresholds]
    except TypeError:
        raise ParameterError(f"thresholds must be a sequence of integers, got {thresholds!r}") from None
    if not 1 <= len(levels) <= 255:
        raise ParameterError(f"pixels_to_spikes takes 1 to 255 thresholds, got {len(levels)}")
    levels = [_int_param(v, "threshold", 0, 255, owner="pixels_to_spikes") for v in levels]
    if any(b <= a for a, b in zip(levels, levels[1:])):
        raise ParameterError(f"thresholds must be strictly increasing, got {levels}")
    lut = np.searchsorted(np.array(levels), np.arange(256), side="left").astype(np.uint8)
    spikes: np.ndarray = lut[images]
    return spikes


def quantize(images: Any, input_bits: int) -> np.ndarray:
    """Keep the ``input_bits`` most significant bits of 8-bit images: ``pixel >> (8 - input_bits)``.

    Parameters
    ----------
    images : numpy.ndarray
        ``uint8`` array ``(N, H, W, C)`` or ``(N, H, W)`` (a channel axis of 1 is added).
    input_bits : int
        1..8.

    Returns
    -------
    numpy.ndarray
        ``uint8`` ``(N, H, W, C)`` with values below ``2**input_bits``.
    """
    images = _images_nhwc(images)
    input_bits = _int_param(input_bits, "input_bits", 1, 8, owner="quantize")
    shifted: np.ndarray = images >> np.uint8(8 - input_bits)
    return shifted


def _steered_kernel(size: int, angle: float, sigma: float) -> np.ndarray:
    r = np.arange(size) - size // 2
    b, a = np.meshgrid(r, r, indexing="ij")  # b: row offset (y), a: column offset (x)
    k = (a * math.cos(angle) + b * math.sin(angle)) * np.exp(-(a * a + b * b) / (2 * sigma * sigma))
    kernel: np.ndarray = np.round(7 * k / np.abs(k).max())
    return kernel


_SOBEL_0 = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
_SOBEL_45 = np.array([[-2, -1, 0], [-1, 0, 1], [0, 1, 2]])


def edge_kernels(size: int = 3) -> np.ndarray:
    """A preset of 8 oriented edge kernels for an InputConvolutional layer.

    Neuron ``k`` responds where brightness increases in direction ``k * 45`` degrees, measured
    from the x axis (right) towards the y axis (down, image rows): 0 = brighter to the right,
    1 = bottom-right, 2 = below, 3 = bottom-left, 4 = left, 5 = top-left, 6 = above,
    7 = top-right. Kernel ``k + 4`` is ``-kernel k``; every kernel sums to 0.

    - ``size=3``: Sobel kernels (values -2..2). A full-contrast step edge (0 to 255) through the
      centre gives a potential of ``4 * 255 = 1020``.
    - ``size=5``: derivative-of-Gaussian kernels (sigma 1.25) scaled to -7..7. A full-contrast
      step edge gives ``full_step_response(5)`` (see ``docs/converters.md``).

    Parameters
    ----------
    size : {3, 5}

    Returns
    -------
    numpy.ndarray
        ``int8`` weights ``(size, size, 1, 8)`` (kernel rows = y, columns = x), within the 4-bit
        range -7..7. InputConvolutional computes a cross-correlation, so the kernels apply as
        written.
    """
    if size not in (3, 5) or isinstance(size, bool):
        raise ParameterError(f"edge_kernels: size must be 3 or 5, got {size!r}")
    kernels = []
    if size == 3:
        base = [_SOBEL_0, _SOBEL_45]
        # rot90 with k=-1 turns "brighter to the right" into "brighter below" (rows go down).
        for k in range(4):
            kernels.append(np.rot90(base[k % 2], -(k // 2)))
        kernels += [-k for k in kernels]
    else:
        kernels = [_steered_kernel(5, k * math.pi / 4, 1.25) for k in range(8)]
    return np.stack(kernels, axis=-1)[:, :, None, :].astype(np.int8)


def _full_step_response(kernels: np.ndarray) -> int:
    """Potential of kernel 0 on a full-contrast vertical step edge (bright right of the centre column)."""
    k0 = kernels[:, :, 0, 0].astype(np.int64)
    c = k0.shape[1] // 2
    return int(255 * k0[:, c + 1 :].sum())


def edge_front_end(
    input_width: int,
    input_height: int,
    threshold: Optional[int] = None,
    size: int = 3,
    pixel_neuron: bool = True,
    wta: bool = False,
    name: str = "",
) -> "_akida.InputConvolutional":
    """An InputConvolutional layer that turns grayscale pixels into oriented-edge spikes.

    The layer (not yet in a model) takes ``(input_height, input_width, 1)`` uint8 images, has
    ``Same`` convolution, stride 1, ``weights_bits=4``, binary activations and the kernels of
    :func:`edge_kernels` (neurons 0..7). With ``pixel_neuron=True`` a 9th neuron has a single
    centre weight 7 and threshold ``7 * 127``: it fires where the pixel is above 127.

    Parameters
    ----------
    input_width, input_height : int
        Image size.
    threshold : int, optional
        Firing threshold of the 8 edge neurons (a neuron fires when its potential is above it).
        Default: 450 for ``size=3``; for ``size=5`` the same fraction (450 / 1020) of the
        full-contrast step response of the 5x5 kernels.
    size : {3, 5}
        Kernel size.
    pixel_neuron : bool
        Add the 9th (pixel > 127) neuron.
    wta : bool
        Make the 8 edge neurons one winner-take-all group through the layer variable
        ``wta_groups``: at each position only the edge neuron with the largest potential (the
        lowest index on ties) may fire; the pixel neuron is a group of its own.
    name : str
        Layer name.

    Returns
    -------
    akida.InputConvolutional
        Add it as the first layer of a model.
    """
    kernels = edge_kernels(size)
    if threshold is None:
        threshold = 450 if size == 3 else round(450 * _full_step_response(kernels) / 1020)
    threshold = _int_param(threshold, "threshold", _INT32_MIN, _INT32_MAX, owner="edge_front_end")
    num_neurons = 9 if pixel_neuron else 8
    layer = _akida.InputConvolutional(
        input_width=input_width,
        input_height=input_height,
        input_channels=1,
        kernel_width=size,
        kernel_height=size,
        num_neurons=num_neurons,
        name=name,
        weights_bits=4,
        threshold_fire=threshold,
    )
    weights = np.zeros((size, size, 1, num_neurons), dtype=np.int8)
    weights[..., :8] = kernels
    thresholds = np.full(num_neurons, threshold, dtype=np.int32)
    if pixel_neuron:
        weights[size // 2, size // 2, 0, 8] = 7
        thresholds[8] = 7 * 127
    layer.set_variable("weights", weights)
    layer.set_variable("threshold_fire", thresholds)
    if wta:
        groups = np.zeros(num_neurons, dtype=np.int32)
        if pixel_neuron:
            groups[8] = 1
        layer.set_variable("wta_groups", groups)
    return layer


# --------------------------------------------------------------------------------------------
# Tabular data
# --------------------------------------------------------------------------------------------


def _is_nan(value: Any) -> bool:
    try:
        return bool(value != value)
    except Exception:  # noqa: BLE001 - objects with exotic comparisons are not NaN
        return False


class QuantileOneHotEncoder:
    """One spike per column for tabular data: quantile bins and categories, one-hot.

    - Numeric column: ``fit`` computes the edges ``np.quantile(column, linspace(0, 1, n_bins + 1))``
      (numpy's default linear method) and keeps the unique ones, ``e_0 < ... < e_B``, giving
      ``B`` bins (at least 1); a value ``v`` activates bin ``searchsorted(e_1..e_{B-1}, v,
      side="right")``: bins are ``[e_i, e_{i+1})``, values below the training range go to the
      first bin, values at or above the last edge to the last bin. NaN raises InputError.
    - Categorical column: one input per category seen by ``fit`` (sorted when the values are
      orderable, else in order of first appearance); an unseen category raises InputError
      naming the column and the value. Float NaN is not accepted as a category; ``None`` is.

    The inputs of the columns are laid out one after the other in column order
    (:attr:`column_slices`); every row gives exactly one spike per column.

    Parameters
    ----------
    n_bins : int
        Quantile bins per numeric column (>= 1; fewer when edges coincide).
    categorical_columns : iterable of int
        Indices of the categorical columns (negative indices count from the end).

    Examples
    --------
    >>> enc = QuantileOneHotEncoder(n_bins=2, categorical_columns=[1])
    >>> X = np.array([[1.0, "a"], [2.0, "b"], [3.0, "a"]], dtype=object)
    >>> enc.fit_transform(X)[:, 0, 0]
    array([[1, 0, 1, 0],
           [0, 1, 0, 1],
           [0, 1, 1, 0]], dtype=uint8)
    >>> enc.input_shape
    (1, 1, 4)
    """

    def __init__(self, n_bins: int = 10, categorical_columns: Iterable[int] = ()):
        self.n_bins = _int_param(n_bins, "n_bins", 1, 255, owner="QuantileOneHotEncoder")
        try:
            cats = list(categorical_columns)
        except TypeError:
            raise ParameterError(
                f"QuantileOneHotEncoder: categorical_columns must be a sequence of column indices, "
                f"got {categorical_columns!r}"
            ) from None
        self.categorical_columns = tuple(
            _int_param(c, "categorical column", -(2**31), owner="QuantileOneHotEncoder") for c in cats
        )
        self._fitted = False

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _as_2d(X: Any) -> np.ndarray:
        if isinstance(X, np.ndarray):
            array = X
        else:
            try:
                array = np.asarray(X)
            except Exception:  # noqa: BLE001 - ragged input
                array = np.asarray(X, dtype=object)
        if array.ndim != 2:
            raise InputError(f"X must be 2-D (rows, columns), got shape {array.shape}")
        return array

    def _numeric(self, column: np.ndarray, j: int) -> np.ndarray:
        try:
            values = column.astype(np.float64)
        except (TypeError, ValueError):
            bad = next(v for v in column if not _castable_float(v))
            raise InputError(f"column {j} is numeric but holds the non-numeric value {bad!r}") from None
        nan = np.isnan(values)
        if nan.any():
            raise InputError(f"column {j} (numeric) has NaN at row {int(np.flatnonzero(nan)[0])}")
        return values

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise NotFittedError("this QuantileOneHotEncoder is not fitted yet: call fit(X) first")

    # -- API ----------------------------------------------------------------------------------

    def fit(self, X: Any) -> "QuantileOneHotEncoder":
        """Learn the bin edges and the categories from training rows ``X`` (2-D). Returns self."""
        X = self._as_2d(X)
        n_rows, n_cols = X.shape
        if n_rows == 0 or n_cols == 0:
            raise InputError(f"fit needs at least one row and one column, got shape {X.shape}")
        categorical = set()
        for c in self.categorical_columns:
            if not -n_cols <= c < n_cols:
                raise ParameterError(
                    f"QuantileOneHotEncoder: categorical column {c} does not exist (X has {n_cols} columns)"
                )
            if c % n_cols in categorical:
                raise ParameterError(f"QuantileOneHotEncoder: categorical column {c} is given twice")
            categorical.add(c % n_cols)
        bin_edges: list[Optional[np.ndarray]] = []
        categories: list[Optional[list[Any]]] = []
        slices: list[slice] = []
        start = 0
        for j in range(n_cols):
            column = X[:, j]
            if j in categorical:
                for i, v in enumerate(column):
                    if _is_nan(v):
                        raise InputError(f"column {j} (categorical) has NaN at row {i}")
                seen = list(dict.fromkeys(column.tolist()))
                try:
                    seen = sorted(seen)
                except TypeError:
                    pass
                categories.append(seen)
                bin_edges.append(None)
                width = len(seen)
            else:
                values = self._numeric(column, j)
                if not np.isfinite(values).all():
                    i = int(np.flatnonzero(~np.isfinite(values))[0])
                    raise InputError(f"column {j} (numeric) has the infinite value {values[i]} at row {i}")
                edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, self.n_bins + 1)))
                bin_edges.append(edges)
                categories.append(None)
                width = max(len(edges) - 1, 1)
            slices.append(slice(start, start + width))
            start += width
        self.bin_edges_ = bin_edges
        self.categories_ = categories
        self._category_index = [None if c is None else {v: k for k, v in enumerate(c)} for c in categories]
        self.column_slices = slices
        self.n_columns_ = n_cols
        self._num_inputs = start
        self._fitted = True
        return self

    def transform(self, X: Any) -> np.ndarray:
        """One-hot spikes ``uint8 (N, 1, 1, num_inputs)`` for rows ``X`` (same columns as at fit)."""
        self._check_fitted()
        X = self._as_2d(X)
        if X.shape[1] != self.n_columns_:
            raise InputError(f"X has {X.shape[1]} columns, the encoder was fitted on {self.n_columns_}")
        n = X.shape[0]
        out = np.zeros((n, self._num_inputs), dtype=np.uint8)
        rows = np.arange(n)
        for j in range(self.n_columns_):
            column = X[:, j]
            start = self.column_slices[j].start
            edges = self.bin_edges_[j]
            index = self._category_index[j]
            if edges is None:
                assert index is not None
                active = np.empty(n, dtype=np.int64)
                for i, v in enumerate(column.tolist()):
                    try:
                        active[i] = index[v]
                    except (KeyError, TypeError):
                        raise InputError(
                            f"column {j} (categorical): value {v!r} at row {i} was not seen by fit "
                            f"(known: {self.categories_[j]})"
                        ) from None
            else:
                values = self._numeric(column, j)
                active = np.searchsorted(edges[1:-1], values, side="right")
            out[rows, start + active] = 1
        return out.reshape(n, 1, 1, self._num_inputs)

    def fit_transform(self, X: Any) -> np.ndarray:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    @property
    def num_inputs(self) -> int:
        """Total number of inputs (spike channels) over all columns."""
        self._check_fitted()
        return self._num_inputs

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        """``(1, 1, num_inputs)``: use ``akida.InputData(1, 1, num_inputs, input_bits=1)``."""
        return (1, 1, self.num_inputs)

    def __repr__(self) -> str:
        return f"QuantileOneHotEncoder(n_bins={self.n_bins}, categorical_columns={self.categorical_columns})"


def _castable_float(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
