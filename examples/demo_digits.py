"""Runs small spiking networks on scikit-learn's handwritten digits (shipped with scikit-learn).

1. InputConvolutional turns each 8x8 image into binary spikes with eight fixed, oriented 3x3 edge
   kernels; a FullyConnected layer of 1-bit weights matches the spikes against one binary template
   per class built from the training images (the inputs that fire most often for that class).
2. The same edge front end feeds a FullyConnected layer trained with Akida unsupervised learning
   (`compile` then `fit`, one pass, labeled mode); the model is saved to a .fbz file and reloaded.

    python examples/demo_digits.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import akida

EDGE_KERNELS = np.array(
    [
        [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],  # dark above, bright below
        [[1, 2, 1], [0, 0, 0], [-1, -2, -1]],
        [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],  # dark left, bright right
        [[1, 0, -1], [2, 0, -2], [1, 0, -1]],
        [[-2, -1, 0], [-1, 0, 1], [0, 1, 2]],  # diagonals
        [[2, 1, 0], [1, 0, -1], [0, -1, -2]],
        [[0, -1, -2], [1, 0, -1], [2, 1, 0]],
        [[0, 1, 2], [-1, 0, 1], [-2, -1, 0]],
    ],
    dtype=np.int8,
)


def edge_model() -> akida.Model:
    """InputConvolutional with fixed oriented edge kernels: 8x8 pixels -> 8x8x8 binary spikes."""
    model = akida.Model()
    model.add(
        akida.InputConvolutional(
            input_width=8, input_height=8, input_channels=1, kernel_width=3, kernel_height=3,
            num_neurons=8, weights_bits=4, threshold_fire=400, name="edges",
        )
    )
    # (kernel_h, kernel_w, channels, neurons)
    model.get_layer("edges").set_variable("weights", EDGE_KERNELS.transpose(1, 2, 0)[:, :, None, :])
    return model


def main() -> None:
    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)[..., None]
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.3, stratify=digits.target, random_state=0
    )
    template_ones = 96
    model = edge_model()

    # One binary template per class: the edge spikes that fire most often for that class.
    spikes = model.forward(x_train).reshape(len(x_train), -1)
    templates = np.zeros((spikes.shape[1], 10), dtype=np.int8)
    for digit in range(10):
        rate = spikes[y_train == digit].mean(axis=0)
        templates[np.argsort(-rate, kind="stable")[:template_ones], digit] = 1
    model.add(akida.FullyConnected(num_neurons=10, weights_bits=1, activations_enabled=False, name="templates"))
    model.get_layer("templates").set_variable("weights", templates.reshape(8, 8, 8, 10))

    model.summary()
    start = time.perf_counter()
    predicted = model.predict(x_test, num_classes=10)
    elapsed = time.perf_counter() - start
    accuracy = float(np.mean(predicted == y_test))
    print(f"\nscikit-learn digits, {len(x_train)} training / {len(x_test)} test images")
    print(f"test accuracy: {accuracy:.2%} ({int(np.sum(predicted == y_test))}/{len(y_test)})")
    for name, stats in model.get_statistics().items():
        print(
            f"  {name:<10} input sparsity {stats.input_sparsity:6.1%}  output sparsity "
            f"{stats.output_sparsity:6.1%}  synaptic ops/sample {stats.synaptic_operations / stats.samples:10.0f}"
        )
    repeats = np.tile(x_test, (20, 1, 1, 1))
    start = time.perf_counter()
    model.forward(repeats)
    throughput = len(repeats) / (time.perf_counter() - start)
    info = akida.engine_info()
    print(f"throughput: {throughput:,.0f} samples/s ({info['worker_threads']} threads, {info['simd']})")

    # Akida learning of the last layer on the same edge spikes.
    learner = edge_model()
    learner.add(akida.FullyConnected(num_neurons=10 * 20, activations_enabled=False, name="learned"))
    learner.compile(num_weights=60, num_classes=10, seed=0)
    start = time.perf_counter()
    learner.fit(x_train, y_train.astype(np.int64))
    fit_speed = len(x_train) / (time.perf_counter() - start)
    learned = float(np.mean(learner.predict(x_test) == y_test))
    print("\nAkida learning: 20 neurons per class, 60 weights each, one pass")
    learner.summary()
    print(f"test accuracy: {learned:.2%}; fit speed {fit_speed:,.0f} samples/s")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "digits.fbz"
        learner.save(path)
        reloaded = akida.Model(path)
        same = np.array_equal(reloaded.forward(x_test), learner.forward(x_test))
        print(f"saved to {path.name} ({path.stat().st_size:,} bytes); reloaded model gives the same outputs: {same}")


if __name__ == "__main__":
    main()
