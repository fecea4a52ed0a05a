//! `akida.Layer` and its six subclasses, the enums, and `LayerParameters`.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::PyClassInitializer;

use akida_engine::params::{Convolution, INPUT_CONV_WEIGHT_BITS, WEIGHT_BITS};
use akida_engine::{Activation, Error, Layer, LayerKind, LayerParams, Pooling};

use crate::args::Arg;
use crate::arrays::{variable_to_numpy, variable_values};
use crate::errors::{raise, to_pyerr};
use crate::runtime::guarded;
use crate::state::{lock, LayerSlot};

/// How a convolution pads its input (see docs/semantics.md).
///
/// Members
/// -------
/// Valid
///     No padding: outputs only where the kernel fits.
/// Same
///     Output size ``ceil(input / stride)``, zero (or ``padding_value``) padding around.
/// Full
///     Every position the kernel overlaps the input.
#[pyclass(name = "ConvolutionMode", module = "akida", eq, eq_int, frozen, hash, from_py_object)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PyConvolutionMode {
    Valid,
    Same,
    Full,
}

/// How a layer pools its potentials before the activation.
///
/// Members
/// -------
/// NoPooling
///     No pooling.
/// Max
///     The largest potential of each window.
/// Average
///     The mean potential of each window (rounded as docs/semantics.md says).
#[pyclass(name = "PoolingType", module = "akida", eq, eq_int, frozen, hash, from_py_object)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PyPoolingType {
    NoPooling,
    Max,
    Average,
}

/// Whether a layer learns (``Layer.learning_type``).
///
/// Members
/// -------
/// NoLearning
///     The layer does not learn.
/// AkidaUnsupervised
///     ``Model.compile`` prepared the layer for Akida unsupervised learning (``docs/learning.md``).
#[pyclass(name = "LearningType", module = "akida", eq, eq_int, frozen, hash, from_py_object)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PyLearningType {
    NoLearning,
    AkidaUnsupervised,
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

