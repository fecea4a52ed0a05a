//! `akida.Layer` and its six subclasses, the enums, and `LayerParameters`.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::PyClassInitializer;

use akida_engine::params::{Convolution, INPUT_CONV_WEIGHT_BITS, WEIGHT_BITS};
use akida_engine::{Activation, Error, Layer, LayerKind, LayerParams, Pooling};

use crate::arrays::{variable_to_numpy, variable_values};
use crate::errors::to_pyerr;
use crate::runtime::guarded;
use crate::state::{lock, LayerSlot};

/// How a convolution pads its input (see docs/semantics.md).
#[pyclass(name = "ConvolutionMode", module = "akida", eq, eq_int, frozen, hash, from_py_object)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PyConvolutionMode {
    Valid,
    Same,
    Full,
}

/// How a layer pools its potentials before the activation.
#[pyclass(name = "PoolingType", module = "akida", eq, eq_int, frozen, hash, from_py_object)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PyPoolingType {
    NoPooling,
    Max,
    Average,
}

impl From<PyConvolutionMode> for akida_engine::ConvolutionMode {
    fn from(m: PyConvolutionMode) -> Self {
        match m {
            PyConvolutionMode::Valid => Self::Valid,
            PyConvolutionMode::Same => Self::Same,
            PyConvolutionMode::Full => Self::Full,
        }
    }
}

impl From<akida_engine::ConvolutionMode> for PyConvolutionMode {
    fn from(m: akida_engine::ConvolutionMode) -> Self {
        match m {
            akida_engine::ConvolutionMode::Valid => Self::Valid,
            akida_engine::ConvolutionMode::Same => Self::Same,
            akida_engine::ConvolutionMode::Full => Self::Full,
        }
    }
}

impl From<PyPoolingType> for akida_engine::PoolingType {
    fn from(p: PyPoolingType) -> Self {
        match p {
            PyPoolingType::NoPooling => Self::NoPooling,
            PyPoolingType::Max => Self::Max,
            PyPoolingType::Average => Self::Average,
        }
    }
}

impl From<akida_engine::PoolingType> for PyPoolingType {
    fn from(p: akida_engine::PoolingType) -> Self {
        match p {
            akida_engine::PoolingType::NoPooling => Self::NoPooling,
            akida_engine::PoolingType::Max => Self::Max,
            akida_engine::PoolingType::Average => Self::Average,
        }
    }
}

/// Base class of all layers.
#[pyclass(name = "Layer", module = "akida", subclass, frozen)]
pub struct PyLayer {
    pub slot: Mutex<LayerSlot>,
}

impl PyLayer {
    pub fn detached(layer: Layer) -> Self {
        PyLayer { slot: Mutex::new(LayerSlot::Detached(Box::new(layer))) }
    }

    /// Runs `f` on the layer under its locks; errors become Python exceptions only after the
    /// locks are released, and a panic becomes an internal `AkidaError`.
    pub fn with<R>(&self, f: impl FnOnce(&Layer) -> akida_engine::Result<R>) -> PyResult<R> {
        guarded(|| lock(&self.slot).read(f))
    }

    fn with_mut<R>(&self, f: impl FnOnce(&mut Layer) -> akida_engine::Result<R>) -> PyResult<R> {
        guarded(|| lock(&self.slot).write(f))
    }
}

fn shape_tuple(s: akida_engine::Shape3) -> (usize, usize, usize) {
    (s.height, s.width, s.channels)
}

#[pymethods]
impl PyLayer {
    /// The layer name (given, or assigned when added to a model).
    #[getter]
    fn name(&self) -> PyResult<String> {
        self.with(|l| Ok(l.name().to_owned()))
    }

