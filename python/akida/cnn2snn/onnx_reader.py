"""Reads an ONNX model into the intermediate float graph (:mod:`.graph`).

:func:`read_onnx` translates one path of the ONNX graph, from its single real input to the
chosen output, into :class:`~.graph.Node` objects and does nothing else: it neither refuses nor
rewrites patterns the converter cannot map (those become ``"unsupported"`` or ``"activation"``
nodes that the compatibility check explains).

Layout. ONNX images are channels-first, ``(N, C, H, W)``; the graph is channels-last. Every tensor
the reader meets is tracked with its ONNX shape (one sample, batch dropped) and, for flat
``(N, F)`` tensors, the order of its features relative to the graph's: a ``Flatten`` of a
``(C, H, W)`` tensor lists features in ``(C, H, W)`` order where the graph's ``flatten`` lists
them in ``(H, W, C)`` order, so the rows of the dense kernel that reads it (and any per-feature
parameters on the way) are permuted. Convolution kernels ``(out, in, kh, kw)`` become
``(kh, kw, in, out)``.

Already-quantized sources:

- QDQ: a ``DequantizeLinear`` of an integer initializer is folded into float weights, and the
  weighted node that reads them gets a :class:`~.graph.WeightQuant`. A
  ``QuantizeLinear -> DequantizeLinear`` pair on an activation disappears: after a ReLU it gives
  the ReLU an :class:`~.graph.ActivationQuant`; on the graph input it sets
  ``attrs["input_quant"] = (scale, zero_point)`` on the input node; after any other node it sets
  ``attrs["output_quant"] = (scale, zero_point, bits)`` on that node, for information.
- QONNX ``Quant`` nodes are read the same way (``BipolarQuant`` is not supported).

Quantization the reader cannot express exactly (a non-zero zero point, scales that vary along the
input channels, ...) is described in ``attrs["quant_problem"]`` of the node concerned, and the
float weights stay exact.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Union

import numpy as np

from .graph import ActivationQuant, Graph, Node, WeightQuant

if TYPE_CHECKING:  # pragma: no cover
    import onnx

__all__ = [
    "ONNX_EXTRA_MESSAGE",
    "ONNX_OP_HANDLERS",
    "QONNX_DOMAINS",
    "QONNX_OP_HANDLERS",
    "chw_to_hwc_order",
    "read_onnx",
    "tf_same_pads",
]

#: The largest input dimension the engine takes (channels and features: 2**20; docs/api.md), and
#: the values of one sample this reader accepts.
_MAX_DIMENSION = 1 << 20
_MAX_SAMPLE_VALUES = 1 << 31

#: The message of the ImportError raised when the ``onnx`` package is missing.
ONNX_EXTRA_MESSAGE = "akida.cnn2snn needs the 'onnx' extra: pip install openakida[onnx]"

#: Domains whose ``Quant`` / ``BipolarQuant`` nodes are QONNX quantizers.
QONNX_DOMAINS = frozenset({"qonnx.custom_op.general", "onnx.brevitas", "finn.custom_op.general"})
_STANDARD_DOMAINS = frozenset({"", "ai.onnx"})

ModelSource = Union[str, "os.PathLike[str]", bytes, "onnx.ModelProto"]


def read_onnx(model: ModelSource, output: str | None = None) -> Graph:
    """Reads an ONNX model into the intermediate graph.

    Parameters
    ----------
    model : str, os.PathLike, bytes or onnx.ModelProto
        A path to an ``.onnx`` file, its serialized bytes, or a loaded model.
    output : str, optional
        The graph output to follow. By default the only output, or else the only floating-point
        output (a scikit-learn classifier's probabilities rather than its label).

    Returns
    -------
    Graph
        Nodes from the single real input to the chosen output; nodes that only feed other outputs
        are dropped.

    Raises
    ------
    ImportError
        When the ``onnx`` package is not installed.
    ValueError
        When the model has no or several real inputs, an input that is neither ``(N, C, H, W)``
        nor ``(N, F)`` or with unknown non-batch dimensions, or an ambiguous or unknown output.
    """
    onnx_module = _import_onnx()
    proto = _load(onnx_module, model)
    return _Reader(onnx_module, proto, output).read()


def _import_onnx() -> Any:
    try:
        import onnx
        import onnx.numpy_helper
        import onnx.shape_inference
    except ImportError as exc:
        raise ImportError(ONNX_EXTRA_MESSAGE) from exc
    return onnx


def _load(onnx_module: Any, model: ModelSource) -> Any:
    from google.protobuf.message import DecodeError

    if isinstance(model, onnx_module.ModelProto):
        return model
    where = "the ONNX bytes"
    try:
        if isinstance(model, (bytes, bytearray, memoryview)):
            data = bytes(model)
            if not data:
                raise ValueError("the ONNX bytes are empty: not an ONNX model")
            return onnx_module.load_model_from_string(data)
        if isinstance(model, (str, os.PathLike)):
            where = os.fspath(model)
            return onnx_module.load(where)
    except DecodeError as exc:
        raise ValueError(f"{where}: not a valid ONNX model ({exc})") from exc
    raise TypeError(f"read_onnx takes a path, bytes or an onnx.ModelProto, not {type(model).__name__}")


# --------------------------------------------------------------------------------------------
# Tensors
# --------------------------------------------------------------------------------------------


class _Unsupported(Exception):
    """Raised by a handler, before it emits anything, when its node cannot be translated: the
    node then becomes an ``"unsupported"`` graph node with this reason."""


@dataclass(frozen=True)
class _Grid:
    """The quantization grid of an activation: ``scale * (q - zero_point)`` for integers ``q`` of
    ``bits`` bits (signed or not). Scales and zero points are per tensor or per channel."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    bits: int
    signed: bool

    @property
    def step(self) -> float:
        return self.scale[0]

    @property
    def per_tensor(self) -> bool:
        return len(self.scale) == 1 and len(self.zero_point) == 1

    @property
    def starts_at_zero(self) -> bool:
        """Whether the grid clips below at 0 (a ReLU): unsigned, zero point 0."""
        return not self.signed and not any(self.zero_point)

    def scale_value(self) -> Any:
        return self.scale[0] if len(self.scale) == 1 else np.array(self.scale)

    def zero_point_value(self) -> Any:
        return self.zero_point[0] if len(self.zero_point) == 1 else np.array(self.zero_point)


@dataclass
class _Value:
    """A non-constant ONNX tensor as the graph sees it.

    ``shape`` is the ONNX shape of one sample (batch dropped): ``(C, H, W)`` for an image, ``(F,)``
    for features, None when unknown. For features, ``perm`` (when not None) says that the graph
    holds ``onnx_features[perm]``: the graph feature ``i`` is the ONNX feature ``perm[i]``.
    """

    node: str
    shape: tuple[int, ...] | None
    perm: np.ndarray | None = None
    #: The grid the values are known to lie on (after a QDQ pair or a QONNX Quant, kept by
    #: max pooling, flatten, ...).
    grid: _Grid | None = None
    #: On the output of a QuantizeLinear of an activation: its grid and node, until the
    #: DequantizeLinear that closes it.
    pending: tuple[_Grid, Any] | None = None

    @property
    def is_image(self) -> bool:
        return self.shape is not None and len(self.shape) == 3

    @property
    def is_flat(self) -> bool:
        return self.shape is not None and len(self.shape) == 1


@dataclass
class _QuantizedConstant:
    """How a folded float constant came from integers: ``value == ints * scale``.

    ``ints`` (already minus the zero point) has the constant's ONNX shape; ``scale`` broadcasts
    against it (all ones but at most one axis). ``problem`` says why the integers cannot be used
    as they are.
    """

    ints: np.ndarray
    scale: np.ndarray
    bits: int
    problem: str | None = None


def chw_to_hwc_order(channels: int, height: int, width: int) -> np.ndarray:
    """The permutation ``p`` with ``a.transpose(1, 2, 0).ravel() == a.ravel()[p]`` for any
    ``a`` of shape ``(channels, height, width)``: graph feature ``i`` is ONNX feature ``p[i]``."""
    return np.arange(channels * height * width).reshape(channels, height, width).transpose(1, 2, 0).ravel()


def _integer_format(dtype: np.dtype) -> tuple[int, bool] | None:
    """``(bits, signed)`` of an integer numpy dtype (including ml_dtypes' int4 / uint4)."""
    match = re.fullmatch(r"(u?)int(\d+)", np.dtype(dtype).name)
    if match is None:
        return None
    return int(match.group(2)), match.group(1) == ""


def _as_int64(array: np.ndarray) -> np.ndarray:
    """An integer array (also int4 / uint4) as int64."""
    return np.asarray(array).astype(np.int64)


def _is_float(dtype: np.dtype) -> bool:
    return np.dtype(dtype).kind == "f"


def _smallest_weight_bits(ints: np.ndarray, dtype_bits: int) -> tuple[int, str | None]:
    """The smallest of 2, 4 and 8 bits whose symmetric range ``+-(2**(b-1) - 1)`` holds ``ints``,
    or the storage width when only its full range does (int8 -128, int4 -8)."""
    largest = int(np.abs(ints).max()) if ints.size else 0
    for bits in (2, 4, 8):
        if bits <= max(dtype_bits, 2) and largest <= 2 ** (bits - 1) - 1:
            return bits, None
    low, high = (int(ints.min()), int(ints.max())) if ints.size else (0, 0)
    if dtype_bits <= 8 and -(2 ** (dtype_bits - 1)) <= low and high <= 2 ** (dtype_bits - 1) - 1:
        return dtype_bits, None
    return min(dtype_bits, 32), f"integer weights in [{low}, {high}] need more than 8 bits"


def _broadcast_along(vector: np.ndarray, axis: int, rank: int) -> np.ndarray:
    """A 0-D or 1-D array shaped to broadcast along ``axis`` of a rank-``rank`` array."""
    vector = np.asarray(vector)
    if vector.ndim == 0 or vector.size == 1:
        return vector.reshape((1,) * rank)
    shape = [1] * rank
    shape[axis % rank] = vector.size
    return vector.reshape(shape)


def _scalar_or_array(x: np.ndarray) -> Any:
    """A float for a single value, else the float64 array."""
    x = np.asarray(x, dtype=np.float64)
    return float(x.ravel()[0]) if x.size == 1 else x


# --------------------------------------------------------------------------------------------
# Windows (convolution and pooling geometry)
# --------------------------------------------------------------------------------------------


def tf_same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """``(before, after)`` of TensorFlow's 'same' padding for one axis."""
    out = math.ceil(size / stride)
    extent = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + extent - size, 0)
    return total // 2, total - total // 2


