"""Event cameras: packets of events, N-MNIST files, synthetic saccades (``docs/converters.md``)."""

from __future__ import annotations

import math
import numbers
import os
from typing import Any, Optional, Tuple, Union

import numpy as np

from .. import _akida
from ..errors import DTypeError, InputError, ParameterError
from ..progress import Progress
from ._checks import (
    _INT64_MAX,
    _MAX_SENSOR,
    _first_outside,
    _int64_in_place,
    _int_param,
    _integer_array,
    _polarity_channels,
    _sensor_size,
)


#: dtype of the event streams returned by :func:`read_nmnist` and :func:`synthetic_saccade_events`.
EVENT_DTYPE = np.dtype([("x", np.uint16), ("y", np.uint16), ("t", np.int64), ("p", np.uint8)])




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
    verbose: bool = False,
    callback: Any = None,
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
    verbose : bool
        Show a progress bar of the simulated frames on stderr (tqdm when installed; see
        :mod:`akida.progress`). Quiet by default.
    callback : callable, optional
        ``callback(done, total)`` after each simulated frame.

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
    progress = Progress(num_saccades * steps, "simulating saccades", verbose, callback, unit="frame")
    for s in range(num_saccades):
        (x0, y0), (x1, y1) = vertices[s % 3], vertices[(s + 1) % 3]
        for j in range(steps):
            progress.update()
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
    progress.close()
    if not xs:
        return np.zeros(0, dtype=EVENT_DTYPE)
    ex, ey, et, ep = (np.concatenate(v) for v in (xs, ys, ts, ps))
    order = np.argsort(et, kind="stable")
    events = np.empty(ex.size, dtype=EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = ex[order], ey[order], et[order], ep[order]
    return events