    /// The layer type: "InputData", "InputConvolutional", "FullyConnected", "Convolutional",
    /// "SeparableConvolutional" or "Concat".
    #[getter]
    fn layer_type(&self) -> PyResult<&'static str> {
        self.with(|l| Ok(l.kind().type_name()))
    }

    /// The constructor parameters, read-only.
    #[getter]
    fn parameters(&self, py: Python<'_>) -> PyResult<LayerParameters> {
        let params = self.with(|l| Ok(l.params().clone()))?;
        let dict = parameters_dict(py, &params)?;
        Ok(LayerParameters { values: dict.unbind() })
    }

    /// `(height, width, channels)` of one input sample.
    #[getter]
    fn input_shape(&self) -> PyResult<(usize, usize, usize)> {
        self.with(|l| Ok(shape_tuple(resolved(l)?.input_shape)))
    }

    /// `(height, width, channels)` of one output sample.
    #[getter]
    fn output_shape(&self) -> PyResult<(usize, usize, usize)> {
        self.with(|l| Ok(shape_tuple(resolved(l)?.output_shape)))
    }

    /// Where the layer runs once its model is mapped (`Model.map`), or None.
    #[getter]
    fn mapping(&self) -> PyResult<Option<crate::nsoc::PyLayerMapping>> {
        let LayerSlot::Attached { model, id } = &*lock(&self.slot) else { return Ok(None) };
        let state = lock(model);
        let Some(mapping) = state.mapping() else { return Ok(None) };
        let index = guarded(|| state.index_of_id(*id))?;
        Ok(crate::nsoc::PyLayerMapping::of(&mapping, index))
    }

    /// The layers feeding this one, in order.
    #[getter]
    fn inbound_layers(&self, py: Python<'_>) -> PyResult<Vec<Py<PyAny>>> {
        let (model, id) = match &*lock(&self.slot) {
            LayerSlot::Attached { model, id } => (model.clone(), *id),
            LayerSlot::Detached(_) => return Ok(Vec::new()),
        };
        let handles: Vec<(LayerKind, u64)> = guarded(|| {
            let state = lock(&model);
            let index = state.index_of_id(id)?;
            Ok(state.model.inbound(index).iter().map(|&j| (state.model.layers()[j].kind(), state.ids[j])).collect())
        })?;
        handles
            .into_iter()
            .map(|(kind, id)| layer_object(py, kind, LayerSlot::Attached { model: model.clone(), id }))
            .collect()
    }

    /// The learning parameters of a compiled layer (`LayerParameters`), or None.
    #[getter]
    fn learning(&self, py: Python<'_>) -> PyResult<Option<LayerParameters>> {
        let Some(learning) = self.with(|l| Ok(l.learning().cloned()))? else { return Ok(None) };
        let c = learning.config;
        let d = PyDict::new(py);
        d.set_item("num_weights", c.num_weights)?;
        d.set_item("num_classes", c.num_classes)?;
        d.set_item("initial_plasticity", c.initial_plasticity)?;
        d.set_item("min_plasticity", c.min_plasticity)?;
        d.set_item("plasticity_decay", c.plasticity_decay)?;
        d.set_item("learning_competition", c.learning_competition)?;
        d.set_item("seed", c.seed)?;
        Ok(Some(LayerParameters { values: d.unbind() }))
    }

    /// Per-neuron plasticity of a compiled layer (float32), or None.
    fn get_plasticity<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, numpy::PyArray1<f32>>>> {
        let plasticity = self.with(|l| Ok(l.learning().map(|l| l.state.plasticity.clone())))?;
        Ok(plasticity.map(|p| numpy::PyArray1::from_vec(py, p)))
    }

    /// Counts of neurons by `floor(100 * threshold_learning / num_weights)` (101 buckets, 0..100)
    /// of a compiled layer. Bucket 0 holds the neurons that have not learned.
    fn get_learning_histogram<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, numpy::PyArray1<i64>>> {
        let counts = self.with(|l| {
            let Some(learning) = l.learning() else {
                return Err(Error::Architecture(format!("layer '{}' is not compiled for learning", l.name())));
            };
            let mut counts = vec![0i64; 101];
            let w = learning.config.num_weights as i64;
            for &t in &learning.state.threshold_learning {
                counts[((100 * i64::from(t)) / w).clamp(0, 100) as usize] += 1;
            }
            Ok(counts)
        })?;
        Ok(numpy::PyArray1::from_vec(py, counts))
    }

    /// Names of the layer variables (empty until the input shape is known).
    fn get_variable_names(&self) -> PyResult<Vec<&'static str>> {
        self.with(|l| Ok(l.variable_names()))
    }

    /// A copy of variable `name` as a numpy array.
    fn get_variable<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let variable = self.with(|l| l.get_variable(name))?;
        variable_to_numpy(py, variable)
    }

    /// Replaces variable `name`; the shape must match exactly and every value must be in range.
    fn set_variable(&self, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let (shape, values) = variable_values(value, name)?;
        self.with_mut(|l| l.set_variable(name, &shape, values))
    }

    /// `<akida.Type 'name'>`; a handle on a layer removed by `pop_layer()` says so instead of
    /// raising (`str()` is the same).
    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        match slf.get().with(|l| Ok(format!("<akida.{} '{}'>", l.kind().type_name(), l.name()))) {
            Ok(text) => Ok(text),
            Err(error) => match crate::state::removed_name(&lock(&slf.get().slot)) {
                Some(name) => {
                    Ok(format!("<akida.{} '{name}' (removed from its model by pop_layer())>", slf.get_type().name()?))
                }
                None => Err(error),
            },
        }
    }
}