@dataclass
class _Window:
    """The geometry of a convolution or pooling window over a ``(C, H, W)`` tensor."""

    kernel: tuple[int, int]
    strides: tuple[int, int]
    dilations: tuple[int, int]
    #: "same", "valid" or ("explicit", (top, bottom, left, right)).
    padding: Any
    #: (top, bottom, left, right) actually applied, None when the input size is unknown.
    pads: tuple[int, int, int, int] | None
    out_hw: tuple[int, int] | None


def _window(
    attrs: dict[str, Any],
    kernel: tuple[int, int],
    in_hw: tuple[int, int] | None,
    ceil_mode_allowed: bool,
) -> _Window:
    """Resolves ONNX ``auto_pad`` / ``pads`` / ``strides`` / ``dilations`` / ``ceil_mode``.

    ``ceil_mode=1`` is read as extra padding at the end (the windows ONNX adds), when
    ``ceil_mode_allowed``; otherwise a ceil mode that changes the output size is unsupported.
    """
    strides = tuple(int(s) for s in attrs.get("strides", (1, 1)))
    dilations = tuple(int(d) for d in attrs.get("dilations", (1, 1)))
    if len(kernel) != 2 or len(strides) != 2 or len(dilations) != 2:
        raise _Unsupported("only 2-D windows are supported")
    auto_pad = attrs.get("auto_pad", "NOTSET")
    extents = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        if in_hw is None:
            if auto_pad == "SAME_LOWER":
                raise _Unsupported("auto_pad SAME_LOWER on an input of unknown size")
            return _Window(kernel, strides, dilations, "same", None, None)
        pads = []
        for n, k, s, d in zip(in_hw, kernel, strides, dilations):
            before, after = tf_same_pads(n, k, s, d)
            pads.append((before, after) if auto_pad == "SAME_UPPER" else (after, before))
        (top, bottom), (left, right) = pads
    elif auto_pad == "VALID":
        top = bottom = left = right = 0
    elif auto_pad == "NOTSET":
        onnx_pads = [int(p) for p in attrs.get("pads", (0, 0, 0, 0))]
        if len(onnx_pads) != 4:
            raise _Unsupported("only 2-D windows are supported")
        top, left, bottom, right = onnx_pads
    else:
        raise _Unsupported(f"unknown auto_pad {auto_pad!r}")
    extra = (0, 0)
    if attrs.get("ceil_mode", 0):
        if in_hw is None:
            raise _Unsupported("ceil_mode=1 on an input of unknown size")
        extra = (
            _ceil_mode_extra(in_hw[0], top, bottom, extents[0], strides[0]),
            _ceil_mode_extra(in_hw[1], left, right, extents[1], strides[1]),
        )
        if extra != (0, 0) and not ceil_mode_allowed:
            raise _Unsupported("ceil_mode=1 adds windows past the padded input")
        bottom, right = bottom + extra[0], right + extra[1]
    pads4 = (top, bottom, left, right)
    if auto_pad == "SAME_UPPER" and extra == (0, 0):
        padding: Any = "same"
    elif pads4 == (0, 0, 0, 0):
        padding = "valid"
    elif in_hw is not None and pads4 == sum(
        (tf_same_pads(n, k, s, d) for n, k, s, d in zip(in_hw, kernel, strides, dilations)), ()
    ):
        padding = "same"
    else:
        padding = ("explicit", pads4)
    out_hw = None
    if in_hw is not None:
        out_hw = (
            (in_hw[0] + top + bottom - extents[0]) // strides[0] + 1,
            (in_hw[1] + left + right - extents[1]) // strides[1] + 1,
        )
        if min(out_hw) < 1:
            raise _Unsupported(f"a {kernel} window larger than its padded {in_hw} input")
    return _Window(kernel, strides, dilations, padding, pads4 if in_hw is not None else None, out_hw)