/// Base class of all layers: :class:`InputData`, :class:`InputConvolutional`,
/// :class:`FullyConnected`, :class:`Convolutional`, :class:`SeparableConvolutional` and
/// :class:`Concat`.
///
/// A layer object is either standalone (just built) or a view of a layer inside a model (after
/// ``Model.add``, or from ``Model.layers`` / ``Model.get_layer``): reading and changing
/// variables through a view reads and changes the model. A view of a layer removed by
/// ``Model.pop_layer`` raises ``LayerNotFoundError``.
///
/// Examples
/// --------
/// >>> import akida
/// >>> layer = akida.FullyConnected(4, name="fc")
/// >>> layer.name, layer.layer_type, layer.parameters.num_neurons
/// ('fc', 'FullyConnected', 4)
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

    /// ``LearningType.AkidaUnsupervised`` once ``Model.compile`` prepared this layer for
    /// learning, ``LearningType.NoLearning`` otherwise.
    #[getter]
    fn learning_type(&self) -> PyResult<PyLearningType> {
        let compiled = self.with(|l| Ok(l.learning().is_some()))?;
        Ok(if compiled { PyLearningType::AkidaUnsupervised } else { PyLearningType::NoLearning })
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

    /// The plasticity of each neuron of a compiled layer.
    ///
    /// Returns
    /// -------
    /// numpy.ndarray or None
    ///     float32 ``(num_neurons,)``: how much each neuron still learns (see
    ///     ``docs/learning.md``), or None before ``Model.compile``.
    fn get_plasticity<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, numpy::PyArray1<f32>>>> {
        let plasticity = self.with(|l| Ok(l.learning().map(|l| l.state.plasticity.clone())))?;
        Ok(plasticity.map(|p| numpy::PyArray1::from_vec(py, p)))
    }

    /// How far the neurons of a compiled layer have learned.
    ///
    /// Returns
    /// -------
    /// numpy.ndarray
    ///     int64 ``(101,)``: the count of neurons per bucket
    ///     ``floor(100 * threshold_learning / num_weights)``, 0..100. Bucket 0 holds the neurons
    ///     that have not learned.
    ///
    /// Raises
    /// ------
    /// ArchitectureError
    ///     The layer is not compiled for learning.
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

    /// The names of the layer's variables.
    ///
    /// Returns
    /// -------
    /// list of str
    ///     For example ``['weights', 'threshold_fire', 'threshold_fire_step', 'output_scale',
    ///     'output_offset']``; empty until the input shape is known (a non-input layer outside a
    ///     model).
    ///
    /// Examples
    /// --------
    /// >>> import akida
    /// >>> akida.InputData(input_shape=(2, 2, 1)).get_variable_names()
    /// []
    /// >>> akida.InputConvolutional(8, 8, 1, 3, 3, 4).get_variable_names()[:2]
    /// ['weights', 'threshold_fire']
    fn get_variable_names(&self) -> PyResult<Vec<&'static str>> {
        self.with(|l| Ok(l.variable_names()))
    }

    /// A copy of a variable as a numpy array.
    ///
    /// Parameters
    /// ----------
    /// name : str
    ///     One of :meth:`get_variable_names`: ``weights``, ``weights_pw``, ``threshold_fire``,
    ///     ``threshold_fire_step``, ``output_scale``, ``output_offset``, ``wta_groups``,
    ///     ``threshold_learning``.
    ///
    /// Returns
    /// -------
    /// numpy.ndarray
    ///     int8 weights, int32 thresholds and groups, float32 steps and scales (docs/api.md gives
    ///     every shape).
    ///
    /// Raises
    /// ------
    /// VariableError
    ///     The layer has no variable of that name.
    ///
    /// Examples
    /// --------
    /// >>> import akida
    /// >>> akida.InputConvolutional(8, 8, 1, 3, 3, 4).get_variable("threshold_fire")
    /// array([0, 0, 0, 0], dtype=int32)
    #[pyo3(signature = (name), text_signature = "(self, name)")]
    fn get_variable<'py>(&self, py: Python<'py>, name: Arg<'py, String>) -> PyResult<Bound<'py, PyAny>> {
        let name = name.get("get_variable", "name")?;
        let variable = self.with(|l| l.get_variable(&name))?;
        variable_to_numpy(py, variable)
    }

    /// Replaces a variable.
    ///
    /// Parameters
    /// ----------
    /// name : str
    ///     The variable, one of :meth:`get_variable_names`.
    /// value : array_like
    ///     The new values, of exactly the variable's shape. Integer variables take any integer
    ///     dtype; ``threshold_fire_step``, ``output_scale`` and ``output_offset`` take floats or
    ///     integers (converted to float32). Every value must be in the variable's range.
    ///
    /// Raises
    /// ------
    /// VariableError
    ///     Unknown name, wrong shape, or a value out of range.
    /// DTypeError
    ///     A non-numeric array, or floats for an integer variable.
    ///
    /// Examples
    /// --------
    /// >>> import numpy as np, akida
    /// >>> layer = akida.InputConvolutional(8, 8, 1, 3, 3, 4)
    /// >>> layer.set_variable("threshold_fire", np.array([1, 2, 3, 4]))
    /// >>> layer.get_variable("threshold_fire")
    /// array([1, 2, 3, 4], dtype=int32)
    #[pyo3(signature = (name, value), text_signature = "(self, name, value)")]
    fn set_variable<'py>(&self, name: Arg<'py, String>, value: &Bound<'py, PyAny>) -> PyResult<()> {
        let name = name.get("set_variable", "name")?;
        let (shape, values) = variable_values(value, &name)?;
        self.with_mut(|l| l.set_variable(&name, &shape, values))
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

/// The read-only parameters of a layer: one attribute per constructor parameter except ``name``
/// (``layer.parameters.num_neurons``). Setting or deleting an attribute raises
/// ``AttributeError``: build a new layer with the parameters you want.
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
    ///
    /// Returns
    /// -------
    /// dict of str to object
    ///     One entry per constructor parameter except ``name``.
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