fn resolved(layer: &Layer) -> akida_engine::Result<&akida_engine::Resolved> {
    layer.resolved().ok_or_else(|| {
        Error::Architecture(format!(
            "layer '{}' ({}) is not in a model yet, so its shapes are unknown",
            layer.name(),
            layer.kind().type_name()
        ))
    })
}

/// The Python object for a layer: an instance of the subclass matching its type.
pub fn layer_object(py: Python<'_>, kind: LayerKind, slot: LayerSlot) -> PyResult<Py<PyAny>> {
    let base = PyClassInitializer::from(PyLayer { slot: Mutex::new(slot) });
    Ok(match kind {
        LayerKind::InputData => Py::new(py, base.add_subclass(PyInputData))?.into_any(),
        LayerKind::InputConvolutional => Py::new(py, base.add_subclass(PyInputConvolutional))?.into_any(),
        LayerKind::FullyConnected => Py::new(py, base.add_subclass(PyFullyConnected))?.into_any(),
        LayerKind::Convolutional => Py::new(py, base.add_subclass(PyConvolutional))?.into_any(),
        LayerKind::SeparableConvolutional => Py::new(py, base.add_subclass(PySeparableConvolutional))?.into_any(),
        LayerKind::Concat => Py::new(py, base.add_subclass(PyConcat))?.into_any(),
    })
}