def _ceil_mode_extra(size: int, before: int, after: int, extent: int, stride: int) -> int:
    """The end padding ``ceil_mode=1`` adds: ONNX rounds the output size up, but never starts a
    window inside the end padding."""
    out = -(-(size + before + after - extent) // stride) + 1
    if (out - 1) * stride >= size + before:
        out -= 1
    return max((out - 1) * stride + extent - (size + before + after), 0)


# --------------------------------------------------------------------------------------------
# The reader
# --------------------------------------------------------------------------------------------

Handler = Callable[["_Reader", Any], None]


class _Reader:
    """Translates one ONNX model; :meth:`read` returns the graph."""

    def __init__(self, onnx_module: Any, model: Any, output: str | None) -> None:
        self.onnx = onnx_module
        self.model = model
        self.graph = model.graph
        self.output_name = output
        self.opset = next((o.version for o in model.opset_import if o.domain in _STANDARD_DOMAINS), 1)
        self.constants: dict[str, np.ndarray] = {
            init.name: onnx_module.numpy_helper.to_array(init) for init in self.graph.initializer
        }
        self.quantized: dict[str, _QuantizedConstant] = {}
        self.values: dict[str, _Value] = {}
        self.nodes: list[Node] = []
        self.by_name: dict[str, Node] = {}
        #: How many translated ONNX nodes (and the graph output) still read each graph node.
        self.readers: dict[str, int] = {}
        self.uses: dict[str, int] = {}
        self.inferred = self._inferred_shapes()
        self.batch = 1

    # ---- entry point -------------------------------------------------------------------

    def read(self) -> Graph:
        output = self._choose_output()
        needed = self._needed_nodes(output)
        for node in needed:
            for name in node.input:
                self.uses[name] = self.uses.get(name, 0) + 1
        self.uses[output] = self.uses.get(output, 0) + 1
        skipped = self._add_input(needed)
        for node in needed:
            if id(node) not in skipped:
                self._translate(node)
        if output not in self.values:
            raise ValueError(f"the ONNX output '{output}' is a constant, not computed from the input")
        return Graph(self.nodes, self.values[output].node, source_format="onnx", name=self.graph.name)

    def _choose_output(self) -> str:
        outputs = [o.name for o in self.graph.output]
        if not outputs:
            raise ValueError("the ONNX model has no graph output (an empty or foreign protobuf?)")
        if self.output_name is not None:
            if self.output_name not in outputs:
                raise ValueError(f"the ONNX model has no output '{self.output_name}'; its outputs: {outputs}")
            return self.output_name
        if len(outputs) == 1:
            return outputs[0]
        floats = [
            o.name
            for o in self.graph.output
            if o.type.HasField("tensor_type")
            and _is_float(self.onnx.helper.tensor_dtype_to_np_dtype(o.type.tensor_type.elem_type))
        ]
        if len(floats) == 1:
            return floats[0]
        raise ValueError(f"the ONNX model has several outputs {outputs}: name the one to read with output=...")

    def _needed_nodes(self, output: str) -> list[Any]:
        """The nodes the output depends on, in the model's (topological) order."""
        producer = {name: node for node in self.graph.node for name in node.output if name}
        needed: set[int] = set()
        stack = [output]
        while stack:
            node = producer.get(stack.pop())
            if node is not None and id(node) not in needed:
                needed.add(id(node))
                stack.extend(name for name in node.input if name)
        return [node for node in self.graph.node if id(node) in needed]

    def _inferred_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-sample shapes (batch dropped) that ONNX shape inference knows fully."""
        try:
            inferred = self.onnx.shape_inference.infer_shapes(self.model, strict_mode=False, data_prop=True)
        except Exception:  # noqa: BLE001 - custom ops or a malformed model: no inferred shapes
            inferred = self.model
        shapes = {}
        for info in list(inferred.graph.value_info) + list(inferred.graph.output):
            dims = _static_dims(info)
            if dims is not None and len(dims) >= 1:
                shapes[info.name] = dims[1:]
        return shapes

    # ---- the input ---------------------------------------------------------------------

    def _add_input(self, needed: list[Any]) -> set[int]:
        """Creates the input node; returns the ids of nodes it absorbed (an NHWC -> NCHW
        Transpose right after an NHWC input)."""
        inputs = [i for i in self.graph.input if i.name not in self.constants]
        if len(inputs) != 1:
            names = [i.name for i in inputs]
            raise ValueError(f"read_onnx needs exactly one graph input (not an initializer); found {names}")
        (info,) = inputs
        if not info.type.HasField("tensor_type") or not info.type.tensor_type.HasField("shape"):
            raise ValueError(f"the ONNX input '{info.name}' has no tensor shape")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in info.type.tensor_type.shape.dim]
        if len(dims) not in (2, 4):
            raise ValueError(
                f"the ONNX input '{info.name}' has shape {dims}: read_onnx reads (N, C, H, W) images or (N, F) features"
            )
        if any(d is None or d <= 0 for d in dims[1:]):
            raise ValueError(
                f"the ONNX input '{info.name}' has shape {dims} with unknown non-batch dimensions; "
                "export the model with a fixed input size"
            )
        sizes = [int(d) for d in dims[1:] if d is not None]
        # Beyond these the engine holds no sample (docs/api.md, "Limits"); refused here, before
        # any array of the input's size is made.
        if any(size > _MAX_DIMENSION for size in sizes) or math.prod(sizes) > _MAX_SAMPLE_VALUES:
            raise ValueError(
                f"the ONNX input '{info.name}' has shape {dims}: beyond the engine's inputs (each dimension up "
                f"to {_MAX_DIMENSION}, {_MAX_SAMPLE_VALUES} values a sample)"
            )
        self.batch = dims[0] or 1
        absorbed: set[int] = set()
        consumers = [n for n in needed if info.name in n.input]
        nhwc = (
            len(dims) == 4
            and consumers
            and all(n.op_type == "Transpose" and list(self.attrs(n).get("perm", [])) == [0, 3, 1, 2] for n in consumers)
        )
        if len(sizes) == 3:
            c, h, w = (sizes[2], sizes[0], sizes[1]) if nhwc else (sizes[0], sizes[1], sizes[2])
            shape: tuple[int, ...] = (c, h, w)
            ir_shape = (h, w, c)
        else:
            shape = (sizes[0],)
            ir_shape = (1, 1, sizes[0])
        node = self._add(Node("input", self._unique(info.name), attrs={"shape": ir_shape}, source=f"ONNX input '{info.name}'"))
        value = _Value(node.name, shape)
        self._bind(info.name, value, fresh=True)
        if nhwc:
            for transpose in consumers:
                self._bind(transpose.output[0], value)
                self.readers[node.name] -= 1  # the transpose is no reader of its own
                absorbed.add(id(transpose))
        return absorbed

    # ---- node translation --------------------------------------------------------------

    def _translate(self, node: Any) -> None:
        if self._fold(node):
            return
        if node.domain in _STANDARD_DOMAINS:
            handler = ONNX_OP_HANDLERS.get(node.op_type)
        elif node.domain in QONNX_DOMAINS:
            handler = QONNX_OP_HANDLERS.get(node.op_type)
        else:
            handler = None
        if handler is None:
            self.unsupported(node)
            return
        try:
            handler(self, node)
        except _Unsupported as why:
            self.unsupported(node, str(why))

    def _fold(self, node: Any) -> bool:
        """Evaluates a node whose inputs are all constants (and ``Shape`` of a known shape)."""
        inputs = [name for name in node.input if name]
        if node.op_type == "Shape" and node.domain in _STANDARD_DOMAINS:
            value = self.values.get(node.input[0])
            if value is None or value.shape is None:
                return False
            shape = np.array((self.batch,) + value.shape, dtype=np.int64)
            attrs = self.attrs(node)
            self.constants[node.output[0]] = shape[attrs.get("start", 0) : attrs.get("end", len(shape))]
            return True
        if not all(name in self.constants for name in inputs):
            return False
        folder = _CONSTANT_FOLDERS.get(node.op_type)
        qonnx = node.domain in QONNX_DOMAINS and node.op_type in QONNX_OP_HANDLERS
        if folder is None or not (node.domain in _STANDARD_DOMAINS or qonnx):
            return False
        args = [self.constants[name] if name else None for name in node.input]
        try:
            self.constants[node.output[0]] = folder(self, node, args)
        except _Unsupported:
            return False
        return True

    # ---- helpers for handlers ----------------------------------------------------------

    def attrs(self, node: Any) -> dict[str, Any]:
        """The node's attributes, strings decoded."""
        attrs = {}
        for attr in node.attribute:
            value = self.onnx.helper.get_attribute_value(attr)
            if isinstance(value, bytes):
                value = value.decode()
            attrs[attr.name] = value
        return attrs

    def const(self, node: Any, index: int) -> np.ndarray | None:
        """Input ``index`` of ``node`` when it is a constant, None when it is omitted.

        Raises ``_Unsupported`` when that input is computed at run time."""
        if index >= len(node.input) or not node.input[index]:
            return None
        name = node.input[index]
        if name not in self.constants:
            raise _Unsupported(f"input {index} ('{name}') must be a constant")
        return self.constants[name]

    def is_const(self, name: str) -> bool:
        return name in self.constants

    def value(self, name: str) -> _Value:
        """The translated tensor ``name``."""
        if name in self.constants:
            raise _Unsupported(f"'{name}' is a constant where a tensor computed from the input is expected")
        if name not in self.values:
            raise ValueError(self._missing(name))
        return self.values[name]

    def _missing(self, name: str) -> str:
        """Why tensor ``name`` has no value: nothing makes it, or it comes later."""
        produced = {out for n in self.graph.node for out in n.output} | {i.name for i in self.graph.input}
        if name not in produced:
            return f"ONNX tensor '{name}' is neither a graph input, an initializer nor the output of a node"
        return f"ONNX tensor '{name}' is read before it is computed (the graph is not in topological order)"

    def node_of(self, value: _Value) -> Node:
        return self.by_name[value.node]

    def source(self, node: Any) -> str:
        return f"ONNX {node.op_type} '{_node_label(node)}'"

    def emit(
        self,
        node: Any,
        op: str,
        inputs: list[_Value],
        shape: tuple[int, ...] | None,
        attrs: dict[str, Any] | None = None,
        params: dict[str, np.ndarray] | None = None,
        perm: np.ndarray | None = None,
        output: str | None = None,
        grid: _Grid | None = None,
    ) -> Node:
        """Adds a graph node for ``node`` and binds its output (``output`` or ``node.output[0]``)."""
        graph_node = self._add(
            Node(
                op,
                self._unique(_node_label(node)),
                inputs=[v.node for v in inputs],
                attrs=attrs or {},
                params=params or {},
                source=self.source(node),
            )
        )
        self._bind(output if output is not None else node.output[0], _Value(graph_node.name, shape, perm, grid), fresh=True)
        return graph_node

    def emit_chain(self, node: Any, steps: list[tuple[str, tuple[int, ...] | None, dict[str, Any]]], x: _Value) -> None:
        """Emits several graph nodes in a row for one ONNX node; the last one binds its output."""
        current = x
        for index, (op, shape, attrs) in enumerate(steps):
            last = index == len(steps) - 1
            graph_node = self._add(
                Node(op, self._unique(_node_label(node) + ("" if index == 0 else f"/{op}")), [current.node], attrs, {}, self.source(node))
            )
            current = _Value(graph_node.name, shape)
            if not last:
                self.readers[graph_node.name] = 1
        self._bind(node.output[0], current, fresh=True)

    def alias(self, node: Any, value: _Value) -> None:
        """Binds the node's output to an existing tensor (the node computes nothing the graph
        needs to see): its readers become readers of that tensor's graph node."""
        self._bind(node.output[0], value)
        # the aliasing node itself no longer reads the graph node
        self.readers[value.node] = self.readers.get(value.node, 0) - 1

    def sole_reader(self, value: _Value) -> bool:
        """Whether the node being translated is the only reader of ``value``'s graph node."""
        return self.readers.get(value.node, 0) == 1

    def unsupported(self, node: Any, reason: str | None = None) -> None:
        """Emits an ``"unsupported"`` node reading the node's non-constant inputs."""
        inputs = []
        for name in node.input:
            if name and name not in self.constants:
                if name not in self.values:
                    raise ValueError(self._missing(name))
                inputs.append(self.values[name])
        attrs: dict[str, Any] = {"source_op": node.op_type}
        if node.domain not in _STANDARD_DOMAINS:
            attrs["domain"] = node.domain
        if reason:
            attrs["reason"] = reason
        outputs = [name for name in node.output if name]
        graph_node = self.emit(node, "unsupported", inputs, self.inferred.get(outputs[0]), attrs)
        for name in outputs[1:]:
            self._bind(name, _Value(graph_node.name, self.inferred.get(name)))

    def problem(self, graph_node: Node, text: str) -> None:
        """Notes a quantization the graph cannot express on ``graph_node``."""
        previous = graph_node.attrs.get("quant_problem")
        graph_node.attrs["quant_problem"] = f"{previous}; {text}" if previous else text

    def weight_quant(
        self,
        graph_node: Node,
        weight_name: str,
        to_graph_layout: Callable[[np.ndarray], np.ndarray],
        out_axis: int,
        factor: float = 1.0,
    ) -> None:
        """Sets ``graph_node.weight_quant`` when the weights ``weight_name`` were integers.

        ``to_graph_layout`` maps an array of the ONNX weight's shape to the graph kernel's layout
        (the same transposition and row permutation as the float kernel); ``out_axis`` is the
        ONNX axis of the output channels; ``factor`` multiplies the weights (Gemm's alpha).
        """
        quantized = self.quantized.get(weight_name)
        if quantized is None:
            return
        if quantized.problem:
            self.problem(graph_node, quantized.problem)
            return
        varying = [axis for axis, size in enumerate(quantized.scale.shape) if size != 1]
        if not varying:
            unit = quantized.scale.reshape(1)
        elif varying == [out_axis % quantized.ints.ndim]:
            unit = quantized.scale.reshape(-1)
        else:
            self.problem(graph_node, f"weight scales vary along axes {varying}, not only along the output channels")
            return
        graph_node.weight_quant = WeightQuant(
            bits=quantized.bits,
            ints=to_graph_layout(quantized.ints).astype(np.int64),
            unit=np.asarray(unit, dtype=np.float64) * factor,
        )

    def channel_vector(self, constant: np.ndarray, value: _Value) -> np.ndarray | None:
        """What ``constant`` broadcasts to over ``value``, per channel in graph order (0-D for one
        value for all); None when it varies along other axes or would grow the tensor."""
        c = np.asarray(constant, dtype=np.float64)
        if c.size == 1:
            return c.reshape(())
        if value.shape is None:
            return None
        rank = 1 + len(value.shape)
        if c.ndim > rank:
            return None
        c = c.reshape((1,) * (rank - c.ndim) + c.shape)
        if any(size != 1 for axis, size in enumerate(c.shape) if axis != 1) or c.shape[1] != value.shape[0]:
            return None
        vector = c.reshape(-1)
        return vector[value.perm] if value.perm is not None else vector

    def in_graph_order(self, vector: np.ndarray, value: _Value) -> np.ndarray:
        """Per-feature parameters in the graph's feature order."""
        vector = np.asarray(vector, dtype=np.float64)
        return vector[value.perm] if value.perm is not None and vector.ndim == 1 else vector

    # ---- bookkeeping ----------------------------------------------------------------------

    def _add(self, node: Node) -> Node:
        self.nodes.append(node)
        self.by_name[node.name] = node
        return node

    def _unique(self, base: str) -> str:
        name = base or "node"
        index = 1
        while name in self.by_name:
            name = f"{base}_{index}"
            index += 1
        return name

    def _bind(self, name: str, value: _Value, fresh: bool = False) -> None:
        self.values[name] = value
        if fresh:
            self.readers[value.node] = 0
        self.readers[value.node] = self.readers.get(value.node, 0) + self.uses.get(name, 0)


def _node_label(node: Any) -> str:
    return node.name or node.output[0]


def _static_dims(info: Any) -> tuple[int, ...] | None:
    if not info.type.HasField("tensor_type") or not info.type.tensor_type.HasField("shape"):
        return None
    dims = info.type.tensor_type.shape.dim
    if len(dims) < 1 or any(not d.HasField("dim_value") for d in dims[1:]):
        return None
    return (dims[0].dim_value if dims[0].HasField("dim_value") else 1,) + tuple(d.dim_value for d in dims[1:])


# --------------------------------------------------------------------------------------------
# Handlers: weighted layers
# --------------------------------------------------------------------------------------------


def _conv(r: _Reader, node: Any) -> None:
    """Conv -> "conv" (group 1) or "depthwise" (group == in == out channels)."""
    x = r.value(node.input[0])
    weights = r.const(node, 1)
    bias = r.const(node, 2)
    if weights is None or weights.ndim != 4 or (x.shape is not None and not x.is_image):
        raise _Unsupported("only 2-D convolutions of (N, C, H, W) tensors are supported")
    attrs = r.attrs(node)
    group = int(attrs.get("group", 1))
    out_channels, in_per_group, kh, kw = weights.shape
    window = _window(attrs, (kh, kw), (x.shape[1], x.shape[2]) if x.shape else None, ceil_mode_allowed=False)
    if group == 1:
        op, layout = "conv", (2, 3, 1, 0)
    elif group == out_channels and in_per_group == 1 and (x.shape is None or x.shape[0] == group):
        op, layout = "depthwise", (2, 3, 0, 1)
    else:
        raise _Unsupported(
            f"grouped convolution (group={group}, {in_per_group} input channel(s) per group, "
            f"{out_channels} outputs): only group 1 and depthwise (group == channels) are supported"
        )
    params = {"kernel": np.asarray(weights, dtype=np.float64).transpose(layout)}
    if bias is not None:
        params["bias"] = np.asarray(bias, dtype=np.float64).reshape(-1)
    shape = (out_channels,) + window.out_hw if window.out_hw else None
    graph_attrs = {"strides": window.strides, "padding": window.padding, "dilations": window.dilations}
    graph_node = r.emit(node, op, [x], shape, graph_attrs, params)
    r.weight_quant(graph_node, node.input[1], lambda a: a.transpose(layout), out_axis=0)


def _dense(
    r: _Reader, node: Any, x: _Value, weight_name: str, bias: np.ndarray | None,
    to_in_out: Callable[[np.ndarray], np.ndarray], out_axis: int, factor: float,
) -> None:
    """Emits a "dense" node for the constant ``weight_name``; ``to_in_out`` maps it to
    ``(in, out)``, and the rows then follow the graph's feature order of ``x``."""
    if x.shape is not None and not x.is_flat:
        raise _Unsupported(f"a matrix product on a {x.shape} tensor: only (N, F) inputs are supported")
    weights = np.asarray(r.constants[weight_name], dtype=np.float64)
    in_features, out_features = to_in_out(weights).shape
    if x.shape is not None and x.shape[0] != in_features:
        raise _Unsupported(f"{in_features} weight rows for {x.shape[0]} input features")
    perm = x.perm

    def to_graph(a: np.ndarray) -> np.ndarray:
        a = to_in_out(a)
        return a[perm] if perm is not None else a

    params = {"kernel": to_graph(weights) * factor}
    if bias is not None:
        params["bias"] = bias
    graph_node = r.emit(node, "dense", [x], (out_features,), {}, params)
    r.weight_quant(graph_node, weight_name, to_graph, out_axis=out_axis, factor=factor)


def _gemm(r: _Reader, node: Any) -> None:
    """Gemm (transA=0, constant B) -> "dense" with kernel alpha * B' and bias beta * C."""
    attrs = r.attrs(node)
    if attrs.get("transA", 0):
        raise _Unsupported("transA=1")
    x = r.value(node.input[0])
    b = r.const(node, 1)
    c = r.const(node, 2)
    if b is None or b.ndim != 2:
        raise _Unsupported("B must be a constant matrix")
    trans_b = bool(attrs.get("transB", 0))
    kernel = b.T if trans_b else b
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    bias = None
    if c is not None:
        if c.size not in (1, kernel.shape[1]) or (c.ndim == 2 and c.shape[0] != 1) or c.ndim > 2:
            raise _Unsupported(f"a C of shape {c.shape} that is not one bias per output")
        bias = np.broadcast_to(np.asarray(c, dtype=np.float64).reshape(-1), (kernel.shape[1],)) * beta
    _dense(
        r, node, x, node.input[1], bias,
        (lambda a: a.T) if trans_b else (lambda a: a), out_axis=0 if trans_b else 1, factor=alpha,
    )


def _matmul(r: _Reader, node: Any) -> None:
    """MatMul of a (N, F) tensor by a constant (F, out) -> "dense" without bias (a following
    Add of a constant becomes its bias)."""
    x = r.value(node.input[0])
    b = r.const(node, 1)
    if b is None or b.ndim != 2:
        raise _Unsupported("the second operand must be a constant matrix")
    _dense(r, node, x, node.input[1], None, lambda a: a, out_axis=1, factor=1.0)


def _batchnorm(r: _Reader, node: Any) -> None:
    """BatchNormalization (inference) -> "batchnorm" over the channels (or features)."""
    attrs = r.attrs(node)
    if attrs.get("training_mode", 0) or any(name for name in node.output[1:]):
        raise _Unsupported("training-mode batch normalization")
    x = r.value(node.input[0])
    gamma, beta, mean, var = (r.const(node, i) for i in (1, 2, 3, 4))
    if any(p is None for p in (gamma, beta, mean, var)):
        raise _Unsupported("scale, B, mean and var must be constants")
    if x.shape is not None and np.asarray(gamma).size != x.shape[0]:
        raise _Unsupported(f"{np.asarray(gamma).size} parameters for {x.shape[0]} channels")
    params = {
        key: r.in_graph_order(np.asarray(p).reshape(-1), x)
        for key, p in (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var))
    }
    r.emit(node, "batchnorm", [x], x.shape, {"epsilon": float(attrs.get("epsilon", 1e-5))}, params, perm=x.perm)