/// The four activation arguments of layer constructor `f`: their types are checked here (a
/// `TypeError` naming the argument), their values by `Activation::new`, whose error is returned
/// for the caller to report after the errors of the arguments before them.
fn activation_args(
    f: &str,
    enabled: Arg<'_, bool>,
    threshold_fire: Arg<'_, i64>,
    step: Arg<'_, f64>,
    bits: Arg<'_, i64>,
) -> PyResult<akida_engine::Result<Activation>> {
    let enabled = enabled.get(f, "activations_enabled")?;
    let threshold_fire = threshold_fire.get(f, "threshold_fire")?;
    let step = step.get(f, "threshold_fire_step")?;
    let bits = bits.get(f, "threshold_fire_bits")?;
    Ok(Activation::new(enabled, threshold_fire, step, bits))
}

/// The numpy-style "Parameters" entries of the convolution, pooling and activation arguments
/// shared by the three convolution layers.
macro_rules! convolution_parameters_doc {
    () => {
        "kernel_width, kernel_height : int
    Size of the convolution kernel, 1..65536.
num_neurons : int
    Number of filters (output channels), 1..2**20.
name : str, default \"\"
    Layer name; an empty name is replaced by a unique default when the layer is added.
convolution_mode : ConvolutionMode, default ConvolutionMode.Same
    Padding: Valid (no padding), Same (output size = ceil(input / stride)) or Full.
stride_x, stride_y : int, default 1
    Convolution strides, 1..65536.
pooling_width, pooling_height : int, default -1
    Pooling window; -1 with a pooling type pools globally.
pooling_type : PoolingType, default PoolingType.NoPooling
    NoPooling, Max or Average pooling of the potentials before the activation.
pooling_stride_x, pooling_stride_y : int, default -1
    Pooling strides; -1 means the window size.
activations_enabled : bool, default True
    False makes the layer emit int32 potentials (it must then be the last layer).
threshold_fire : int, default 0
    A neuron fires when its potential is above this threshold (int32 range).
threshold_fire_step : float, default 1.0
    Width of each activation level for multi-bit activations (> 0, finite).
threshold_fire_bits : int, default 1
    Bits of the activation: 1, 2 or 4."
    };
}

