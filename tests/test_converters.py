"""akida.converters: data-to-spike converters (docs/converters.md).

Each converter is checked on hand-made cases and against a plain numpy / Python implementation
written here from the documented rules.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from conftest import seeded_rng

akida = pytest.importorskip("akida")
from akida import _akida, converters  # noqa: E402
from akida.converters import EVENT_DTYPE  # noqa: E402


# ---------------------------------------------------------------------------------------------
# Packetizer reference: a plain Python loop over the events, from the contract.
# ---------------------------------------------------------------------------------------------


def ref_packetize(x, y, t, p, width, height, channels, packet_size, time_window, downsample, input_bits):
    out_h, out_w = -(-height // downsample), -(-width // downsample)
    n = len(x)
    for i in range(n):
        if not (0 <= int(x[i]) < width and 0 <= int(y[i]) < height):
            raise akida.InputError(f"event {i} outside {width}x{height}")
    if n == 0:
        return np.zeros((0, out_h, out_w, channels), dtype=np.uint8)
    if packet_size is not None:
        index = [i // packet_size for i in range(n)]
    else:
        for i in range(1, n):
            if int(t[i]) < int(t[i - 1]):
                raise akida.InputError(f"event {i} goes back in time")
        t0 = int(t[0])
        index = [(int(t[i]) - t0) // time_window for i in range(n)]
    counts = np.zeros((index[-1] + 1, out_h, out_w, channels), dtype=np.int64)
    for i in range(n):
        channel = (1 if int(p[i]) > 0 else 0) if channels == 2 else 0
        counts[index[i], int(y[i]) // downsample, int(x[i]) // downsample, channel] += 1
    return np.minimum(counts, 2**input_bits - 1).astype(np.uint8)


def random_stream(rng, n=None, width=None, height=None, sorted_t=True):
    width = int(rng.integers(1, 40)) if width is None else width
    height = int(rng.integers(1, 40)) if height is None else height
    n = int(rng.integers(0, 1500)) if n is None else n
    # Hot spots make repeated cells (saturation) likely.
    if rng.random() < 0.5:
        x = rng.integers(0, width, n)
        y = rng.integers(0, height, n)
    else:
        x = rng.integers(0, min(width, 3), n)
        y = rng.integers(0, min(height, 3), n)
    t = rng.integers(-1000, 100_000, n)
    if rng.random() < 0.3:  # long gaps give empty windows
        t = rng.integers(-10**9, 10**9, n)
    if sorted_t:
        t = np.sort(t)
    p = rng.integers(-2, 3, n)
    return x, y, t, p, width, height


def stream_cases(count, seed_key):
    rng = seeded_rng("packetizer", seed_key)
    for case in range(count):
        x, y, t, p, width, height = random_stream(rng)
        channels = int(rng.choice([1, 2]))
        downsample = int(rng.integers(1, 4))
        input_bits = int(rng.choice([1, 2, 4, 8]))
        if rng.random() < 0.5:
            packet_size, time_window = int(rng.choice([1, 2, 7, 100, 5000])), None
        else:
            span = int(t[-1]) - int(t[0]) if len(t) else 1
            packet_size = None
            time_window = int(max(1, span // int(rng.choice([1, 3, 40, 300])) + int(rng.integers(0, 3))))
        yield case, (x, y, t, p, width, height, channels, packet_size, time_window, downsample, input_bits)


def contract_arrays(x, y, t, p):
    return (
        np.ascontiguousarray(x, dtype=np.int64),
        np.ascontiguousarray(y, dtype=np.int64),
        np.ascontiguousarray(t, dtype=np.int64),
        np.ascontiguousarray(p, dtype=np.int64),
    )


def public_packetize(x, y, t, p, width, height, channels, packet_size, time_window, downsample, input_bits):
    return converters.events_to_packets(
        x=x, y=y, t=t, p=p, sensor_size=(width, height), packet_size=packet_size,
        time_window=time_window, polarity="split" if channels == 2 else "merge",
        downsample=downsample, input_bits=input_bits,
    )


def rust_packetize(x, y, t, p, *rest):
    return _akida.packetize(*contract_arrays(x, y, t, p), *rest)


IMPLEMENTATIONS = [
    pytest.param(public_packetize, id="events_to_packets"),
    pytest.param(rust_packetize, id="engine"),
]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_packetizer_matches_reference_on_random_streams(impl):
    checked = 0
    for case, args in stream_cases(150, "random"):
        expected = ref_packetize(*args)
        got = impl(*args)
        assert got.dtype == np.uint8, case
        assert got.shape == expected.shape, (case, args[4:])
        np.testing.assert_array_equal(got, expected, err_msg=f"case {case}, params {args[4:]}")
        checked += 1
    assert checked == 150


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_packetizer_errors_match_reference(impl):
    rng = seeded_rng("packetizer-errors")
    for case in range(60):
        x, y, t, p, width, height = random_stream(rng, n=int(rng.integers(2, 200)), sorted_t=False)
        kind = case % 3
        if kind == 0:  # one event out of range, time sorted
            t = np.sort(t)
            i = int(rng.integers(0, len(x)))
            if rng.random() < 0.5:
                x[i] = rng.choice([-1, width, width + 7, -(10**6)])
            else:
                y[i] = rng.choice([-1, height, height + 3])
            args = (x, y, t, p, width, height, 2, None, 10, 1, 1)
            pattern = rf"\b{i}\b"
        elif kind == 1:  # time goes back with a time window
            j = int(rng.integers(1, len(t)))
            t = np.sort(t)
            t[j] = t[j - 1] - 1 - int(rng.integers(0, 5))
            if j + 1 < len(t):
                t[j + 1 :] = np.maximum(t[j + 1 :], t[j])
            args = (x, y, t, p, width, height, 1, None, 1000, 2, 4)
            pattern = None
        else:  # unsorted t is fine with packet_size
            args = (x, y, t, p, width, height, 2, 16, None, 1, 2)
            np.testing.assert_array_equal(impl(*args), ref_packetize(*args))
            continue
        with pytest.raises(akida.InputError) as excinfo:
            ref_packetize(*args)
        with pytest.raises(akida.InputError) as excinfo:
            impl(*args)
        if pattern is not None:
            message = str(excinfo.value)
            assert re.search(pattern, message), message
            assert str(width) in message and str(height) in message, message


EXTREME_TIMES = [
    # (timestamps, time_window, number of packets)
    ([-(2**62), 2**62 + 5], 2**62, 3),  # t - t0 does not fit in int64
    ([-(2**63), 2**63 - 1], 2**63 - 1, 3),  # t0 + k * window does not fit in int64
    ([-(2**63), -(2**63) + 1, 2**63 - 1], 2**62, 4),
    ([2**63 - 3, 2**63 - 1], 3, 1),  # an event at the largest timestamp
    ([2**63 - 1], 5, 1),
    ([5, 5, 5], 2**63 - 1, 1),
]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    "times, window, num_packets",
    EXTREME_TIMES,
    ids=["span-beyond-int64", "window-end-beyond-int64", "three-windows", "t-at-int64-max", "single-at-int64-max", "huge-window"],
)
def test_time_window_with_extreme_timestamps(impl, times, window, num_packets):
    n = len(times)
    t = np.array(times, dtype=np.int64)
    args = (np.zeros(n, np.int64), np.zeros(n, np.int64), t, np.ones(n, np.int64), 1, 1, 2, None, window, 1, 2)
    expected = ref_packetize(*args)
    assert len(expected) == num_packets
    np.testing.assert_array_equal(impl(*args), expected)


def test_packet_output_limit():
    # A window far shorter than the stream would need more than 4 GiB of packets.
    with pytest.raises(akida.InputError, match="packets"):
        converters.events_to_packets(x=[0, 0], y=[0, 0], t=[0, 10**12], p=[0, 1], sensor_size=(128, 128), time_window=1)


# ---------------------------------------------------------------------------------------------
# events_to_packets: hand-checked cases and the wrapper's validation
# ---------------------------------------------------------------------------------------------


INT_EVENTS = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])


def make_events(rows, dtype=EVENT_DTYPE):
    """rows: (x, y, t, p) tuples."""
    ev = np.zeros(len(rows), dtype=dtype)
    for name, column in zip("xytp", zip(*rows) if rows else ([], [], [], [])):
        ev[name] = column
    return ev


def test_packets_by_count_hand_checked():
    ev = make_events([(0, 0, 0, 1), (1, 0, 1, 0), (1, 0, 2, 1), (1, 0, 3, 1), (2, 1, 4, 0)])
    out = converters.events_to_packets(ev, sensor_size=(3, 2), packet_size=2, input_bits=2)
    assert out.shape == (3, 2, 3, 2) and out.dtype == np.uint8
    expected = np.zeros((3, 2, 3, 2), np.uint8)
    expected[0, 0, 0, 1] = 1  # (0,0) ON
    expected[0, 0, 1, 0] = 1  # (1,0) OFF
    expected[1, 0, 1, 1] = 2  # two ON events on (1,0)
    expected[2, 1, 2, 0] = 1  # the short last packet
    np.testing.assert_array_equal(out, expected)


def test_packets_by_time_keep_empty_windows():
    ev = make_events([(0, 0, 100, 1), (1, 0, 109, 1), (1, 0, 135, 0), (1, 0, 139, 0)])
    out = converters.events_to_packets(ev, sensor_size=(2, 1), time_window=10, polarity="merge", input_bits=4)
    assert out.shape == (4, 1, 2, 1)
    np.testing.assert_array_equal(out[:, 0, :, 0], [[1, 1], [0, 0], [0, 0], [0, 2]])


def test_polarity_channels_and_saturation():
    ev = make_events([(0, 0, 0, p) for p in (-1, 0, 1, 2, 1, 1, 1, 1)], dtype=INT_EVENTS)
    split = converters.events_to_packets(ev, sensor_size=(1, 1), packet_size=100, input_bits=2)
    np.testing.assert_array_equal(split[0, 0, 0], [2, 3])  # OFF: 2 events; ON: 6 saturate at 3
    binary = converters.events_to_packets(ev, sensor_size=(1, 1), packet_size=100)
    np.testing.assert_array_equal(binary[0, 0, 0], [1, 1])
    merged = converters.events_to_packets(ev, sensor_size=(1, 1), packet_size=100, polarity="merge", input_bits=4)
    np.testing.assert_array_equal(merged[0, 0, 0], [8])


def test_downsample_and_packet_shape():
    assert converters.packet_shape((34, 34, 2)) == (34, 34, 2)
    assert converters.packet_shape((5, 3), "merge", downsample=2) == (2, 3, 1)
    assert converters.packet_shape((128, 128), "split", 3) == (43, 43, 2)
    ev = make_events([(4, 2, 0, 1), (3, 2, 0, 1), (0, 0, 0, 0), (1, 1, 0, 0)])
    out = converters.events_to_packets(ev, sensor_size=(5, 3), packet_size=10, downsample=2, input_bits=2)
    assert out.shape == (1, 2, 3, 2)
    expected = np.zeros((1, 2, 3, 2), np.uint8)
    expected[0, 1, 2, 1] = 1
    expected[0, 1, 1, 1] = 1
    expected[0, 0, 0, 0] = 2
    np.testing.assert_array_equal(out, expected)


def test_no_events_give_no_packets():
    for kwargs in ({"packet_size": 3}, {"time_window": 5}):
        out = converters.events_to_packets(np.zeros(0, EVENT_DTYPE), sensor_size=(4, 3), **kwargs)
        assert out.shape == (0, 3, 4, 2) and out.dtype == np.uint8
        events = converters.events_to_packets(np.zeros(0, EVENT_DTYPE), sensor_size=(4, 3), as_events=True, **kwargs)
        assert events.num_samples == 0 and tuple(events.shape) == (3, 4, 2)


def test_tonic_style_dtypes_and_separate_arrays_agree():
    rng = seeded_rng("tonic-dtypes")
    x, y, t, p, width, height = random_stream(rng, n=500, width=34, height=34)
    reference = ref_packetize(x, y, t, p, 34, 34, 2, None, 7919, 1, 2)
    tonic_int = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
    tonic_small = np.dtype([("t", np.int64), ("x", np.int16), ("y", np.int16), ("p", np.bool_)])
    for dtype in (EVENT_DTYPE, tonic_int, tonic_small):
        ev = np.zeros(len(x), dtype=dtype)
        ev["x"], ev["y"], ev["t"], ev["p"] = x, y, t, p > 0
        out = converters.events_to_packets(ev, sensor_size=(34, 34, 2), time_window=7919, input_bits=2)
        np.testing.assert_array_equal(out, reference, err_msg=str(dtype))
    out = converters.events_to_packets(
        x=x.astype(np.uint8), y=list(y), t=t.astype(np.int64), p=p, sensor_size=(34, 34), time_window=7919, input_bits=2
    )
    np.testing.assert_array_equal(out, reference)
    # Merge needs no polarity at all.
    merged = converters.events_to_packets(x=x, y=y, t=t, sensor_size=(34, 34), time_window=7919, polarity="merge", input_bits=2)
    np.testing.assert_array_equal(merged, ref_packetize(x, y, t, p, 34, 34, 1, None, 7919, 1, 2))


def test_packets_feed_an_input_data_model_and_events():
    rng = seeded_rng("packets-model")
    x, y, t, p, _, _ = random_stream(rng, n=3000, width=34, height=34)
    for bits in (1, 2, 4):
        dense = converters.events_to_packets(x=x, y=y, t=t, p=p, sensor_size=(34, 34, 2), packet_size=400, input_bits=bits)
        h, w, c = converters.packet_shape((34, 34, 2))
        model = akida.Model(layers=[akida.InputData(w, h, c, input_bits=bits)])
        np.testing.assert_array_equal(model.forward(dense), dense)
        events = converters.events_to_packets(
            x=x, y=y, t=t, p=p, sensor_size=(34, 34, 2), packet_size=400, input_bits=bits, as_events=True
        )
        assert isinstance(events, akida.Events)
        assert events.num_samples == len(dense) == 8
        np.testing.assert_array_equal(events.to_dense(), dense)
        np.testing.assert_array_equal(model.forward(events), dense)


def test_events_to_packets_parameter_errors():
    ev = make_events([(0, 0, 0, 1)])
    ok = dict(sensor_size=(2, 2), packet_size=1)
    converters.events_to_packets(ev, **ok)
    bad = [
        dict(sensor_size=(2, 2)),  # neither
        dict(sensor_size=(2, 2), packet_size=1, time_window=1),  # both
        dict(sensor_size=(2, 2), packet_size=0),
        dict(sensor_size=(2, 2), packet_size=True),
        dict(sensor_size=(2, 2), packet_size=2.0),
        dict(sensor_size=(2, 2), time_window=0),
        dict(sensor_size=(2, 2), time_window=-5),
        dict(sensor_size=(2,), packet_size=1),
        dict(sensor_size=(2, 2, 2, 2), packet_size=1),
        dict(sensor_size=(0, 2), packet_size=1),
        dict(sensor_size=(2, 2.5), packet_size=1),
        dict(sensor_size=5, packet_size=1),
        dict(**ok, polarity="both"),
        dict(**ok, downsample=0),
        dict(**ok, input_bits=0),
        dict(**ok, input_bits=9),
    ]
    for kwargs in bad:
        with pytest.raises(akida.ParameterError):
            converters.events_to_packets(ev, **kwargs)
    with pytest.raises(akida.ParameterError, match="not both"):
        converters.events_to_packets(ev, x=[0], **ok)
    with pytest.raises(akida.ParameterError, match="'p'"):
        converters.events_to_packets(x=[0], y=[0], t=[0], **ok)


def test_events_to_packets_input_errors():
    ok = dict(sensor_size=(34, 34), packet_size=1)
    with pytest.raises(akida.InputError, match="field"):
        converters.events_to_packets(np.zeros(3, dtype=[("x", int), ("y", int), ("t", int)]), **ok)
    with pytest.raises(akida.InputError, match="structured"):
        converters.events_to_packets(np.zeros((3, 4), np.int64), **ok)
    with pytest.raises(akida.InputError, match="lengths"):
        converters.events_to_packets(x=[0, 1], y=[0], t=[0, 1], p=[0, 1], **ok)
    with pytest.raises(akida.InputError, match="1-D"):
        converters.events_to_packets(x=[[0]], y=[[0]], t=[[0]], p=[[0]], **ok)
    with pytest.raises(akida.DTypeError, match="'x'"):
        converters.events_to_packets(x=[0.5], y=[0], t=[0], p=[0], **ok)
    with pytest.raises(akida.DTypeError, match="'t'"):
        converters.events_to_packets(x=[0], y=[0], t=np.array([0.0]), p=[0], **ok)
    # Out of range, also for values that would wrap around in int32.
    for x, y, index in (([0, 34], [0, 0], 1), ([0, 0, 0], [0, 33, -1], 2), ([2**40, 0], [0, 0], 0), ([3, 0], [0, 2**33 + 1], 1)):
        with pytest.raises(akida.InputError) as excinfo:
            converters.events_to_packets(
                x=np.array(x, np.int64), y=np.array(y, np.int64), t=np.zeros(len(x), np.int64), p=np.zeros(len(x), np.int64), **ok
            )
        message = str(excinfo.value)
        assert re.search(rf"\b{index}\b", message) and "34" in message, message
    with pytest.raises(akida.InputError):
        converters.events_to_packets(
            x=np.array([0, 0], np.uint64), y=np.array([0, 0], np.uint64), t=np.array([0, 2**63], np.uint64), p=[0, 0], **ok
        )
    with pytest.raises(akida.InputError):  # decreasing time with a window
        converters.events_to_packets(x=[0, 0], y=[0, 0], t=[5, 4], p=[0, 0], sensor_size=(1, 1), time_window=10)
    # The same stream is fine by count.
    out = converters.events_to_packets(x=[0, 0], y=[0, 0], t=[5, 4], p=[0, 0], sensor_size=(1, 1), packet_size=10)
    assert out.shape == (1, 1, 1, 2)


def test_polarity_from_wide_integers():
    p = np.array([2**40, -(2**40), 1, 0], dtype=np.int64)
    out = converters.events_to_packets(
        x=np.arange(4), y=np.zeros(4, np.int64), t=np.zeros(4, np.int64), p=p, sensor_size=(4, 1), packet_size=4
    )
    np.testing.assert_array_equal(out[0, 0], [[0, 1], [1, 0], [0, 1], [1, 0]])


# ---------------------------------------------------------------------------------------------
# N-MNIST files
# ---------------------------------------------------------------------------------------------


def ref_decode(data: bytes):
    rows = []
    for k in range(0, len(data), 5):
        b = data[k : k + 5]
        rows.append((b[0], b[1], ((b[2] & 0x7F) << 16) | (b[3] << 8) | b[4], b[2] >> 7))
    return rows


def test_nmnist_byte_layout(tmp_path):
    path = tmp_path / "one.bin"
    converters.write_nmnist(path, make_events([(17, 33, 0x5A1B2C, 1), (0, 255, 7, 0)]))
    assert path.read_bytes() == bytes([17, 33, 0x80 | 0x5A, 0x1B, 0x2C, 0, 255, 0, 0, 7])
    path.write_bytes(bytes([3, 4, 0xFF, 0xFF, 0xFF, 33, 0, 0x01, 0x02, 0x03]))
    ev = converters.read_nmnist(str(path))
    assert ev.dtype == EVENT_DTYPE
    assert ev["x"].dtype == np.uint16 and ev["y"].dtype == np.uint16
    assert ev["t"].dtype == np.int64 and ev["p"].dtype == np.uint8
    assert ev.tolist() == [(3, 4, 2**23 - 1, 1), (33, 0, 0x010203, 0)]


def test_nmnist_round_trip(tmp_path):
    rng = seeded_rng("nmnist")
    for case in range(5):
        n = int(rng.integers(0, 5000))
        ev = np.zeros(n, EVENT_DTYPE)
        ev["x"], ev["y"] = rng.integers(0, 256, n), rng.integers(0, 256, n)
        ev["t"], ev["p"] = np.sort(rng.integers(0, 2**23, n)), rng.integers(0, 2, n)
        path = tmp_path / f"{case}.bin"
        converters.write_nmnist(path, ev)
        assert path.stat().st_size == 5 * n
        back = converters.read_nmnist(path)
        np.testing.assert_array_equal(back, ev)
        assert back.tolist() == ref_decode(path.read_bytes())
    # Bool polarity and wide integer fields are written the same way.
    wide = np.zeros(2, dtype=[("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.bool_)])
    wide["x"], wide["t"], wide["p"] = [1, 2], [10, 20], [True, False]
    converters.write_nmnist(tmp_path / "wide.bin", wide)
    assert converters.read_nmnist(tmp_path / "wide.bin").tolist() == [(1, 0, 10, 1), (2, 0, 20, 0)]


def test_nmnist_file_errors(tmp_path):
    path = tmp_path / "truncated.bin"
    path.write_bytes(bytes(12))
    with pytest.raises(akida.InputError, match="multiple of 5"):
        converters.read_nmnist(path)
    (tmp_path / "empty.bin").write_bytes(b"")
    assert len(converters.read_nmnist(tmp_path / "empty.bin")) == 0
    with pytest.raises(FileNotFoundError):
        converters.read_nmnist(tmp_path / "missing.bin")
    for row, field in (((256, 0, 0, 1), "x"), ((0, -1, 0, 1), "y"), ((0, 0, 2**23, 1), "t"), ((0, 0, -1, 0), "t")):
        ev = make_events([(1, 1, 1, 1), row], dtype=[("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
        with pytest.raises(akida.InputError, match=rf"event 1: {field}="):
            converters.write_nmnist(tmp_path / "bad.bin", ev)
    with pytest.raises(akida.InputError, match="field"):
        converters.write_nmnist(tmp_path / "bad.bin", np.zeros(2, dtype=[("x", int), ("y", int)]))
    with pytest.raises(akida.DTypeError):
        converters.write_nmnist(tmp_path / "bad.bin", np.zeros(2, dtype=[("x", float), ("y", int), ("t", int), ("p", int)]))


# ---------------------------------------------------------------------------------------------
# Synthetic saccades
# ---------------------------------------------------------------------------------------------


def digit_image():
    """A 32x32 '7'-like digit: bright strokes with soft (anti-aliased) borders on black."""
    img = np.zeros((32, 32))
    img[6:9, 7:25] = 255
    for r in range(9, 27):
        c = int(round(24 - (r - 9) * 0.55))
        img[r, c - 1 : c + 2] = 255
    soft = img.copy()
    soft[1:-1, 1:-1] = np.maximum(soft[1:-1, 1:-1], 0.4 * (img[:-2, 1:-1] + img[2:, 1:-1]) / 2)
    return soft.astype(np.uint8)


def ref_saccade_counts(image, num_saccades, duration, steps, m, threshold):
    """Event counts per (step, y, x, polarity), from the documented DVS rule, with scipy's shift."""
    ndimage = pytest.importorskip("scipy.ndimage")
    vertices = [(-m, m), (0.0, -m), (m, m)]
    source = image.astype(np.float64)

    def frame(dx, dy):
        shifted = ndimage.shift(source, (dy, dx), order=1, mode="grid-constant", cval=0.0, prefilter=False)
        return np.log(shifted / 255.0 + 0.1)

    ref = frame(*vertices[0])
    counts = np.zeros((num_saccades * steps, *image.shape, 2), dtype=np.int64)
    for s in range(num_saccades):
        (x0, y0), (x1, y1) = vertices[s % 3], vertices[(s + 1) % 3]
        for j in range(steps):
            a = (j + 1) / steps
            level = frame(x0 + a * (x1 - x0), y0 + a * (y1 - y0))
            delta = level - ref
            n = np.floor(np.abs(delta) / threshold).astype(np.int64)
            ref = ref + np.sign(delta) * n * threshold
            counts[s * steps + j, :, :, 1] = np.where(delta > 0, n, 0)
            counts[s * steps + j, :, :, 0] = np.where(delta < 0, n, 0)
    return counts