# --------------------------------------------------------------------------------------------
# Handlers: activations
# --------------------------------------------------------------------------------------------


def _relu_node(r: _Reader, node: Any, max_value: float | None = None, negative_slope: float = 0.0, threshold: float = 0.0) -> None:
    x = r.value(node.input[0])
    attrs = {"max_value": max_value, "negative_slope": negative_slope, "threshold": threshold}
    grid = x.grid if max_value is None and negative_slope == 0.0 and threshold == 0.0 else None
    r.emit(node, "relu", [x], x.shape, attrs, perm=x.perm, grid=grid)


def _relu(r: _Reader, node: Any) -> None:
    """Relu -> "relu" (unbounded)."""
    _relu_node(r, node)


def _clip(r: _Reader, node: Any) -> None:
    """Clip(0, m) -> "relu" with max_value m (None for no max); another min -> "activation"."""
    attrs = r.attrs(node)
    low = r.const(node, 1)
    high = r.const(node, 2)
    low_value = float(np.asarray(low).ravel()[0]) if low is not None else float(attrs.get("min", -np.inf))
    high_value = float(np.asarray(high).ravel()[0]) if high is not None else float(attrs.get("max", np.inf))
    if low_value == 0.0:
        _relu_node(r, node, max_value=None if math.isinf(high_value) else high_value)
        return
    x = r.value(node.input[0])
    r.emit(node, "activation", [x], x.shape, {"function": "clip", "min": low_value, "max": high_value}, perm=x.perm)


