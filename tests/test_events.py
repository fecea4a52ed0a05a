"""akida.Events: construction, canonical order, dense conversion and validation (docs/api.md)."""

import numpy as np
import pytest

import helpers as H
from conftest import seeded_rng

akida = pytest.importorskip("akida")


def make(shape, coords, num_samples=None, values=None):
    """coords: list of (sample, x, y, channel[, value])."""
    coords = [tuple(c) for c in coords]
    s = np.array([c[0] for c in coords], dtype=np.int64)
    x = np.array([c[1] for c in coords], dtype=np.int64)
    y = np.array([c[2] for c in coords], dtype=np.int64)
    ch = np.array([c[3] for c in coords], dtype=np.int64)
    if values is None:
        values = [c[4] if len(c) > 4 else 1 for c in coords]
    v = np.array(values, dtype=np.int64)
    if num_samples is None:
        return akida.Events(shape, s, x, y, ch, v)
    return akida.Events(shape, s, x, y, ch, v, num_samples=num_samples)


def test_construction_and_attributes():
    ev = make((2, 3, 4), [(0, 2, 1, 3, 7), (1, 0, 0, 0, 255)])
    assert tuple(ev.shape) == (2, 3, 4)
    assert ev.num_samples == 2
    assert len(ev) == 2
    assert ev.sample.tolist() == [0, 1]
    assert ev.x.tolist() == [2, 0]
    assert ev.y.tolist() == [1, 0]
    assert ev.channel.tolist() == [3, 0]
    assert ev.value.tolist() == [7, 255]
    for arr in (ev.sample, ev.x, ev.y, ev.channel, ev.value):
        assert isinstance(arr, np.ndarray)
        assert arr.dtype.kind in "iu"


def test_to_dense_places_values():
    ev = make((2, 3, 4), [(0, 2, 1, 3, 7), (1, 0, 0, 0, 255), (1, 1, 1, 2, 3)])
    d = ev.to_dense()
    assert d.dtype == np.uint8
    assert d.shape == (2, 2, 3, 4)
    expected = np.zeros((2, 2, 3, 4), np.uint8)
    expected[0, 1, 2, 3] = 7  # (sample, y, x, channel)
    expected[1, 0, 0, 0] = 255
    expected[1, 1, 1, 2] = 3
    assert np.array_equal(d, expected)


def test_num_samples_default_and_explicit():
    ev = make((1, 1, 1), [(3, 0, 0, 0)])
    assert ev.num_samples == 4
    assert ev.to_dense().shape == (4, 1, 1, 1)
    assert ev.to_dense()[:3].sum() == 0
    ev = make((1, 1, 1), [(3, 0, 0, 0)], num_samples=6)
    assert ev.num_samples == 6
    assert ev.to_dense().shape == (6, 1, 1, 1)


def test_no_events():
    ev = make((2, 2, 1), [])
    assert len(ev) == 0
    assert ev.num_samples == 0
    assert ev.to_dense().shape == (0, 2, 2, 1)
    ev = make((2, 2, 1), [], num_samples=3)
    assert ev.num_samples == 3
    assert ev.to_dense().shape == (3, 2, 2, 1)
    assert not ev.to_dense().any()


def test_canonical_order_sample_y_x_channel():
    rng = seeded_rng("events-order")
    coords = [(s, x, y, c) for s in range(2) for y in range(3) for x in range(2) for c in range(2)]
    values = list(range(1, len(coords) + 1))
    perm = rng.permutation(len(coords))
    ev = make((3, 2, 2), [coords[i] for i in perm], values=[values[i] for i in perm])
    assert list(zip(ev.sample.tolist(), ev.x.tolist(), ev.y.tolist(), ev.channel.tolist())) == coords
    assert ev.value.tolist() == values


def test_from_dense_round_trip():
    rng = seeded_rng("events-dense")
    for _ in range(30):
        shape = tuple(int(v) for v in rng.integers(1, 6, size=3))
        n = int(rng.integers(0, 4))
        d = H.rand_input(rng, n, shape, 8)
        ev = akida.Events.from_dense(d)
        assert tuple(ev.shape) == shape
        assert ev.num_samples == n
        assert len(ev) == np.count_nonzero(d)
        assert np.array_equal(ev.to_dense(), d)
        # events are exactly the non-zero cells, in canonical order (np.argwhere order is s, y, x, c)
        idx = np.argwhere(d)
        assert ev.sample.tolist() == idx[:, 0].tolist()
        assert ev.y.tolist() == idx[:, 1].tolist()
        assert ev.x.tolist() == idx[:, 2].tolist()
        assert ev.channel.tolist() == idx[:, 3].tolist()
        assert ev.value.tolist() == d[tuple(idx.T)].tolist()


def test_from_dense_keeps_trailing_empty_samples():
    d = np.zeros((3, 2, 2, 1), np.uint8)
    d[0, 1, 1, 0] = 9
    ev = akida.Events.from_dense(d)
    assert ev.num_samples == 3
    assert np.array_equal(ev.to_dense(), d)


