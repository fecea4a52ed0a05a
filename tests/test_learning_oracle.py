"""The engine's learning (compile + fit) against the plain oracle of docs/learning.md in
tests/learning_oracle.py: weights, threshold_learning and plasticity must match exactly, on many
random layers, parameters, labels and inputs, including inputs that repeat (so the input counts
decide which weights move) and neurons that learn more than 255 times (count halving)."""

from __future__ import annotations

import numpy as np
import pytest

import akida
from learning_oracle import LearningOracle


def random_params(rng, neurons):
    classes = [c for c in range(1, neurons + 1) if neurons % c == 0]
    return dict(
        num_classes=int(rng.choice(classes)),
        initial_plasticity=float(rng.choice([1.0, 0.7, 0.35])),
        min_plasticity=float(rng.choice([0.0, 0.1, 0.3, 0.5])),  # 0.5 > initial 0.35 at times
        plasticity_decay=float(rng.choice([0.0, 0.05, 0.25, 0.6])),
        learning_competition=float(rng.choice([0.0, 0.1, 0.4])),
        seed=int(rng.integers(0, 2**63)),
    )


def random_inputs(rng, n, shape):
    """Noisy copies of a few prototypes (so neurons see repeated inputs), with some empty samples."""
    size = int(np.prod(shape))
    prototypes = rng.random((3, size)) < rng.uniform(0.1, 0.5)
    x = prototypes[rng.integers(0, 3, n)] ^ (rng.random((n, size)) < 0.1)
    x[rng.random(n) < 0.05] = False
    for row in np.flatnonzero(rng.random(n) < 0.15):  # very sparse samples: one to three spikes
        x[row] = False
        x[row, rng.integers(0, size, rng.integers(1, 4))] = True
    return x.reshape((n,) + tuple(shape)).astype(np.uint8)


def random_labels(rng, n, num_classes):
    kind = rng.integers(0, 3)
    if kind == 0:
        return None
    if kind == 1:
        return np.array([rng.integers(0, num_classes + 1)], np.int64)
    return rng.integers(0, num_classes + 2, n).astype(np.int64)  # some labels mean "skip"


def engine_state(model):
    layer = model.layers[-1]
    w = layer.get_variable("weights")
    return w.reshape(-1, w.shape[-1]), layer.get_variable("threshold_learning"), layer.get_plasticity()


def assert_matches(model, oracle):
    weights, thresholds, plasticity = engine_state(model)
    np.testing.assert_array_equal(weights, oracle.weights, err_msg="weights")
    np.testing.assert_array_equal(thresholds, oracle.threshold_learning, err_msg="threshold_learning")
    np.testing.assert_array_equal(plasticity, oracle.plasticity, err_msg="plasticity")


@pytest.mark.parametrize("case", range(60))
def test_fully_connected_learning_matches_oracle(case):
    rng = np.random.default_rng(1000 + case)
    h, w, neurons = int(rng.integers(2, 7)), int(rng.integers(2, 9)), int(rng.integers(1, 13))
    connections = h * w
    num_weights = int(rng.integers(1, connections + 1))
    params = random_params(rng, neurons)
    model = akida.Model([akida.InputData(w, h, 1, input_bits=1), akida.FullyConnected(neurons, activations_enabled=False)])
    model.compile(num_weights=num_weights, **params)
    oracle = LearningOracle.compile(connections, neurons, num_weights, **params)
    assert_matches(model, oracle)
    for _ in range(3):  # several fit calls: the state carries over
        n = int(rng.integers(1, 40))
        x = random_inputs(rng, n, (h, w, 1))
        labels = random_labels(rng, n, params["num_classes"])
        model.fit(x, labels)
        oracle.fit_fully_connected(x, labels)
        assert_matches(model, oracle)


@pytest.mark.parametrize("case", range(60))
def test_convolutional_learning_matches_oracle(case):
    rng = np.random.default_rng(2000 + case)
    height, width, channels = int(rng.integers(3, 9)), int(rng.integers(3, 9)), int(rng.integers(1, 3))
    kh, kw = int(rng.choice([1, 2, 3])), int(rng.choice([1, 2, 3]))
    sy, sx = int(rng.choice([1, 2])), int(rng.choice([1, 2]))
    modes = [akida.ConvolutionMode.Same, akida.ConvolutionMode.Valid, akida.ConvolutionMode.Full]
    mode = modes[int(rng.integers(0, 3))]
    pooling = {} if rng.random() < 0.5 else dict(pooling_type=akida.PoolingType.Max, pooling_width=1, pooling_height=1)
    neurons = int(rng.integers(1, 7))
    connections = kh * kw * channels
    num_weights = int(rng.integers(1, connections + 1))
    params = random_params(rng, neurons)
    model = akida.Model(
        [
            akida.InputData(width, height, channels, input_bits=1),
            akida.Convolutional(kw, kh, neurons, convolution_mode=mode, stride_x=sx, stride_y=sy,
                                activations_enabled=False, **pooling),
        ]
    )
    model.compile(num_weights=num_weights, **params)
    oracle = LearningOracle.compile(connections, neurons, num_weights, **params)
    assert_matches(model, oracle)
    n = int(rng.integers(1, 30))
    x = random_inputs(rng, n, (height, width, channels))
    labels = random_labels(rng, n, params["num_classes"])
    model.fit(x, labels)
    oracle.fit_convolutional(x, (kh, kw, channels), (sy, sx), mode, labels)
    assert_matches(model, oracle)