def _leaky_relu(r: _Reader, node: Any) -> None:
    """LeakyRelu(alpha) -> "relu" with negative_slope alpha."""
    _relu_node(r, node, negative_slope=float(r.attrs(node).get("alpha", 0.01)))


def _thresholded_relu(r: _Reader, node: Any) -> None:
    """ThresholdedRelu(alpha) -> "relu" with threshold alpha (x if x > alpha else 0)."""
    _relu_node(r, node, threshold=float(r.attrs(node).get("alpha", 1.0)))


#: ONNX activations the graph names but the converter does not map.
_ACTIVATION_NAMES = {
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Elu": "elu",
    "Selu": "selu",
    "Celu": "celu",
    "Softplus": "softplus",
    "Softsign": "softsign",
    "HardSigmoid": "hard_sigmoid",
    "HardSwish": "hard_swish",
    "Gelu": "gelu",
    "Mish": "mish",
    "PRelu": "prelu",
}


def _activation(r: _Reader, node: Any) -> None:
    """Sigmoid, Tanh, ... -> "activation" with attrs function (and the ONNX attributes)."""
    x = r.value(node.input[0])
    attrs: dict[str, Any] = {"function": _ACTIVATION_NAMES[node.op_type], **r.attrs(node)}
    params = {}
    if node.op_type == "PRelu":
        params["slope"] = np.asarray(r.const(node, 1), dtype=np.float64)
    r.emit(node, "activation", [x], x.shape, attrs, params, perm=x.perm)


def _softmax(r: _Reader, node: Any) -> None:
    """Softmax over the features of a (N, F) tensor, or over the channels of an image."""
    x = r.value(node.input[0])
    axis = int(r.attrs(node).get("axis", 1 if r.opset < 13 else -1))
    rank = 1 + len(x.shape) if x.shape is not None else None
    if rank == 2 and axis in (1, -1):
        pass
    elif rank == 4 and r.opset >= 13 and axis in (1, -3):
        pass
    elif rank == 4 and r.opset < 13 and axis == 1 and x.shape is not None and x.shape[1:] == (1, 1):
        pass
    else:
        raise _Unsupported(f"softmax over axis {axis} of a rank-{rank} tensor (only over channels is supported)")
    r.emit(node, "softmax", [x], x.shape, perm=x.perm)


# --------------------------------------------------------------------------------------------
# Handlers: pooling and shapes
# --------------------------------------------------------------------------------------------


def _image(r: _Reader, node: Any) -> tuple[_Value, tuple[int, int] | None]:
    x = r.value(node.input[0])
    if x.shape is not None and not x.is_image:
        raise _Unsupported(f"only (N, C, H, W) tensors are supported, not (N, {', '.join(map(str, x.shape))})")
    return x, (x.shape[1], x.shape[2]) if x.shape is not None else None


def _pool_size(attrs: dict[str, Any]) -> tuple[int, int]:
    size = [int(k) for k in attrs["kernel_shape"]]
    if len(size) != 2:
        raise _Unsupported(f"a {len(size)}-D pooling: only 2-D is supported")
    return size[0], size[1]


def _maxpool(r: _Reader, node: Any) -> None:
    """MaxPool -> "maxpool"; ceil_mode=1 becomes extra end padding (padded cells never win)."""
    x, in_hw = _image(r, node)
    attrs = r.attrs(node)
    if len(node.output) > 1 and node.output[1]:
        raise _Unsupported("the Indices output")
    if any(int(d) != 1 for d in attrs.get("dilations", (1, 1))):
        raise _Unsupported("dilated pooling")
    window = _window(attrs, _pool_size(attrs), in_hw, ceil_mode_allowed=True)
    shape = (x.shape[0],) + window.out_hw if x.shape is not None and window.out_hw else None
    graph_attrs = {"pool": window.kernel, "strides": window.strides, "padding": window.padding}
    r.emit(node, "maxpool", [x], shape, graph_attrs, grid=x.grid)


def _avgpool(r: _Reader, node: Any) -> None:
    """AveragePool -> "avgpool" with attrs count_include_pad (bool); ceil_mode=1 becomes extra
    end padding unless padded cells count."""
    x, in_hw = _image(r, node)
    attrs = r.attrs(node)
    if any(int(d) != 1 for d in attrs.get("dilations", (1, 1))):
        raise _Unsupported("dilated pooling")
    # ceil_mode windows past the padding average their input cells only: exact as end padding
    # when padded cells never count
    include_pad = bool(attrs.get("count_include_pad", 0))
    window = _window(attrs, _pool_size(attrs), in_hw, ceil_mode_allowed=not include_pad)
    shape = (x.shape[0],) + window.out_hw if x.shape is not None and window.out_hw else None
    graph_attrs = {
        "pool": window.kernel,
        "strides": window.strides,
        "padding": window.padding,
        "count_include_pad": include_pad,
    }
    r.emit(node, "avgpool", [x], shape, graph_attrs)


def _global_pool(r: _Reader, node: Any) -> None:
    """GlobalAveragePool / GlobalMaxPool -> "global_avgpool" / "global_maxpool" (keeps 1 x 1)."""
    x, _ = _image(r, node)
    op = "global_avgpool" if node.op_type == "GlobalAveragePool" else "global_maxpool"
    r.emit(node, op, [x], (x.shape[0], 1, 1) if x.shape is not None else None, grid=x.grid if op == "global_maxpool" else None)


def _reduce(r: _Reader, node: Any) -> None:
    """ReduceMean / ReduceMax over the spatial axes -> a global pooling (then "flatten" when
    keepdims=0)."""
    x, _ = _image(r, node)
    attrs = r.attrs(node)
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = r.const(node, 1)
    if axes is None or sorted(int(a) % 4 for a in np.asarray(axes).ravel()) != [2, 3]:
        raise _Unsupported(f"a reduction over axes {None if axes is None else list(np.asarray(axes).ravel())}: only over H and W")
    op = "global_avgpool" if node.op_type == "ReduceMean" else "global_maxpool"
    channels = x.shape[0] if x.shape is not None else None
    pooled = (channels, 1, 1) if channels is not None else None
    if attrs.get("keepdims", 1):
        r.emit_chain(node, [(op, pooled, {})], x)
    else:
        r.emit_chain(node, [(op, pooled, {}), ("flatten", (channels,) if channels else None, {})], x)


def _flatten(r: _Reader, node: Any) -> None:
    """Flatten(axis=1) -> "flatten"; features of an image follow in (C, H, W) order, which the
    tensor's permutation records."""
    x = r.value(node.input[0])
    axis = int(r.attrs(node).get("axis", 1))
    if axis != 1 and not (x.shape is not None and axis == -len(x.shape)):
        raise _Unsupported(f"flatten at axis {axis}: only axis 1 keeps the batch")
    _emit_flatten(r, node, x)


