"""Winner-take-all groups of InputConvolutional (docs/semantics.md) against the numpy oracle."""

import numpy as np
import pytest

import akida
from oracle import run_oracle_on_akida


def random_groups(rng, n):
    ids, group = [], 0
    for _ in range(n):
        if rng.random() < 0.4:
            group += 1
        ids.append(group)
    return np.array(ids, dtype=np.int32)


@pytest.mark.parametrize("seed", range(300))
def test_wta_matches_oracle(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 10))
    pooling = {}
    if rng.random() < 0.3:
        pooling = dict(pooling_type=akida.PoolingType.Max, pooling_width=2, pooling_height=2)
    layer = akida.InputConvolutional(
        input_width=int(rng.integers(3, 9)), input_height=int(rng.integers(3, 9)), input_channels=1,
        kernel_width=3, kernel_height=3, num_neurons=n, weights_bits=4,
        threshold_fire=int(rng.integers(-50, 200)), threshold_fire_bits=int(rng.choice([1, 2, 4])),
        threshold_fire_step=float(rng.choice([1.0, 20.0])), **pooling,
    )
    model = akida.Model([layer])
    model.get_layer(0).set_variable("weights", rng.integers(-7, 8, (3, 3, 1, n)))
    model.get_layer(0).set_variable("wta_groups", random_groups(rng, n))
    x = rng.integers(0, 256, (3, *model.input_shape), dtype=np.uint8)
    np.testing.assert_array_equal(model.forward(x), run_oracle_on_akida(model, x))


def test_wta_keeps_only_the_strongest_of_a_group():
    model = akida.Model([akida.InputConvolutional(1, 1, 1, 1, 1, 3, weights_bits=4, threshold_fire=0)])
    model.get_layer(0).set_variable("weights", np.array([[[[2, 5, 5]]]], dtype=np.int8))
    x = np.full((1, 1, 1, 1), 10, np.uint8)
    assert model.forward(x).ravel().tolist() == [1, 1, 1]
    model.get_layer(0).set_variable("wta_groups", np.array([0, 0, 0], np.int32))
    assert model.forward(x).ravel().tolist() == [0, 1, 0]  # 50 == 50: the lower index wins
    model.get_layer(0).set_variable("wta_groups", np.array([0, 1, 1], np.int32))
    assert model.forward(x).ravel().tolist() == [1, 1, 0]


def test_split_groups_are_rejected():
    model = akida.Model([akida.InputConvolutional(4, 4, 1, 3, 3, 3)])
    with pytest.raises(akida.VariableError, match="consecutive"):
        model.get_layer(0).set_variable("wta_groups", np.array([0, 1, 0], np.int32))
