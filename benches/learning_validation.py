#!/usr/bin/env python3
"""Accuracy of the plain set-ups of bench_learning on validation folds of the TRAINING images only
(issue 15: the rule's constants are chosen here, never on the test split).

Fold k (0..7) holds out 50 training images per class (fold 0: the last 50 of each class's 400 in
index order; fold k >= 1: the k-th block of 50) and learns the other 350 per class, one pass,
default learning parameters, the mean over ``--seeds`` compile seeds.

With ``--features``, the validation analogues of the other targets follow, on fold 0: few-shot on
the features (``bench_learning.FEW_SHOT``), the first N shots of each class of the fold's learning
images and the mean over ``--draws`` random draws of them next to the cosine nearest-exemplar
baseline on pixels, and the best edge set-up, (400, 200) after 2x2 max pooling. A rule that gains
on pixels can lose there (docs/learning.md, "Status").

    python benches/learning_validation.py [--folds 8] [--seeds 8] [--features [--draws 6]]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_learning as bl  # noqa: E402

SETUPS = [(1, 300), (10, 300), (50, 150), (50, 200), (100, 150)]


def fold_split(labels, train, fold: int):
    held_out = []
    for digit in range(10):
        index = sorted(i for i in train if labels[i] == digit)
        held_out.extend(index[-50:] if fold == 0 else index[50 * (fold - 1) : 50 * fold])
    held = set(held_out)
    return np.array([i for i in train if i not in held]), np.array(sorted(held_out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--features", action="store_true", help="also few-shot on features and the edge set-up (fold 0)")
    parser.add_argument("--draws", type=int, default=6, help="random draws of the shots with --features")
    args = parser.parse_args()
    if not 1 <= args.folds <= 8 or args.seeds < 1 or args.draws < 1:
        parser.error("--folds must be 1 to 8, --seeds and --draws at least 1")
    images, labels, train, _ = bl.mnist_split()
    spikes = (images > 127).astype(np.uint8)
    table = np.zeros((args.folds, len(SETUPS)))
    for fold in range(args.folds):
        learn, held = fold_split(labels, train, fold)
        for j, (per_class, num_weights) in enumerate(SETUPS):
            accs = [
                bl.accuracy(bl.plain_model(per_class, num_weights, s), spikes[learn], labels[learn], spikes[held], labels[held])
                for s in range(args.seeds)
            ]
            table[fold, j] = np.mean(accs)
        print(f"fold {fold}: " + "  ".join(f"{s}: {a:.1%}" for s, a in zip(SETUPS, table[fold])), flush=True)
    means = table.mean(axis=0)
    print("mean:   " + "  ".join(f"{s}: {a:.1%}" for s, a in zip(SETUPS, means)) + f"  (all: {means.mean():.2%})")
    if args.features:
        features(images, labels, train, args.draws, args.seeds)


def features(images, labels, train, draws: int, seeds: int) -> None:
    """Few-shot on features and the best edge set-up, on fold 0 (see the module's doc)."""
    learn, held = fold_split(labels, train, 0)
    spikes = (images > 127).astype(np.uint8)
    x_held = spikes[held].reshape(len(held), -1).astype(np.float32)
    rng = np.random.default_rng(777)
    for shots in (1, 5, 10):
        first = np.concatenate([[i for i in learn if labels[i] == d][:shots] for d in range(10)]).astype(np.int64)
        first_acc = bl.accuracy(bl.edge_model(**bl.FEW_SHOT), images[first], labels[first], images[held], labels[held])
        drawn, cosine = [], []
        for draw in range(draws):
            chosen = np.concatenate(
                [rng.choice([i for i in learn if labels[i] == d], shots, replace=False) for d in range(10)]
            ).astype(np.int64)
            model = bl.edge_model(seed=draw, **bl.FEW_SHOT)
            drawn.append(bl.accuracy(model, images[chosen], labels[chosen], images[held], labels[held]))
            exemplars = spikes[chosen].reshape(len(chosen), -1).astype(np.float32)
            cosine.append(float(np.mean(bl.cosine_nearest_exemplar(x_held, exemplars, labels[chosen]) == labels[held])))
        print(
            f"few-shot {shots:>2} on features: first {first_acc:.1%}, {draws} draws {np.mean(drawn):.1%}"
            f" (cosine on pixels {np.mean(cosine):.1%})",
            flush=True,
        )
    edges = [
        bl.accuracy(bl.edge_model(400, 200, pool=2, seed=s), images[learn], labels[learn], images[held], labels[held])
        for s in range(seeds)
    ]
    print(f"edges+pixels, 2x2 max pooling (400, 200), fold 0, mean of {seeds} seeds: {np.mean(edges):.1%}")


if __name__ == "__main__":
    main()
