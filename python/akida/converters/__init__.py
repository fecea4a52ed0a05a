"""Converters from everyday data to the spikes an akida model takes.

Every converter returns ``uint8`` arrays shaped ``(N, H, W, C)`` (or :class:`akida.Events`),
ready for a model whose first layer is ``InputData(W, H, C, input_bits=...)`` or
``InputConvolutional``. The rules are exact and documented in ``docs/converters.md``.

- Event cameras: :func:`events_to_packets` (with :func:`packet_shape`), :func:`read_nmnist`,
  :func:`write_nmnist`, :func:`synthetic_saccade_events`.
- Pixels: :func:`pixels_to_spikes`, :func:`quantize`, :func:`edge_kernels`,
  :func:`edge_front_end`.
- Tabular data: :class:`QuantileOneHotEncoder`.

Event streams are numpy structured arrays with fields ``x``, ``y``, ``t``, ``p``: the convention
of the ``tonic`` library, so its datasets plug in directly.
"""

from ..errors import NotFittedError
from .events import (
    EVENT_DTYPE,
    events_to_packets,
    packet_shape,
    read_nmnist,
    synthetic_saccade_events,
    write_nmnist,
)
from .pixels import _full_step_response  # noqa: F401  (the edge front end's default threshold, for tests)
from .pixels import edge_front_end, edge_kernels, pixels_to_spikes, quantize
from .tabular import QuantileOneHotEncoder

__all__ = [
    "EVENT_DTYPE",
    "NotFittedError",
    "QuantileOneHotEncoder",
    "edge_front_end",
    "edge_kernels",
    "events_to_packets",
    "packet_shape",
    "pixels_to_spikes",
    "quantize",
    "read_nmnist",
    "synthetic_saccade_events",
    "write_nmnist",
]
