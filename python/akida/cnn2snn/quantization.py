"""The quantization maths, in numpy: weights, activations and their calibration.

Every formula here is the one documented in ``docs/cnn2snn.md``; the quantized Keras layers
(:mod:`.keras_layers`) compute the same formulas with ``keras.ops``.

- Weights at ``b`` bits are symmetric integers in ``-(2**(b-1) - 1) .. 2**(b-1) - 1``. Per output
  channel ``n``: ``unit[n] = max|W[..., n]| / (2**(b-1) - 1)`` and ``ints = round(W / unit)``
  (round half to even). A channel of zeros gets ``unit = 1`` and zero integers. Depthwise kernels
  use one unit for the whole tensor.
- Activations at ``b`` bits have ``L = 2**b - 1`` levels above zero and ``step = max_value / L``:
  ``q = clip(ceil(x / step - 1/2), 0, L)`` and the output is ``step * q``. The threshold of the
  first level is half a step.
"""

from __future__ import annotations

import numpy as np

#: Weight bit widths of data-processing layers and of InputConvolutional.
HIDDEN_WEIGHT_BITS = (2, 4)
INPUT_WEIGHT_BITS = (2, 4, 8)
ACTIVATION_BITS = (1, 2, 4)


def weight_max(bits: int) -> int:
    """The largest integer of a ``bits``-bit symmetric weight."""
    return 2 ** (bits - 1) - 1


def weight_units(kernel: np.ndarray, bits: int, per_tensor: bool = False) -> np.ndarray:
    """The float value of one integer step, per output channel (last axis) or for the tensor."""
    k = np.asarray(kernel, dtype=np.float64)
    if per_tensor:
        absmax = np.array([np.abs(k).max(initial=0.0)])
    else:
        absmax = np.abs(k.reshape(-1, k.shape[-1])).max(axis=0, initial=0.0)
    return np.where(absmax > 0, absmax / weight_max(bits), 1.0)


def quantize_weights(kernel: np.ndarray, bits: int, per_tensor: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(ints, units)``: integer weights (int64, the kernel's shape) and units (see module doc)."""
    units = weight_units(kernel, bits, per_tensor)
    m = weight_max(bits)
    ints = np.clip(np.round(np.asarray(kernel, dtype=np.float64) / units), -m, m).astype(np.int64)
    return ints, units


def activation_levels(bits: int) -> int:
    return 2**bits - 1


def activation_step(max_value: float, bits: int) -> float:
    return float(max_value) / activation_levels(bits)


def quantize_activation_levels(x: np.ndarray, bits: int, step: float) -> np.ndarray:
    """The integer levels ``q`` of activations ``x`` (float64 array of the same shape)."""
    return np.clip(np.ceil(np.asarray(x, dtype=np.float64) / step - 0.5), 0, activation_levels(bits))


def fake_quantize_activation(x: np.ndarray, bits: int, step: float) -> np.ndarray:
    return quantize_activation_levels(x, bits, step) * step


#: Fractions of the observed maximum tried by :func:`calibrate_max_value`.
CALIBRATION_FRACTIONS = np.linspace(0.05, 1.0, 96)
#: At most this many activation values are used for calibration (an even subsample beyond it).
CALIBRATION_SAMPLES = 2_000_000


def calibrate_max_value(values: np.ndarray, bits: int, clip: float | None = None) -> float:
    """The max value of a quantized ReLU, chosen on sample activations.

    The estimator: with ``m0`` the largest observed activation (capped by the ReLU's own
    ``clip`` when it has one), try ``max_value = f * m0`` for 96 fractions ``f`` from 0.05 to 1
    and keep the one with the smallest mean squared error between the float activations and their
    fake-quantized values (ties: the largest ``f``). Every value counts, zeros included, so the
    choice weighs how often each range occurs. Returns ``clip`` (or 1.0) when every activation is
    zero.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size > CALIBRATION_SAMPLES:
        v = v[:: v.size // CALIBRATION_SAMPLES + 1]
    v = np.maximum(v, 0.0)
    if clip is not None:
        v = np.minimum(v, clip)
    top = float(v.max(initial=0.0))
    if top <= 0.0:
        return float(clip) if clip is not None else 1.0
    best, best_error = top, np.inf
    for f in CALIBRATION_FRACTIONS[::-1]:
        m = f * top
        step = activation_step(m, bits)
        error = float(np.mean((fake_quantize_activation(v, bits, step) - v) ** 2))
        if error < best_error:
            best, best_error = m, error
    return best


def interval_offset(length32: np.ndarray, levels: int) -> np.ndarray:
    """Where, between two integers, the first threshold goes so that every level's threshold
    falls as far from an integer as possible (see :func:`snap_bias`)."""
    l = np.asarray(length32, dtype=np.float64)[..., None]
    j = np.arange(levels, dtype=np.float64)
    g = j * l - np.floor(j * l)
    return (1.0 - g.max(axis=-1) - g.min(axis=-1)) / 2


def snap_bias(bias: np.ndarray, potential_unit: np.ndarray, step: float, bits: int) -> np.ndarray:
    """The bias moved by at most half a potential unit so that the converted layer's integer
    thresholds reproduce every level of its quantized ReLU exactly, with a margin.

    A layer's float pre-activation is ``z = u * p + bias`` for integer potentials ``p`` and the
    potential unit ``u``; its ReLU reaches level ``k + 1`` when ``z > step * (k + 1/2)``, i.e.
    when ``p > t + k * l`` with ``t = (step / 2 - bias) / u`` and ``l = step / u``. The engine
    fires level ``k + 1`` when ``p > T + floor(k * L)`` for an integer ``T`` and a float32 ``L``.
    With ``L = float32(l)`` and ``g_k = frac(k * L)``, both agree for every integer ``p`` when
    ``t = T + f`` with ``f = (1 - max g - min g) / 2``: each real threshold then lies at least
    ``(1 - (max g - min g)) / 2`` away from the integers around it. The snapped bias is
    ``step / 2 - u * (round(t - f) + f)``.
    """
    unit = np.asarray(potential_unit, dtype=np.float64)
    length32 = (step / unit).astype(np.float32)
    f = interval_offset(length32, 2**bits - 1)
    t = (step / 2 - np.asarray(bias, dtype=np.float64)) / unit
    return step / 2 - unit * (np.round(t - f) + f)
