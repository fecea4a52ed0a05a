"""Pixels: thresholds to spikes, bit quantization, edge kernels and the edge front end."""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

from .. import _akida
from ..errors import DTypeError, InputError, ParameterError
from ._checks import _int_param, _INT32_MIN, _INT32_MAX


def _images_nhwc(images: Any) -> np.ndarray:
    array: np.ndarray = np.asarray(images)
    if array.dtype != np.uint8:
        raise DTypeError(f"images must be uint8, got {array.dtype}")
    if array.ndim == 3:
        return array[..., None]
    if array.ndim != 4:
        raise InputError(f"images must be (N, H, W) or (N, H, W, C), got shape {array.shape}")
    return array


def pixels_to_spikes(images: Any, thresholds: Sequence[int] = (127,)) -> np.ndarray:
    """Multi-level threshold spikes from 8-bit images.

    The output value of a pixel is the number of thresholds it exceeds (strictly greater):
    one threshold gives binary spikes, ``k`` thresholds values ``0..k``.

    Parameters
    ----------
    images : numpy.ndarray
        ``uint8`` array ``(N, H, W, C)``, or ``(N, H, W)`` (a channel axis of 1 is added).
    thresholds : sequence of int
        1 to 255 strictly increasing thresholds in 0..255.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array ``(N, H, W, C)`` for ``akida.InputData(W, H, C, input_bits=b)`` with
        ``b = len(thresholds).bit_length()``.

    Examples
    --------
    >>> pixels_to_spikes(np.array([[[0, 100, 128, 255]]], np.uint8), thresholds=(99, 127))[..., 0]
    array([[[0, 1, 2, 2]]], dtype=uint8)
    """
    images = _images_nhwc(images)
    try:
        levels = [t for t in thresholds]
    except TypeError:
        raise ParameterError(f"thresholds must be a sequence of integers, got {thresholds!r}") from None
    if not 1 <= len(levels) <= 255:
        raise ParameterError(f"pixels_to_spikes takes 1 to 255 thresholds, got {len(levels)}")
    levels = [_int_param(v, "threshold", 0, 255, owner="pixels_to_spikes") for v in levels]
    if any(b <= a for a, b in zip(levels, levels[1:])):
        raise ParameterError(f"thresholds must be strictly increasing, got {levels}")
    lut = np.searchsorted(np.array(levels), np.arange(256), side="left").astype(np.uint8)
    spikes: np.ndarray = lut[images]
    return spikes


def quantize(images: Any, input_bits: int) -> np.ndarray:
    """Keep the ``input_bits`` most significant bits of 8-bit images: ``pixel >> (8 - input_bits)``.

    Parameters
    ----------
    images : numpy.ndarray
        ``uint8`` array ``(N, H, W, C)`` or ``(N, H, W)`` (a channel axis of 1 is added).
    input_bits : int
        1..8.

    Returns
    -------
    numpy.ndarray
        ``uint8`` ``(N, H, W, C)`` with values below ``2**input_bits``.
    """
    images = _images_nhwc(images)
    input_bits = _int_param(input_bits, "input_bits", 1, 8, owner="quantize")
    shifted: np.ndarray = images >> np.uint8(8 - input_bits)
    return shifted


def _steered_kernel(size: int, angle: float, sigma: float) -> np.ndarray:
    r = np.arange(size) - size // 2
    b, a = np.meshgrid(r, r, indexing="ij")  # b: row offset (y), a: column offset (x)
    k = (a * math.cos(angle) + b * math.sin(angle)) * np.exp(-(a * a + b * b) / (2 * sigma * sigma))
    kernel: np.ndarray = np.round(7 * k / np.abs(k).max())
    return kernel


_SOBEL_0 = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
_SOBEL_45 = np.array([[-2, -1, 0], [-1, 0, 1], [0, 1, 2]])