fn parameters_dict<'py>(py: Python<'py>, params: &LayerParams) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let conv = |d: &Bound<'py, PyDict>, c: &Convolution| -> PyResult<()> {
        d.set_item("kernel_width", c.kernel_width)?;
        d.set_item("kernel_height", c.kernel_height)?;
        d.set_item("num_neurons", c.num_neurons)?;
        d.set_item("convolution_mode", PyConvolutionMode::from(c.mode))?;
        d.set_item("stride_x", c.stride_x)?;
        d.set_item("stride_y", c.stride_y)?;
        d.set_item("weights_bits", c.weights_bits)
    };
    let pool = |d: &Bound<'py, PyDict>, p: &Pooling| -> PyResult<()> {
        d.set_item("pooling_type", PyPoolingType::from(p.kind))?;
        d.set_item("pooling_width", p.width)?;
        d.set_item("pooling_height", p.height)?;
        d.set_item("pooling_stride_x", p.stride_x)?;
        d.set_item("pooling_stride_y", p.stride_y)
    };
    let act = |d: &Bound<'py, PyDict>, a: &Activation| -> PyResult<()> {
        d.set_item("activations_enabled", a.enabled)?;
        d.set_item("threshold_fire", a.threshold_fire)?;
        d.set_item("threshold_fire_step", a.threshold_fire_step)?;
        d.set_item("threshold_fire_bits", a.threshold_fire_bits)
    };
    match params {
        LayerParams::InputData { width, height, channels, input_bits } => {
            d.set_item("input_width", width)?;
            d.set_item("input_height", height)?;
            d.set_item("input_channels", channels)?;
            d.set_item("input_bits", input_bits)?;
        }
        LayerParams::InputConvolutional { width, height, channels, conv: c, pooling, activation, padding_value } => {
            d.set_item("input_width", width)?;
            d.set_item("input_height", height)?;
            d.set_item("input_channels", channels)?;
            conv(&d, c)?;
            pool(&d, pooling)?;
            act(&d, activation)?;
            d.set_item("padding_value", padding_value)?;
        }
        LayerParams::FullyConnected { num_neurons, weights_bits, activation } => {
            d.set_item("num_neurons", num_neurons)?;
            d.set_item("weights_bits", weights_bits)?;
            act(&d, activation)?;
        }
        LayerParams::Convolutional { conv: c, pooling, activation }
        | LayerParams::SeparableConvolutional { conv: c, pooling, activation } => {
            conv(&d, c)?;
            pool(&d, pooling)?;
            act(&d, activation)?;
        }
        LayerParams::Concat { activation } => act(&d, activation)?,
    }
    Ok(d)
}

/// The read-only parameters of a layer: one attribute per constructor parameter.
#[pyclass(name = "LayerParameters", module = "akida", frozen)]
pub struct LayerParameters {
    values: Py<PyDict>,
}

#[pymethods]
impl LayerParameters {
    fn __getattr__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        match self.values.bind(py).get_item(name)? {
            Some(v) => Ok(v),
            None => Err(pyo3::exceptions::PyAttributeError::new_err(format!("layer parameters have no '{name}'"))),
        }
    }

    fn __setattr__(&self, name: &str, _value: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(pyo3::exceptions::PyAttributeError::new_err(format!(
            "layer parameters are read-only (cannot set '{name}'); build a new layer with the parameters you want"
        )))
    }

    fn __delattr__(&self, name: &str) -> PyResult<()> {
        Err(pyo3::exceptions::PyAttributeError::new_err(format!(
            "layer parameters are read-only (cannot delete '{name}')"
        )))
    }

    /// The parameters as a new dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.values.bind(py).copy()
    }

    fn __dir__(&self, py: Python<'_>) -> Vec<String> {
        self.values.bind(py).keys().iter().filter_map(|k| k.extract().ok()).collect()
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        match other.cast::<LayerParameters>() {
            Ok(o) => self.values.bind(py).eq(o.get().values.bind(py)),
            Err(_) => Ok(false),
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("LayerParameters({})", self.values.bind(py).repr()?))
    }
}

/// A detached layer; parameter errors are prefixed with the layer type and name.
fn new_layer(kind: LayerKind, name: &str, params: akida_engine::Result<LayerParams>) -> PyResult<PyLayer> {
    let params = params.map_err(|e| match e {
        Error::Parameter(message) => {
            let who =
                if name.is_empty() { kind.type_name().to_owned() } else { format!("{} '{name}'", kind.type_name()) };
            to_pyerr(Error::Parameter(format!("{who}: {message}")))
        }
        other => to_pyerr(other),
    })?;
    Ok(PyLayer::detached(Layer::new(name, params).map_err(to_pyerr)?))
}

fn activation(enabled: bool, threshold_fire: i64, step: f64, bits: i64) -> akida_engine::Result<Activation> {
    Activation::new(enabled, threshold_fire, step, bits)
}