def _emit_flatten(r: _Reader, node: Any, x: _Value) -> None:
    if x.shape is None:
        raise _Unsupported("flatten of a tensor of unknown shape")
    if x.is_image:
        c, h, w = x.shape
        perm = None if h * w == 1 or c == 1 else chw_to_hwc_order(c, h, w)
        r.emit(node, "flatten", [x], (c * h * w,), perm=perm, grid=x.grid)
    elif x.is_flat:
        r.emit(node, "flatten", [x], x.shape, perm=x.perm, grid=x.grid)
    else:
        raise _Unsupported(f"flatten of a {x.shape} tensor")


def _reshape(r: _Reader, node: Any) -> None:
    """Reshape to (N, -1) -> "flatten"; features back to the (C, H, W) image they came from ->
    "reshape"; a no-op reshape -> "identity"."""
    x = r.value(node.input[0])
    target = r.const(node, 1)
    if target is None or x.shape is None:
        raise _Unsupported("a reshape of unknown shapes")
    sample = _reshape_target(x.shape, [int(t) for t in np.asarray(target).ravel()], r.batch, bool(r.attrs(node).get("allowzero", 0)))
    if sample is None:
        raise _Unsupported(f"a reshape of (N, {', '.join(map(str, x.shape))}) to {list(np.asarray(target).ravel())}")
    if sample == x.shape:
        r.emit(node, "identity", [x], x.shape, perm=x.perm, grid=x.grid)
    elif len(sample) == 1:
        _emit_flatten(r, node, x)
    elif len(sample) == 3 and x.is_flat:
        c, h, w = sample
        expected = None if h * w == 1 or c == 1 else chw_to_hwc_order(c, h, w)
        same_order = (x.perm is None and expected is None) or (
            x.perm is not None and expected is not None and np.array_equal(x.perm, expected)
        )
        if not same_order:
            raise _Unsupported(
                f"features reshaped to a channels-first ({c}, {h}, {w}) image would need a reorder"
            )
        r.emit(node, "reshape", [x], sample, {"shape": (h, w, c)}, grid=x.grid)
    else:
        raise _Unsupported(f"a reshape of (N, {', '.join(map(str, x.shape))}) to (N, {', '.join(map(str, sample))})")


def _reshape_target(shape: tuple[int, ...], target: list[int], batch: int, allowzero: bool) -> tuple[int, ...] | None:
    """The per-sample shape a Reshape gives, when it keeps the batch as its first dimension."""
    if not target or target[0] not in (0, -1, 1, batch) or (allowzero and 0 in target):
        return None
    full = (batch,) + shape
    dims = [full[i] if t == 0 and i < len(full) else t for i, t in enumerate(target)][1:]
    total = int(np.prod(shape))
    if dims.count(-1) > 1 or (target[0] == -1 and -1 in dims):
        return None
    if -1 in dims:
        known = int(np.prod([d for d in dims if d != -1]))
        if known == 0 or total % known:
            return None
        dims[dims.index(-1)] = total // known
    if int(np.prod(dims)) != total:
        return None
    return tuple(dims)


def _squeeze(r: _Reader, node: Any) -> None:
    """Squeeze of the 1 x 1 spatial axes of an image (after a global pooling) -> "flatten"."""
    x, _ = _image(r, node)
    axes = r.attrs(node).get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = r.const(node, 1)
    if x.shape is None or x.shape[1:] != (1, 1) or (axes is not None and sorted(int(a) % 4 for a in np.asarray(axes).ravel()) != [2, 3]):
        raise _Unsupported("only a squeeze of 1 x 1 spatial axes is supported")
    _emit_flatten(r, node, x)


def _identity(r: _Reader, node: Any) -> None:
    """Identity, Dropout (inference) and float-to-float Cast -> "identity"."""
    x = r.value(node.input[0])
    if node.op_type == "Cast":
        target = r.onnx.helper.tensor_dtype_to_np_dtype(int(r.attrs(node)["to"]))
        if not _is_float(target):
            raise _Unsupported(f"a cast to {np.dtype(target).name}")
    if node.op_type == "Dropout":
        training = r.const(node, 2)
        if training is not None and bool(np.asarray(training).ravel()[0]):
            raise _Unsupported("training-mode dropout")
    r.emit(node, "identity", [x], x.shape, perm=x.perm, grid=x.grid)


def _concat(r: _Reader, node: Any) -> None:
    """Concat along channels (images) or features -> "concat"."""
    inputs = [r.value(name) for name in node.input if name]
    axis = int(r.attrs(node)["axis"])
    shapes = [v.shape for v in inputs]
    if any(shape is None for shape in shapes):
        raise _Unsupported("a concatenation of tensors of unknown shape")
    known = [shape for shape in shapes if shape is not None]
    ranks = {len(shape) for shape in known}
    grids = {v.grid for v in inputs}
    grid = grids.pop() if len(grids) == 1 else None
    if ranks == {3} and axis in (1, -3) and len({shape[1:] for shape in known}) == 1:
        r.emit(node, "concat", inputs, (sum(shape[0] for shape in known),) + known[0][1:], grid=grid)
    elif ranks == {1} and axis in (1, -1):
        sizes = [shape[0] for shape in known]
        perm = None
        if any(v.perm is not None for v in inputs):
            offsets = np.cumsum([0] + sizes[:-1])
            perm = np.concatenate(
                [(v.perm if v.perm is not None else np.arange(n)) + o for v, n, o in zip(inputs, sizes, offsets)]
            )
        r.emit(node, "concat", inputs, (sum(sizes),), perm=perm, grid=grid)
    else:
        raise _Unsupported(f"a concatenation along axis {axis}: only along channels")


# --------------------------------------------------------------------------------------------
# Handlers: element-wise arithmetic
# --------------------------------------------------------------------------------------------


def _add(r: _Reader, node: Any) -> None:
    """Add of two tensors -> "add"; of a constant -> the bias of the weighted node before it
    (MatMul + Add -> one dense) or else a "rescale"."""
    a, b = node.input[0], node.input[1]
    if r.is_const(a) or r.is_const(b):
        x, constant = (r.value(b), r.constants[a]) if r.is_const(a) else (r.value(a), r.constants[b])
        if _fold_bias(r, node, x, constant):
            return
        _rescale(r, node, x, scale=1.0, offset=constant)
        return
    _sum(r, node)


def _sum(r: _Reader, node: Any) -> None:
    """Add / Sum of tensors of one shape -> "add" (a residual connection)."""
    inputs = [r.value(name) for name in node.input if name]
    shapes = {v.shape for v in inputs}
    if len(shapes) != 1:
        raise _Unsupported(f"a broadcasting sum of shapes {sorted(map(str, shapes))}")
    perms = [v.perm for v in inputs]
    first = perms[0]
    if any(p is not None for p in perms) and not (first is not None and all(p is not None and np.array_equal(p, first) for p in perms)):
        raise _Unsupported("a sum of features in different orders")
    r.emit(node, "add", inputs, inputs[0].shape, perm=perms[0])


def _fold_bias(r: _Reader, node: Any, x: _Value, constant: np.ndarray) -> bool:
    """Adds ``constant`` to the bias of the weighted node computing ``x`` when this Add is its
    only reader; returns whether it did."""
    producer = r.node_of(x)
    if producer.op not in ("dense", "conv", "depthwise") or not r.sole_reader(x):
        return False
    vector = r.channel_vector(constant, x)
    if vector is None:
        return False
    channels = x.shape[0] if x.shape is not None else None
    if channels is None:
        return False
    bias = producer.params.get("bias", np.zeros(channels))
    producer.params["bias"] = np.asarray(bias, dtype=np.float64) + np.broadcast_to(vector, (channels,))
    producer.source = f"{producer.source} + {node.op_type} '{_node_label(node)}'"
    r.alias(node, x)
    return True


def _rescale(r: _Reader, node: Any, x: _Value, scale: Any, offset: Any) -> None:
    """``y = x * scale + offset`` with constant scale / offset -> "rescale", merged into the
    rescale computing ``x`` when this node is its only reader."""
    s = r.channel_vector(np.asarray(scale), x)
    o = r.channel_vector(np.asarray(offset), x)
    if s is None or o is None:
        raise _Unsupported("a constant that is neither one value nor one per channel")
    producer = r.node_of(x)
    if producer.op == "rescale" and r.sole_reader(x):
        old_scale = np.asarray(producer.attrs["scale"], dtype=np.float64)
        old_offset = np.asarray(producer.attrs["offset"], dtype=np.float64)
        producer.attrs["scale"] = _scalar_or_array(old_scale * s)
        producer.attrs["offset"] = _scalar_or_array(old_offset * s + o)
        producer.source = f"{producer.source} + {node.op_type} '{_node_label(node)}'"
        r.alias(node, x)
        return
    r.emit(node, "rescale", [x], x.shape, {"scale": _scalar_or_array(s), "offset": _scalar_or_array(o)}, perm=x.perm)


def _mul(r: _Reader, node: Any) -> None:
    """Mul by a constant -> "rescale"."""
    a, b = node.input[0], node.input[1]
    if not (r.is_const(a) or r.is_const(b)):
        raise _Unsupported("a product of two tensors")
    x, constant = (r.value(b), r.constants[a]) if r.is_const(a) else (r.value(a), r.constants[b])
    _rescale(r, node, x, scale=constant, offset=0.0)