def test_counts_halve_after_255_steps_as_the_oracle_says():
    """One neuron learns 600 samples: its input counts saturate and halve twice; the weights it
    keeps depend on that, and must still match the oracle."""
    rng = np.random.default_rng(7)
    x = random_inputs(rng, 600, (4, 5, 1))
    params = dict(num_classes=1, initial_plasticity=1.0, min_plasticity=0.3, plasticity_decay=0.1,
                  learning_competition=0.0, seed=3)
    model = akida.Model([akida.InputData(5, 4, 1, input_bits=1), akida.FullyConnected(1, activations_enabled=False)])
    model.compile(num_weights=8, **params)
    oracle = LearningOracle.compile(20, 1, 8, **params)
    model.fit(x)
    oracle.fit_fully_connected(x)
    assert oracle.counts.max() < 255 and oracle.counts.max() > 100
    assert_matches(model, oracle)


def test_input_counts_decide_which_weights_move():
    """Hand-checked (one neuron, so the layer's counts are the neuron's and every score is its
    count times f = 1 + 0.3 * spikes / (neuron's total count) - 0.15 > 0; 4 weights, 8 inputs,
    plasticity 1, 0.8, 0.67, ... down to the floor 0.5 after 4 steps):
    A = {0,1,2,3} three times: the first step moves every weight onto A (gain 1.15 > 0.5), counts
    of 0..3 become 3.
    C = {0,1,4,5}, the first three times: silent {2,3} (count 3) outscore or tie {4,5} (counts
    1..3): no move. The fourth time counts are 0,1: 7, 2,3: 3, 4,5: 4, f = 1 + 1.2/28 - 0.15 =
    0.893: both moves gain 0.893 > 0.5, k = share(0.5, 2) = 1: one of 2/3 drops, one of 4/5 rises
    (ties drawn).
    F = {0,1,6,7}: counts 0,1: 8, 6,7: 1; silent = {kept of 2/3 (3), risen of 4/5 (4)}, zero
    weights by score: the other of 4/5 (4), the dropped of 2/3 (3), 6, 7 (1). Only the first pair
    gains (1 * f = 0.8875 > 0.5): k = share(0.5, 1) = 1, the kept one of 2/3 drops and the other
    of 4/5 rises, although its input did not spike: the weights become {0,1,4,5}."""
    model = akida.Model([akida.InputData(8, 1, 1, input_bits=1), akida.FullyConnected(1, activations_enabled=False)])
    model.compile(num_weights=4, initial_plasticity=1.0, plasticity_decay=0.25, min_plasticity=0.5, seed=11)

    def sample(ones):
        x = np.zeros((1, 1, 8, 1), np.uint8)
        x[0, 0, list(ones)] = 1
        return x

    def ones():
        return set(np.flatnonzero(engine_state(model)[0][:, 0]).tolist())

    model.fit(np.concatenate([sample({0, 1, 2, 3})] * 3))
    assert ones() == {0, 1, 2, 3}
    model.fit(np.concatenate([sample({0, 1, 4, 5})] * 3))
    assert ones() == {0, 1, 2, 3}
    model.fit(sample({0, 1, 4, 5}))
    after_c = ones()
    assert len(after_c) == 4 and {0, 1} <= after_c
    assert len(after_c & {2, 3}) == 1 and len(after_c & {4, 5}) == 1
    model.fit(sample({0, 1, 6, 7}))
    assert ones() == {0, 1, 4, 5}
    assert engine_state(model)[1][0] == 2  # threshold_learning: only 0 and 1 spiked