/// The `#[new]` of a convolution layer class (InputConvolutional, Convolutional,
/// SeparableConvolutional): the one Python signature of the convolution, pooling and activation
/// arguments (names, order, defaults) and their checks, with the optional `i64` arguments `before`
/// ahead of them and `after` (with their defaults) behind them. `weights_bits` must be
/// one of `allowed_weights_bits`. `build` makes the layer parameters from the checked parts; the
/// `before` and `after` arguments are in scope there. Without `build`, the parameters are the
/// `LayerParams` variant named `kind`.
macro_rules! convolution_layer_new {
    (
        $class:ident,
        $kind:ident,
        allowed_weights_bits = $allowed:expr,
        weights_bits = $weights_bits:tt,
        $(before = ($($before:ident),*),)?
        $(after = ($($after:ident = $after_default:tt),*),)?
        build = |$conv:ident, $pooling:ident, $activation:ident| $build:expr
    ) => {
        #[pymethods]
        impl $class {
            #[new]
            #[pyo3(signature = ($($($before,)*)? kernel_width, kernel_height, num_neurons, name = "",
                convolution_mode = PyConvolutionMode::Same, stride_x = 1, stride_y = 1,
                weights_bits = $weights_bits, pooling_width = -1, pooling_height = -1,
                pooling_type = PyPoolingType::NoPooling, pooling_stride_x = -1, pooling_stride_y = -1,
                activations_enabled = true, threshold_fire = 0, threshold_fire_step = 1.0,
                threshold_fire_bits = 1 $($(, $after = $after_default)*)?))]
            #[allow(clippy::too_many_arguments)]
            fn new(
                $($($before: i64,)*)?
                kernel_width: i64,
                kernel_height: i64,
                num_neurons: i64,
                name: &str,
                convolution_mode: PyConvolutionMode,
                stride_x: i64,
                stride_y: i64,
                weights_bits: i64,
                pooling_width: i64,
                pooling_height: i64,
                pooling_type: PyPoolingType,
                pooling_stride_x: i64,
                pooling_stride_y: i64,
                activations_enabled: bool,
                threshold_fire: i64,
                threshold_fire_step: f64,
                threshold_fire_bits: i64,
                $($($after: i64,)*)?
            ) -> PyResult<PyClassInitializer<Self>> {
                // The convolution, then the pooling, then the activation: the first error wins.
                let params = Convolution::new(
                    kernel_width,
                    kernel_height,
                    num_neurons,
                    convolution_mode.into(),
                    stride_x,
                    stride_y,
                    weights_bits,
                    $allowed,
                )
                .and_then(|$conv| {
                    let $pooling = Pooling::new(
                        pooling_type.into(),
                        pooling_width,
                        pooling_height,
                        pooling_stride_x,
                        pooling_stride_y,
                    )?;
                    let $activation =
                        activation(activations_enabled, threshold_fire, threshold_fire_step, threshold_fire_bits)?;
                    $build
                });
                Ok(PyClassInitializer::from(new_layer(LayerKind::$kind, name, params)?).add_subclass($class))
            }
        }
    };
    ($class:ident, $kind:ident, allowed_weights_bits = $allowed:expr, weights_bits = $weights_bits:tt) => {
        convolution_layer_new!(
            $class,
            $kind,
            allowed_weights_bits = $allowed,
            weights_bits = $weights_bits,
            build = |conv, pooling, activation| Ok(LayerParams::$kind { conv, pooling, activation })
        );
    };
}

/// Input layer for pre-generated spikes: uint8 values below `2**input_bits`, or `akida.Events`.
#[pyclass(name = "InputData", module = "akida", extends = PyLayer, frozen)]
pub struct PyInputData;

