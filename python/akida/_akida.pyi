"""Type stubs of the compiled engine module (checked with mypy.stubtest)."""

import os
from typing import Any, Callable, final

from typing_extensions import disjoint_base

import numpy as np
import numpy.typing as npt

__all__ = [
    "AKD1000",
    "BackendType",
    "Concat",
    "ConvolutionMode",
    "Convolutional",
    "Device",
    "Events",
    "FullyConnected",
    "InputConvolutional",
    "InputData",
    "Layer",
    "LayerParameters",
    "LayerMapping",
    "LayerStatistics",
    "LearningType",
    "MapMode",
    "MappedNP",
    "Mesh",
    "Model",
    "NP",
    "NpType",
    "Pass",
    "PoolingType",
    "SeparableConvolutional",
    "Sequence",
    "__version__",
    "devices",
    "engine_info",
    "packetize",
]

__version__: str

def engine_info() -> dict[str, Any]: ...
def packetize(
    x: npt.NDArray[np.int64],
    y: npt.NDArray[np.int64],
    t: npt.NDArray[np.int64],
    p: npt.NDArray[np.int64],
    width: int,
    height: int,
    polarity_channels: int,
    packet_size: int | None,
    time_window: int | None,
    downsample: int,
    input_bits: int,
) -> npt.NDArray[np.uint8]: ...

@final
class ConvolutionMode:
    Valid: ConvolutionMode
    Same: ConvolutionMode
    Full: ConvolutionMode
    def __int__(self) -> int: ...

@final
class PoolingType:
    NoPooling: PoolingType
    Max: PoolingType
    Average: PoolingType
    def __int__(self) -> int: ...

@final
class LearningType:
    NoLearning: LearningType
    AkidaUnsupervised: LearningType
    def __int__(self) -> int: ...

@final
class LayerParameters:
    def __getattr__(self, name: str) -> Any: ...
    def to_dict(self) -> dict[str, Any]: ...

@disjoint_base
class Layer:
    @property
    def name(self) -> str: ...
    @property
    def layer_type(self) -> str: ...
    @property
    def parameters(self) -> LayerParameters: ...
    @property
    def input_shape(self) -> tuple[int, int, int]: ...
    @property
    def output_shape(self) -> tuple[int, int, int]: ...
    @property
    def inbound_layers(self) -> list[Layer]: ...
    @property
    def mapping(self) -> LayerMapping | None: ...
    @property
    def learning_type(self) -> LearningType: ...
    @property
    def learning(self) -> LayerParameters | None: ...
    def get_plasticity(self) -> npt.NDArray[np.float32] | None: ...
    def get_learning_histogram(self) -> npt.NDArray[np.int64]: ...
    def get_variable_names(self) -> list[str]: ...
    def get_variable(self, name: str) -> npt.NDArray[Any]: ...
    def set_variable(self, name: str, value: npt.ArrayLike) -> None: ...

@final
class InputData(Layer):
    def __new__(
        cls,
        input_width: int | None = None,
        input_height: int | None = None,
        input_channels: int | None = None,
        input_bits: int = 4,
        name: str = "",
        input_shape: tuple[int, int, int] | None = None,
    ) -> InputData: ...

@final
class InputConvolutional(Layer):
    def __new__(
        cls,
        input_width: int,
        input_height: int,
        input_channels: int,
        kernel_width: int,
        kernel_height: int,
        num_neurons: int,
        name: str = "",
        convolution_mode: ConvolutionMode = ...,
        stride_x: int = 1,
        stride_y: int = 1,
        weights_bits: int = 1,
        pooling_width: int = -1,
        pooling_height: int = -1,
        pooling_type: PoolingType = ...,
        pooling_stride_x: int = -1,
        pooling_stride_y: int = -1,
        activations_enabled: bool = True,
        threshold_fire: int = 0,
        threshold_fire_step: float = 1.0,
        threshold_fire_bits: int = 1,
        padding_value: int = 0,
    ) -> InputConvolutional: ...

