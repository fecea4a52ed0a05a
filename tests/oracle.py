"""Independent numpy oracle for the akida engine.

Written straight from ``docs/semantics.md``; it shares no code with the Rust engine. Everything is
computed in int64 (potentials) and exact rationals (activation cut points), one sample at a time,
favouring clarity over speed.

A model is described by a list of :class:`LayerSpec` (layer type, constructor parameters, optional
variables, inbound layer names). The same description can be turned into an ``akida.Model`` with
:func:`build_akida_model`, and an existing ``akida.Model`` can be read back into a description with
:func:`spec_from_akida` (``parameters.to_dict()`` + ``get_variable``).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

# ----------------------------------------------------------------------------------------------
# Layer catalogue (from docs/api.md)
# ----------------------------------------------------------------------------------------------

_POOLING_DEFAULTS = dict(
    pooling_width=-1,
    pooling_height=-1,
    pooling_type="NoPooling",
    pooling_stride_x=-1,
    pooling_stride_y=-1,
)
_ACT_DEFAULTS = dict(
    activations_enabled=True,
    threshold_fire=0,
    threshold_fire_step=1.0,
    threshold_fire_bits=1,
)

DEFAULT_PARAMS = {
    "InputData": dict(input_bits=4),
    "InputConvolutional": dict(
        convolution_mode="Same",
        stride_x=1,
        stride_y=1,
        weights_bits=1,
        **_POOLING_DEFAULTS,
        **_ACT_DEFAULTS,
        padding_value=0,
    ),
    "FullyConnected": dict(weights_bits=1, **_ACT_DEFAULTS),
    "Convolutional": dict(
        convolution_mode="Same", stride_x=1, stride_y=1, weights_bits=1, **_POOLING_DEFAULTS, **_ACT_DEFAULTS
    ),
    "SeparableConvolutional": dict(
        convolution_mode="Same", stride_x=1, stride_y=1, weights_bits=2, **_POOLING_DEFAULTS, **_ACT_DEFAULTS
    ),
    "Concat": dict(**_ACT_DEFAULTS),
}

DEFAULT_NAME_BASE = {
    "InputData": "input_data",
    "InputConvolutional": "input_conv",
    "FullyConnected": "fully_connected",
    "Convolutional": "conv",
    "SeparableConvolutional": "sep_conv",
    "Concat": "concat",
}

INPUT_TYPES = ("InputData", "InputConvolutional")
ENUM_PARAMS = {"convolution_mode": "ConvolutionMode", "pooling_type": "PoolingType"}


def enum_name(value) -> str:
    """'Same' for 'Same', ConvolutionMode.Same, 'ConvolutionMode.Same', ..."""
    if isinstance(value, str):
        text = value
    else:
        text = getattr(value, "name", None)
        if not isinstance(text, str):
            text = str(value)
    return text.rsplit(".", 1)[-1]


def weight_range(bits: int) -> tuple[int, int]:
    """Allowed (low, high) weight values for ``bits``-bit weights (both inclusive)."""
    if bits == 1:
        return 0, 1
    high = 2 ** (bits - 1) - 1
    return -high, high


# ----------------------------------------------------------------------------------------------
# Geometry
# ----------------------------------------------------------------------------------------------


def conv_out_and_pad(n: int, k: int, s: int, mode) -> tuple[int, int]:
    """(output size, padding before) along one axis; see the table in docs/semantics.md."""
    mode = enum_name(mode)
    if mode == "Valid":
        if n < k:
            raise ValueError(f"Valid convolution with input {n} < kernel {k}")
        return (n - k) // s + 1, 0
    if mode == "Same":
        out = -(-n // s)  # ceil(n / s)
        total = max((out - 1) * s + k - n, 0)
        return out, total // 2
    if mode == "Full":
        return (n + k - 2) // s + 1, k - 1
    raise ValueError(f"unknown convolution mode {mode!r}")


def pool_axis(n: int, size: int, stride: int, mode) -> tuple[int, int, int, int]:
    """(window, stride, padding before, output size) of pooling along one axis of ``n`` cells
    (docs/semantics.md, Pooling):
    - size -1 (global): one window of the whole map, whatever the mode and stride;
    - Same mode: ceil(n / s) windows, total padding P = max((out - 1) * s + w - n, 0), P // 2 before;
    - Valid and Full: windows inside the map, floor((n - w) / s) + 1 of them (error if w > n)."""
    if size == -1:
        return n, n, 0, 1
    window = size
    stride = window if stride == -1 else stride
    if enum_name(mode) == "Same":
        out = -(-n // stride)  # ceil(n / stride)
        total = max((out - 1) * stride + window - n, 0)
        return window, stride, total // 2, out
    if window > n:
        raise ValueError("pooling window larger than the map")
    return window, stride, 0, (n - window) // stride + 1


def pooling_geometry(h: int, w: int, params: dict):
    """Return ((window, stride, pad, out) along y, the same along x), or None for NoPooling."""
    if enum_name(params["pooling_type"]) == "NoPooling":
        return None
    mode = params["convolution_mode"]
    ph, pw = params["pooling_height"], params["pooling_width"]
    assert (ph == -1) == (pw == -1)
    return (pool_axis(h, ph, params["pooling_stride_y"], mode),
            pool_axis(w, pw, params["pooling_stride_x"], mode))


# ----------------------------------------------------------------------------------------------
# Kernels (one sample, (H, W, C) int64)
# ----------------------------------------------------------------------------------------------


def extract_patches(x, kh, kw, sy, sx, mode, fill):
    """patches[o_y, o_x, t_y, t_x, c] = in[o_y*s_y + t_y - pad_y, o_x*s_x + t_x - pad_x, c],
    with ``fill`` for cells outside the input."""
    h, w, _ = x.shape
    oh, pad_y = conv_out_and_pad(h, kh, sy, mode)
    ow, pad_x = conv_out_and_pad(w, kw, sx, mode)
    iy = np.arange(oh)[:, None] * sy + np.arange(kh)[None, :] - pad_y  # (oh, kh)
    ix = np.arange(ow)[:, None] * sx + np.arange(kw)[None, :] - pad_x  # (ow, kw)
    inside = ((iy >= 0) & (iy < h))[:, None, :, None] & ((ix >= 0) & (ix < w))[None, :, None, :]
    vals = x[np.clip(iy, 0, h - 1)[:, None, :, None], np.clip(ix, 0, w - 1)[None, :, None, :], :]
    return np.where(inside[..., None], vals, np.int64(fill)).astype(np.int64)


def cross_correlate(x, weights, sy, sx, mode, fill=0):
    """p[o_y, o_x, n] = sum_{t_y, t_x, c} patch[o_y, o_x, t_y, t_x, c] * W[t_y, t_x, c, n]."""
    w = np.asarray(weights, dtype=np.int64)
    patches = extract_patches(x, w.shape[0], w.shape[1], sy, sx, mode, fill)
    return np.einsum("abijc,ijcn->abn", patches, w), patches


def true_convolve(x, weights, sy, sx, mode):
    """Convolution with the kernel flipped: uses W[k_h-1-t_y, k_w-1-t_x, c, n]; zero padding."""
    w = np.asarray(weights, dtype=np.int64)
    return cross_correlate(x, w[::-1, ::-1, :, :], sy, sx, mode, fill=0)


def depthwise_convolve(x, weights, sy, sx, mode):
    """d[o_y, o_x, c] = sum_{t_y, t_x} patch[o_y, o_x, t_y, t_x, c] * W[k_h-1-t_y, k_w-1-t_x, c, 0]."""
    w = np.asarray(weights, dtype=np.int64)[::-1, ::-1, :, 0]
    patches = extract_patches(x, w.shape[0], w.shape[1], sy, sx, mode, 0)
    return np.einsum("abijc,ijc->abc", patches, w), patches


def pool(p, params):
    """Window (oy, ox) covers the padded rows oy*sy - pad_y .. + ph and columns ox*sx - pad_x .. + pw;
    only the cells inside the map count (Max of them; Average: their sum // their count)."""
    geo = pooling_geometry(p.shape[0], p.shape[1], params)
    if geo is None:
        return p
    (ph, sy, pad_y, oh), (pw, sx, pad_x, ow) = geo
    h, w = p.shape[:2]
    kind = enum_name(params["pooling_type"])
    out = np.empty((oh, ow, p.shape[2]), dtype=np.int64)
    for oy in range(oh):
        rows = [y for y in range(oy * sy - pad_y, oy * sy - pad_y + ph) if 0 <= y < h]
        for ox in range(ow):
            cols = [x for x in range(ox * sx - pad_x, ox * sx - pad_x + pw) if 0 <= x < w]
            window = p[rows][:, cols]
            assert window.shape[:2] == (len(rows), len(cols)) and window.size > 0
            if kind == "Max":
                out[oy, ox] = window.max(axis=(0, 1))
            elif kind == "Average":
                out[oy, ox] = window.sum(axis=(0, 1)) // (len(rows) * len(cols))  # floor division
            else:
                raise ValueError(kind)
    return out


# ----------------------------------------------------------------------------------------------
# Activation (exact rational arithmetic)
# ----------------------------------------------------------------------------------------------


def interval_length(step, bits: int) -> Fraction:
    """L: step for 4 bits, 4*step for 2 bits; ``step`` is taken as the float32 the engine stores."""
    s = Fraction(float(np.float32(step)))
    return 4 * s if bits == 2 else s


def activation_scalar(p: int, threshold: int, step, bits: int) -> int:
    """The rule of docs/semantics.md for one potential, written literally."""
    p, threshold = int(p), int(threshold)
    if p <= threshold:
        return 0
    if bits == 1:
        return 1
    length = interval_length(step, bits)
    return min(math.ceil(Fraction(p - threshold) / length), 2**bits - 1)


def winner_take_all(potentials, groups):
    """docs/semantics.md: at each position only the strongest neuron of a group of consecutive
    neurons sharing an id may fire (the lowest index on ties); the others cannot fire."""
    out = np.array(potentials, dtype=np.int64)
    never = -(2**40)  # below every int32 threshold, and far from int64 overflow
    groups = np.asarray(groups)
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        block = out[..., members]
        winner = block.argmax(axis=-1)  # argmax returns the first maximum
        keep = np.zeros(block.shape, dtype=bool)
        np.put_along_axis(keep, winner[..., None], True, axis=-1)
        out[..., members] = np.where(keep, block, never)
    return out


def activate(p, thresholds, steps, bits: int):
    """Vectorized version of :func:`activation_scalar` over the last axis (neurons), exact:
    ceil(d / (num/den)) = ceil(d * den / num) computed on Python integers."""
    p = np.asarray(p, dtype=np.int64)
    out = np.zeros(p.shape, dtype=np.int64)
    top = 2**bits - 1
    for n in range(p.shape[-1]):
        t = int(thresholds[n])
        diff = p[..., n] - t  # exact in int64 (|p|, |t| < 2**31)
        if bits == 1:
            out[..., n] = diff > 0
            continue
        num, den = interval_length(steps[n], bits).as_integer_ratio()
        d = diff.astype(object)
        levels = -((-d * den) // num)  # ceil(d * den / num) with Python ints
        levels = np.where(diff > 0, np.minimum(levels, top), 0)
        out[..., n] = levels.astype(np.int64)
    return out


# ----------------------------------------------------------------------------------------------
# Model description
# ----------------------------------------------------------------------------------------------


@dataclass
class LayerSpec:
    layer_type: str
    params: dict = field(default_factory=dict)
    name: str = ""
    inbound: list | None = None  # names; None: the previous layer
    variables: dict = field(default_factory=dict)


def _full_params(spec: LayerSpec) -> dict:
    params = dict(DEFAULT_PARAMS[spec.layer_type])
    params.update({k: v for k, v in spec.params.items() if k != "name"})
    for key in ENUM_PARAMS:
        if key in params:
            params[key] = enum_name(params[key])
    return params


class OracleModel:
    """Runs a list of LayerSpec. ``run`` returns per-layer potentials/outputs and statistics."""

    def __init__(self, specs):
        self.specs = [copy.deepcopy(s) for s in specs]
        self.names = []
        self.params = {}
        self.inbound = {}
        self.in_shape = {}
        self.out_shape = {}
        self.variables = {}
        self.layer_type = {}
        for i, spec in enumerate(self.specs):
            name = spec.name or self._default_name(spec.layer_type)
            if name in self.names:
                raise ValueError(f"duplicate name {name}")
            params = _full_params(spec)
            if i == 0:
                assert spec.layer_type in INPUT_TYPES
                inbound = []
            else:
                assert spec.layer_type not in INPUT_TYPES
                inbound = list(spec.inbound) if spec.inbound is not None else [self.names[-1]]
            self.names.append(name)
            self.layer_type[name] = spec.layer_type
            self.params[name] = params
            self.inbound[name] = inbound
            self._shapes(name)
            self.variables[name] = self._variables(name, spec.variables)

    def _default_name(self, layer_type):
        base = DEFAULT_NAME_BASE[layer_type]
        if base not in self.names:
            return base
        i = 1
        while f"{base}_{i}" in self.names:
            i += 1
        return f"{base}_{i}"

    def _shapes(self, name):
        t, p = self.layer_type[name], self.params[name]
        if t == "InputData":
            shape = (p["input_height"], p["input_width"], p["input_channels"])
            self.in_shape[name] = self.out_shape[name] = shape
            return
        if t == "InputConvolutional":
            in_shape = (p["input_height"], p["input_width"], p["input_channels"])
        elif t == "Concat":
            shapes = [self.out_shape[n] for n in self.inbound[name]]
            assert len(shapes) >= 2 and len({s[:2] for s in shapes}) == 1, shapes
            in_shape = shapes[0][:2] + (sum(s[2] for s in shapes),)
        else:
            (src,) = self.inbound[name]
            in_shape = self.out_shape[src]
        self.in_shape[name] = in_shape
        h, w, c = in_shape
        if t == "FullyConnected":
            self.out_shape[name] = (1, 1, p["num_neurons"])
        elif t == "Concat":
            self.out_shape[name] = in_shape
        else:
            oh, _ = conv_out_and_pad(h, p["kernel_height"], p["stride_y"], p["convolution_mode"])
            ow, _ = conv_out_and_pad(w, p["kernel_width"], p["stride_x"], p["convolution_mode"])
            geo = pooling_geometry(oh, ow, p)
            if geo is not None:
                oh, ow = geo[0][3], geo[1][3]
            self.out_shape[name] = (oh, ow, p["num_neurons"])

    def variable_shapes(self, name):
        t, p = self.layer_type[name], self.params[name]
        h, w, c = self.in_shape[name]
        n = self.out_shape[name][2]
        shapes = {}
        if t in ("InputConvolutional", "Convolutional"):
            shapes["weights"] = (p["kernel_height"], p["kernel_width"], c, n)
        elif t == "SeparableConvolutional":
            shapes["weights"] = (p["kernel_height"], p["kernel_width"], c, 1)
            shapes["weights_pw"] = (1, 1, c, n)
        elif t == "FullyConnected":
            shapes["weights"] = (h, w, c, n)
        if t != "InputData":
            shapes["threshold_fire"] = (n,)
            shapes["threshold_fire_step"] = (n,)
            shapes["output_scale"] = (n,)
            shapes["output_offset"] = (n,)
        if t == "InputConvolutional":
            shapes["wta_groups"] = (n,)
        return shapes

    def _variables(self, name, given):
        p = self.params[name]
        out = {}
        for var, shape in self.variable_shapes(name).items():
            if var in given:
                arr = np.asarray(given[var])
                assert arr.shape == shape, (name, var, arr.shape, shape)
            elif var == "threshold_fire":
                arr = np.full(shape, p["threshold_fire"])
            elif var == "threshold_fire_step":
                arr = np.full(shape, p["threshold_fire_step"])
            elif var == "wta_groups":
                arr = np.arange(shape[0])  # every neuron its own group
            elif var == "output_scale":
                arr = np.ones(shape)
            else:
                arr = np.zeros(shape)
            if var in ("threshold_fire_step", "output_scale", "output_offset"):
                out[var] = arr.astype(np.float32)
            else:
                out[var] = arr.astype(np.int64)
        unknown = set(given) - set(out)
        assert not unknown, (name, unknown)
        return out

    @property
    def input_shape(self):
        return self.in_shape[self.names[0]]

    @property
    def output_shape(self):
        return self.out_shape[self.names[-1]]

    def emits_activations(self, name):
        """uint8 output: "InputData, Concat and any layer with activations enabled" (semantics.md,
        Outputs). A Concat with activations disabled outputs its inputs, which are uint8 values."""
        t = self.layer_type[name]
        return t in ("InputData", "Concat") or bool(self.params[name]["activations_enabled"])

    # -- evaluation -------------------------------------------------------------------------

    def _layer(self, name, x):
        """One sample: returns (potentials or None, output, synaptic operations or None)."""
        t, p, v = self.layer_type[name], self.params[name], self.variables[name]
        if t == "InputData":
            return None, x, None
        if t == "InputConvolutional":
            pot, patches = cross_correlate(x, v["weights"], p["stride_y"], p["stride_x"],
                                           p["convolution_mode"], fill=p["padding_value"])
            ops = np.count_nonzero(patches) * pot.shape[2]
        elif t == "Convolutional":
            pot, patches = true_convolve(x, v["weights"], p["stride_y"], p["stride_x"], p["convolution_mode"])
            ops = np.count_nonzero(patches) * pot.shape[2]
        elif t == "SeparableConvolutional":
            d, patches = depthwise_convolve(x, v["weights"], p["stride_y"], p["stride_x"], p["convolution_mode"])
            pw = v["weights_pw"][0, 0]  # (C, N)
            pot = np.einsum("abc,cn->abn", d, pw)
            ops = np.count_nonzero(patches) + np.count_nonzero(d) * pw.shape[1]
        elif t == "FullyConnected":
            pot = np.einsum("yxc,yxcn->n", x, v["weights"]).reshape(1, 1, -1)
            ops = np.count_nonzero(x) * pot.shape[2]
        elif t == "Concat":
            pot = x
            ops = None  # not specified
        else:
            raise ValueError(t)
        if t in ("InputConvolutional", "Convolutional", "SeparableConvolutional"):
            pot = pool(pot, p)
        if p["activations_enabled"]:
            candidates = pot
            if "wta_groups" in v:
                candidates = winner_take_all(pot, v["wta_groups"])
            out = activate(candidates, v["threshold_fire"], v["threshold_fire_step"], p["threshold_fire_bits"])
        else:
            out = pot
        return pot, out, ops

    def run(self, inputs):
        """inputs: (N, H, W, C) integer array. Returns dict with 'potentials', 'outputs' (per layer
        name, arrays (N, h, w, c) int64; potentials None for InputData), 'layer_inputs' and
        'statistics' (per layer: input_sparsity, output_sparsity, synaptic_operations, samples)."""
        inputs = np.asarray(inputs, dtype=np.int64)
        assert inputs.ndim == 4 and inputs.shape[1:] == self.input_shape, (inputs.shape, self.input_shape)
        n = inputs.shape[0]
        pots = {name: [] for name in self.names}
        outs = {name: [] for name in self.names}
        lins = {name: [] for name in self.names}
        ops = {name: 0 for name in self.names}
        for i in range(n):
            cur = {}
            for name in self.names:
                if not self.inbound[name]:
                    x = inputs[i]
                else:
                    x = np.concatenate([cur[src] for src in self.inbound[name]], axis=2)
                assert x.shape == self.in_shape[name]
                pot, out, op = self._layer(name, x)
                assert out.shape == self.out_shape[name], (name, out.shape, self.out_shape[name])
                cur[name] = out
                pots[name].append(pot)
                outs[name].append(out)
                lins[name].append(x)
                ops[name] = None if op is None or ops[name] is None else ops[name] + int(op)
        result = {"potentials": {}, "outputs": {}, "layer_inputs": {}, "statistics": {}}
        for name in self.names:
            shape_in = (0,) + self.in_shape[name]
            shape_out = (0,) + self.out_shape[name]
            o = np.stack(outs[name]) if n else np.zeros(shape_out, np.int64)
            li = np.stack(lins[name]) if n else np.zeros(shape_in, np.int64)
            result["outputs"][name] = o
            result["layer_inputs"][name] = li
            result["potentials"][name] = None if not n or pots[name][0] is None else np.stack(pots[name])
            result["statistics"][name] = dict(
                input_sparsity=float(np.mean(li == 0)) if li.size else None,
                output_sparsity=float(np.mean(o == 0)) if o.size else None,
                synaptic_operations=ops[name],
                samples=n,
            )
        return result

    def forward(self, inputs):
        last = self.names[-1]
        out = self.run(inputs)["outputs"][last]
        return out

    def output_dtype(self):
        return np.uint8 if self.emits_activations(self.names[-1]) else np.int32

    def evaluate(self, inputs):
        """Model.evaluate (docs/semantics.md, Outputs): the last layer's potentials p of neuron c as
        float32(float64(p) * float64(output_scale[c]) + float64(output_offset[c]))."""
        last = self.names[-1]
        if self.emits_activations(last):
            raise ValueError("evaluate needs a last layer with activations disabled")
        p = self.forward(inputs).astype(np.float64)
        scale = self.variables[last]["output_scale"].astype(np.float64)
        offset = self.variables[last]["output_offset"].astype(np.float64)
        return (p * scale + offset).astype(np.float32)

    def predict(self, inputs, num_classes=None):
        return predict_from_outputs(self.forward(inputs), num_classes)


def predict_from_outputs(outputs, num_classes=None):
    """Class per sample from (N, H, W, C) outputs (docs/semantics.md, Outputs)."""
    outputs = np.asarray(outputs, dtype=np.int64)
    n_samples, n_neurons = outputs.shape[0], outputs.shape[3]
    if num_classes is None:
        num_classes = n_neurons
    assert n_neurons % num_classes == 0
    group = n_neurons // num_classes
    result = np.empty(n_samples, dtype=np.int64)
    for i in range(n_samples):
        scores = outputs[i].reshape(-1, n_neurons).max(axis=0)
        best = 0
        for j in range(1, n_neurons):
            if scores[j] > scores[best]:  # strict: lowest index wins ties
                best = j
        result[i] = best // group if scores[best] > 0 else -1
    return result


# ----------------------------------------------------------------------------------------------
# Bridges to akida
# ----------------------------------------------------------------------------------------------


def make_akida_layer(spec: LayerSpec):
    import akida

    kwargs = {}
    for key, value in spec.params.items():
        if key in ENUM_PARAMS:
            value = getattr(getattr(akida, ENUM_PARAMS[key]), enum_name(value))
        kwargs[key] = value
    if spec.name:
        kwargs["name"] = spec.name
    return getattr(akida, spec.layer_type)(**kwargs)


def build_akida_model(specs):
    """Build an akida.Model from LayerSpecs (layers added in order, then variables set)."""
    import akida

    model = akida.Model()
    by_name = {}
    for spec in specs:
        layer = make_akida_layer(spec)
        if spec.inbound is None:
            model.add(layer)
        else:
            model.add(layer, inbound_layers=[by_name[n] for n in spec.inbound])
        by_name[layer.name] = layer
        for var, value in spec.variables.items():
            layer.set_variable(var, value)
    return model


def spec_from_akida(model):
    """Read an akida.Model back into LayerSpecs through its public API."""
    specs = []
    for layer in model.layers:
        params = dict(layer.parameters.to_dict())
        params.pop("name", None)
        for key in ENUM_PARAMS:
            if key in params:
                params[key] = enum_name(params[key])
        # threshold_learning is learning state (docs/learning.md): it does not change the outputs
        variables = {v: np.array(layer.get_variable(v)) for v in layer.get_variable_names()
                     if v != "threshold_learning"}
        inbound = [l.name for l in layer.inbound_layers]
        specs.append(LayerSpec(layer.layer_type, params, layer.name,
                               inbound if inbound else None, variables))
    # the first layer has no inbound; later layers always list theirs
    return specs


def oracle_from_akida(model) -> OracleModel:
    return OracleModel(spec_from_akida(model))


def run_oracle_on_akida(model, inputs):
    """Oracle output for an akida.Model's current parameters and variables."""
    return oracle_from_akida(model).forward(inputs)