def test_layer_counts_move_a_weight_off_an_input_every_class_shows():
    """Hand-checked contrast (two classes of one neuron each, 3 weights, 8 inputs, plasticity 1
    throughout). Class 0 learns {0,1,2} 20 times; class 1 learns {0,3,4} once (its weights become
    {0,3,4}), then {3,4} n times. Its input 0 (seen once by it, 21 times by the layer) scores
    1 + (0.3 * 2 - 0.15 * S_n) * 21 / S, with S_n = 1 + 2 (n + 1) its total count and S = 60 + S_n
    the layer's; inputs 5, 6, 7 never spiked and score 0. For n = 29: 1 - 8.55 * 21 / 121 = -0.484,
    a gain of 0.484 <= 0.5: no move. For n = 30: 1 - 8.85 * 21 / 123 = -0.511: the weight on 0
    moves to one of 5, 6, 7 (a tie, drawn at random), although none of them spiked."""

    def sample(ones):
        x = np.zeros((1, 1, 8, 1), np.uint8)
        x[0, 0, list(ones)] = 1
        return x

    params = dict(num_classes=2, initial_plasticity=1.0, min_plasticity=1.0, plasticity_decay=0.0, seed=4)
    for n, moved in [(29, False), (30, True)]:
        model = akida.Model([akida.InputData(8, 1, 1, input_bits=1), akida.FullyConnected(2, activations_enabled=False)])
        model.compile(num_weights=3, **params)
        oracle = LearningOracle.compile(8, 2, 3, **params)
        x = np.concatenate([sample({0, 1, 2})] * 20 + [sample({0, 3, 4})] + [sample({3, 4})] * n)
        labels = np.array([0] * 20 + [1] * (n + 1), np.int64)
        model.fit(x, labels)
        oracle.fit_fully_connected(x, labels)
        assert_matches(model, oracle)
        w = engine_state(model)[0]
        assert set(np.flatnonzero(w[:, 0])) == {0, 1, 2}
        ones = set(np.flatnonzero(w[:, 1]).tolist())
        if moved:
            assert {3, 4} < ones and len(ones & {5, 6, 7}) == 1
        else:
            assert ones == {0, 3, 4}


@pytest.mark.parametrize("tiny", [7.5e-274, 1e-46, 5e-324])
def test_an_initial_plasticity_that_is_zero_in_float32_learns_nothing_in_both(tiny):
    """The engine stores initial_plasticity as float32: a value that rounds to 0 there means
    "never learn". The oracle must take the float32 value too (it once compared the float64 value
    with 0 and learned)."""
    assert np.float32(tiny) == 0 and tiny > 0
    rng = np.random.default_rng(3)
    x = random_inputs(rng, 30, (3, 4, 1))
    params = dict(num_classes=1, initial_plasticity=tiny, min_plasticity=0.0, plasticity_decay=0.0, seed=5)
    model = akida.Model([akida.InputData(4, 3, 1, input_bits=1), akida.FullyConnected(3, activations_enabled=False)])
    model.compile(num_weights=4, **params)
    before = engine_state(model)[0].copy()
    oracle = LearningOracle.compile(12, 3, 4, **params)
    model.fit(x)
    oracle.fit_fully_connected(x)
    np.testing.assert_array_equal(engine_state(model)[0], before)
    assert not engine_state(model)[1].any()
    assert_matches(model, oracle)
    assert not oracle.counts.any()


@pytest.mark.parametrize("seed", range(10))
def test_conv_learns_from_a_window_that_saw_the_spike(seed):
    """One spike in a corner, weights that mostly miss it (1 of 9 per neuron): every potential
    may be 0, and the winner must still be a position whose window holds the spike, so the
    sample is learned (not wasted on an empty window at position 0)."""
    model = akida.Model([akida.InputData(8, 8, 1, input_bits=1), akida.Convolutional(3, 3, 4, activations_enabled=False)])
    model.compile(num_weights=1, seed=seed)
    x = np.zeros((1, 8, 8, 1), np.uint8)
    x[0, 7, 7, 0] = 1
    model.fit(x)
    np.testing.assert_array_equal(np.sort(engine_state(model)[1]), [0, 0, 0, 1])


def test_large_batches_learn_as_the_oracle_and_as_small_batches():
    """fit holds the learning layer's inputs 1,024 samples at a time: a batch of 2,500 must give
    the oracle's state, and the same outputs and state as fitting in batches of 700."""
    rng = np.random.default_rng(55)
    x = random_inputs(rng, 2500, (4, 5, 1))
    labels = rng.integers(0, 3, 2500).astype(np.int64)
    params = dict(num_classes=2, plasticity_decay=0.05, learning_competition=0.1, seed=8)

    def fresh():
        model = akida.Model([akida.InputData(5, 4, 1, input_bits=1), akida.FullyConnected(6, threshold_fire=3)])
        model.compile(num_weights=7, **params)
        return model

    whole, pieces = fresh(), fresh()
    out_whole = whole.fit(x, labels)
    out_pieces = np.concatenate([pieces.fit(x[i:i + 700], labels[i:i + 700]) for i in range(0, 2500, 700)])
    np.testing.assert_array_equal(out_whole, out_pieces)
    oracle = LearningOracle.compile(20, 6, 7, **params)
    oracle.fit_fully_connected(x, labels)
    assert_matches(whole, oracle)
    assert_matches(pieces, oracle)