def edge_kernels(size: int = 3) -> np.ndarray:
    """A preset of 8 oriented edge kernels for an InputConvolutional layer.

    Neuron ``k`` responds where brightness increases in direction ``k * 45`` degrees, measured
    from the x axis (right) towards the y axis (down, image rows): 0 = brighter to the right,
    1 = bottom-right, 2 = below, 3 = bottom-left, 4 = left, 5 = top-left, 6 = above,
    7 = top-right. Kernel ``k + 4`` is ``-kernel k``; every kernel sums to 0.

    - ``size=3``: Sobel kernels (values -2..2). A full-contrast step edge (0 to 255) through the
      centre gives a potential of ``4 * 255 = 1020``.
    - ``size=5``: derivative-of-Gaussian kernels (sigma 1.25) scaled to -7..7. A full-contrast
      step edge gives ``full_step_response(5)`` (see ``docs/converters.md``).

    Parameters
    ----------
    size : {3, 5}

    Returns
    -------
    numpy.ndarray
        ``int8`` weights ``(size, size, 1, 8)`` (kernel rows = y, columns = x), within the 4-bit
        range -7..7. InputConvolutional computes a cross-correlation, so the kernels apply as
        written.
    """
    if size not in (3, 5) or isinstance(size, bool):
        raise ParameterError(f"edge_kernels: size must be 3 or 5, got {size!r}")
    kernels = []
    if size == 3:
        base = [_SOBEL_0, _SOBEL_45]
        # rot90 with k=-1 turns "brighter to the right" into "brighter below" (rows go down).
        for k in range(4):
            kernels.append(np.rot90(base[k % 2], -(k // 2)))
        kernels += [-k for k in kernels]
    else:
        kernels = [_steered_kernel(5, k * math.pi / 4, 1.25) for k in range(8)]
    return np.stack(kernels, axis=-1)[:, :, None, :].astype(np.int8)


def _full_step_response(kernels: np.ndarray) -> int:
    """Potential of kernel 0 on a full-contrast vertical step edge (bright right of the centre column)."""
    k0 = kernels[:, :, 0, 0].astype(np.int64)
    c = k0.shape[1] // 2
    return int(255 * k0[:, c + 1 :].sum())


def edge_front_end(
    input_width: int,
    input_height: int,
    threshold: Optional[int] = None,
    size: int = 3,
    pixel_neuron: bool = True,
    wta: bool = False,
    name: str = "",
) -> "_akida.InputConvolutional":
    """An InputConvolutional layer that turns grayscale pixels into oriented-edge spikes.

    The layer (not yet in a model) takes ``(input_height, input_width, 1)`` uint8 images, has
    ``Same`` convolution, stride 1, ``weights_bits=4``, binary activations and the kernels of
    :func:`edge_kernels` (neurons 0..7). With ``pixel_neuron=True`` a 9th neuron has a single
    centre weight 7 and threshold ``7 * 127``: it fires where the pixel is above 127.

    Parameters
    ----------
    input_width, input_height : int
        Image size.
    threshold : int, optional
        Firing threshold of the 8 edge neurons (a neuron fires when its potential is above it).
        Default: 450 for ``size=3``; for ``size=5`` the same fraction (450 / 1020) of the
        full-contrast step response of the 5x5 kernels.
    size : {3, 5}
        Kernel size.
    pixel_neuron : bool
        Add the 9th (pixel > 127) neuron.
    wta : bool
        Make the 8 edge neurons one winner-take-all group through the layer variable
        ``wta_groups``: at each position only the edge neuron with the largest potential (the
        lowest index on ties) may fire; the pixel neuron is a group of its own.
    name : str
        Layer name.

    Returns
    -------
    akida.InputConvolutional
        Add it as the first layer of a model.
    """
    kernels = edge_kernels(size)
    if threshold is None:
        threshold = 450 if size == 3 else round(450 * _full_step_response(kernels) / 1020)
    threshold = _int_param(threshold, "threshold", _INT32_MIN, _INT32_MAX, owner="edge_front_end")
    num_neurons = 9 if pixel_neuron else 8
    layer = _akida.InputConvolutional(
        input_width=input_width,
        input_height=input_height,
        input_channels=1,
        kernel_width=size,
        kernel_height=size,
        num_neurons=num_neurons,
        name=name,
        weights_bits=4,
        threshold_fire=threshold,
    )
    weights = np.zeros((size, size, 1, num_neurons), dtype=np.int8)
    weights[..., :8] = kernels
    thresholds = np.full(num_neurons, threshold, dtype=np.int32)
    if pixel_neuron:
        weights[size // 2, size // 2, 0, 8] = 7
        thresholds[8] = 7 * 127
    layer.set_variable("weights", weights)
    layer.set_variable("threshold_fire", thresholds)
    if wta:
        groups = np.zeros(num_neurons, dtype=np.int32)
        if pixel_neuron:
            groups[8] = 1
        layer.set_variable("wta_groups", groups)
    return layer
