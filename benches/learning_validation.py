#!/usr/bin/env python3
"""Accuracy of the plain set-ups of bench_learning on validation folds of the TRAINING images only
(issue 15: the rule's constants are chosen here, never on the test split).

Fold k (0..7) holds out 50 training images per class (fold 0: the last 50 of each class's 400 in
index order; fold k >= 1: the k-th block of 50) and learns the other 350 per class, one pass,
default learning parameters, the mean over ``--seeds`` compile seeds.

    python benches/learning_validation.py [--folds 8] [--seeds 8]
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
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