def _sub(r: _Reader, node: Any) -> None:
    """x - c -> "rescale" (offset -c); c - x -> "rescale" (scale -1, offset c)."""
    a, b = node.input[0], node.input[1]
    if r.is_const(b) and not r.is_const(a):
        _rescale(r, node, r.value(a), scale=1.0, offset=-np.asarray(r.constants[b], dtype=np.float64))
    elif r.is_const(a) and not r.is_const(b):
        _rescale(r, node, r.value(b), scale=-1.0, offset=r.constants[a])
    else:
        raise _Unsupported("a difference of two tensors")


def _div(r: _Reader, node: Any) -> None:
    """x / c -> "rescale" (scale 1 / c)."""
    a, b = node.input[0], node.input[1]
    if not r.is_const(b) or r.is_const(a):
        raise _Unsupported("only a division by a constant is supported")
    divisor = np.asarray(r.constants[b], dtype=np.float64)
    if np.any(divisor == 0):
        raise _Unsupported("a division by zero")
    _rescale(r, node, r.value(a), scale=1.0 / divisor, offset=0.0)


# --------------------------------------------------------------------------------------------
# Handlers: quantization
# --------------------------------------------------------------------------------------------


def _quantized_dtype(r: _Reader, node: Any, zero_point: np.ndarray | None) -> np.dtype:
    """The integer dtype a QuantizeLinear outputs: its zero point's, else ``output_dtype``,
    else uint8."""
    if zero_point is not None:
        return np.dtype(zero_point.dtype)
    output_dtype = int(r.attrs(node).get("output_dtype", 0))
    return np.dtype(r.onnx.helper.tensor_dtype_to_np_dtype(output_dtype)) if output_dtype else np.dtype(np.uint8)


def _activation_format(r: _Reader, node: Any, zero_point: np.ndarray | None) -> tuple[int, bool]:
    """``(bits, signed)`` of a QuantizeLinear's output."""
    dtype = _quantized_dtype(r, node, zero_point)
    fmt = _integer_format(dtype)
    if fmt is None:
        raise _Unsupported(f"quantization to {dtype.name}")
    return fmt


def _grid(scale: np.ndarray, zero_point: np.ndarray | None, bits: int, signed: bool) -> _Grid:
    zero = np.zeros(1, np.int64) if zero_point is None else np.rint(np.asarray(zero_point, dtype=np.float64)).astype(np.int64)
    return _Grid(
        tuple(float(v) for v in np.asarray(scale, dtype=np.float64).ravel()),
        tuple(int(v) for v in zero.ravel()),
        bits,
        signed,
    )


def _quantize_linear(r: _Reader, node: Any) -> None:
    """QuantizeLinear of an activation: remembered until the DequantizeLinear that closes it."""
    x = r.value(node.input[0])
    scale = r.const(node, 1)
    zero_point = r.const(node, 2)
    bits, signed = _activation_format(r, node, zero_point)
    grid = _grid(np.asarray(scale), None if zero_point is None else _as_int64(zero_point), bits, signed)
    r.alias(node, _Value(x.node, x.shape, x.perm, x.grid, pending=(grid, node)))


def _dequantize_linear(r: _Reader, node: Any) -> None:
    """DequantizeLinear closing a QuantizeLinear: both disappear into the graph (see
    :func:`_quantized_activation`). On an integer graph input: ``input_quant``."""
    x = r.value(node.input[0])
    scale = r.const(node, 1)
    zero_point = r.const(node, 2)
    if x.pending is None:
        producer = r.node_of(x)
        if producer.op != "input":
            raise _Unsupported("a dequantization of an integer tensor computed by the graph")
        fmt = _integer_format(zero_point.dtype) if zero_point is not None else (8, False)
        grid = _grid(np.asarray(scale), None if zero_point is None else _as_int64(zero_point), *(fmt or (8, False)))
        _quantized_activation(r, node, node, _Value(x.node, x.shape, x.perm), grid)
        return
    grid, quantize_node = x.pending
    closing = _grid(np.asarray(scale), None if zero_point is None else _as_int64(zero_point), grid.bits, grid.signed)
    if closing != grid:
        raise _Unsupported("a DequantizeLinear whose scale or zero point differ from its QuantizeLinear's")
    _quantized_activation(r, quantize_node, node, _Value(x.node, x.shape, x.perm, x.grid), grid)


def _int_or_array(x: np.ndarray | None) -> Any:
    if x is None:
        return 0
    x = _as_int64(x)
    return int(x.ravel()[0]) if x.size == 1 else x


def _quantized_activation(r: _Reader, quantizer: Any, closing: Any, x: _Value, grid: _Grid) -> None:
    """Translates the fake quantization of activation ``x`` onto ``grid`` (a QDQ pair from
    ``quantizer`` to ``closing``, or one QONNX Quant) and binds the output of ``closing``.

    - on the graph input: ``attrs["input_quant"] = (scale, zero_point)``;
    - on values already on that grid (a max pooling of them, ...): nothing;
    - after a ReLU read by nothing else: its ``activation_quant`` (a signed grid keeps
      ``bits - 1`` bits of non-negative levels);
    - else, on a grid from 0 (unsigned, zero point 0): a new ReLU with that ``activation_quant``
      (the quantization clips at 0 -- onnxruntime's quantizer removes the ReLUs it implies);
    - else ``attrs["output_quant"] = (scale, zero_point, bits)`` on the node before, for
      information: the reader drops that rounding.
    """
    producer = r.node_of(x)
    on_grid = _Value(x.node, x.shape, x.perm, grid)
    if producer.op == "input":
        producer.attrs["input_quant"] = (grid.scale_value(), grid.zero_point_value())
        r.alias(closing, on_grid)
        return
    if x.grid == grid:
        r.alias(closing, on_grid)
        return
    if producer.op == "relu" and producer.activation_quant is None and r.sole_reader(x):
        if not grid.per_tensor:
            r.problem(producer, "per-channel activation scales")
        elif any(grid.zero_point):
            r.problem(producer, f"activation zero point {grid.zero_point_value()} (must be 0)")
        else:
            producer.activation_quant = ActivationQuant(grid.bits - 1 if grid.signed else grid.bits, grid.step)
        r.alias(closing, on_grid)
        return
    if grid.starts_at_zero and grid.per_tensor:
        attrs = {"max_value": None, "negative_slope": 0.0, "threshold": 0.0}
        relu = r.emit(quantizer, "relu", [x], x.shape, attrs, perm=x.perm, output=closing.output[0], grid=grid)
        relu.activation_quant = ActivationQuant(grid.bits, grid.step)
        return
    producer.attrs.setdefault("output_quant", (grid.scale_value(), grid.zero_point_value(), grid.bits))
    r.alias(closing, on_grid)


def _qonnx_parameters(node: Any, args: list[np.ndarray | None], attrs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, float, bool, bool]:
    scale, zero_point, bitwidth = (np.asarray(a, dtype=np.float64) if a is not None else None for a in args[1:4])
    if scale is None or zero_point is None or bitwidth is None:
        raise _Unsupported("Quant needs constant scale, zeropt and bitwidth")
    return scale, zero_point, float(bitwidth.ravel()[0]), bool(attrs.get("signed", 1)), bool(attrs.get("narrow", 0))


def _qonnx_quant(r: _Reader, node: Any) -> None:
    """A QONNX Quant of an activation disappears like a QDQ pair (after a ReLU: its
    activation_quant, with bits = bitwidth and step = scale)."""
    x = r.value(node.input[0])
    args = [None] + [r.const(node, i) for i in (1, 2, 3)]
    scale, zero_point, bitwidth, signed, _ = _qonnx_parameters(node, args, r.attrs(node))
    if bitwidth != int(bitwidth):
        raise _Unsupported(f"a non-integer bit width {bitwidth}")
    _quantized_activation(r, node, node, x, _grid(scale, zero_point, int(bitwidth), signed))


def _bipolar_quant(r: _Reader, node: Any) -> None:
    """BipolarQuant (binary +-1) of an activation -> "unsupported"."""
    raise _Unsupported("binary (bipolar) quantization")


# --------------------------------------------------------------------------------------------
# Constant folding
# --------------------------------------------------------------------------------------------


def _fold_constant(r: _Reader, node: Any, args: list[Any]) -> np.ndarray:
    attrs = r.attrs(node)
    if "value" in attrs:
        return r.onnx.numpy_helper.to_array(attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64), ("value_ints", np.int64)):
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    raise ValueError(f"{_node_label(node)}: unsupported Constant attributes {sorted(attrs)}")


def _fold_cast(r: _Reader, node: Any, args: list[Any]) -> np.ndarray:
    return np.asarray(args[0]).astype(r.onnx.helper.tensor_dtype_to_np_dtype(int(r.attrs(node)["to"])))


def _axes(r: _Reader, node: Any, args: list[Any]) -> list[int]:
    axes = r.attrs(node).get("axes")
    if axes is None and len(args) > 1 and args[1] is not None:
        axes = args[1]
    return [int(a) for a in np.asarray(axes if axes is not None else []).ravel()]


