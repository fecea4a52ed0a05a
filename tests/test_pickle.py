"""Pickling models: ``pickle``, ``copy.deepcopy`` and ``multiprocessing`` go through the model's file
bytes (``Model.__reduce__`` -> ``Model(None, model.to_buffer())``).

The copy must have the same layers, parameters and variables bit for bit (the checks of
``test_model_files.py``), give the same outputs on random inputs, and carry the learning state on:
a compiled model fitted, pickled, then fitted again on both sides stays identical.
"""

from __future__ import annotations

import copy
import multiprocessing
import operator
import pickle

import numpy as np
import pytest

import helpers as H
from conftest import seeded_rng
from oracle import build_akida_model
from test_learning import assert_same_state, binary_inputs, fc_model, state
from test_model_files import FAMILIES, assert_same_model, assert_same_outputs, model_inputs, random_case

akida = pytest.importorskip("akida")

CASES_PER_FAMILY = 6


def pickled(model):
    return pickle.loads(pickle.dumps(model))


def random_model(rng, family="chain_data"):
    """A random model with random variables, and inputs for it."""
    specs, x = random_case(rng, family)
    model = build_akida_model(specs)
    return model, np.concatenate([x, model_inputs(model, rng, 4)])


def test_reduce_rebuilds_from_the_file_bytes():
    model = fc_model()
    rebuild, args = model.__reduce__()
    assert rebuild is akida.Model
    assert args == (None, model.to_buffer())


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_round_trip_random_models(family, how):
    rng = seeded_rng("pickle", family)
    for i in H.cases(CASES_PER_FAMILY):
        specs, x = random_case(rng, family)
        model = build_akida_model(specs)
        inputs = np.concatenate([x, model_inputs(model, rng, 4)])
        context = f"\n{family} case {i} ({how}):\n" + H.describe(specs)
        loaded = pickled(model) if how == "pickle" else copy.deepcopy(model)
        assert loaded is not model
        assert_same_model(loaded, model, context)
        assert_same_outputs(loaded, model, inputs, context)
        assert loaded.to_buffer() == model.to_buffer()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_every_protocol(protocol, rng):
    model, x = random_model(rng)
    loaded = pickle.loads(pickle.dumps(model, protocol=protocol))
    assert_same_model(loaded, model)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_learning_state_carries_on(how, rng):
    a_x, b_x = binary_inputs(rng, 8), binary_inputs(rng, 8)
    straight = fc_model()
    straight.compile(num_weights=10, num_classes=4, seed=7)
    straight.fit(a_x, rng.integers(0, 4, size=8))
    copied = pickled(straight) if how == "pickle" else copy.deepcopy(straight)
    assert_same_model(copied, straight)
    assert_same_state(state(copied), state(straight))
    labels = rng.integers(0, 4, size=8)
    np.testing.assert_array_equal(copied.fit(b_x, labels), straight.fit(b_x, labels))
    assert_same_state(state(copied), state(straight))
    np.testing.assert_array_equal(copied.predict(a_x), straight.predict(a_x))


@pytest.mark.parametrize("how", [copy.copy, copy.deepcopy, pickle.loads], ids=["copy", "deepcopy", "pickle"])
def test_copies_are_independent(how, rng):
    model, _ = random_model(rng, "fc")
    copied = how(pickle.dumps(model)) if how is pickle.loads else how(model)
    weights = model.layers[-1].get_variable("weights")
    copied.layers[-1].set_variable("weights", np.zeros_like(weights))
    np.testing.assert_array_equal(model.layers[-1].get_variable("weights"), weights)
    count = len(model)
    copied.pop_layer()
    assert len(model) == count and len(copied) == count - 1


def test_empty_model_round_trips():
    assert akida.Model().__reduce__() == (akida.Model, (None, None))
    for loaded in (pickled(akida.Model()), copy.deepcopy(akida.Model())):
        assert isinstance(loaded, akida.Model) and len(loaded) == 0
    # to_buffer itself still refuses an empty model
    with pytest.raises(akida.ArchitectureError, match="no layers"):
        akida.Model().to_buffer()


def test_layer_objects_do_not_pickle_alone():
    with pytest.raises(TypeError):
        pickle.dumps(akida.InputData(4, 4, 1))
    with pytest.raises(TypeError):
        pickle.dumps(fc_model().layers[-1])


def test_spawned_pool_runs_a_pickled_model(rng):
    model, x = random_model(rng)
    want = model.forward(x)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        # the model travels to the workers as an argument and comes back as a result
        outputs = pool.map(operator.methodcaller("forward", x), [model, model])
        returned = pool.apply(copy.copy, (model,))
    for got in outputs:
        np.testing.assert_array_equal(got, want)
    assert_same_model(returned, model)
    np.testing.assert_array_equal(returned.forward(x), want)
