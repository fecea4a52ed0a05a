#!/usr/bin/env python3
"""Ceilings of the learned layer's kind of classifier on the bench_learning MNIST split (the
evidence behind the targets of issue 15 that are not met; plain numpy, no engine):

- offline per-class k-means whose prototypes have the learned layer's form (``num_weights`` ones,
  the most frequent pixels of the assigned images; seeded with random training images), prediction
  by overlap, assignment by overlap or by the rule's centred rank, 1 to 14 mean updates, 3 seeds,
  on the test split: what a binary prototype of that size reaches with several passes;
- an idealized one-pass online learner of the same form: every neuron keeps exact counts of its
  images and holds the ``num_weights`` connections of highest ``count - 3/20 * C * G / S`` after
  every image (plasticity 1 throughout, no prior, no margin), winners ranked by the rule's centred
  rank, fresh neurons first; on the validation folds and on the test split;
- the same learner with a *repel* step (learning vector quantization): when a trained neuron of
  another class responds to the image at least as much as the best trained neuron of the image's
  class, the image's pixels are taken out of that neuron's counts (floored at 0) and its weights
  chosen again. Not a candidate for the engine: a second neuron, of another class, then learns
  from the sample, which the documented semantics exclude (one neuron learns per sample, and a
  labelled sample lets only its class's neurons learn); it measures what that exclusion costs;
- cosine 1-nearest-neighbour over all 4,000 training images;
- few-shot on validation draws (50 held-out training images per class): one-shot neurons whose
  weights are the shot's pixels (a random subset of ``num_weights`` when the shot has more) with the
  spare weights placed at random, on the least or on the most frequent pixels, against cosine
  nearest exemplar.

    python benches/learning_ceilings.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_learning as bl  # noqa: E402
from learning_validation import fold_split  # noqa: E402


def kmeans_accuracy(x, labels, train, test, per_class, num_weights, seed, passes=15, centred=False):
    """``centred``: assign by overlap less the overlap an image of as many pixels would have if its
    pixels were the training set's average (the rule's rank of a trained winner)."""
    rng = np.random.default_rng(seed)
    average = x[train].mean(axis=0)
    prototypes, classes = [], []
    for digit in range(10):
        xs = x[[i for i in train if labels[i] == digit]]
        means = xs[rng.choice(len(xs), per_class, replace=False)].copy()
        for _ in range(passes):
            binary = np.zeros_like(means)
            np.put_along_axis(binary, np.argsort(-means, axis=1)[:, :num_weights], 1.0, axis=1)
            overlap = xs @ binary.T
            if centred:
                overlap = overlap - xs.sum(axis=1, keepdims=True) * (binary @ average)[None, :] / average.sum()
            assigned = overlap.argmax(axis=1)
            for k in range(per_class):
                if np.any(assigned == k):
                    means[k] = xs[assigned == k].mean(axis=0)
        prototypes.append(binary)
        classes += [digit] * per_class
    guess = np.array(classes)[(x[test] @ np.concatenate(prototypes).T).argmax(axis=1)]
    return float(np.mean(guess == labels[test]))


def online_accuracy(x, labels, learn, held, per_class, num_weights, contrast=0.15, repel=False):
    neurons = 10 * per_class
    classes = np.arange(neurons) // per_class
    weights = np.zeros((neurons, x.shape[1]), np.float32)
    counts = np.zeros_like(weights)
    learned = np.zeros(neurons, np.int64)
    layer = np.zeros(x.shape[1])

    def choose_weights(k):
        score = counts[k] - contrast * counts[k].sum() * layer / layer.sum()
        weights[k] = 0
        weights[k, np.argsort(-score, kind="stable")[:num_weights]] = 1

    for i in learn:
        group = slice(labels[i] * per_class, (labels[i] + 1) * per_class)
        potentials = weights @ x[i]
        fresh = np.flatnonzero(learned[group] == 0)
        if len(fresh):
            k = labels[i] * per_class + fresh[0]
        else:
            rank = potentials[group].copy()
            if layer.sum() > 0:
                rank = rank - x[i].sum() * (weights[group] @ layer) / layer.sum()
            k = labels[i] * per_class + int(np.argmax(rank))
        if repel:
            own = potentials[group][learned[group] > 0]
            rivals = np.where((classes != labels[i]) & (learned > 0), potentials, -1.0)
            rival = int(np.argmax(rivals))
            if rivals[rival] > 0 and rivals[rival] >= (own.max() if len(own) else -1.0):
                counts[rival] = np.maximum(0.0, counts[rival] - x[i])
                choose_weights(rival)
        counts[k] += x[i]
        layer += x[i]
        learned[k] += 1
        choose_weights(k)
    guess = classes[(x[held] @ weights.T).argmax(axis=1)]
    return float(np.mean(guess == labels[held]))


def one_shot_neuron(shot, num_weights, spare, frequency, rng):
    on, off = np.flatnonzero(shot), np.flatnonzero(shot == 0)
    w = np.zeros(shot.shape, np.float32)
    if len(on) >= num_weights:
        w[rng.choice(on, num_weights, replace=False)] = 1
        return w
    w[on] = 1
    extra = num_weights - len(on)
    if spare == "random":
        w[rng.choice(off, extra, replace=False)] = 1
    else:
        order = np.argsort(frequency[off] if spare == "least frequent" else -frequency[off])
        w[off[order[:extra]]] = 1
    return w


def main() -> None:
    images, labels, train, test = bl.mnist_split()
    x = (images > 127).reshape(len(images), -1).astype(np.float32)
    print("offline k-means with binary prototypes (test split, mean of 3 seeds), prediction by overlap:")
    for per_class, num_weights in [(50, 150), (100, 150), (50, 200)]:
        cells = []
        for centred, passes in [(False, 15), (True, 2), (True, 5), (True, 15)]:
            acc = np.mean([kmeans_accuracy(x, labels, train, test, per_class, num_weights, s, passes, centred) for s in range(3)])
            cells.append(f"{'centred' if centred else 'plain'} assignment, {passes - 1} update(s): {acc:.1%}")
        print(f"  ({per_class}, {num_weights}): " + "; ".join(cells))
    from learning_validation import SETUPS

    folds = [fold_split(labels, train, f) for f in range(8)]
    validation = [np.mean([online_accuracy(x, labels, a, b, pc, nw) for a, b in folds]) for pc, nw in SETUPS]
    on_test = [online_accuracy(x, labels, train, test, pc, nw) for pc, nw in SETUPS]
    print("idealized one-pass online learner (exact counts, plasticity 1, no prior):")
    print("  validation folds: " + "  ".join(f"{s}: {a:.1%}" for s, a in zip(SETUPS, validation)))
    print("  test split:       " + "  ".join(f"{s}: {a:.1%}" for s, a in zip(SETUPS, on_test)))
    validation = [np.mean([online_accuracy(x, labels, a, b, pc, nw, repel=True) for a, b in folds]) for pc, nw in SETUPS]
    on_test = [online_accuracy(x, labels, train, test, pc, nw, repel=True) for pc, nw in SETUPS]
    print("the same with a repel step for the best rival neuron (outside the documented semantics):")
    print("  validation folds: " + "  ".join(f"{s}: {a:.1%}" for s, a in zip(SETUPS, validation)))
    print("  test split:       " + "  ".join(f"{s}: {a:.1%}" for s, a in zip(SETUPS, on_test)))
    nearest = bl.cosine_nearest_exemplar(x[test], x[train], labels[train])
    print(f"cosine 1-nearest-neighbour over all training images: {np.mean(nearest == labels[test]):.1%}")

    learn, held = fold_split(labels, train, 0)
    frequency = x[learn].mean(axis=0)
    rng = np.random.default_rng(777)
    print("few-shot on validation draws (8 draws), one neuron of 150 weights per shot:")
    for shots in (1, 5, 10):
        results: dict[str, list[float]] = {}
        for draw in range(8):
            chosen = np.concatenate(
                [rng.choice([i for i in learn if labels[i] == d], shots, replace=False) for d in range(10)]
            )
            exemplars = x[chosen]
            cosine = bl.cosine_nearest_exemplar(x[held], exemplars, labels[chosen])
            results.setdefault("cosine nearest exemplar", []).append(np.mean(cosine == labels[held]))
            for spare in ("random", "least frequent", "most frequent"):
                r = np.random.default_rng(draw)
                w = np.stack([one_shot_neuron(e, 150, spare, frequency, r) for e in exemplars])
                guess = labels[chosen][(x[held] @ w.T).argmax(axis=1)]
                results.setdefault(f"spare weights {spare}", []).append(np.mean(guess == labels[held]))
        print(f"  {shots:>2} shots: " + ", ".join(f"{k} {np.mean(v):.1%}" for k, v in results.items()))


if __name__ == "__main__":
    main()