/// The `#[new]` of a convolution layer class (InputConvolutional, Convolutional,
/// SeparableConvolutional): the one Python signature of the convolution, pooling and activation
/// arguments (names, order, defaults; `text_signature` spells the same defaults for `help()` and
/// `inspect.signature`) and their checks, with the optional `i64` arguments `before` ahead of them
/// and `after` (with their defaults) behind them. `weights_bits` must be one of
/// `allowed_weights_bits`. `build` makes the layer parameters from the checked parts; the `before`
/// and `after` arguments are in scope there. Without `build`, the parameters are the `LayerParams`
/// variant named `kind`.
macro_rules! convolution_layer_new {
    (
        $class:ident,
        $kind:ident,
        text_signature = $text_signature:literal,
        allowed_weights_bits = $allowed:expr,
        weights_bits = $weights_bits:tt,
        $(before = ($($before:ident),*),)?
        $(after = ($($after:ident = $after_default:tt),*),)?
        build = |$conv:ident, $pooling:ident, $activation:ident| $build:expr
    ) => {
        #[pymethods]
        impl $class {
            #[new]
            #[pyo3(signature = ($($($before,)*)? kernel_width, kernel_height, num_neurons, name = Arg::Default(String::new()),
                convolution_mode = Arg::Default(PyConvolutionMode::Same), stride_x = Arg::Default(1),
                stride_y = Arg::Default(1), weights_bits = Arg::Default($weights_bits),
                pooling_width = Arg::Default(-1), pooling_height = Arg::Default(-1),
                pooling_type = Arg::Default(PyPoolingType::NoPooling), pooling_stride_x = Arg::Default(-1),
                pooling_stride_y = Arg::Default(-1), activations_enabled = Arg::Default(true),
                threshold_fire = Arg::Default(0), threshold_fire_step = Arg::Default(1.0),
                threshold_fire_bits = Arg::Default(1) $($(, $after = Arg::Default($after_default))*)?),
                text_signature = $text_signature)]
            #[allow(clippy::too_many_arguments)]
            fn new<'py>(
                $($($before: Arg<'py, i64>,)*)?
                kernel_width: Arg<'py, i64>,
                kernel_height: Arg<'py, i64>,
                num_neurons: Arg<'py, i64>,
                name: Arg<'py, String>,
                convolution_mode: Arg<'py, PyConvolutionMode>,
                stride_x: Arg<'py, i64>,
                stride_y: Arg<'py, i64>,
                weights_bits: Arg<'py, i64>,
                pooling_width: Arg<'py, i64>,
                pooling_height: Arg<'py, i64>,
                pooling_type: Arg<'py, PyPoolingType>,
                pooling_stride_x: Arg<'py, i64>,
                pooling_stride_y: Arg<'py, i64>,
                activations_enabled: Arg<'py, bool>,
                threshold_fire: Arg<'py, i64>,
                threshold_fire_step: Arg<'py, f64>,
                threshold_fire_bits: Arg<'py, i64>,
                $($($after: Arg<'py, i64>,)*)?
            ) -> PyResult<PyClassInitializer<Self>> {
                let f = stringify!($kind);
                $($(let $before = $before.get(f, stringify!($before))?;)*)?
                let kernel_width = kernel_width.get(f, "kernel_width")?;
                let kernel_height = kernel_height.get(f, "kernel_height")?;
                let num_neurons = num_neurons.get(f, "num_neurons")?;
                let name = name.get(f, "name")?;
                let convolution_mode = convolution_mode.get(f, "convolution_mode")?;
                let stride_x = stride_x.get(f, "stride_x")?;
                let stride_y = stride_y.get(f, "stride_y")?;
                let weights_bits = weights_bits.get(f, "weights_bits")?;
                let pooling_width = pooling_width.get(f, "pooling_width")?;
                let pooling_height = pooling_height.get(f, "pooling_height")?;
                let pooling_type = pooling_type.get(f, "pooling_type")?;
                let pooling_stride_x = pooling_stride_x.get(f, "pooling_stride_x")?;
                let pooling_stride_y = pooling_stride_y.get(f, "pooling_stride_y")?;
                let activation =
                    activation_args(f, activations_enabled, threshold_fire, threshold_fire_step, threshold_fire_bits)?;
                $($(let $after = $after.get(f, stringify!($after))?;)*)?
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
                    let $activation = activation?;
                    $build
                });
                Ok(PyClassInitializer::from(new_layer(LayerKind::$kind, &name, params)?).add_subclass($class))
            }
        }
    };
    (
        $class:ident,
        $kind:ident,
        text_signature = $text_signature:literal,
        allowed_weights_bits = $allowed:expr,
        weights_bits = $weights_bits:tt
    ) => {
        convolution_layer_new!(
            $class,
            $kind,
            text_signature = $text_signature,
            allowed_weights_bits = $allowed,
            weights_bits = $weights_bits,
            build = |conv, pooling, activation| Ok(LayerParams::$kind { conv, pooling, activation })
        );
    };
}

/// Input layer for pre-generated spikes: dense uint8 values below ``2**input_bits``, or
/// :class:`akida.Events`.
///
/// The 1.x keywords give the size width first; ``input_shape=(height, width, channels)`` gives
/// it in the order of every shape of the API. Give one or the other.
///
/// Parameters
/// ----------
/// input_width, input_height, input_channels : int, optional
///     Size of one input sample, each 1..2**20 (1..65536 for width and height).
/// input_bits : int, default 4
///     Bits per input value, 1..8: inputs must be below ``2**input_bits``.
/// name : str, default ""
///     Layer name; an empty name becomes ``input_data`` (or the first free ``input_data_<k>``).
/// input_shape : tuple of 3 ints, optional
///     ``(height, width, channels)``, instead of the three ``input_*`` sizes.
///
/// Raises
/// ------
/// ParameterError
///     A size or ``input_bits`` out of range, or both or neither of the two ways of giving the
///     size.
/// TypeError
///     An argument of the wrong type (the message names it).
///
/// Examples
/// --------
/// >>> import akida
/// >>> akida.InputData(input_shape=(32, 24, 2), input_bits=1).input_shape
/// (32, 24, 2)
/// >>> akida.InputData(24, 32, 2).input_shape
/// (32, 24, 2)
#[pyclass(name = "InputData", module = "akida", extends = PyLayer, frozen)]
pub struct PyInputData;

