"""Akida unsupervised learning of the last layer: compile, fit, add_classes, predict, saved state.

The rule under test is docs/learning.md. Everything here is checked from the outside: weights and
``threshold_learning`` through ``get_variable``, potentials through ``forward`` (layers built with
``activations_enabled=False`` output their potentials).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import akida

# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

FC_W, FC_H = 20, 10  # FullyConnected tests: 200 binary inputs
FC_INPUTS = FC_W * FC_H


def fc_model(num_neurons=20, activations_enabled=False, input_bits=1, weights_bits=1, **fc_kwargs):
    return akida.Model(
        [
            akida.InputData(FC_W, FC_H, 1, input_bits=input_bits),
            akida.FullyConnected(
                num_neurons, weights_bits=weights_bits, activations_enabled=activations_enabled, **fc_kwargs
            ),
        ]
    )


def conv_model(num_neurons=4, kernel=3, channels=1, size=8, **conv_kwargs):
    conv_kwargs.setdefault("activations_enabled", False)
    return akida.Model(
        [
            akida.InputData(size, size, channels, input_bits=1),
            akida.Convolutional(kernel, kernel, num_neurons, weights_bits=1, **conv_kwargs),
        ]
    )


def binary_inputs(rng, n, shape=(FC_H, FC_W, 1), density=0.15):
    return (rng.random((n,) + tuple(shape)) < density).astype(np.uint8)


def weights(model):
    return model.layers[-1].get_variable("weights")


def flat_weights(model):
    """Weights as (connections, neurons)."""
    w = weights(model)
    return w.reshape(-1, w.shape[-1])


def ones_per_neuron(model):
    return (flat_weights(model) == 1).sum(axis=0)


def thresholds(model):
    return model.layers[-1].get_variable("threshold_learning")


def plasticity(model):
    return model.layers[-1].get_plasticity()


def state(model):
    """Everything fit may change."""
    return flat_weights(model).copy(), thresholds(model).copy(), plasticity(model).copy()


def assert_same_state(a, b):
    for x, y, what in zip(a, b, ("weights", "threshold_learning", "plasticity")):
        np.testing.assert_array_equal(x, y, err_msg=what)


def assert_learning_invariants(model, num_weights):
    w = flat_weights(model)
    assert set(np.unique(w).tolist()) <= {0, 1}, "weights must stay binary"
    np.testing.assert_array_equal((w == 1).sum(axis=0), num_weights)
    t = thresholds(model)
    assert t.dtype == np.int32
    assert np.all((t >= 0) & (t <= num_weights))
    cfg = model.layers[-1].learning
    p = plasticity(model)
    assert p.dtype == np.float32
    assert np.all(p <= np.float32(cfg.initial_plasticity))
    assert np.all(p >= np.float32(min(cfg.min_plasticity, cfg.initial_plasticity)))


def noisy_pattern_dataset(rng, num_classes=4, active=20, flips=3, n_train=100, n_test=60):
    """Each class is a fixed random pattern of ``active`` inputs out of 200; a sample is its class
    pattern with ``flips`` random bits flipped. Training labels are interleaved (every block of
    ``num_classes`` samples holds each class once, in random order)."""
    patterns = np.zeros((num_classes, FC_INPUTS), np.uint8)
    for c in range(num_classes):
        patterns[c, rng.choice(FC_INPUTS, active, replace=False)] = 1

    def sample(labels):
        x = patterns[labels].copy()
        for row in x:
            idx = rng.choice(FC_INPUTS, flips, replace=False)
            row[idx] ^= 1
        return x.reshape(len(labels), FC_H, FC_W, 1)

    blocks = -(-n_train // num_classes)
    y_train = np.concatenate([rng.permutation(num_classes) for _ in range(blocks)])[:n_train]
    y_test = rng.integers(0, num_classes, n_test)
    return sample(y_train), y_train, sample(y_test), y_test


# ---------------------------------------------------------------------------------------------
# 1. compile errors
# ---------------------------------------------------------------------------------------------

FLOAT_PARAMS = ("initial_plasticity", "min_plasticity", "plasticity_decay", "learning_competition")


@pytest.mark.parametrize("name", FLOAT_PARAMS)
@pytest.mark.parametrize("value", [-0.01, 1.01, -1.0, 2.0, math.nan])
def test_compile_float_out_of_range(name, value):
    model = fc_model()
    with pytest.raises(akida.ParameterError, match=name):
        model.compile(num_weights=10, **{name: value})
    assert model.layers[-1].learning is None


@pytest.mark.parametrize("name", FLOAT_PARAMS)
@pytest.mark.parametrize("value", [0.0, 1.0])
def test_compile_float_bounds_accepted(name, value):
    model = fc_model()
    model.compile(num_weights=10, **{name: value})
    assert getattr(model.layers[-1].learning, name) == pytest.approx(value)


@pytest.mark.parametrize("num_weights", [0, -1])
def test_compile_num_weights_below_one(num_weights):
    model = fc_model()
    with pytest.raises(akida.ParameterError, match="num_weights"):
        model.compile(num_weights=num_weights)
    assert model.layers[-1].learning is None


@pytest.mark.parametrize("num_classes", [0, -1])
def test_compile_num_classes_below_one(num_classes):
    with pytest.raises(akida.ParameterError, match="num_classes"):
        fc_model().compile(num_weights=10, num_classes=num_classes)


def test_compile_num_weights_above_fc_connections():
    model = fc_model()
    with pytest.raises(akida.ParameterError, match="num_weights"):
        model.compile(num_weights=FC_INPUTS + 1)
    assert model.layers[-1].learning is None
    model.compile(num_weights=FC_INPUTS)  # every connection: allowed
    np.testing.assert_array_equal(weights(model), 1)


def test_compile_num_weights_above_conv_connections():
    # kernel 3x2 over 2 channels: 12 connections per neuron
    model = akida.Model(
        [
            akida.InputData(8, 8, 2, input_bits=1),
            akida.Convolutional(3, 2, 4, weights_bits=1, activations_enabled=False),
        ]
    )
    with pytest.raises(akida.ParameterError, match="num_weights"):
        model.compile(num_weights=13)
    model.compile(num_weights=12)
    np.testing.assert_array_equal(weights(model), 1)


@pytest.mark.parametrize("num_classes", [3, 7, 40])
def test_compile_num_classes_must_divide_neurons(num_classes):
    with pytest.raises(akida.ParameterError, match="num_classes"):
        fc_model(num_neurons=20).compile(num_weights=10, num_classes=num_classes)


@pytest.mark.parametrize("num_classes", [1, 2, 4, 5, 10, 20])
def test_compile_num_classes_dividing_neurons_accepted(num_classes):
    model = fc_model(num_neurons=20)
    model.compile(num_weights=10, num_classes=num_classes)
    assert model.layers[-1].learning.num_classes == num_classes


def test_compile_empty_model():
    with pytest.raises(akida.ArchitectureError):
        akida.Model().compile(num_weights=1)


@pytest.mark.parametrize(
    "layers",
    [
        pytest.param(lambda: [akida.InputData(8, 8, 1, input_bits=1)], id="InputData"),
        pytest.param(lambda: [akida.InputConvolutional(8, 8, 1, 3, 3, 4)], id="InputConvolutional"),
        pytest.param(
            lambda: [
                akida.InputData(8, 8, 2, input_bits=1),
                akida.SeparableConvolutional(3, 3, 4, activations_enabled=False),
            ],
            id="SeparableConvolutional",
        ),
    ],
)
def test_compile_wrong_last_layer_type(layers):
    model = akida.Model(layers())
    with pytest.raises(akida.ArchitectureError, match="FullyConnected or Convolutional"):
        model.compile(num_weights=1)
    assert model.layers[-1].learning is None


def test_compile_concat_last_layer():
    model = akida.Model()
    model.add(akida.InputData(8, 8, 1, input_bits=1))
    a = akida.Convolutional(3, 3, 2, weights_bits=1)
    b = akida.Convolutional(3, 3, 2, weights_bits=1)
    model.add(a, [model.layers[0]])
    model.add(b, [model.layers[0]])
    model.add(akida.Concat(), [a, b])
    with pytest.raises(akida.ArchitectureError, match="FullyConnected or Convolutional"):
        model.compile(num_weights=1)


@pytest.mark.parametrize("weights_bits", [2, 4])
def test_compile_weights_bits_not_one_fc(weights_bits):
    model = fc_model(weights_bits=weights_bits)
    with pytest.raises(akida.ArchitectureError, match="weights_bits"):
        model.compile(num_weights=10)


def test_compile_weights_bits_not_one_conv():
    model = akida.Model(
        [akida.InputData(8, 8, 1, input_bits=1), akida.Convolutional(3, 3, 4, weights_bits=2, activations_enabled=False)]
    )
    with pytest.raises(akida.ArchitectureError, match="weights_bits"):
        model.compile(num_weights=4)


@pytest.mark.parametrize("input_bits", [2, 4, 8])
def test_compile_non_binary_input_data(input_bits):
    model = fc_model(input_bits=input_bits)
    with pytest.raises(akida.ArchitectureError, match="binary"):
        model.compile(num_weights=10)
    assert model.layers[-1].learning is None


@pytest.mark.parametrize("bits", [2, 4])
def test_compile_non_binary_previous_layer(bits):
    model = akida.Model(
        [
            akida.InputData(8, 8, 1, input_bits=1),
            akida.Convolutional(3, 3, 4, weights_bits=1, threshold_fire_bits=bits),
            akida.FullyConnected(6, weights_bits=1, activations_enabled=False),
        ]
    )
    with pytest.raises(akida.ArchitectureError, match="binary"):
        model.compile(num_weights=10)


def test_compile_after_binary_hidden_layer_and_input_convolutional():
    model = akida.Model(
        [
            akida.InputConvolutional(8, 8, 1, 3, 3, 4, threshold_fire_bits=1),
            akida.FullyConnected(6, weights_bits=1, activations_enabled=False),
        ]
    )
    model.compile(num_weights=10, num_classes=3)
    np.testing.assert_array_equal(ones_per_neuron(model), 10)


def test_fit_and_add_classes_need_compile(rng):
    model = fc_model()
    x = binary_inputs(rng, 2)
    with pytest.raises(akida.ArchitectureError, match="compile"):
        model.fit(x)
    with pytest.raises(akida.ArchitectureError, match="compile"):
        model.fit(x, [0, 0])
    with pytest.raises(akida.ArchitectureError, match="compile"):
        model.add_classes(1)


def test_fit_label_errors(rng):
    model = fc_model()
    model.compile(num_weights=10, num_classes=4)
    before = state(model)
    x = binary_inputs(rng, 3)
    with pytest.raises(akida.InputError, match="label"):
        model.fit(x, [0, -1, 2])
    with pytest.raises(akida.InputError, match="label"):
        model.fit(x, -1)
    with pytest.raises(akida.InputError, match="label"):
        model.fit(x, [0, 1])
    with pytest.raises(akida.InputError, match="label"):
        model.fit(x, [0, 1, 2, 3])
    with pytest.raises(akida.InputError, match="label"):
        model.fit(x, np.array([], dtype=np.int64))
    assert_same_state(before, state(model))


def test_fit_input_errors(rng):
    model = fc_model()
    model.compile(num_weights=10)
    before = state(model)
    with pytest.raises(akida.InputError):
        model.fit(np.full((1, FC_H, FC_W, 1), 2, np.uint8))  # not binary
    with pytest.raises(akida.InputError):
        model.fit(np.zeros((1, FC_W, FC_H, 1), np.uint8))  # wrong shape
    with pytest.raises(akida.DTypeError):
        model.fit(np.zeros((1, FC_H, FC_W, 1), np.int32))
    assert_same_state(before, state(model))


# ---------------------------------------------------------------------------------------------
# 2. after compile
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_weights", [1, 7, 50, 199])
def test_compile_fc_initial_state(num_weights):
    model = fc_model(num_neurons=12)
    layer = model.layers[-1]
    assert layer.learning is None
    assert layer.get_plasticity() is None
    assert "threshold_learning" not in layer.get_variable_names()
    model.compile(
        num_weights=num_weights,
        num_classes=3,
        initial_plasticity=0.8,
        min_plasticity=0.2,
        plasticity_decay=0.5,
        learning_competition=0.3,
        seed=42,
    )
    assert "threshold_learning" in layer.get_variable_names()
    w = weights(model)
    assert w.shape == (FC_H, FC_W, 1, 12) and w.dtype == np.int8
    assert set(np.unique(w).tolist()) <= {0, 1}
    np.testing.assert_array_equal(ones_per_neuron(model), num_weights)
    t = thresholds(model)
    assert t.dtype == np.int32 and t.shape == (12,)
    np.testing.assert_array_equal(t, 0)
    p = layer.get_plasticity()
    assert p.dtype == np.float32 and p.shape == (12,)
    np.testing.assert_array_equal(p, np.float32(0.8))
    cfg = layer.learning
    assert cfg.num_weights == num_weights
    assert cfg.num_classes == 3
    assert cfg.initial_plasticity == pytest.approx(0.8)
    assert cfg.min_plasticity == pytest.approx(0.2)
    assert cfg.plasticity_decay == pytest.approx(0.5)
    assert cfg.learning_competition == pytest.approx(0.3)
    assert cfg.seed == 42
    assert model.output_shape == (1, 1, 12)


@pytest.mark.parametrize("num_weights", [1, 4, 9])
def test_compile_conv_initial_state(num_weights):
    model = conv_model(num_neurons=6)
    model.compile(num_weights=num_weights, num_classes=2, seed=3)
    w = weights(model)
    assert w.shape == (3, 3, 1, 6)
    assert set(np.unique(w).tolist()) <= {0, 1}
    np.testing.assert_array_equal((w == 1).sum(axis=(0, 1, 2)), num_weights)
    np.testing.assert_array_equal(thresholds(model), 0)
    assert thresholds(model).shape == (6,)


def test_compile_conv_multichannel_initial_state():
    model = conv_model(num_neurons=5, channels=3)
    model.compile(num_weights=11, seed=1)
    w = weights(model)
    assert w.shape == (3, 3, 3, 5)
    np.testing.assert_array_equal((w == 1).sum(axis=(0, 1, 2)), 11)


def test_compile_seed_determines_weights():
    def compiled(seed, builder=fc_model):
        m = builder()
        m.compile(num_weights=10 if builder is fc_model else 4, seed=seed)
        return weights(m)

    np.testing.assert_array_equal(compiled(0), compiled(0))
    np.testing.assert_array_equal(compiled(12345), compiled(12345))
    assert not np.array_equal(compiled(0), compiled(1))
    assert not np.array_equal(compiled(1), compiled(2))
    np.testing.assert_array_equal(compiled(7, conv_model), compiled(7, conv_model))
    assert not np.array_equal(compiled(7, conv_model), compiled(8, conv_model))
    # a large seed (u64) works
    np.testing.assert_array_equal(compiled(2**64 - 1), compiled(2**64 - 1))


def test_compile_weights_are_spread_over_neurons_and_inputs():
    model = fc_model(num_neurons=40)
    model.compile(num_weights=20, seed=5)
    w = flat_weights(model)
    # neurons are not copies of each other
    assert len({w[:, n].tobytes() for n in range(40)}) == 40
    # every input is used by some neuron (800 ones over 200 inputs; missing one is very unlikely)
    assert (w.sum(axis=1) > 0).mean() > 0.9


def test_compile_replaces_weights_and_resets_state(rng):
    model = fc_model()
    model.layers[-1].set_variable("weights", np.ones((FC_H, FC_W, 1, 20), np.int8))
    model.compile(num_weights=10, seed=9)
    np.testing.assert_array_equal(ones_per_neuron(model), 10)
    fresh = fc_model()
    fresh.compile(num_weights=10, seed=9)
    np.testing.assert_array_equal(weights(model), weights(fresh))

    model.fit(binary_inputs(rng, 10))
    assert thresholds(model).any()
    model.compile(num_weights=5, seed=9, initial_plasticity=0.5)
    np.testing.assert_array_equal(ones_per_neuron(model), 5)
    np.testing.assert_array_equal(thresholds(model), 0)
    np.testing.assert_array_equal(plasticity(model), np.float32(0.5))
    assert model.layers[-1].learning.num_weights == 5


# ---------------------------------------------------------------------------------------------
# 3. invariants of fit
# ---------------------------------------------------------------------------------------------


def test_fit_unlabeled_invariants_and_single_winner(rng):
    num_weights = 12
    model = fc_model(num_neurons=10)
    model.compile(num_weights=num_weights, seed=11, plasticity_decay=0.3, min_plasticity=0.2)
    x = binary_inputs(rng, 30)
    learned_steps = 0
    for i in range(len(x)):
        w0, t0, p0 = state(model)
        pot_before = model.forward(x[i : i + 1]).reshape(-1)
        out = model.fit(x[i : i + 1])
        np.testing.assert_array_equal(out.reshape(-1), pot_before)
        assert_learning_invariants(model, num_weights)
        w1, t1, p1 = state(model)
        # A winner learns even when no weight moves (its weights already fit the sample as well
        # as the rule allows): its threshold and plasticity change.
        changed = np.flatnonzero((w0 != w1).any(axis=0) | (t0 != t1) | (p0 != p1))
        assert len(changed) <= 1, f"sample {i}: several neurons learned: {changed}"
        other = np.setdiff1d(np.arange(10), changed)
        np.testing.assert_array_equal(t0[other], t1[other])
        np.testing.assert_array_equal(p0[other], p1[other])
        np.testing.assert_array_equal(w0[:, other], w1[:, other])
        if len(changed) == 0:
            continue
        learned_steps += 1
        n = changed[0]
        active = x[i].reshape(-1) == 1
        gained = (w1[:, n] == 1) & (w0[:, n] == 0)
        lost = (w1[:, n] == 0) & (w0[:, n] == 1)
        assert gained.sum() == lost.sum()
        assert not active[lost].any(), "only weights whose input did not spike drop"
        silent = int(((w0[:, n] == 1) & ~active).sum())
        # k = share(P, moves) with moves <= #silent (the exact k is the oracle's test)
        assert gained.sum() <= math.floor(p0[n] * silent + 0.5)
        # threshold_learning = the winner's potential right after its step
        pot_after = model.forward(x[i : i + 1]).reshape(-1)
        assert t1[n] == pot_after[n] == int(((w1[:, n] == 1) & active).sum())
        assert pot_after[n] >= pot_before[n]
        assert p1[n] == pytest.approx(max(p0[n] / (1 + 0.3 * p0[n] / 1.0), 0.2), abs=1e-6)
    assert learned_steps >= 10


def test_fit_plasticity_decays_to_minimum():
    # every sample activates all inputs but a changing half, so the winner always has silent weights
    model = fc_model(num_neurons=1)
    model.compile(num_weights=100, initial_plasticity=0.9, plasticity_decay=0.5, min_plasticity=0.3)
    x = np.zeros((4, FC_INPUTS), np.uint8)
    x[0, :100] = 1
    x[1, 100:] = 1
    x[2, :100] = 1
    x[3, 100:] = 1
    seen = []
    for i in range(4):
        model.fit(x[i : i + 1].reshape(1, FC_H, FC_W, 1))
        seen.append(float(plasticity(model)[0]))
    # harmonic decay: 0.9 / (1 + 0.5 k), floored at 0.3
    assert seen == pytest.approx([max(0.9 / (1 + 0.5 * k), 0.3) for k in range(1, 5)], abs=1e-6)
    assert seen[-1] == pytest.approx(0.3)
    assert_learning_invariants(model, 100)


def test_winner_with_nothing_to_move_still_becomes_trained():
    """The API: the winner's threshold_learning becomes its potential after the step, also when the
    step moves no weight (all its 1-weights already matched, or no free active input).

    docs/learning.md step 5: "a winner that already matched counts as trained, even when no weight
    moved". Were such a step skipped, the winner would stay untrained (threshold_learning 0) and,
    with learning_competition=0, keep winning every later sample that it matches as well, so the
    other neurons of its group would never be recruited.
    """
    model = fc_model(num_neurons=2)
    model.compile(num_weights=1, seed=0)
    w = flat_weights(model)
    j0, j1 = int(np.flatnonzero(w[:, 0])[0]), int(np.flatnonzero(w[:, 1])[0])
    assert j0 != j1
    x = np.zeros((1, FC_INPUTS), np.uint8)
    x[0, j0] = 1  # neuron 0 fully matches (potential 1), neuron 1 has potential 0
    x = x.reshape(1, FC_H, FC_W, 1)
    np.testing.assert_array_equal(model.forward(x).reshape(-1), [1, 0])
    model.fit(x)
    np.testing.assert_array_equal(flat_weights(model), w)  # nothing to move
    np.testing.assert_array_equal(thresholds(model), [1, 0])


def test_winner_left_with_potential_zero_still_makes_its_moves():
    """docs/learning.md step 5: a winner left with potential 0 keeps its threshold_learning and
    plasticity, but the moves of step 4c still apply. Worked by hand: neuron 0 (class 0) learns
    200 samples {0, 1 + i % 3}, so the layer's counts are G[0] = 200, G[1] = G[2] = 67, G[3] = 66
    (S = 400). Neuron 1 (class 1) holds {197, 198, 199} and gets one sample of the 97 inputs
    100..196, 48.5 times the spikes of the layer's usual step. After counting, S = 497 and the
    layer-frequency weight is (3/10 - 3/20) * 97 = 14.55, so the zero connections score
    0: 14.55 * 200 / 497 = 5.86, 1 and 2: 1.96, 3: 1.93, the 97 that spiked 1 + 14.55 / 497 = 1.03;
    the silent 197..199 score 0. All three pairs gain more than 1/2 and P = 1 takes all three:
    neuron 1 moves to {0, 1, 2}, none of which spiked, so it stays untrained at plasticity 1.
    """
    model = fc_model(num_neurons=2)
    model.compile(num_weights=3, num_classes=2, seed=0)
    start = np.zeros((FC_INPUTS, 2), np.int8)
    start[[0, 1, 2], 0] = 1
    start[[197, 198, 199], 1] = 1
    layer = model.layers[-1]
    layer.set_variable("weights", start.reshape(layer.get_variable("weights").shape))
    x = np.zeros((201, FC_INPUTS), np.uint8)
    x[np.arange(200), 0] = 1
    x[np.arange(200), 1 + np.arange(200) % 3] = 1
    x[200, 100:197] = 1
    labels = np.array([0] * 200 + [1])
    model.fit(x.reshape(-1, FC_H, FC_W, 1), labels)
    np.testing.assert_array_equal(np.flatnonzero(flat_weights(model)[:, 1]), [0, 1, 2])
    assert thresholds(model)[0] > 0
    assert thresholds(model)[1] == 0
    assert plasticity(model)[1] == 1.0


def test_conv_every_neuron_gets_recruited(rng):
    """Consequence of the previous test for a convolution: with few weights a neuron often fully
    matches somewhere, and must not block the recruitment of the others."""
    model = conv_model(num_neurons=4)
    model.compile(num_weights=3, seed=5)
    model.fit(binary_inputs(rng, 50, shape=(8, 8, 1), density=0.3))
    assert_learning_invariants(model, 3)
    assert (thresholds(model) > 0).all(), thresholds(model)


def test_fit_labeled_only_class_group_changes(rng):
    num_classes, per_class, num_weights = 4, 3, 15
    model = fc_model(num_neurons=num_classes * per_class)
    model.compile(num_weights=num_weights, num_classes=num_classes, seed=4)
    x = binary_inputs(rng, 24)
    labels = rng.integers(0, num_classes, len(x))
    changed_any = 0
    for i in range(len(x)):
        w0, t0, p0 = state(model)
        model.fit(x[i : i + 1], [int(labels[i])])
        assert_learning_invariants(model, num_weights)
        w1, t1, p1 = state(model)
        group = np.arange(labels[i] * per_class, (labels[i] + 1) * per_class)
        outside = np.setdiff1d(np.arange(num_classes * per_class), group)
        np.testing.assert_array_equal(w0[:, outside], w1[:, outside])
        np.testing.assert_array_equal(t0[outside], t1[outside])
        np.testing.assert_array_equal(p0[outside], p1[outside])
        changed = np.flatnonzero((w0 != w1).any(axis=0))
        assert len(changed) <= 1 and set(changed) <= set(group)
        changed_any += len(changed)
    assert changed_any >= 12


def test_fit_single_label_for_all_samples(rng):
    model = fc_model(num_neurons=20)
    model.compile(num_weights=10, num_classes=4, seed=2)
    w0, t0, _ = state(model)
    model.fit(binary_inputs(rng, 12), 2)
    w1, t1, _ = state(model)
    outside = np.r_[0:10, 15:20]
    np.testing.assert_array_equal(w0[:, outside], w1[:, outside])
    np.testing.assert_array_equal(t1[outside], 0)
    assert (t1[10:15] > 0).all(), "5 neurons of class 2, 12 samples: every neuron is recruited"
    assert_learning_invariants(model, 10)


def test_fit_label_types_are_equivalent(rng):
    x = binary_inputs(rng, 8)
    labels = [0, 1, 2, 3, 3, 2, 1, 0]
    results = []
    for lab in (labels, np.array(labels, np.int64), np.array(labels, np.int32), np.array(labels, np.uint8), tuple(labels)):
        m = fc_model()
        m.compile(num_weights=10, num_classes=4, seed=1)
        m.fit(x, lab)
        results.append(state(m))
    for r in results[1:]:
        assert_same_state(results[0], r)


@pytest.mark.parametrize("labels", [4, [4], 100, [5, 6, 4, 1000, 4, 4]])
def test_fit_labels_not_below_num_classes_change_nothing(rng, labels):
    model = fc_model()
    model.compile(num_weights=10, num_classes=4, seed=6)
    # some learning first, so that the untouched state is not only the initial one
    model.fit(binary_inputs(rng, 6), [0, 1, 2, 3, 0, 1])
    before = state(model)
    x = binary_inputs(rng, 6)
    expected = model.forward(x)
    out = model.fit(x, labels)
    np.testing.assert_array_equal(out, expected)
    assert_same_state(before, state(model))


def test_fit_mixed_learned_and_skipped_labels(rng):
    x = binary_inputs(rng, 6)
    a = fc_model()
    a.compile(num_weights=10, num_classes=4, seed=6)
    a.fit(x, [0, 9, 1, 4, 2, 100])
    b = fc_model()
    b.compile(num_weights=10, num_classes=4, seed=6)
    b.fit(x[[0, 2, 4]], [0, 1, 2])
    assert_same_state(state(a), state(b))


@pytest.mark.parametrize("labels", [None, 0, [0, 1, 2, 3, 0, 1, 2, 3]])
def test_fit_zero_initial_plasticity_changes_nothing(rng, labels):
    model = fc_model()
    model.compile(num_weights=10, num_classes=4, initial_plasticity=0.0, min_plasticity=0.0, seed=8)
    before = state(model)
    x = binary_inputs(rng, 8)
    out = model.fit(x, labels)
    np.testing.assert_array_equal(out, model.forward(x))
    assert_same_state(before, state(model))


def test_fit_empty_sample_changes_nothing():
    model = fc_model()
    model.compile(num_weights=10, seed=8)
    before = state(model)
    model.fit(np.zeros((3, FC_H, FC_W, 1), np.uint8))
    model.fit(np.zeros((3, FC_H, FC_W, 1), np.uint8), 0)
    assert_same_state(before, state(model))


def test_fit_returns_forward_dtype_and_shape(rng):
    x = binary_inputs(rng, 5)
    for activations in (False, True):
        model = fc_model(activations_enabled=activations, threshold_fire=2)
        model.compile(num_weights=30, seed=1)
        expected = model.forward(x)
        fresh = fc_model(activations_enabled=activations, threshold_fire=2)
        fresh.compile(num_weights=30, seed=1)
        out = fresh.fit(x)
        assert out.dtype == expected.dtype == (np.uint8 if activations else np.int32)
        assert out.shape == expected.shape == (5, 1, 1, 20)
        np.testing.assert_array_equal(out[0], expected[0])


# ---------------------------------------------------------------------------------------------
# 4. determinism
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("labeled", [False, True])
@pytest.mark.parametrize("competition", [0.0, 0.4])
def test_fit_batching_does_not_matter(rng, labeled, competition):
    x = binary_inputs(rng, 23, density=0.2)
    labels = rng.integers(0, 5, len(x)).tolist() if labeled else None

    def fresh():
        m = fc_model(num_neurons=8)
        m.compile(num_weights=16, num_classes=4, seed=77, learning_competition=competition)
        return m

    whole = fresh()
    out_whole = whole.fit(x, labels)
    ref = state(whole)

    per_sample = fresh()
    outs = [per_sample.fit(x[i : i + 1], None if labels is None else [labels[i]]) for i in range(len(x))]
    np.testing.assert_array_equal(np.concatenate(outs), out_whole)
    assert_same_state(ref, state(per_sample))

    for bs in (1, 3, 7, 100):
        m = fresh()
        out = m.fit(x, labels, batch_size=bs)
        np.testing.assert_array_equal(out, out_whole)
        assert_same_state(ref, state(m))

    # uneven chunks of fit calls
    chunks = fresh()
    outs = []
    for lo, hi in [(0, 2), (2, 3), (3, 11), (11, 23)]:
        outs.append(chunks.fit(x[lo:hi], None if labels is None else labels[lo:hi], batch_size=3))
    np.testing.assert_array_equal(np.concatenate(outs), out_whole)
    assert_same_state(ref, state(chunks))

    # same seed, same data, another run
    again = fresh()
    np.testing.assert_array_equal(again.fit(x, labels), out_whole)
    assert_same_state(ref, state(again))
    assert ref[1].any(), "something was learned"


def test_fit_seed_changes_the_result(rng):
    x = binary_inputs(rng, 10)
    results = []
    for seed in (1, 2):
        m = fc_model()
        m.compile(num_weights=10, seed=seed)
        m.fit(x)
        results.append(weights(m))
    assert not np.array_equal(*results)


def test_fit_outputs_are_computed_before_each_step(rng):
    x = binary_inputs(rng, 15, density=0.25)
    model = fc_model(num_neurons=6)
    model.compile(num_weights=25, seed=21)
    # replay: forward with the weights before each step, then the step itself
    replay = fc_model(num_neurons=6)
    replay.compile(num_weights=25, seed=21)
    expected = []
    for i in range(len(x)):
        expected.append(replay.forward(x[i : i + 1]))
        replay.fit(x[i : i + 1])
    out = model.fit(x)
    np.testing.assert_array_equal(out, np.concatenate(expected))
    # the first output is forward of the freshly compiled model
    fresh = fc_model(num_neurons=6)
    fresh.compile(num_weights=25, seed=21)
    np.testing.assert_array_equal(out[:1], fresh.forward(x[:1]))
    # and outputs do differ from forward of the final model (learning happened in between)
    assert not np.array_equal(out, model.forward(x))


def test_fit_outputs_activations_before_each_step(rng):
    x = binary_inputs(rng, 12, density=0.3)
    make = lambda: fc_model(num_neurons=6, activations_enabled=True, threshold_fire=12)  # noqa: E731
    model, replay = make(), make()
    model.compile(num_weights=40, seed=3)
    replay.compile(num_weights=40, seed=3)
    expected = []
    for i in range(len(x)):
        expected.append(replay.forward(x[i : i + 1]))
        replay.fit(x[i : i + 1])
    out = model.fit(x)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.concatenate(expected))


def test_fit_with_events_equals_dense(rng):
    x = binary_inputs(rng, 10)
    a = fc_model()
    a.compile(num_weights=10, num_classes=4, seed=5)
    out_a = a.fit(x, [0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
    b = fc_model()
    b.compile(num_weights=10, num_classes=4, seed=5)
    out_b = b.fit(akida.Events.from_dense(x), [0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
    np.testing.assert_array_equal(out_a, out_b)
    assert_same_state(state(a), state(b))


def test_fit_conv_batching_does_not_matter(rng):
    x = binary_inputs(rng, 9, shape=(8, 8, 1), density=0.3)

    def fresh():
        m = conv_model(num_neurons=4)
        m.compile(num_weights=4, num_classes=2, seed=13)
        return m

    whole = fresh()
    out = whole.fit(x, [0, 1, 1, 0, 0, 1, 0, 1, 1])
    other = fresh()
    outs = [other.fit(x[i : i + 1], [lab], batch_size=1) for i, lab in enumerate([0, 1, 1, 0, 0, 1, 0, 1, 1])]
    np.testing.assert_array_equal(out, np.concatenate(outs))
    assert_same_state(state(whole), state(other))


@pytest.mark.parametrize(
    "pooling, shape",
    [
        # 7x7 map, Max 3x3 / 2: 4x4 windows, one padded row and column on each side
        (dict(pooling_type=akida.PoolingType.Max, pooling_width=3, pooling_height=3, pooling_stride_x=2,
              pooling_stride_y=2), (4, 4, 4)),
        # Average 2x2: 4x4 windows, the last row and column padded
        (dict(pooling_type=akida.PoolingType.Average, pooling_width=2, pooling_height=2), (4, 4, 4)),
        # a window larger than the map: one window
        (dict(pooling_type=akida.PoolingType.Max, pooling_width=9, pooling_height=8), (1, 1, 4)),
    ],
    ids=["max3s2", "avg2", "larger-than-map"],
)
@pytest.mark.parametrize("activations_enabled", [False, True])
def test_conv_learning_with_same_pooling(rng, pooling, shape, activations_enabled):
    """fit's outputs are forward's (Same-mode pooling with padded windows) before each step, as the
    oracle computes them; pooling does not change what is learned (winners come from potentials)."""
    from oracle import run_oracle_on_akida

    def make(**extra):
        m = conv_model(num_neurons=4, size=7, activations_enabled=activations_enabled, threshold_fire=2, **extra)
        m.compile(num_weights=5, num_classes=2, seed=8)
        return m

    model, replay, unpooled = make(**pooling), make(**pooling), make()
    assert model.output_shape == shape
    x = binary_inputs(rng, 8, shape=(7, 7, 1), density=0.3)
    labels = [0, 1, 1, 0, 1, 0, 0, 1]
    expected = []
    for i in range(len(x)):
        out = replay.forward(x[i : i + 1])
        np.testing.assert_array_equal(out, run_oracle_on_akida(replay, x[i : i + 1]))
        expected.append(out)
        replay.fit(x[i : i + 1], [labels[i]])
    got = model.fit(x, labels)
    assert got.shape == (len(x),) + shape
    np.testing.assert_array_equal(got, np.concatenate(expected))
    assert_same_state(state(model), state(replay))
    unpooled.fit(x, labels)
    assert_same_state(state(model), state(unpooled))


# ---------------------------------------------------------------------------------------------
# 5. a separable toy dataset
# ---------------------------------------------------------------------------------------------


def accuracy(pred, labels):
    return float(np.mean(np.asarray(pred) == np.asarray(labels)))


def test_labeled_learning_separates_noisy_patterns(rng):
    x_train, y_train, x_test, y_test = noisy_pattern_dataset(rng)
    model = fc_model(num_neurons=4 * 5)
    model.compile(num_weights=15, num_classes=4, seed=1)
    before = accuracy(model.predict(x_test), y_test)
    # before learning the predictions are not better than chance: averaged over several seeds
    chance = [before]
    for seed in range(2, 9):
        m = fc_model(num_neurons=4 * 5)
        m.compile(num_weights=15, num_classes=4, seed=seed)
        chance.append(accuracy(m.predict(x_test), y_test))
    assert np.mean(chance) <= 0.5, chance

    model.fit(x_train, y_train)
    assert_learning_invariants(model, 15)
    pred = model.predict(x_test)  # default num_classes: the compiled 4
    np.testing.assert_array_equal(pred, model.predict(x_test, num_classes=4))
    after = accuracy(pred, y_test)
    assert after >= 0.9, (before, after)
    assert accuracy(model.predict(x_train), y_train) >= 0.9
    # every neuron of every group learned (100 samples, 5 neurons per class)
    assert (thresholds(model) > 0).all()


def test_unlabeled_learning_clusters_noisy_patterns(rng):
    x_train, y_train, x_test, y_test = noisy_pattern_dataset(rng)
    model = fc_model(num_neurons=20)
    model.compile(num_weights=15, num_classes=1, seed=3)
    assert model.layers[-1].learning.num_classes == 1
    model.fit(x_train)
    assert_learning_invariants(model, 15)
    # label each neuron by the class it responds to most on the training data
    pot = model.forward(x_train).reshape(len(x_train), -1).astype(np.int64)
    response = np.stack([pot[y_train == c].sum(axis=0) for c in range(4)])  # (classes, neurons)
    neuron_class = response.argmax(axis=0)
    assert set(neuron_class.tolist()) == {0, 1, 2, 3}, "every class has neurons"
    test_pot = model.forward(x_test).reshape(len(x_test), -1)
    pred = neuron_class[test_pot.argmax(axis=1)]
    assert accuracy(pred, y_test) >= 0.8
    # and the raw predict() with the single class never fails to respond
    assert (model.predict(x_test) == 0).all()


def test_competition_lets_trained_neurons_claim_similar_samples(rng):
    # with learning_competition high, samples of an already learned pattern refine that neuron
    # instead of recruiting new ones
    x_train, y_train, _, _ = noisy_pattern_dataset(rng, num_classes=2, n_train=20, flips=2)
    model = fc_model(num_neurons=10)
    model.compile(num_weights=15, learning_competition=0.5, seed=2)
    model.fit(x_train)
    assert_learning_invariants(model, 15)
    trained = int((thresholds(model) > 0).sum())
    assert 2 <= trained < 10
    plain = fc_model(num_neurons=10)
    plain.compile(num_weights=15, learning_competition=0.0, seed=2)
    plain.fit(x_train)
    assert int((thresholds(plain) > 0).sum()) == 10


# ---------------------------------------------------------------------------------------------
# 6. convolutional learning layer
# ---------------------------------------------------------------------------------------------


def conv_patch(sample, oy, ox, k=3):
    """The (k, k) binary taps seen by output (oy, ox) of a Same, stride-1 true convolution: weight
    (ky, kx) reads input (oy + (k-1-ky) - pad, ox + (k-1-kx) - pad)."""
    pad = (k - 1) // 2
    padded = np.pad(sample[:, :, 0], ((pad, k - 1 - pad), (pad, k - 1 - pad)))
    return padded[oy : oy + k, ox : ox + k][::-1, ::-1]


def test_conv_learning_moves_the_winner_toward_its_patch(rng):
    model = conv_model(num_neurons=4)
    model.compile(num_weights=4, seed=17)
    # 40 samples: a winner whose best position offers nothing to move (k = 0) keeps its weights,
    # so only part of the samples change them (usually 5 or more of 40; at least 1 over 1000 data
    # seeds)
    x = binary_inputs(rng, 40, shape=(8, 8, 1), density=0.3)
    steps = 0
    for i in range(len(x)):
        w0, t0, p0 = state(model)
        pot = model.forward(x[i : i + 1])[0]  # (8, 8, 4) potentials before the step
        out = model.fit(x[i : i + 1])
        np.testing.assert_array_equal(out[0], pot)
        assert_learning_invariants(model, 4)
        w1, t1, p1 = state(model)
        changed = np.flatnonzero((w0 != w1).any(axis=0))
        assert len(changed) <= 1
        if not len(changed):
            continue
        n = int(changed[0])
        # the winner's position: where it has its largest potential among untrained neurons; ties
        # go to the lowest position then the lowest neuron. (Once all have learned, trained neurons
        # rank by potential less a share of their familiarity, which needs the input counts: the
        # oracle test checks that case exactly.)
        untrained = t0 == 0
        if not untrained.any():
            continue
        steps += 1
        masked = np.where(untrained[None, None, :], pot, np.iinfo(np.int32).min)
        oy, ox, wn = np.unravel_index(np.argmax(masked), masked.shape)
        assert wn == n
        active = conv_patch(x[i], oy, ox).reshape(-1) == 1
        gained = (w1[:, n] == 1) & (w0[:, n] == 0)
        lost = (w1[:, n] == 0) & (w0[:, n] == 1)
        assert gained.sum() == lost.sum() > 0
        assert not active[lost].any()
        silent = int(((w0[:, n] == 1) & ~active).sum())
        assert gained.sum() <= math.floor(p0[n] * silent + 0.5)
        matched_after = int(((w1[:, n] == 1) & active).sum())
        assert matched_after >= int(((w0[:, n] == 1) & active).sum())
        assert t1[n] == matched_after
        # the potential at the winner's position, recomputed by forward, is threshold_learning
        assert model.forward(x[i : i + 1])[0, oy, ox, n] == t1[n]
        assert p1[n] == pytest.approx(max(p0[n] / (1 + 0.25 * p0[n]), 0.1), abs=1e-6)
    assert steps >= 1


def test_conv_learning_single_pattern_is_learned_exactly():
    # one sample with one 2x2 blob; plasticity 1: the winner's 4 weights all land on the blob
    model = conv_model(num_neurons=4)
    model.compile(num_weights=4, seed=0)
    x = np.zeros((1, 8, 8, 1), np.uint8)
    x[0, 3:5, 3:5, 0] = 1
    model.fit(x)
    t = thresholds(model)
    assert (t > 0).sum() == 1
    n = int(np.flatnonzero(t)[0])
    assert t[n] == 4
    assert model.forward(x)[0, :, :, n].max() == 4
    np.testing.assert_array_equal(ones_per_neuron(model), 4)


def test_conv_labeled_learning_respects_groups(rng):
    model = conv_model(num_neurons=4)
    model.compile(num_weights=5, num_classes=2, seed=4)
    x = binary_inputs(rng, 20, shape=(8, 8, 1), density=0.3)
    w0 = flat_weights(model).copy()
    model.fit(x, 1)
    w1 = flat_weights(model)
    np.testing.assert_array_equal(w0[:, :2], w1[:, :2])
    assert not np.array_equal(w0[:, 2:], w1[:, 2:])
    assert_learning_invariants(model, 5)


# ---------------------------------------------------------------------------------------------
# 7. add_classes
# ---------------------------------------------------------------------------------------------


def test_add_classes_keeps_learned_neurons(rng):
    per_class = 3
    model = fc_model(num_neurons=2 * per_class)
    model.compile(num_weights=12, num_classes=2, seed=10, initial_plasticity=0.9)
    x = binary_inputs(rng, 8)
    model.fit(x, [0, 1, 0, 1, 0, 1, 0, 1])
    w_old, t_old, p_old = state(model)

    model.add_classes(2)
    layer = model.layers[-1]
    assert layer.learning.num_classes == 4
    assert model.output_shape == (1, 1, 4 * per_class)
    assert layer.output_shape == (1, 1, 4 * per_class)
    w, t, p = state(model)
    assert weights(model).shape == (FC_H, FC_W, 1, 4 * per_class)
    np.testing.assert_array_equal(w[:, : 2 * per_class], w_old)
    np.testing.assert_array_equal(t[: 2 * per_class], t_old)
    np.testing.assert_array_equal(p[: 2 * per_class], p_old)
    np.testing.assert_array_equal(t[2 * per_class :], 0)
    np.testing.assert_array_equal(p[2 * per_class :], np.float32(0.9))
    np.testing.assert_array_equal((w == 1).sum(axis=0), 12)
    assert set(np.unique(w).tolist()) <= {0, 1}
    assert model.layers[-1].get_variable("threshold_fire").shape == (4 * per_class,)
    assert model.layers[-1].get_learning_histogram().sum() == 4 * per_class
    assert model.forward(x).shape == (len(x), 1, 1, 4 * per_class)

    # the new class can be learned; nothing else changes
    model.fit(binary_inputs(rng, 4), 3)
    w2, t2, _ = state(model)
    np.testing.assert_array_equal(w2[:, : 3 * per_class], w[:, : 3 * per_class])
    assert (t2[3 * per_class :] > 0).any()
    assert_learning_invariants(model, 12)
    pred = model.predict(x)  # default num_classes follows add_classes
    assert pred.min() >= -1 and pred.max() <= 3


def test_add_classes_is_deterministic_and_conv(rng):
    def run():
        m = conv_model(num_neurons=4)
        m.compile(num_weights=6, num_classes=2, seed=5)
        m.fit(binary_inputs(np.random.default_rng(1), 4, shape=(8, 8, 1), density=0.3), [0, 1, 0, 1])
        m.add_classes(1)
        return m

    a, b = run(), run()
    assert_same_state(state(a), state(b))
    assert a.output_shape == (8, 8, 6)
    assert weights(a).shape == (3, 3, 1, 6)
    np.testing.assert_array_equal(ones_per_neuron(a), 6)
    x = binary_inputs(rng, 20, shape=(8, 8, 1), density=0.3)
    w0 = flat_weights(a).copy()
    a.fit(x, 2)
    np.testing.assert_array_equal(flat_weights(a)[:, :4], w0[:, :4])
    assert (thresholds(a)[4:] > 0).any()


def test_add_classes_then_learn_a_new_pattern(rng):
    x_train, y_train, x_test, y_test = noisy_pattern_dataset(rng, num_classes=3, n_train=60)
    model = fc_model(num_neurons=2 * 4)
    model.compile(num_weights=15, num_classes=2, seed=1)
    keep = y_train < 2
    model.fit(x_train[keep], y_train[keep])
    model.add_classes(1)
    model.fit(x_train[~keep], y_train[~keep])
    assert accuracy(model.predict(x_test), y_test) >= 0.9


def test_add_classes_errors():
    model = fc_model(num_neurons=4)
    model.compile(num_weights=5, num_classes=2)
    for n in (0, -1):
        with pytest.raises((akida.ParameterError, OverflowError)):
            model.add_classes(n)
    assert model.layers[-1].learning.num_classes == 2
    assert model.output_shape == (1, 1, 4)


# ---------------------------------------------------------------------------------------------
# 8. learning histogram
# ---------------------------------------------------------------------------------------------


def expected_histogram(t, num_weights):
    return np.bincount((100 * t.astype(np.int64)) // num_weights, minlength=101)


def test_learning_histogram(rng):
    model = fc_model(num_neurons=20)
    model.compile(num_weights=30, num_classes=4, seed=2)
    h = model.layers[-1].get_learning_histogram()
    assert h.dtype == np.int64 and h.shape == (101,)
    assert h[0] == 20 and h.sum() == 20

    model.fit(binary_inputs(rng, 7, density=0.1), [0, 1, 2, 3, 0, 1, 2])
    h = model.layers[-1].get_learning_histogram()
    t = thresholds(model)
    assert h.sum() == 20
    assert h[0] == (t == 0).sum() == 20 - 7
    np.testing.assert_array_equal(h, expected_histogram(t, 30))

    model.fit(binary_inputs(rng, 40, density=0.5))
    h = model.layers[-1].get_learning_histogram()
    t = thresholds(model)
    assert h.sum() == 20 and h[0] == (t == 0).sum()
    np.testing.assert_array_equal(h, expected_histogram(t, 30))
    # dense inputs: every trained neuron ends fully matched on its last sample
    assert h[100] > 0


def test_learning_histogram_not_compiled():
    layer = fc_model().layers[-1]
    # not specified: an ArchitectureError, or a histogram of the right length
    try:
        h = layer.get_learning_histogram()
    except akida.ArchitectureError as e:
        assert "compile" in str(e)
    else:
        assert h.shape == (101,) and h.sum() in (0, 20)


# ---------------------------------------------------------------------------------------------
# 9. saving and loading resume learning
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["fb", "fbz"])
@pytest.mark.parametrize("kind", ["fc", "conv"])
def test_save_load_resumes_learning(tmp_path, rng, ext, kind):
    if kind == "fc":
        make = lambda: fc_model(num_neurons=8)  # noqa: E731
        shape, num_weights = (FC_H, FC_W, 1), 14
    else:
        make = lambda: conv_model(num_neurons=4)  # noqa: E731
        shape, num_weights = (8, 8, 1), 4
    config = dict(
        num_weights=num_weights,
        num_classes=2,
        initial_plasticity=0.7,
        min_plasticity=0.15,
        plasticity_decay=0.2,
        learning_competition=0.25,
        seed=31,
    )
    a_x = binary_inputs(rng, 10, shape=shape, density=0.25)
    a_y = rng.integers(0, 2, 10)
    b_x = binary_inputs(rng, 12, shape=shape, density=0.25)
    b_y = rng.integers(0, 3, 12)  # some labels skipped

    straight = make()
    straight.compile(**config)
    straight.fit(a_x, a_y)
    out_straight = straight.fit(b_x, b_y)

    saved = make()
    saved.compile(**config)
    saved.fit(a_x, a_y)
    path = tmp_path / f"model.{ext}"
    saved.save(path)
    loaded = akida.Model(path)

    cfg = loaded.layers[-1].learning
    assert cfg is not None
    assert cfg.num_weights == num_weights and cfg.num_classes == 2 and cfg.seed == 31
    assert cfg.initial_plasticity == pytest.approx(0.7)
    assert cfg.min_plasticity == pytest.approx(0.15)
    assert cfg.plasticity_decay == pytest.approx(0.2)
    assert cfg.learning_competition == pytest.approx(0.25)
    assert "threshold_learning" in loaded.layers[-1].get_variable_names()
    assert_same_state(state(saved), state(loaded))
    np.testing.assert_array_equal(
        loaded.layers[-1].get_learning_histogram(), saved.layers[-1].get_learning_histogram()
    )

    out_loaded = loaded.fit(b_x, b_y)
    np.testing.assert_array_equal(out_loaded, out_straight)
    assert_same_state(state(straight), state(loaded))
    # the loaded model also matches after add_classes (the generator state was restored)
    straight.add_classes(1)
    loaded.add_classes(1)
    assert_same_state(state(straight), state(loaded))


def test_buffer_round_trip_resumes_learning(rng):
    a_x, b_x = binary_inputs(rng, 6), binary_inputs(rng, 6)
    straight = fc_model()
    straight.compile(num_weights=10, seed=4)
    straight.fit(a_x)
    copy = akida.Model(serialized_buffer=straight.to_buffer())
    straight.fit(b_x)
    copy.fit(b_x)
    assert_same_state(state(straight), state(copy))


def test_save_load_fresh_compile_and_uncompiled(tmp_path, rng):
    compiled = fc_model()
    compiled.compile(num_weights=10, num_classes=4, seed=12)
    compiled.save(tmp_path / "c.fbz")
    loaded = akida.Model(tmp_path / "c.fbz")
    assert_same_state(state(compiled), state(loaded))
    x = binary_inputs(rng, 5)
    np.testing.assert_array_equal(compiled.fit(x, 1), loaded.fit(x, 1))
    assert_same_state(state(compiled), state(loaded))

    plain = fc_model()
    plain.save(tmp_path / "p.fb")
    back = akida.Model(tmp_path / "p.fb")
    assert back.layers[-1].learning is None
    assert back.layers[-1].get_plasticity() is None
    assert "threshold_learning" not in back.layers[-1].get_variable_names()
    with pytest.raises(akida.ArchitectureError):
        back.fit(x)