def test_from_dense_rejects_wrong_dtype_and_rank():
    with pytest.raises(akida.DTypeError):
        akida.Events.from_dense(np.zeros((1, 2, 2, 1), np.float32))
    with pytest.raises(akida.DTypeError):
        akida.Events.from_dense(np.zeros((1, 2, 2, 1), np.int16))
    with pytest.raises(akida.InputError):
        akida.Events.from_dense(np.zeros((2, 2, 1), np.uint8))


def test_duplicate_coordinates_rejected():
    with pytest.raises(akida.InputError, match="(?i)duplicate"):
        make((2, 2, 2), [(0, 1, 1, 0, 3), (0, 1, 1, 0, 4)])
    # same (x, y, channel) in two samples is fine
    ev = make((2, 2, 2), [(0, 1, 1, 0, 3), (1, 1, 1, 0, 4)])
    assert len(ev) == 2


def test_zero_value_rejected():
    with pytest.raises(akida.InputError, match="(?i)value"):
        make((2, 2, 2), [(0, 0, 0, 0, 0)])


def test_value_above_255_rejected():
    with pytest.raises((akida.InputError, akida.DTypeError), match="(?i)value|255|range|uint8"):
        make((2, 2, 2), [(0, 0, 0, 0, 256)])


@pytest.mark.parametrize(
    "coord, word",
    [
        ((0, 3, 0, 0), "x"),  # x >= width
        ((0, 0, 2, 0), "y"),  # y >= height
        ((0, 0, 0, 2), "channel"),  # channel >= channels
        ((0, -1, 0, 0), "x"),
        ((0, 0, -1, 0), "y"),
        ((0, 0, 0, -1), "channel"),
        ((-1, 0, 0, 0), "sample"),
    ],
)
def test_out_of_range_coordinates_rejected(coord, word):
    # shape (H, W, C) = (2, 3, 2)
    with pytest.raises(akida.InputError, match=f"(?i){word}"):
        make((2, 3, 2), [coord])


def test_sample_beyond_num_samples_rejected():
    with pytest.raises(akida.InputError, match="(?i)sample"):
        make((2, 2, 1), [(2, 0, 0, 0)], num_samples=2)


def test_mismatched_lengths_rejected():
    with pytest.raises(akida.InputError):
        akida.Events((2, 2, 1), np.array([0, 0]), np.array([0, 1]), np.array([0]), np.array([0, 0]),
                     np.array([1, 1]))


def test_events_forward_shape_mismatch():
    model = akida.Model()
    model.add(akida.InputData(input_width=3, input_height=2, input_channels=1))
    ev = make((3, 2, 1), [(0, 0, 0, 0)])  # height and width swapped
    with pytest.raises(akida.InputError):
        model.forward(ev)
    ev = make((2, 3, 1), [(0, 0, 0, 0, 15)])
    assert model.forward(ev).shape == (1, 2, 3, 1)


def test_events_value_above_input_bits_rejected_by_forward():
    model = akida.Model()
    model.add(akida.InputData(input_width=3, input_height=2, input_channels=1, input_bits=2))
    with pytest.raises(akida.InputError):
        model.forward(make((2, 3, 1), [(0, 1, 1, 0, 4)]))
    assert model.forward(make((2, 3, 1), [(0, 1, 1, 0, 3)]))[0, 1, 1, 0] == 3


def test_events_with_empty_trailing_samples_forward():
    model = akida.Model()
    model.add(akida.InputData(input_width=2, input_height=2, input_channels=1))
    out = model.forward(make((2, 2, 1), [(0, 1, 0, 0, 5)], num_samples=3))
    assert out.shape == (3, 2, 2, 1)
    assert out[0, 0, 1, 0] == 5
    assert out.sum() == 5


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64])
def test_any_integer_dtype_accepted(dtype):
    a = lambda v: np.array(v, dtype)  # noqa: E731
    ev = akida.Events((2, 2, 1), a([1, 0]), a([0, 1]), a([1, 0]), a([0, 0]), a([4, 3]))
    assert ev.to_dense().ravel().tolist() == [0, 3, 0, 0, 0, 0, 4, 0]
    assert ev.sample.tolist() == [0, 1]


def test_float_coordinates_rejected():
    f = np.array([0.0])
    i = np.array([0])
    with pytest.raises(akida.DTypeError):
        akida.Events((1, 1, 1), f, i, i, i, np.array([1]))
    with pytest.raises(akida.DTypeError):
        akida.Events((1, 1, 1), i, i, i, i, np.array([1.0]))


def test_from_dense_takes_the_shapes_the_constructor_takes():
    with pytest.raises(akida.InputError, match=r"dimensions in \[1, 1048576\], got \(0, 3, 1\)"):
        akida.Events.from_dense(np.ones((2, 0, 3, 1), np.uint8))
    with pytest.raises(akida.InputError, match=r"got \(1, 2097152, 1\)"):
        akida.Events.from_dense(np.zeros((1, 1, 2**21, 1), np.uint8))
    events = akida.Events.from_dense(np.zeros((0, 1, 2**20, 1), np.uint8))
    assert events.shape == (1, 2**20, 1) and events.num_samples == 0