#[pymethods]
impl PyInputData {
    #[new]
    #[pyo3(signature = (input_width = Arg::Default(None), input_height = Arg::Default(None),
        input_channels = Arg::Default(None), input_bits = Arg::Default(4), name = Arg::Default(String::new()),
        input_shape = Arg::Default(None)),
        text_signature = "(input_width=None, input_height=None, input_channels=None, input_bits=4, name='', input_shape=None)")]
    fn new<'py>(
        input_width: Arg<'py, Option<i64>>,
        input_height: Arg<'py, Option<i64>>,
        input_channels: Arg<'py, Option<i64>>,
        input_bits: Arg<'py, i64>,
        name: Arg<'py, String>,
        input_shape: Arg<'py, Option<(i64, i64, i64)>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let f = "InputData";
        let sizes = [
            input_width.get(f, "input_width")?,
            input_height.get(f, "input_height")?,
            input_channels.get(f, "input_channels")?,
        ];
        let input_bits = input_bits.get(f, "input_bits")?;
        let name = name.get(f, "name")?;
        let input_shape = input_shape.get(f, "input_shape")?;
        let (width, height, channels) = match (sizes, input_shape) {
            ([Some(w), Some(h), Some(c)], None) => (w, h, c),
            ([None, None, None], Some((h, w, c))) => (w, h, c),
            ([None, None, None], None) => {
                return raise(Error::Parameter(
                    "InputData: give the input size, as input_shape=(height, width, channels) or as \
                     input_width, input_height and input_channels"
                        .into(),
                ))
            }
            (_, Some(_)) => {
                return raise(Error::Parameter(
                    "InputData: give either input_shape=(height, width, channels) or input_width, \
                     input_height and input_channels, not both"
                        .into(),
                ))
            }
            (given, None) => {
                let missing: Vec<&str> = ["input_width", "input_height", "input_channels"]
                    .into_iter()
                    .zip(given)
                    .filter(|(_, v)| v.is_none())
                    .map(|(n, _)| n)
                    .collect();
                return raise(Error::Parameter(format!("InputData: missing {}", missing.join(", "))));
            }
        };
        let params = LayerParams::input_data(width, height, channels, input_bits);
        Ok(PyClassInitializer::from(new_layer(LayerKind::InputData, &name, params)?).add_subclass(PyInputData))
    }
}

/// Image input layer: 8-bit grayscale or RGB pixels, cross-correlated (kernel not flipped) with
/// up to 8-bit weights, then pooled and thresholded into events.
///
/// Parameters
/// ----------
/// input_width, input_height : int
///     Image size, 1..65536.
/// input_channels : int
///     1 (grayscale) or 3 (RGB).
#[doc = convolution_parameters_doc!()]
/// weights_bits : int, default 1
///     Bits of the weights: 1, 2, 4 or 8.
/// padding_value : int, default 0
///     Pixel value of the padding in Same and Full modes, 0..255.
///
/// Raises
/// ------
/// ParameterError
///     A value out of range; the message names the layer and the parameter.
/// TypeError
///     An argument of the wrong type (the message names it).
///
/// Examples
/// --------
/// >>> import akida
/// >>> layer = akida.InputConvolutional(28, 28, 1, 5, 5, 8, convolution_mode=akida.ConvolutionMode.Valid)
/// >>> layer.output_shape
/// (24, 24, 8)
#[pyclass(name = "InputConvolutional", module = "akida", extends = PyLayer, frozen)]
pub struct PyInputConvolutional;