#[pymethods]
impl PyInputData {
    #[new]
    #[pyo3(signature = (input_width, input_height, input_channels, input_bits = 4, name = ""))]
    fn new(
        input_width: i64,
        input_height: i64,
        input_channels: i64,
        input_bits: i64,
        name: &str,
    ) -> PyResult<PyClassInitializer<Self>> {
        let params = LayerParams::input_data(input_width, input_height, input_channels, input_bits);
        Ok(PyClassInitializer::from(new_layer(LayerKind::InputData, name, params)?).add_subclass(PyInputData))
    }
}

/// Image input layer: 8-bit grayscale or RGB pixels, cross-correlated with up to 8-bit weights.
#[pyclass(name = "InputConvolutional", module = "akida", extends = PyLayer, frozen)]
pub struct PyInputConvolutional;

convolution_layer_new!(
    PyInputConvolutional,
    InputConvolutional,
    allowed_weights_bits = INPUT_CONV_WEIGHT_BITS,
    weights_bits = 1,
    before = (input_width, input_height, input_channels),
    after = (padding_value = 0),
    build = |conv, pooling, activation| LayerParams::input_convolutional(
        input_width,
        input_height,
        input_channels,
        conv,
        pooling,
        activation,
        padding_value
    )
);

/// Every input value connects to every neuron; output shape `(1, 1, num_neurons)`.
#[pyclass(name = "FullyConnected", module = "akida", extends = PyLayer, frozen)]
pub struct PyFullyConnected;

#[pymethods]
impl PyFullyConnected {
    #[new]
    #[pyo3(signature = (num_neurons, name = "", weights_bits = 1, activations_enabled = true, threshold_fire = 0,
        threshold_fire_step = 1.0, threshold_fire_bits = 1))]
    fn new(
        num_neurons: i64,
        name: &str,
        weights_bits: i64,
        activations_enabled: bool,
        threshold_fire: i64,
        threshold_fire_step: f64,
        threshold_fire_bits: i64,
    ) -> PyResult<PyClassInitializer<Self>> {
        let params = activation(activations_enabled, threshold_fire, threshold_fire_step, threshold_fire_bits)
            .and_then(|a| LayerParams::fully_connected(num_neurons, weights_bits, a));
        Ok(PyClassInitializer::from(new_layer(LayerKind::FullyConnected, name, params)?).add_subclass(PyFullyConnected))
    }
}

/// True convolution (kernel flipped) over events, with optional pooling.
#[pyclass(name = "Convolutional", module = "akida", extends = PyLayer, frozen)]
pub struct PyConvolutional;

convolution_layer_new!(PyConvolutional, Convolutional, allowed_weights_bits = WEIGHT_BITS, weights_bits = 1);

/// Depthwise convolution per input channel, then a pointwise convolution mixing channels.
#[pyclass(name = "SeparableConvolutional", module = "akida", extends = PyLayer, frozen)]
pub struct PySeparableConvolutional;

convolution_layer_new!(
    PySeparableConvolutional,
    SeparableConvolutional,
    allowed_weights_bits = WEIGHT_BITS,
    weights_bits = 2
);

/// Joins its inbound layers along channels, with its own optional activation.
#[pyclass(name = "Concat", module = "akida", extends = PyLayer, frozen)]
pub struct PyConcat;

#[pymethods]
impl PyConcat {
    #[new]
    #[pyo3(signature = (name = "", activations_enabled = true, threshold_fire = 0, threshold_fire_step = 1.0,
        threshold_fire_bits = 1))]
    fn new(
        name: &str,
        activations_enabled: bool,
        threshold_fire: i64,
        threshold_fire_step: f64,
        threshold_fire_bits: i64,
    ) -> PyResult<PyClassInitializer<Self>> {
        let params = activation(activations_enabled, threshold_fire, threshold_fire_step, threshold_fire_bits)
            .map(|activation| LayerParams::Concat { activation });
        Ok(PyClassInitializer::from(new_layer(LayerKind::Concat, name, params)?).add_subclass(PyConcat))
    }
}