@final
class FullyConnected(Layer):
    def __new__(
        cls,
        num_neurons: int,
        name: str = "",
        weights_bits: int = 1,
        activations_enabled: bool = True,
        threshold_fire: int = 0,
        threshold_fire_step: float = 1.0,
        threshold_fire_bits: int = 1,
    ) -> FullyConnected: ...

@final
class Convolutional(Layer):
    def __new__(
        cls,
        kernel_width: int,
        kernel_height: int,
        num_neurons: int,
        name: str = "",
        convolution_mode: ConvolutionMode = ...,
        stride_x: int = 1,
        stride_y: int = 1,
        weights_bits: int = 1,
        pooling_width: int = -1,
        pooling_height: int = -1,
        pooling_type: PoolingType = ...,
        pooling_stride_x: int = -1,
        pooling_stride_y: int = -1,
        activations_enabled: bool = True,
        threshold_fire: int = 0,
        threshold_fire_step: float = 1.0,
        threshold_fire_bits: int = 1,
    ) -> Convolutional: ...

@final
class SeparableConvolutional(Layer):
    def __new__(
        cls,
        kernel_width: int,
        kernel_height: int,
        num_neurons: int,
        name: str = "",
        convolution_mode: ConvolutionMode = ...,
        stride_x: int = 1,
        stride_y: int = 1,
        weights_bits: int = 2,
        pooling_width: int = -1,
        pooling_height: int = -1,
        pooling_type: PoolingType = ...,
        pooling_stride_x: int = -1,
        pooling_stride_y: int = -1,
        activations_enabled: bool = True,
        threshold_fire: int = 0,
        threshold_fire_step: float = 1.0,
        threshold_fire_bits: int = 1,
    ) -> SeparableConvolutional: ...

@final
class Concat(Layer):
    def __new__(
        cls,
        name: str = "",
        activations_enabled: bool = True,
        threshold_fire: int = 0,
        threshold_fire_step: float = 1.0,
        threshold_fire_bits: int = 1,
    ) -> Concat: ...

@final
class Events:
    def __new__(
        cls,
        shape: tuple[int, int, int],
        sample: npt.ArrayLike,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        channel: npt.ArrayLike,
        value: npt.ArrayLike,
        num_samples: int | None = None,
    ) -> Events: ...
    @staticmethod
    def from_dense(array: npt.NDArray[np.uint8]) -> Events: ...
    def to_dense(self) -> npt.NDArray[np.uint8]: ...
    @property
    def shape(self) -> tuple[int, int, int]: ...
    @property
    def num_samples(self) -> int: ...
    def __len__(self) -> int: ...
    @property
    def sample(self) -> npt.NDArray[np.int64]: ...
    @property
    def x(self) -> npt.NDArray[np.int64]: ...
    @property
    def y(self) -> npt.NDArray[np.int64]: ...
    @property
    def channel(self) -> npt.NDArray[np.int64]: ...
    @property
    def value(self) -> npt.NDArray[np.uint8]: ...

@final
class LayerStatistics:
    @property
    def computed(self) -> bool: ...
    @property
    def samples(self) -> int: ...
    @property
    def input_sparsity(self) -> float | None: ...
    @property
    def output_sparsity(self) -> float | None: ...
    @property
    def synaptic_operations(self) -> int: ...
    @property
    def kernels(self) -> dict[str, int]: ...