convolution_layer_new!(
    PyInputConvolutional,
    InputConvolutional,
    text_signature = "(input_width, input_height, input_channels, kernel_width, kernel_height, num_neurons, name='', convolution_mode=ConvolutionMode.Same, stride_x=1, stride_y=1, weights_bits=1, pooling_width=-1, pooling_height=-1, pooling_type=PoolingType.NoPooling, pooling_stride_x=-1, pooling_stride_y=-1, activations_enabled=True, threshold_fire=0, threshold_fire_step=1.0, threshold_fire_bits=1, padding_value=0)",
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

/// Fully connected layer: every input value connects to every neuron; output shape
/// ``(1, 1, num_neurons)``.
///
/// Parameters
/// ----------
/// num_neurons : int
///     Number of neurons, 1..2**20.
/// name : str, default ""
///     Layer name; an empty name is replaced by a unique default when the layer is added.
/// weights_bits : int, default 1
///     Bits of the weights: 1 (binary, 0 or 1), 2 or 4 (signed).
/// activations_enabled : bool, default True
///     False makes the layer emit int32 potentials (it must then be the last layer).
/// threshold_fire : int, default 0
///     A neuron fires when its potential is above this threshold (int32 range).
/// threshold_fire_step : float, default 1.0
///     Width of each activation level for multi-bit activations (> 0, finite).
/// threshold_fire_bits : int, default 1
///     Bits of the activation: 1, 2 or 4.
///
/// Raises
/// ------
/// ParameterError
///     A value out of range; the message names the layer and the parameter.
/// TypeError
///     An argument of the wrong type (the message names it).
///
/// Examples
/// --------
/// >>> import akida
/// >>> model = akida.Model([akida.InputData(input_shape=(4, 4, 1), input_bits=1),
/// ...                      akida.FullyConnected(10, activations_enabled=False)])
/// >>> model.output_shape
/// (1, 1, 10)
#[pyclass(name = "FullyConnected", module = "akida", extends = PyLayer, frozen)]
pub struct PyFullyConnected;

#[pymethods]
impl PyFullyConnected {
    #[new]
    #[pyo3(signature = (num_neurons, name = Arg::Default(String::new()), weights_bits = Arg::Default(1),
        activations_enabled = Arg::Default(true), threshold_fire = Arg::Default(0),
        threshold_fire_step = Arg::Default(1.0), threshold_fire_bits = Arg::Default(1)),
        text_signature = "(num_neurons, name='', weights_bits=1, activations_enabled=True, threshold_fire=0, threshold_fire_step=1.0, threshold_fire_bits=1)")]
    fn new<'py>(
        num_neurons: Arg<'py, i64>,
        name: Arg<'py, String>,
        weights_bits: Arg<'py, i64>,
        activations_enabled: Arg<'py, bool>,
        threshold_fire: Arg<'py, i64>,
        threshold_fire_step: Arg<'py, f64>,
        threshold_fire_bits: Arg<'py, i64>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let f = "FullyConnected";
        let num_neurons = num_neurons.get(f, "num_neurons")?;
        let name = name.get(f, "name")?;
        let weights_bits = weights_bits.get(f, "weights_bits")?;
        let params = activation_args(f, activations_enabled, threshold_fire, threshold_fire_step, threshold_fire_bits)?
            .and_then(|a| LayerParams::fully_connected(num_neurons, weights_bits, a));
        Ok(PyClassInitializer::from(new_layer(LayerKind::FullyConnected, &name, params)?)
            .add_subclass(PyFullyConnected))
    }
}

/// Convolution over events: a true convolution (the kernel is flipped, see
/// ``docs/semantics.md``), then optional pooling, then the activation.
///
/// Parameters
/// ----------
#[doc = convolution_parameters_doc!()]
/// weights_bits : int, default 1
///     Bits of the weights: 1 (binary, 0 or 1), 2 or 4 (signed).
///
/// Raises
/// ------
/// ParameterError
///     A value out of range; the message names the layer and the parameter.
/// TypeError
///     An argument of the wrong type (the message names it).
///
/// Examples
/// --------
/// >>> import akida
/// >>> model = akida.Model([akida.InputData(input_shape=(8, 8, 2), input_bits=1),
/// ...                      akida.Convolutional(3, 3, 16, pooling_type=akida.PoolingType.Max,
/// ...                                          pooling_width=2, pooling_height=2)])
/// >>> model.output_shape
/// (4, 4, 16)
#[pyclass(name = "Convolutional", module = "akida", extends = PyLayer, frozen)]
pub struct PyConvolutional;

convolution_layer_new!(
    PyConvolutional,
    Convolutional,
    text_signature = "(kernel_width, kernel_height, num_neurons, name='', convolution_mode=ConvolutionMode.Same, stride_x=1, stride_y=1, weights_bits=1, pooling_width=-1, pooling_height=-1, pooling_type=PoolingType.NoPooling, pooling_stride_x=-1, pooling_stride_y=-1, activations_enabled=True, threshold_fire=0, threshold_fire_step=1.0, threshold_fire_bits=1)",
    allowed_weights_bits = WEIGHT_BITS,
    weights_bits = 1
);