def test_saccade_events_follow_the_dvs_rule():
    image = digit_image()
    num_saccades, duration, steps, m, threshold = 3, 60_000, 12, 1.5, 0.2
    ev = converters.synthetic_saccade_events(
        image, num_saccades=num_saccades, saccade_duration_us=duration, steps_per_saccade=steps,
        max_shift=m, threshold=threshold, seed=3,
    )
    expected = ref_saccade_counts(image, num_saccades, duration, steps, m, threshold)
    got = np.zeros_like(expected)
    step = ev["t"] // (duration // steps)
    np.add.at(got, (step, ev["y"], ev["x"], ev["p"]), 1)
    # Floating-point rounding may move a level exactly at a multiple of the threshold: allow 0.1 %.
    mismatch = np.abs(got - expected).sum()
    assert expected.sum() > 500
    assert mismatch <= 0.001 * expected.sum(), (mismatch, expected.sum())


def test_saccade_events_properties():
    image = digit_image()
    ev = converters.synthetic_saccade_events(image)
    assert ev.dtype == EVENT_DTYPE and len(ev) > 1000
    assert np.all(np.diff(ev["t"]) >= 0)
    assert ev["t"].min() >= 0 and ev["t"].max() < 3 * 100_000
    assert ev["x"].max() < 32 and ev["y"].max() < 32
    assert set(np.unique(ev["p"]).tolist()) == {0, 1}
    # Each of the three saccades produces events.
    assert np.all(np.bincount(ev["t"] // 100_000, minlength=3) > 100)
    # Deterministic for a seed; the seed only draws timestamps.
    again = converters.synthetic_saccade_events(image)
    np.testing.assert_array_equal(ev, again)
    other = converters.synthetic_saccade_events(image, seed=1)
    assert not np.array_equal(ev["t"], other["t"])
    key = lambda e: np.sort(e[["x", "y", "p"]].astype([("x", "u2"), ("y", "u2"), ("p", "u1")]), order=["y", "x", "p"])  # noqa: E731
    np.testing.assert_array_equal(key(ev), key(other))
    # Packetized into one binary packet per stream it feeds a 32x32x2 model.
    packets = converters.events_to_packets(ev, sensor_size=(32, 32, 2), time_window=300_000)
    assert packets.shape == (1, 32, 32, 2)


def test_saccade_edge_cases_and_errors():
    assert len(converters.synthetic_saccade_events(np.zeros((10, 12), np.uint8))) == 0
    assert len(converters.synthetic_saccade_events(digit_image(), max_shift=0)) == 0
    one = converters.synthetic_saccade_events(digit_image(), num_saccades=1, steps_per_saccade=1, saccade_duration_us=1)
    assert len(one) > 0 and np.all(one["t"] == 0)
    with pytest.raises(akida.DTypeError):
        converters.synthetic_saccade_events(np.zeros((4, 4), np.float32))
    with pytest.raises(akida.InputError):
        converters.synthetic_saccade_events(np.zeros((4, 4, 1), np.uint8))
    for kwargs in (
        dict(num_saccades=0), dict(steps_per_saccade=0), dict(saccade_duration_us=5, steps_per_saccade=10),
        dict(max_shift=-1), dict(max_shift=float("nan")), dict(threshold=0), dict(seed=-1),
    ):
        with pytest.raises(akida.ParameterError):
            converters.synthetic_saccade_events(np.zeros((4, 4), np.uint8), **kwargs)


# ---------------------------------------------------------------------------------------------
# Pixels
# ---------------------------------------------------------------------------------------------


def test_pixels_to_spikes_hand_checked():
    img = np.array([[[0, 127, 128, 255]]], np.uint8)
    np.testing.assert_array_equal(converters.pixels_to_spikes(img)[..., 0], [[[0, 0, 1, 1]]])
    out = converters.pixels_to_spikes(img, thresholds=(0, 127, 254))
    np.testing.assert_array_equal(out[..., 0], [[[0, 1, 2, 3]]])
    assert out.shape == (1, 1, 4, 1) and out.dtype == np.uint8


def test_pixels_to_spikes_and_quantize_match_numpy():
    rng = seeded_rng("pixels")
    for case in range(20):
        shape = tuple(int(v) for v in rng.integers(1, 9, 4))
        images = rng.integers(0, 256, shape).astype(np.uint8)
        k = int(rng.integers(1, 12))
        thresholds = np.sort(rng.choice(256, k, replace=False))
        expected = (images[..., None] > thresholds).sum(axis=-1).astype(np.uint8)
        got = converters.pixels_to_spikes(images, thresholds=[int(v) for v in thresholds])
        np.testing.assert_array_equal(got, expected)
        bits = k.bit_length()
        model = akida.Model(layers=[akida.InputData(shape[2], shape[1], shape[3], input_bits=bits)])
        np.testing.assert_array_equal(model.forward(got), got)
        for input_bits in range(1, 9):
            q = converters.quantize(images, input_bits)
            np.testing.assert_array_equal(q, images // 2 ** (8 - input_bits))
            assert q.dtype == np.uint8 and q.max() < 2**input_bits
    three_d = rng.integers(0, 256, (2, 5, 6)).astype(np.uint8)
    assert converters.pixels_to_spikes(three_d).shape == (2, 5, 6, 1)
    assert converters.quantize(three_d, 4).shape == (2, 5, 6, 1)


def test_pixel_errors():
    img = np.zeros((1, 2, 2, 1), np.uint8)
    with pytest.raises(akida.DTypeError):
        converters.pixels_to_spikes(img.astype(np.float32))
    with pytest.raises(akida.InputError):
        converters.pixels_to_spikes(np.zeros((2, 2), np.uint8))
    for thresholds in ((), (5, 5), (10, 3), (256,), (-1,), (1.5,), 3, tuple(range(256))):
        with pytest.raises(akida.ParameterError):
            converters.pixels_to_spikes(img, thresholds=thresholds)
    for bits in (0, 9, 2.0):
        with pytest.raises(akida.ParameterError):
            converters.quantize(img, bits)
    with pytest.raises(akida.DTypeError):
        converters.quantize(img.astype(np.int16), 4)


# ---------------------------------------------------------------------------------------------
# Edge kernels and the edge front end
# ---------------------------------------------------------------------------------------------

# Unit vector (dx, dy) of "brighter towards" for neuron k (x right, y down).
DIRECTIONS = [(math.cos(k * math.pi / 4), math.sin(k * math.pi / 4)) for k in range(8)]


def xcorr_same(image, kernels):
    """Cross-correlation, Same mode, zero padding: (H, W) x (k, k, 1, n) -> (H, W, n) int64."""
    k = kernels.shape[0]
    pad = (k - 1) // 2
    padded = np.pad(image.astype(np.int64), ((pad, k - 1 - pad), (pad, k - 1 - pad)))
    h, w = image.shape
    out = np.zeros((h, w, kernels.shape[-1]), np.int64)
    for ty in range(k):
        for tx in range(k):
            out += padded[ty : ty + h, tx : tx + w, None] * kernels[ty, tx, 0].astype(np.int64)
    return out


@pytest.mark.parametrize("size", [3, 5])
def test_edge_kernels_preset(size):
    kernels = converters.edge_kernels(size)
    assert kernels.shape == (size, size, 1, 8) and kernels.dtype == np.int8
    assert kernels.min() >= -7 and kernels.max() <= 7
    np.testing.assert_array_equal(kernels[..., 4:], -kernels[..., :4])
    np.testing.assert_array_equal(kernels.sum(axis=(0, 1, 2)), np.zeros(8))
    # Orientation: on a ramp brightening along direction d, neuron k's response is largest for
    # k with direction d, and the same for both sizes.
    r = np.arange(size) - size // 2
    b, a = np.meshgrid(r, r, indexing="ij")
    for k, (dx, dy) in enumerate(DIRECTIONS):
        ramp = a * dx + b * dy
        response = (kernels[:, :, 0, :] * ramp[..., None]).sum(axis=(0, 1))
        assert int(np.argmax(response)) == k, (k, response)
    if size == 3:
        np.testing.assert_array_equal(kernels[:, :, 0, 0], [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
        np.testing.assert_array_equal(kernels[:, :, 0, 2], [[-1, -2, -1], [0, 0, 0], [1, 2, 1]])


def test_edge_kernels_errors():
    for size in (1, 4, 7, True, "3"):
        with pytest.raises(akida.ParameterError):
            converters.edge_kernels(size)


@pytest.mark.parametrize("size", [3, 5])
def test_edge_front_end_matches_numpy(size):
    rng = seeded_rng("edge-front-end", size)
    images = rng.integers(0, 256, (6, 13, 11)).astype(np.uint8)
    images[:3, :, 6:] = 255  # strong vertical edges
    images[:3, :, :6] = 0
    layer = converters.edge_front_end(11, 13, size=size, name="edges")
    assert layer.layer_type == "InputConvolutional" and layer.name == "edges"
    assert layer.parameters.weights_bits == 4 and layer.parameters.num_neurons == 9
    assert layer.input_shape == (13, 11, 1) and layer.output_shape == (13, 11, 9)
    weights = layer.get_variable("weights")
    np.testing.assert_array_equal(weights[..., :8], converters.edge_kernels(size))
    assert weights[..., 8].sum() == 7 and weights[size // 2, size // 2, 0, 8] == 7
    thresholds = layer.get_variable("threshold_fire")
    default = 450 if size == 3 else round(450 * converters._full_step_response(converters.edge_kernels(5)) / 1020)
    np.testing.assert_array_equal(thresholds, [default] * 8 + [7 * 127])
    model = akida.Model(layers=[layer])
    out = model.forward(images[..., None])
    expected = np.stack([xcorr_same(img, weights) > thresholds for img in images]).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(out[..., 8], images > 127)
    # On the vertical edge (dark left, bright right) neuron 0 fires and neuron 4 does not.
    assert out[:3, 2:-2, 5:7, 0].any() and not out[:3, :, 5:7, 4].any()


def test_edge_front_end_options():
    layer = converters.edge_front_end(8, 6, threshold=100, pixel_neuron=False)
    assert layer.parameters.num_neurons == 8
    np.testing.assert_array_equal(layer.get_variable("threshold_fire"), [100] * 8)
    assert layer.name == ""
    model = akida.Model(layers=[layer, akida.FullyConnected(3, activations_enabled=False)])
    assert model.output_shape == (1, 1, 3)
    with pytest.raises(akida.ParameterError):
        converters.edge_front_end(8, 6, size=4)
    with pytest.raises(akida.ParameterError):
        converters.edge_front_end(8, 6, threshold=1.5)
    with pytest.raises(akida.ParameterError):
        converters.edge_front_end(0, 6)


def test_edge_front_end_wta_groups():
    layer = converters.edge_front_end(8, 8, wta=True)
    np.testing.assert_array_equal(layer.get_variable("wta_groups"), [0] * 8 + [1])
    # Without wta the engine default stays: every neuron its own group.
    np.testing.assert_array_equal(converters.edge_front_end(8, 8).get_variable("wta_groups"), np.arange(9))


@pytest.mark.parametrize("pixel_neuron", [True, False])
def test_edge_front_end_wta(pixel_neuron):
    rng = seeded_rng("wta", pixel_neuron)
    images = rng.integers(0, 256, (4, 12, 12)).astype(np.uint8)
    images[:2, :, :6] = 0  # clean edges as well as noise
    images[:2, :, 6:] = 250
    layer = converters.edge_front_end(12, 12, threshold=200, pixel_neuron=pixel_neuron, wta=True)
    n = 9 if pixel_neuron else 8
    np.testing.assert_array_equal(layer.get_variable("wta_groups"), [0] * 8 + [1] * (n - 8))
    weights = layer.get_variable("weights")
    thresholds = layer.get_variable("threshold_fire")
    out = akida.Model(layers=[layer]).forward(images[..., None])
    potentials = np.stack([xcorr_same(img, weights) for img in images])
    # docs/semantics.md: per position only the strongest edge neuron (lowest index on ties) may
    # fire, and it fires when its potential is above its threshold.
    winner = potentials[..., :8].argmax(axis=-1)
    strongest = potentials[..., :8].max(axis=-1)
    expected = np.zeros(out.shape[:-1] + (8,), np.uint8)
    np.put_along_axis(expected, winner[..., None], (strongest > thresholds[0])[..., None].astype(np.uint8), -1)
    np.testing.assert_array_equal(out[..., :8], expected)
    assert expected.sum() > 50
    if pixel_neuron:
        np.testing.assert_array_equal(out[..., 8], images > 127)


# ---------------------------------------------------------------------------------------------
# Tabular data
# ---------------------------------------------------------------------------------------------


def test_encoder_hand_checked():
    X = np.array([[1.0, "a"], [2.0, "b"], [3.0, "a"], [4.0, "c"]], dtype=object)
    enc = converters.QuantileOneHotEncoder(n_bins=2, categorical_columns=[1])
    out = enc.fit_transform(X)
    assert out.shape == (4, 1, 1, 5) and out.dtype == np.uint8
    assert enc.num_inputs == 5 and enc.input_shape == (1, 1, 5)
    np.testing.assert_allclose(enc.bin_edges_[0], [1.0, 2.5, 4.0])
    assert enc.categories_[1] == ["a", "b", "c"]
    np.testing.assert_array_equal(
        out[:, 0, 0], [[1, 0, 1, 0, 0], [1, 0, 0, 1, 0], [0, 1, 1, 0, 0], [0, 1, 0, 0, 1]]
    )
    # Below / above the training range, and exactly on an edge (bins are [e_i, e_{i+1})).
    new = enc.transform(np.array([[-100.0, "c"], [2.5, "a"], [1e9, "b"]], dtype=object))
    np.testing.assert_array_equal(new[:, 0, 0], [[1, 0, 0, 0, 1], [0, 1, 1, 0, 0], [0, 1, 0, 1, 0]])
    assert enc.column_slices == [slice(0, 2), slice(2, 5)]
    model = akida.Model(layers=[akida.InputData(1, 1, enc.num_inputs, input_bits=1)])
    np.testing.assert_array_equal(model.forward(out), out)


def test_encoder_matches_numpy_quantiles():
    rng = seeded_rng("encoder")
    for case in range(10):
        n, n_bins = int(rng.integers(1, 300)), int(rng.integers(1, 16))
        numeric = [rng.normal(size=n), rng.integers(0, 4, n).astype(float), np.full(n, 2.5), rng.exponential(size=n)]
        cats = rng.choice(np.array(["x", "y", "z", "w"]), n)
        codes = rng.integers(0, 3, n)
        X = np.empty((n, 6), dtype=object)
        for j, column in enumerate(numeric):
            X[:, j] = column
        X[:, 4], X[:, 5] = cats, codes
        enc = converters.QuantileOneHotEncoder(n_bins=n_bins, categorical_columns=(4, -1)).fit(X)
        test_rows = np.concatenate([X, X[: min(n, 5)]])
        test_rows[-min(n, 5) :, :4] = rng.normal(scale=10, size=(min(n, 5), 4))
        out = enc.transform(test_rows)[:, 0, 0]
        assert np.all(out.sum(axis=1) == 6)
        for j, column in enumerate(numeric):
            edges = np.unique(np.quantile(column, np.linspace(0, 1, n_bins + 1)))
            np.testing.assert_array_equal(enc.bin_edges_[j], edges)
            width = max(len(edges) - 1, 1)
            part = out[:, enc.column_slices[j]]
            assert part.shape[1] == width and np.all(part.sum(axis=1) == 1)
            for row, v in enumerate(test_rows[:, j].astype(float)):
                expected = min(sum(1 for e in edges[1:-1] if e <= v), width - 1)
                assert part[row].argmax() == expected, (case, j, row, v, edges)
        for j, values in ((4, cats), (5, codes)):
            known = sorted(set(values.tolist()))
            assert enc.categories_[j] == known
            part = out[:, enc.column_slices[j]]
            expected = [known.index(v) for v in test_rows[:, j].tolist()]
            np.testing.assert_array_equal(part.argmax(axis=1), expected)
        assert enc.num_inputs == out.shape[1] == enc.column_slices[-1].stop
    # A purely numeric float array works too.
    numeric_only = rng.normal(size=(50, 3))
    out = converters.QuantileOneHotEncoder(n_bins=4).fit_transform(numeric_only)
    assert out.shape == (50, 1, 1, 12) and np.all(out.sum(axis=(1, 2, 3)) == 3)


def test_encoder_errors():
    enc = converters.QuantileOneHotEncoder(n_bins=3, categorical_columns=[1])
    with pytest.raises(converters.NotFittedError, match="fit"):
        enc.transform(np.zeros((2, 2)))
    with pytest.raises(ValueError):  # NotFittedError is a ValueError (and an AkidaError)
        enc.num_inputs
    assert issubclass(converters.NotFittedError, akida.AkidaError)
    X = np.array([[1.0, "red"], [2.0, "blue"]], dtype=object)
    enc.fit(X)
    with pytest.raises(akida.InputError, match=r"column 1.*'green'"):
        enc.transform(np.array([[1.0, "green"]], dtype=object))
    with pytest.raises(akida.InputError, match="NaN"):
        enc.transform(np.array([[float("nan"), "red"]], dtype=object))
    with pytest.raises(akida.InputError, match="columns"):
        enc.transform(np.zeros((2, 3)))
    with pytest.raises(akida.InputError, match="2-D"):
        enc.transform(np.zeros(3))
    with pytest.raises(akida.InputError, match="non-numeric"):
        enc.transform(np.array([["abc", "red"]], dtype=object))
    with pytest.raises(akida.InputError, match="NaN"):
        converters.QuantileOneHotEncoder().fit(np.array([[1.0], [np.nan]]))
    with pytest.raises(akida.InputError, match="NaN"):
        converters.QuantileOneHotEncoder(categorical_columns=[0]).fit(np.array([["a"], [float("nan")]], dtype=object))
    with pytest.raises(akida.InputError):
        converters.QuantileOneHotEncoder().fit(np.zeros((0, 3)))
    with pytest.raises(akida.ParameterError):
        converters.QuantileOneHotEncoder(categorical_columns=[5]).fit(np.zeros((3, 2)))
    with pytest.raises(akida.ParameterError):
        converters.QuantileOneHotEncoder(categorical_columns=[1, -1]).fit(np.zeros((3, 2)))
    for n_bins in (0, 2.5, True):
        with pytest.raises(akida.ParameterError):
            converters.QuantileOneHotEncoder(n_bins=n_bins)


def test_int64_records_are_read_in_place_and_agree_with_separate_arrays():
    rng = np.random.default_rng(5)
    n = 5000
    records = np.empty(n, dtype=[("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
    records["x"] = rng.integers(0, 17, n)
    records["y"] = rng.integers(0, 9, n)
    records["t"] = np.sort(rng.integers(0, 10**6, n))
    records["p"] = rng.integers(0, 2, n)
    assert records["x"].strides[0] == 32  # a strided view, read without a copy
    for kw in (dict(packet_size=700), dict(time_window=50_000)):
        from_records = converters.events_to_packets(records, sensor_size=(17, 9), input_bits=4, **kw)
        separate = converters.events_to_packets(
            x=records["x"].copy(), y=records["y"].copy(), t=records["t"].copy(), p=records["p"].copy(),
            sensor_size=(17, 9), input_bits=4, **kw,
        )
        np.testing.assert_array_equal(from_records, separate)
