"""Self-checks of the numpy oracle (no engine needed)."""

import numpy as np
import pytest

from conftest import seeded_rng
import helpers as H
from oracle import (
    LayerSpec,
    OracleModel,
    activate,
    activation_scalar,
    conv_out_and_pad,
    pool,
    pool_axis,
    weight_range,
)


# ----------------------------------------------------------------------------------------------
# Oracle self-checks (no engine involved)
# ----------------------------------------------------------------------------------------------


def test_oracle_vectorized_activation_matches_scalar_rule():
    rng = seeded_rng("activation-self-check")
    for _ in range(300):
        bits = int(rng.choice([1, 2, 4]))
        n = 3
        t = rng.integers(-50, 50, size=n)
        steps = np.array([rng.choice(H.STEPS), rng.random() * 5 + 0.01, rng.integers(1, 5)], dtype=np.float32)
        p = rng.integers(-60, 120, size=(4, n))
        got = activate(p, t, steps, bits)
        want = np.array([[activation_scalar(p[i, j], t[j], steps[j], bits) for j in range(n)] for i in range(4)])
        assert np.array_equal(got, want)


def test_oracle_geometry_table():
    # Same: ceil(n/s) outputs, padding split with the extra cell at the end
    assert conv_out_and_pad(5, 4, 1, "Same") == (5, 1)  # P = 3 -> 1 before, 2 after
    assert conv_out_and_pad(3, 2, 1, "Same") == (3, 0)  # P = 1 -> 0 before, 1 after
    assert conv_out_and_pad(7, 3, 2, "Same") == (4, 1)  # P = 2
    assert conv_out_and_pad(10, 1, 4, "Same") == (3, 0)  # P = max(-1, 0) = 0
    assert conv_out_and_pad(5, 2, 2, "Valid") == (2, 0)
    assert conv_out_and_pad(3, 2, 1, "Full") == (4, 1)
    assert conv_out_and_pad(4, 3, 2, "Full") == (3, 2)


def test_oracle_true_convolution_matches_numpy_convolve():
    rng = seeded_rng("np-convolve")
    for _ in range(20):
        n, k = int(rng.integers(1, 8)), int(rng.integers(1, 6))
        x = rng.integers(0, 10, size=n)
        w = rng.integers(-7, 8, size=k)
        spec = [
            LayerSpec("InputData", dict(input_width=n, input_height=1, input_channels=1, input_bits=4)),
            LayerSpec("Convolutional", dict(kernel_width=k, kernel_height=1, num_neurons=1, weights_bits=4,
                                            convolution_mode="Full", activations_enabled=False),
                      variables={"weights": w.reshape(1, k, 1, 1)}),
        ]
        got = OracleModel(spec).forward(x.reshape(1, 1, n, 1))
        assert np.array_equal(got.ravel(), np.convolve(x, w, mode="full"))


def test_weight_range_helper():
    assert weight_range(1) == (0, 1)
    assert weight_range(2) == (-1, 1)
    assert weight_range(4) == (-7, 7)
    assert weight_range(8) == (-127, 127)


def test_oracle_pool_axis_table():
    # (window, stride, padding before, output)
    assert pool_axis(5, 2, -1, "Same") == (2, 2, 0, 3)  # P = 2*2 + 2 - 5 = 1, after
    assert pool_axis(6, 3, 1, "Same") == (3, 1, 1, 6)  # P = 5 + 3 - 6 = 2, one before
    assert pool_axis(7, 3, 2, "Same") == (3, 2, 1, 4)  # P = 6 + 3 - 7 = 2
    assert pool_axis(3, 5, -1, "Same") == (5, 5, 1, 1)  # larger than the map: P = 2
    assert pool_axis(10, 1, 4, "Same") == (1, 4, 0, 3)  # P = max(8 + 1 - 10, 0) = 0
    assert pool_axis(4, 3, 3, "Valid") == (3, 3, 0, 1)
    assert pool_axis(5, 2, 1, "Full") == (2, 1, 0, 4)
    for mode in ("Valid", "Same", "Full"):
        assert pool_axis(7, -1, 2, mode) == (7, 7, 0, 1)  # global: one window whatever the stride
    for mode in ("Valid", "Full"):
        with pytest.raises(ValueError):
            pool_axis(3, 5, -1, mode)


def test_oracle_same_pooling_equals_tensorflow_padding_with_uncounted_cells():
    """A second formulation of Same pooling: pad the map as TensorFlow does (P // 2 before, the rest
    after) with cells marked as not counting, then slide whole windows over the padded map."""
    rng = seeded_rng("same-pooling-self-check")
    for _ in range(400):
        h, w, c = (int(v) for v in rng.integers(1, 9, size=3))
        ph, pw = (int(v) for v in rng.integers(1, 7, size=2))
        sy, sx = (int(v) for v in rng.integers(1, 5, size=2))
        kind = str(rng.choice(["Max", "Average"]))
        params = dict(pooling_type=kind, pooling_width=pw, pooling_height=ph, pooling_stride_x=sx,
                      pooling_stride_y=sy, convolution_mode="Same")
        p = rng.integers(-60, 60, size=(h, w, c))
        out_h, out_w = -(-h // sy), -(-w // sx)
        pad_y, pad_x = max((out_h - 1) * sy + ph - h, 0), max((out_w - 1) * sx + pw - w, 0)
        padded = np.pad(p.astype(float), ((pad_y // 2, pad_y - pad_y // 2), (pad_x // 2, pad_x - pad_x // 2), (0, 0)),
                        constant_values=np.nan)
        want = np.empty((out_h, out_w, c), np.int64)
        for oy in range(out_h):
            for ox in range(out_w):
                window = padded[oy * sy : oy * sy + ph, ox * sx : ox * sx + pw]
                assert window.shape[:2] == (ph, pw)
                counted = ~np.isnan(window)
                assert counted.any(axis=(0, 1)).all(), "a window without map cells"
                for n in range(c):
                    cells = [int(v) for v in window[..., n][counted[..., n]]]
                    want[oy, ox, n] = max(cells) if kind == "Max" else sum(cells) // len(cells)
        np.testing.assert_array_equal(pool(p, params), want)

