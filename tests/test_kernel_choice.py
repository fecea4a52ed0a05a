"""The per-sample kernel choice (events / dense / bit-packed): dense and sparse inputs of the same
model run different kernels, statistics say which, and the outputs equal the numpy oracle in both
regimes (the kernels compute the same integers)."""

import numpy as np
import akida

from oracle import run_oracle_on_akida


def _model(rng):
    model = akida.Model()
    model.add(akida.InputData(input_width=8, input_height=8, input_channels=16, input_bits=1))
    conv = akida.Convolutional(
        kernel_width=3, kernel_height=3, num_neurons=32, weights_bits=2, threshold_fire_bits=1,
        convolution_mode=akida.ConvolutionMode.Same,
    )
    model.add(conv)
    conv.set_variable("weights", rng.integers(-1, 2, size=(3, 3, 16, 32)).astype(np.int8))
    conv.set_variable("threshold_fire", np.full(32, 1, np.int32))
    fc = akida.FullyConnected(num_neurons=300, weights_bits=1, activations_enabled=False)
    model.add(fc)
    fc.set_variable("weights", rng.integers(0, 2, size=(8, 8, 32, 300)).astype(np.int8))
    return model


def test_dense_and_sparse_inputs_run_different_kernels_with_oracle_results():
    rng = np.random.default_rng(5)
    model = _model(rng)
    available = set(akida.engine_info()["kernels"])
    assert available == {"events", "dense", "bit-packed"}
    for density, conv_kernel in ((1.0, "dense"), (0.01, "events")):
        x = (rng.random((6, 8, 8, 16)) < density).astype(np.uint8)
        out = model.forward(x)
        np.testing.assert_array_equal(out, run_oracle_on_akida(model, x))
        stats = model.get_statistics()
        for name, st in stats.items():
            assert set(st.kernels) <= available, name
        weighted = [st for st in stats.values() if st.kernels]
        assert len(weighted) == 2
        assert all(sum(st.kernels.values()) == 6 for st in weighted)
        conv_stats = [st for st in weighted if st.kernels.get(conv_kernel) == 6]
        assert conv_stats, (density, [st.kernels for st in weighted])