@final
class Model:
    def __new__(
        cls,
        filename: str | bytes | os.PathLike[str] | os.PathLike[bytes] | list[Layer] | tuple[Layer, ...] | None = None,
        serialized_buffer: bytes | bytearray | memoryview | None = None,
        layers: list[Layer] | None = None,
        *,
        max_size: int | None = None,
    ) -> Model: ...
    def save(self, path: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> None: ...
    def to_buffer(self) -> bytes: ...
    def __reduce__(self) -> tuple[type[Model], tuple[None, bytes | None]]: ...
    def add(self, layer: Layer, inbound_layers: list[Layer] | tuple[Layer, ...] | None = None) -> None: ...
    def pop_layer(self) -> None: ...
    def get_layer(self, key: str | int) -> Layer: ...
    @property
    def layers(self) -> list[Layer]: ...
    def get_layer_count(self) -> int: ...
    @property
    def input_shape(self) -> tuple[int, int, int]: ...
    @property
    def output_shape(self) -> tuple[int, int, int]: ...
    def summary(self, print_fn: Callable[[str], object] | None = None, return_string: bool = False) -> str | None: ...
    def map(self, device: Device | None, hw_only: bool = False, mode: MapMode | None = None) -> None: ...
    def unmap(self) -> None: ...
    @property
    def device(self) -> Device | None: ...
    @property
    def sequences(self) -> list[Sequence]: ...
    def map_report(self, device: Device | None = None) -> str: ...
    @property
    def statistics(self) -> dict[str, Any] | None: ...
    def forward(
        self,
        inputs: npt.NDArray[np.uint8] | Events,
        batch_size: int | None = None,
        output_layer: str | int | None = None,
        verbose: bool | int | None = None,
        callback: Callable[[int, int], object] | None = None,
    ) -> npt.NDArray[Any]: ...
    def evaluate(
        self,
        inputs: npt.NDArray[np.uint8] | Events,
        batch_size: int | None = None,
        verbose: bool | int | None = None,
        callback: Callable[[int, int], object] | None = None,
    ) -> npt.NDArray[np.float32]: ...
    def predict(
        self,
        inputs: npt.NDArray[np.uint8] | Events,
        num_classes: int | None = None,
        batch_size: int | None = None,
        verbose: bool | int | None = None,
        callback: Callable[[int, int], object] | None = None,
    ) -> npt.NDArray[np.int32]: ...
    def get_statistics(self) -> dict[str, LayerStatistics]: ...
    def compile(
        self,
        num_weights: int,
        num_classes: int = 1,
        initial_plasticity: float = 1.0,
        learning_competition: float = 0.0,
        min_plasticity: float = 0.1,
        plasticity_decay: float = 0.25,
        seed: int = 0,
    ) -> None: ...
    def fit(
        self,
        inputs: npt.NDArray[np.uint8] | Events,
        input_labels: npt.ArrayLike | None = None,
        batch_size: int | None = None,
        verbose: bool | int | None = None,
        callback: Callable[[int, int], object] | None = None,
    ) -> npt.NDArray[Any]: ...
    def add_classes(self, num_classes: int) -> None: ...
    def __len__(self) -> int: ...

@final
class NpType:
    CNP1: NpType
    CNP2: NpType
    FNP2: NpType
    FNP3: NpType
    def __int__(self) -> int: ...

@final
class MapMode:
    AllNps: MapMode
    Minimal: MapMode
    def __int__(self) -> int: ...

@final
class BackendType:
    Software: BackendType
    Hardware: BackendType
    Hybrid: BackendType
    def __int__(self) -> int: ...

@final
class NP:
    @property
    def ident(self) -> tuple[int, int, int]: ...
    @property
    def types(self) -> list[NpType]: ...

@final
class Mesh:
    @property
    def nps(self) -> list[NP]: ...

@final
class Device:
    @property
    def version(self) -> str: ...
    @property
    def mesh(self) -> Mesh: ...
    def facts(self) -> list[tuple[str, str, str]]: ...

@final
class MappedNP:
    @property
    def ident(self) -> tuple[int, int, int]: ...
    @property
    def type(self) -> NpType: ...
    @property
    def filters(self) -> range: ...
    @property
    def columns(self) -> range: ...
    @property
    def memory_bytes(self) -> int: ...

def AKD1000() -> Device: ...
def devices() -> list[Device]: ...

@final
class LayerMapping:
    @property
    def placement(self) -> str: ...
    @property
    def nps(self) -> list[MappedNP]: ...
    @property
    def reason(self) -> str | None: ...

@final
class Pass:
    @property
    def layers(self) -> list[Layer]: ...

@final
class Sequence:
    @property
    def backend(self) -> BackendType: ...
    @property
    def passes(self) -> list[Pass]: ...
    @property
    def program_size(self) -> int: ...