/// Separable convolution: a depthwise convolution of each input channel, then a pointwise
/// convolution mixing the channels into ``num_neurons`` outputs, then optional pooling and the
/// activation.
///
/// Parameters
/// ----------
#[doc = convolution_parameters_doc!()]
/// weights_bits : int, default 2
///     Bits of the depthwise and pointwise weights: 1, 2 or 4.
///
/// Raises
/// ------
/// ParameterError
///     A value out of range; the message names the layer and the parameter.
/// TypeError
///     An argument of the wrong type (the message names it).
///
/// Examples
/// --------
/// >>> import akida
/// >>> sorted(akida.SeparableConvolutional(3, 3, 32).parameters.to_dict())[:3]
/// ['activations_enabled', 'convolution_mode', 'kernel_height']
#[pyclass(name = "SeparableConvolutional", module = "akida", extends = PyLayer, frozen)]
pub struct PySeparableConvolutional;

convolution_layer_new!(
    PySeparableConvolutional,
    SeparableConvolutional,
    text_signature = "(kernel_width, kernel_height, num_neurons, name='', convolution_mode=ConvolutionMode.Same, stride_x=1, stride_y=1, weights_bits=2, pooling_width=-1, pooling_height=-1, pooling_type=PoolingType.NoPooling, pooling_stride_x=-1, pooling_stride_y=-1, activations_enabled=True, threshold_fire=0, threshold_fire_step=1.0, threshold_fire_bits=1)",
    allowed_weights_bits = WEIGHT_BITS,
    weights_bits = 2
);

/// Joins the outputs of its inbound layers (at least two, of equal height and width) along the
/// channels, then applies its own optional activation.
///
/// Parameters
/// ----------
/// name : str, default ""
///     Layer name; an empty name is replaced by a unique default when the layer is added.
/// activations_enabled : bool, default True
///     False passes the joined activations through unchanged (uint8; the threshold is not
///     applied), so the layer may feed any other; True applies its own activation to them.
/// threshold_fire : int, default 0
///     A neuron fires when its summed input is above this threshold (int32 range).
/// threshold_fire_step : float, default 1.0
///     Width of each activation level for multi-bit activations (> 0, finite).
/// threshold_fire_bits : int, default 1
///     Bits of the activation: 1, 2 or 4.
///
/// Examples
/// --------
/// >>> import akida
/// >>> model = akida.Model()
/// >>> model.add(akida.InputData(input_shape=(8, 8, 1), input_bits=1))
/// >>> left = akida.Convolutional(3, 3, 4, name="left")
/// >>> right = akida.Convolutional(1, 1, 2, name="right")
/// >>> model.add(left)
/// >>> model.add(right, inbound_layers=[model.get_layer(0)])
/// >>> model.add(akida.Concat(), inbound_layers=[left, right])
/// >>> model.output_shape
/// (8, 8, 6)
#[pyclass(name = "Concat", module = "akida", extends = PyLayer, frozen)]
pub struct PyConcat;

#[pymethods]
impl PyConcat {
    #[new]
    #[pyo3(signature = (name = Arg::Default(String::new()), activations_enabled = Arg::Default(true),
        threshold_fire = Arg::Default(0), threshold_fire_step = Arg::Default(1.0), threshold_fire_bits = Arg::Default(1)),
        text_signature = "(name='', activations_enabled=True, threshold_fire=0, threshold_fire_step=1.0, threshold_fire_bits=1)")]
    fn new<'py>(
        name: Arg<'py, String>,
        activations_enabled: Arg<'py, bool>,
        threshold_fire: Arg<'py, i64>,
        threshold_fire_step: Arg<'py, f64>,
        threshold_fire_bits: Arg<'py, i64>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let f = "Concat";
        let name = name.get(f, "name")?;
        let params = activation_args(f, activations_enabled, threshold_fire, threshold_fire_step, threshold_fire_bits)?
            .map(|activation| LayerParams::Concat { activation });
        Ok(PyClassInitializer::from(new_layer(LayerKind::Concat, &name, params)?).add_subclass(PyConcat))
    }
}
