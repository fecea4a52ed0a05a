"""Self-checks of the numpy oracle (no engine needed)."""

import numpy as np

from conftest import seeded_rng
import helpers as H
from oracle import LayerSpec, OracleModel, activate, activation_scalar, conv_out_and_pad, weight_range


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
