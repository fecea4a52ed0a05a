"""Threshold calibration: per-neuron ``threshold_fire`` (and ``threshold_fire_step``) chosen on
sample inputs so that a target fraction of each neuron's outputs fire.

Hand-built models need thresholds that match their weights and inputs; guessing gives anything
from silent layers to layers where every neuron always fires. :func:`calibrate_thresholds`
measures instead: for each chosen layer (in model order, so later layers see the calibrated
earlier ones) it runs the samples up to that layer (``Model.forward(..., output_layer=...)``)
and bisects each neuron's threshold over the integers until the fraction of its outputs (over
samples and positions) that fire is as close to ``target`` as the data allows. For multi-bit
activations it then bisects each neuron's ``threshold_fire_step`` so that a ``saturation``
fraction of its outputs reach the top level. The engine itself decides what fires, so the
result is exact for the engine's arithmetic (pooling, winner-take-all and all).
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np

from .errors import InputError
from .progress import Progress, ProgressCallback

__all__ = ["calibrate_thresholds"]

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1
_STEP_BISECTIONS = 48


def _layer_indices(model: Any, layers: Optional[Iterable[Union[str, int]]]) -> list[int]:
    names = [layer.name for layer in model.layers]
    if layers is None:
        chosen = [
            i
            for i, layer in enumerate(model.layers)
            if "threshold_fire" in layer.get_variable_names() and layer.parameters.activations_enabled
            and layer.layer_type != "Concat"
        ]
        if not chosen:
            raise ValueError("the model has no layer with activations enabled to calibrate")
        return chosen
    if isinstance(layers, (str, int)):
        layers = [layers]
    chosen = []
    for key in layers:
        if isinstance(key, str):
            if key not in names:
                raise KeyError(f"calibrate_thresholds: no layer named {key!r} (layers: {', '.join(names)})")
            index = names.index(key)
        elif isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            index = int(key) + (len(names) if key < 0 else 0)
            if not 0 <= index < len(names):
                raise IndexError(f"calibrate_thresholds: no layer at index {key} (the model has {len(names)})")
        else:
            raise TypeError(f"calibrate_thresholds: layers must hold layer names or indices, got {key!r}")
        layer = model.layers[index]
        if "threshold_fire" not in layer.get_variable_names() or not layer.parameters.activations_enabled:
            raise ValueError(
                f"calibrate_thresholds: layer {layer.name!r} ({layer.layer_type}) has no enabled activation"
            )
        chosen.append(index)
    return sorted(set(chosen))


def _num_samples(inputs: Any) -> int:
    if hasattr(inputs, "num_samples"):  # akida.Events
        return int(inputs.num_samples)
    shape = np.shape(inputs)
    return int(shape[0]) if shape else 0


def _firing(model: Any, inputs: Any, index: int, batch_size: Optional[int]) -> np.ndarray:
    """Per neuron: the fraction of outputs of layer ``index`` that are non-zero."""
    out = model.forward(inputs, batch_size=batch_size, output_layer=index)
    return (out.reshape(-1, out.shape[-1]) > 0).mean(axis=0)


def _saturated(model: Any, inputs: Any, index: int, top: int, batch_size: Optional[int]) -> np.ndarray:
    """Per neuron: the fraction of outputs of layer ``index`` at the top level ``top``."""
    out = model.forward(inputs, batch_size=batch_size, output_layer=index)
    return (out.reshape(-1, out.shape[-1]) >= top).mean(axis=0)


def calibrate_thresholds(
    model: Any,
    inputs: Any,
    layers: Optional[Union[str, int, Sequence[Union[str, int]]]] = None,
    target: float = 0.1,
    saturation: float = 0.01,
    batch_size: Optional[int] = None,
    verbose: bool = False,
    callback: Optional[ProgressCallback] = None,
) -> dict[str, np.ndarray]:
    """Sets per-neuron thresholds of chosen layers so that a target fraction of outputs fire.

    Parameters
    ----------
    model : akida.Model
        The model; its layers' ``threshold_fire`` (and ``threshold_fire_step``) variables are
        replaced.
    inputs : numpy.ndarray or akida.Events
        Sample inputs, as for ``Model.forward``.
    layers : str, int or sequence of them, optional
        The layers to calibrate (names or indices); default: every layer with activations
        enabled except Concat. They are calibrated in model order.
    target : float, default 0.1
        Fraction of each neuron's outputs (over samples and positions) that should fire, in
        [0, 1]. Ties in the potentials may make it unreachable exactly; each neuron gets the
        threshold whose fraction is closest (the higher threshold on a tie).
    saturation : float, default 0.01
        For multi-bit activations: fraction of each neuron's outputs that should reach the top
        level, in [0, target]; sets ``threshold_fire_step``.
    batch_size : int, optional
        Passed to ``Model.forward``.
    verbose : bool, default False
        Show a progress bar (one step per forward run; tqdm when installed).
    callback : callable, optional
        ``callback(done, total)`` after each step.

    Returns
    -------
    dict of str to numpy.ndarray
        Per calibrated layer name, the fraction of each neuron's outputs that fire with the
        new thresholds.

    Raises
    ------
    ValueError
        ``target`` or ``saturation`` out of range, or a chosen layer without an enabled
        activation.
    InputError
        No sample in ``inputs``, or inputs ``Model.forward`` refuses (as it would raise them).
        On any error or interrupt the model keeps its thresholds and steps as they were.
    KeyError, IndexError
        No such layer.

    Examples
    --------
    >>> import numpy as np, akida
    >>> rng = np.random.default_rng(0)
    >>> model = akida.Model([akida.InputData(input_shape=(4, 4, 1), input_bits=1),
    ...                      akida.FullyConnected(8, weights_bits=2)])
    >>> model.get_layer(1).set_variable("weights", rng.integers(-1, 2, (4, 4, 1, 8)))
    >>> x = rng.integers(0, 2, (200, 4, 4, 1)).astype(np.uint8)
    >>> fired = akida.calibrate_thresholds(model, x, target=0.25)
    >>> bool(np.all(np.abs(fired["fully_connected"] - 0.25) < 0.1))
    True
    """
    for name, value in (("target", target), ("saturation", saturation)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"calibrate_thresholds: {name} must be a real number, got {type(value).__name__} {value!r}")
    if not 0.0 <= float(target) <= 1.0:
        raise ValueError(f"calibrate_thresholds: target must be in [0, 1], got {target}")
    if not 0.0 <= float(saturation) <= float(target):
        raise ValueError(f"calibrate_thresholds: saturation must be in [0, target={target}], got {saturation}")
    chosen = _layer_indices(model, layers)
    if _num_samples(inputs) == 0:
        raise InputError("calibrate_thresholds: inputs hold no sample; thresholds are measured on sample inputs")
    # The thresholds and steps as they were: put back if anything fails (bad inputs, an
    # interrupt, a callback that raises), so that a failed call leaves the model unchanged.
    saved = [
        (model.layers[i], {name: model.layers[i].get_variable(name) for name in ("threshold_fire", "threshold_fire_step")})
        for i in chosen
    ]
    try:
        return _calibrate(model, inputs, chosen, float(target), float(saturation), batch_size, verbose, callback)
    except BaseException:
        for layer, values in saved:
            for name, value in values.items():
                layer.set_variable(name, value)
        raise


def _calibrate(
    model: Any,
    inputs: Any,
    chosen: list[int],
    target: float,
    saturation: float,
    batch_size: Optional[int],
    verbose: bool,
    callback: Optional[ProgressCallback],
) -> dict[str, np.ndarray]:
    multi_bit = [model.layers[i].parameters.threshold_fire_bits > 1 for i in chosen]
    threshold_rounds = 33  # bisection of [-2**31, 2**31 - 1], then the closest of two
    total = sum(threshold_rounds + (_STEP_BISECTIONS if m else 0) for m in multi_bit)
    result: dict[str, np.ndarray] = {}
    with Progress(total, "calibrating thresholds", verbose, callback, unit="forward") as progress:
        for index, multi in zip(chosen, multi_bit):
            layer = model.layers[index]
            result[layer.name] = _calibrate_threshold(model, inputs, index, target, batch_size, progress)
            if multi:
                _calibrate_step(model, inputs, index, saturation, batch_size, progress)
                result[layer.name] = _firing(model, inputs, index, batch_size)
    return result


def _calibrate_threshold(
    model: Any, inputs: Any, index: int, target: float, batch_size: Optional[int], progress: Progress
) -> np.ndarray:
    layer = model.layers[index]
    neurons = layer.output_shape[2]
    # Invariant: firing(lo) > target >= firing(hi), per neuron, where firing(_INT32_MIN - 1) is
    # taken as 1 + target (everything fires) so that lo starts below every threshold.
    lo = np.full(neurons, _INT32_MIN - 1, dtype=np.int64)
    hi = np.full(neurons, _INT32_MAX, dtype=np.int64)
    fire_lo = np.full(neurons, np.inf)
    layer.set_variable("threshold_fire", hi)
    fire_hi = _firing(model, inputs, index, batch_size)
    progress.update()
    # Neurons that fire above target even at the top threshold keep it (nothing higher exists).
    for round_ in range(32):
        open_ = hi - lo > 1
        if not open_.any():
            progress.update(32 - round_)
            break
        mid = np.where(open_, (lo + hi) // 2, hi)
        mid = np.clip(mid, _INT32_MIN, _INT32_MAX)
        layer.set_variable("threshold_fire", mid)
        fire = _firing(model, inputs, index, batch_size)
        progress.update()
        above = open_ & (fire > target)
        below = open_ & ~(fire > target)
        lo = np.where(above, mid, lo)
        fire_lo = np.where(above, fire, fire_lo)
        hi = np.where(below, mid, hi)
        fire_hi = np.where(below, fire, fire_hi)
    # hi is the smallest threshold with firing <= target; lo = hi - 1 fires more. Take lo when it
    # is strictly closer to the target.
    closer_lo = np.isfinite(fire_lo) & (np.abs(fire_lo - target) < np.abs(fire_hi - target))
    chosen = np.where(closer_lo, lo, hi)
    layer.set_variable("threshold_fire", np.clip(chosen, _INT32_MIN, _INT32_MAX))
    return np.where(closer_lo, fire_lo, fire_hi)


def _calibrate_step(
    model: Any, inputs: Any, index: int, saturation: float, batch_size: Optional[int], progress: Progress
) -> None:
    """Bisects ``threshold_fire_step`` per neuron (in log space) so that a ``saturation``
    fraction of outputs reach the top level ``2**bits - 1``; the threshold stays."""
    layer = model.layers[index]
    top = 2 ** layer.parameters.threshold_fire_bits - 1
    neurons = layer.output_shape[2]
    log_lo = np.full(neurons, np.log(1e-3))  # saturates more than asked (or as much as firing)
    log_hi = np.full(neurons, np.log(2.0**31))  # saturates nothing a 32-bit potential reaches
    best = np.exp(log_hi)
    best_error = np.full(neurons, np.inf)
    for _ in range(_STEP_BISECTIONS):
        mid = (log_lo + log_hi) / 2
        step = np.exp(mid).astype(np.float32)
        layer.set_variable("threshold_fire_step", step)
        sat = _saturated(model, inputs, index, top, batch_size)
        progress.update()
        error = np.abs(sat - saturation)
        better = error < best_error
        best = np.where(better, step, best)
        best_error = np.where(better, error, best_error)
        too_many = sat > saturation
        log_lo = np.where(too_many, mid, log_lo)
        log_hi = np.where(too_many, log_hi, mid)
    layer.set_variable("threshold_fire_step", best.astype(np.float32))