def _fold_unsqueeze(r: _Reader, node: Any, args: list[Any]) -> np.ndarray:
    result = np.asarray(args[0])
    rank = result.ndim + len(_axes(r, node, args))
    for axis in sorted(a % rank for a in _axes(r, node, args)):
        result = np.expand_dims(result, axis)
    return result


def _fold_squeeze(r: _Reader, node: Any, args: list[Any]) -> np.ndarray:
    axes = _axes(r, node, args)
    x = np.asarray(args[0])
    return np.squeeze(x, axis=tuple(a % x.ndim for a in axes)) if axes else np.squeeze(x)


def _fold_reshape(r: _Reader, node: Any, args: list[Any]) -> np.ndarray:
    x = np.asarray(args[0])
    target = [int(t) for t in np.asarray(args[1]).ravel()]
    if not r.attrs(node).get("allowzero", 0):
        target = [x.shape[i] if t == 0 else t for i, t in enumerate(target)]
    return x.reshape(target)


def _fold_quantize(r: _Reader, node: Any, args: list[Any]) -> np.ndarray:
    """QuantizeLinear of a constant: round half to even, saturate, keep the integer dtype."""
    x, scale, zero_point = args[0], args[1], args[2] if len(args) > 2 else None
    axis = int(r.attrs(node).get("axis", 1))
    dtype = _quantized_dtype(r, node, zero_point)
    bits, signed = _activation_format(r, node, zero_point)
    x = np.asarray(x, dtype=np.float64)
    s = _broadcast_along(np.asarray(scale, dtype=np.float64), axis, x.ndim)
    zp = _broadcast_along(_as_int64(zero_point) if zero_point is not None else np.zeros(()), axis, x.ndim)
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    return np.clip(np.rint(x / s) + zp, low, high).astype(np.int64).astype(dtype)


def _fold_dequantize(r: _Reader, node: Any, args: list[Any]) -> np.ndarray:
    """DequantizeLinear of integer weights: the float weights, and their integers remembered."""
    q, scale, zero_point = args[0], args[1], args[2] if len(args) > 2 else None
    attrs = r.attrs(node)
    ints = _as_int64(q)
    rank = ints.ndim
    axis = int(attrs.get("axis", 1)) % max(rank, 1)
    scale = np.asarray(scale, dtype=np.float64)
    zero = np.zeros((), np.int64) if zero_point is None else _as_int64(zero_point)
    problem = None
    if int(attrs.get("block_size", 0)) and scale.ndim == rank and rank:
        block = int(attrs["block_size"])
        crop = tuple(slice(0, n) for n in ints.shape)
        s = np.repeat(scale, block, axis=axis)[crop]
        zero = np.repeat(zero, block, axis=axis)[crop] if zero.ndim == rank else zero
        problem = "blocked quantization (several scales per output channel)"
    else:
        s = _broadcast_along(scale, axis, rank)
        zero = _broadcast_along(zero, axis, rank)
    centered = ints - zero
    fmt = _integer_format(np.asarray(q).dtype)
    if fmt is None:
        bits, problem = 0, problem or f"{np.asarray(q).dtype.name} weights"
    else:
        bits, too_wide = _smallest_weight_bits(centered, fmt[0])
        if np.any(zero != 0):
            problem = problem or f"weight zero point {_int_or_array(zero_point)} (must be 0)"
        problem = problem or too_wide
    r.quantized[node.output[0]] = _QuantizedConstant(centered, s, bits, problem)
    return centered * s


def _fold_qonnx_quant(r: _Reader, node: Any, args: list[Any]) -> np.ndarray:
    """QONNX Quant of constant weights: the fake-quantized floats, and their integers remembered."""
    attrs = r.attrs(node)
    scale, zero_point, bitwidth, signed, narrow = _qonnx_parameters(node, args, attrs)
    x = np.asarray(args[0], dtype=np.float64)
    b = int(bitwidth)
    if signed:
        low, high = (-(2 ** (b - 1)) + (1 if narrow else 0), 2 ** (b - 1) - 1)
    else:
        low, high = 0, 2**b - 1 - (1 if narrow else 0)
    rounding = str(attrs.get("rounding_mode", "ROUND")).upper()
    round_fn = {"ROUND": np.rint, "HALF_EVEN": np.rint, "CEIL": np.ceil, "FLOOR": np.floor, "ROUND_TO_ZERO": np.trunc}.get(rounding)
    problem = None
    if round_fn is None:
        round_fn = np.rint
        problem = f"rounding mode {rounding}"
    q = np.clip(round_fn(x / scale + zero_point), low, high)
    centered = q - zero_point
    if bitwidth != b:
        problem = problem or f"a non-integer bit width {bitwidth}"
    elif np.any(zero_point != 0):
        problem = problem or f"weight zero point {_scalar_or_array(zero_point)} (must be 0)"
    elif not signed:
        problem = problem or "unsigned weights"
    scale_full = scale.reshape((1,) * (x.ndim - scale.ndim) + scale.shape) if scale.ndim <= x.ndim else scale
    r.quantized[node.output[0]] = _QuantizedConstant(np.rint(centered).astype(np.int64), scale_full, b, problem)
    return centered * scale


def _fold_bipolar(r: _Reader, node: Any, args: list[Any]) -> np.ndarray:
    """BipolarQuant of constant weights: sign(w) * scale, marked as a problem."""
    x = np.asarray(args[0], dtype=np.float64)
    scale = np.asarray(args[1], dtype=np.float64)
    ints = np.where(x >= 0, 1, -1).astype(np.int64)
    r.quantized[node.output[0]] = _QuantizedConstant(ints, scale.reshape((1,) * (x.ndim - scale.ndim) + scale.shape), 1, "binary (bipolar) weights")
    return ints * scale


def _numpy_folder(function: Callable[..., np.ndarray]) -> Callable[[_Reader, Any, list[Any]], np.ndarray]:
    def fold(r: _Reader, node: Any, args: list[Any]) -> np.ndarray:
        return np.asarray(function(*[a for a in args if a is not None]))

    return fold


def _fold_div(r: _Reader, node: Any, args: list[Any]) -> np.ndarray:
    a, b = np.asarray(args[0]), np.asarray(args[1])
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        return np.trunc(a / b).astype(np.result_type(a, b))
    return a / b


#: Ops evaluated when all their inputs are constants (weights through DequantizeLinear, shape
#: computations, ...).
_CONSTANT_FOLDERS: dict[str, Callable[[_Reader, Any, list[Any]], np.ndarray]] = {
    "Constant": _fold_constant,
    "Identity": _numpy_folder(lambda x: x),
    "Cast": _fold_cast,
    "Reshape": _fold_reshape,
    "Unsqueeze": _fold_unsqueeze,
    "Squeeze": _fold_squeeze,
    "Transpose": lambda r, n, a: np.transpose(a[0], r.attrs(n).get("perm")),
    "Concat": lambda r, n, a: np.concatenate([np.atleast_1d(x) for x in a if x is not None], axis=int(r.attrs(n)["axis"])),
    "Gather": lambda r, n, a: np.take(a[0], a[1], axis=int(r.attrs(n).get("axis", 0))),
    "Add": _numpy_folder(np.add),
    "Sub": _numpy_folder(np.subtract),
    "Mul": _numpy_folder(np.multiply),
    "Div": _fold_div,
    "Neg": _numpy_folder(np.negative),
    "Sqrt": _numpy_folder(np.sqrt),
    "Reciprocal": _numpy_folder(np.reciprocal),
    "QuantizeLinear": _fold_quantize,
    "DequantizeLinear": _fold_dequantize,
    "Quant": _fold_qonnx_quant,
    "BipolarQuant": _fold_bipolar,
}


#: The ONNX ops (default domain) the reader translates, each to its handler; any other op
#: becomes an ``"unsupported"`` node with attrs source_op.
ONNX_OP_HANDLERS: dict[str, Handler] = {
    "Conv": _conv,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "BatchNormalization": _batchnorm,
    "Relu": _relu,
    "Clip": _clip,
    "LeakyRelu": _leaky_relu,
    "ThresholdedRelu": _thresholded_relu,
    **{op: _activation for op in _ACTIVATION_NAMES},
    "Softmax": _softmax,
    "MaxPool": _maxpool,
    "AveragePool": _avgpool,
    "GlobalAveragePool": _global_pool,
    "GlobalMaxPool": _global_pool,
    "ReduceMean": _reduce,
    "ReduceMax": _reduce,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Squeeze": _squeeze,
    "Identity": _identity,
    "Dropout": _identity,
    "Cast": _identity,
    "Add": _add,
    "Sum": _sum,
    "Sub": _sub,
    "Mul": _mul,
    "Div": _div,
    "Concat": _concat,
    "QuantizeLinear": _quantize_linear,
    "DequantizeLinear": _dequantize_linear,
}

#: The QONNX ops (domains :data:`QONNX_DOMAINS`) the reader translates.
QONNX_OP_HANDLERS: dict[str, Handler] = {
    "Quant": _qonnx_quant,
    "BipolarQuant": _bipolar_quant,
}
