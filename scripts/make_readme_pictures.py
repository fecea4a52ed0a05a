#!/usr/bin/env python3
"""Writes the pictures of README.md into docs/images/ from data shipped with scikit-learn.

- ``digits_weights.png``: the learned weights of a FullyConnected layer compiled with 10 classes
  (30 neurons per class, 20 weights each), trained by Akida learning on scikit-learn's 8x8 digits
  (pixels > 8 as 1-bit spikes, the 70/30 split of benches/bench_learning.py); the first 10
  neurons of each class.
- ``digits_statistics.png``: per-layer sparsity and synaptic operations of a three-layer model
  (a fixed random 3x3 convolution front end with 1-bit spikes, then the same learned
  FullyConnected) over the test images.

    python scripts/make_readme_pictures.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import akida  # noqa: E402
from akida import plot  # noqa: E402

SEED = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent.parent / "docs" / "images"))
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    digits = load_digits()
    spikes = (digits.images > 8).astype(np.uint8)[..., None]
    x_tr, x_te, y_tr, y_te = train_test_split(
        spikes, digits.target, test_size=0.3, stratify=digits.target, random_state=SEED
    )

    model = akida.Model([akida.InputData(8, 8, 1, input_bits=1), akida.FullyConnected(10 * 30, activations_enabled=False)])
    model.compile(num_weights=20, num_classes=10, seed=SEED)
    model.fit(x_tr, y_tr.astype(np.int64))
    accuracy = float(np.mean(model.predict(x_te) == y_te))
    fig = plot.plot_weights(model.get_layer(1), max_per_class=10, panel_size=0.55)
    fig.suptitle(f"learned weights, scikit-learn digits, 10 classes x 30 neurons (test accuracy {accuracy:.1%})", fontsize=9)
    fig.savefig(out / "digits_weights.png", dpi=80)
    plt.close(fig)

    rng = np.random.default_rng(SEED)
    deep = akida.Model()
    deep.add(akida.InputData(8, 8, 1, input_bits=1, name="spikes"))
    deep.add(akida.Convolutional(3, 3, 16, weights_bits=2, threshold_fire=1, name="conv_3x3"))
    deep.get_layer(1).set_variable("weights", rng.integers(-1, 2, (3, 3, 1, 16)))
    deep.add(akida.FullyConnected(10 * 30, activations_enabled=False, name="classes"))
    deep.compile(num_weights=60, num_classes=10, seed=SEED)
    deep.fit(x_tr, y_tr.astype(np.int64))
    deep_accuracy = float(np.mean(deep.predict(x_te) == y_te))
    deep = akida.Model(serialized_buffer=deep.to_buffer())  # fresh statistics: the test images only
    deep.predict(x_te, num_classes=10)
    fig = plot.plot_statistics(deep)
    fig.suptitle(f"statistics over {len(x_te)} test digits (accuracy {deep_accuracy:.1%})", fontsize=9)
    fig.savefig(out / "digits_statistics.png", dpi=80)
    plt.close(fig)
    for name in ("digits_weights.png", "digits_statistics.png"):
        print(f"{out / name}: {(out / name).stat().st_size / 1024:.0f} KB")
    print(f"digits accuracy: plain {accuracy:.1%}, conv front end {deep_accuracy:.1%}")


if __name__ == "__main__":
    main()
