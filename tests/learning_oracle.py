"""An independent, deliberately plain implementation of the Akida learning rule of
docs/learning.md (compile and fit), used to check the engine's weights and learning state exactly.

Everything is written the obvious way: Python loops over neurons and connections, the SplitMix64
generator on Python integers, float32 arithmetic through numpy scalars where the rule uses float32.
It handles a FullyConnected or Convolutional learning layer fed directly by
``InputData(..., input_bits=1)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from oracle import true_convolve

MASK64 = (1 << 64) - 1
MAX_INPUT_COUNT = 255
# The score of a connection (docs/learning.md, "Learning step of the winner"): the neuron's count,
# plus (PRIOR * spikes of the step - CONTRAST * the neuron's total count) times the layer's share of
# that connection; a move must gain more than MARGIN of one count.
CONTRAST = Fraction(3, 20)
PRIOR = Fraction(3, 10)
MARGIN = Fraction(1, 2)


class SplitMix64:
    def __init__(self, seed: int):
        self.state = seed & MASK64

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def choose(self, items: list, k: int) -> None:
        """Partial Fisher-Yates: a uniformly random k-subset moves to the front of ``items``."""
        n = len(items)
        for i in range(min(k, n)):
            j = i + self.next() % (n - i)
            items[i], items[j] = items[j], items[i]


def choose_ranked(items: list, k: int, rank, rng: SplitMix64) -> list:
    """The k items that come first by rank (smaller first); a random subset of the tie at the cut."""
    k = min(k, len(items))
    if k == 0:
        return []
    ordered = sorted(items, key=lambda j: (rank(j), j))
    cut = rank(ordered[k - 1])
    before = [j for j in ordered if rank(j) < cut]
    tie = [j for j in ordered if rank(j) == cut]
    rng.choose(tie, k - len(before))
    return before + tie[: k - len(before)]


@dataclass
class LearningOracle:
    """weights: (connections, neurons) int, connections in the engine's weight order."""

    weights: np.ndarray
    num_weights: int
    num_classes: int
    initial_plasticity: float
    min_plasticity: float
    plasticity_decay: float
    learning_competition: float
    rng: SplitMix64
    plasticity: np.ndarray = field(init=False)
    threshold_learning: np.ndarray = field(init=False)
    counts: np.ndarray = field(init=False)

    @classmethod
    def compile(cls, connections, neurons, num_weights, num_classes=1, initial_plasticity=1.0,
                min_plasticity=0.1, plasticity_decay=0.25, learning_competition=0.0, seed=0):
        rng = SplitMix64(seed)
        weights = np.zeros((connections, neurons), np.int64)
        for n in range(neurons):
            indices = list(range(connections))
            rng.choose(indices, num_weights)
            weights[indices[:num_weights], n] = 1
        # The engine keeps the four parameters as float32 values: so does the oracle, from here on
        # (a value such as 7.5e-274 is 0 in float32, which means "never learn").
        f32 = np.float32
        oracle = cls(weights, num_weights, num_classes, f32(initial_plasticity), f32(min_plasticity),
                     f32(plasticity_decay), f32(learning_competition), rng)
        oracle.plasticity = np.full(neurons, np.float32(initial_plasticity), np.float32)
        oracle.threshold_learning = np.zeros(neurons, np.int64)
        oracle.counts = np.zeros((neurons, connections), np.int64)
        return oracle

    # -- the rule, one sample ------------------------------------------------------------------

    def _winner(self, potentials, allowed, spikes_at):
        """potentials: (positions, neurons); spikes_at(position) -> the number of spikes in that
        position's input window. Returns (position, neuron) or None."""
        # A trained neuron ranks by its potential less spikes * E / S, E the sum of the
        # layer's counts over its weights equal to 1, S the layer's total (before this sample).
        layer = self.counts.sum(axis=0)
        total = int(layer.sum())
        expected = {}  # neuron -> E, computed when first needed
        best = {True: None, False: None}  # trained? -> (rank, potential, position, neuron)
        for position in range(potentials.shape[0]):
            spikes = spikes_at(position)
            if spikes == 0:
                continue
            for neuron in allowed:
                trained = bool(self.threshold_learning[neuron] > 0)
                p = int(potentials[position, neuron])
                rank = Fraction(p)
                if trained and total > 0:
                    if neuron not in expected:
                        expected[neuron] = sum(int(layer[j]) for j in range(len(layer)) if self.weights[j, neuron] == 1)
                    rank -= Fraction(spikes * expected[neuron], total)
                if best[trained] is None or rank > best[trained][0]:
                    best[trained] = (rank, p, position, neuron)
        t = best[True]
        t = None if t is None else t[1:]
        c = np.float32(self.learning_competition)
        if t is not None and c > 0:
            claim = (np.float32(1.0) - c) * np.float32(self.threshold_learning[t[2]])
            if np.float32(t[0]) >= claim:
                return t[1], t[2]
        u = best[False]
        chosen = (u[1:] if u is not None else None) or t
        return None if chosen is None else (chosen[1], chosen[2])

    def _step(self, neuron, active):
        w = self.weights[:, neuron]
        counts = self.counts[neuron]
        silent = [j for j in range(len(w)) if w[j] == 1 and not active[j]]
        zero = [j for j in range(len(w)) if w[j] == 0]
        if np.any(counts[active] == MAX_INPUT_COUNT):
            counts //= 2
        counts[active] += 1
        # The layer's counts: summed afresh over all neurons (the engine keeps a running sum).
        layer = [int(v) for v in self.counts.sum(axis=0)]
        total = sum(layer)
        own = int(counts.sum())
        spikes = int(np.sum(active))
        score = [Fraction(int(counts[j])) + (PRIOR * spikes - CONTRAST * own) * Fraction(layer[j], total)
                 for j in range(len(w))]
        drop_order = sorted(silent, key=lambda j: (score[j], j))
        rise_order = sorted(zero, key=lambda j: (-score[j], j))
        moves = 0
        for d, r in zip(drop_order, rise_order):
            if score[r] <= score[d] + MARGIN:
                break
            moves += 1
        p = np.float32(self.plasticity[neuron])
        k = min(math.floor(Fraction(float(p)) * moves + Fraction(1, 2)), moves)  # exact, on float32 p
        if k > 0:
            drop = choose_ranked(silent, k, lambda j: score[j], self.rng)
            rise = choose_ranked(zero, k, lambda j: -score[j], self.rng)
            w[drop] = 0
            w[rise] = 1
        return int(np.sum((w == 1) & active))

    def fit_sample(self, potentials, actives_at, events, label):
        """potentials: (positions, neurons) of the sample; actives_at(position) -> bool vector of
        the connections' inputs; events: whether the sample has any spike."""
        neurons = self.weights.shape[1]
        per_class = neurons // self.num_classes
        if label is None:
            allowed = range(neurons)
        elif label < self.num_classes:
            allowed = range(label * per_class, (label + 1) * per_class)
        else:
            return
        if not events or self.initial_plasticity == np.float32(0):
            return
        # Only positions whose window saw a spike can learn (always true for a FullyConnected layer).
        winner = self._winner(potentials, allowed, lambda position: int(np.sum(actives_at(position))))
        if winner is None:
            return
        position, neuron = winner
        after = self._step(neuron, actives_at(position))
        if after > 0:
            self.threshold_learning[neuron] = after
            p = np.float32(self.plasticity[neuron])
            relative = p / np.float32(self.initial_plasticity)
            decayed = p / (np.float32(1.0) + np.float32(self.plasticity_decay) * relative)
            floor = min(np.float32(self.min_plasticity), np.float32(self.initial_plasticity))
            self.plasticity[neuron] = max(decayed, floor)

    # -- layers ----------------------------------------------------------------------------------

    def fit_fully_connected(self, inputs, labels=None):
        """inputs: (samples, H, W, C) binary; labels: None, one per sample, or one for all."""
        for s, x in enumerate(inputs):
            flat = np.asarray(x, np.int64).reshape(-1)
            potentials = (flat @ self.weights)[None, :]
            active = flat > 0
            self.fit_sample(potentials, lambda _pos: active, bool(active.any()), _label(labels, s))

    def fit_convolutional(self, inputs, kernel_shape, strides, mode, labels=None):
        """kernel_shape: (kh, kw, channels); the weights are (kh * kw * channels, neurons)."""
        kh, kw, channels = kernel_shape
        for s, x in enumerate(inputs):
            x = np.asarray(x, np.int64)
            w4 = self.weights.reshape(kh, kw, channels, -1)
            potentials, patches = true_convolve(x, w4, strides[0], strides[1], mode)
            oh, ow = potentials.shape[:2]

            def actives_at(position, patches=patches, ow=ow):
                patch = patches[position // ow, position % ow]  # (kh, kw, c), unflipped taps
                return patch[::-1, ::-1, :].reshape(-1) > 0

            self.fit_sample(potentials.reshape(oh * ow, -1), actives_at, bool(x.any()), _label(labels, s))


def _label(labels, s):
    if labels is None:
        return None
    labels = np.atleast_1d(labels)
    return int(labels[0] if len(labels) == 1 else labels[s])

