//! A layer: its parameters, its resolved geometry and its variables.

use crate::error::{bail, Error, Result};
use crate::learning::state::Learning;
use crate::params::{weight_range, LayerKind, LayerParams};
use crate::shape::{AxisGeometry, ConvGeometry, PoolGeometry, Shape3};
use crate::variables::{Variable, VariableData, VariableValues};

/// Largest number of weights of one layer (2 GiB of int8).
pub const MAX_WEIGHTS: u128 = 1 << 31;

/// What a layer emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// Non-negative activations (or pass-through inputs) no larger than `max`.
    Activations { max: i32 },
    /// Signed int32 potentials: the layer has activations disabled.
    Potentials,
}

/// Geometry fixed once the input shape of a layer is known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolved {
    pub input_shape: Shape3,
    /// Largest value the layer can receive.
    pub input_max: i32,
    /// Convolution geometry (convolutional layers only).
    pub conv: Option<ConvGeometry>,
    /// Shape of the potentials before pooling.
    pub potentials_shape: Shape3,
    pub pool: Option<PoolGeometry>,
    pub output_shape: Shape3,
    pub output: OutputKind,
    /// Largest magnitude a potential (or separable intermediate sum) of this layer can reach.
    pub potential_bound: u64,
}

/// One layer of a model. Built detached; its geometry and variables exist once its input shape is
/// known (at once for input layers, when added to a model for the others).
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub(crate) name: String,
    params: LayerParams,
    resolved: Option<Resolved>,
    weights: Vec<i8>,
    weights_pw: Vec<i8>,
    threshold_fire: Vec<i32>,
    threshold_fire_step: Vec<f32>,
    /// Per neuron: `Model::evaluate` outputs `potential * output_scale + output_offset`.
    output_scale: Vec<f32>,
    output_offset: Vec<f32>,
    /// InputConvolutional only: winner-take-all group id per neuron.
    wta_groups: Vec<i32>,
    pub(crate) learning: Option<Learning>,
}

impl Layer {
    /// A new layer with validated parameters. Input layers are resolved at once.
    pub fn new(name: &str, params: LayerParams) -> Result<Self> {
        let mut layer = Layer {
            name: name.to_owned(),
            params,
            resolved: None,
            weights: Vec::new(),
            weights_pw: Vec::new(),
            threshold_fire: Vec::new(),
            threshold_fire_step: Vec::new(),
            output_scale: Vec::new(),
            output_offset: Vec::new(),
            wta_groups: Vec::new(),
            learning: None,
        };
        match layer.params {
            LayerParams::InputData { width, height, channels, input_bits } => {
                layer.resolve(Shape3::new(height, width, channels), (1 << input_bits) - 1)?;
            }
            LayerParams::InputConvolutional { width, height, channels, .. } => {
                layer.resolve(Shape3::new(height, width, channels), 255)?;
            }
            _ => {}
        }
        Ok(layer)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// How messages name the layer: `'name'`, or `<unnamed Type>` before it has a name.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            format!("<unnamed {}>", self.kind().type_name())
        } else {
            format!("'{}'", self.name)
        }
    }

    pub fn kind(&self) -> LayerKind {
        self.params.kind()
    }

    pub fn params(&self) -> &LayerParams {
        &self.params
    }

    /// Geometry, once the input shape is known.
    pub fn resolved(&self) -> Option<&Resolved> {
        self.resolved.as_ref()
    }

    pub(crate) fn expect_resolved(&self) -> Result<&Resolved> {
        self.resolved.as_ref().ok_or_else(|| {
            Error::Architecture(format!(
                "layer {} ({}) is not in a model yet, so its input shape is unknown",
                self.label(),
                self.kind().type_name()
            ))
        })
    }

    pub fn weights(&self) -> &[i8] {
        &self.weights
    }

    pub fn weights_pw(&self) -> &[i8] {
        &self.weights_pw
    }

    pub fn threshold_fire(&self) -> &[i32] {
        &self.threshold_fire
    }

    pub fn threshold_fire_step(&self) -> &[f32] {
        &self.threshold_fire_step
    }

    /// Per-neuron factor of the rescaled output (`Model::evaluate`); empty for InputData.
    pub fn output_scale(&self) -> &[f32] {
        &self.output_scale
    }

    /// Per-neuron offset of the rescaled output (`Model::evaluate`); empty for InputData.
    pub fn output_offset(&self) -> &[f32] {
        &self.output_offset
    }

    /// Winner-take-all group id per neuron (InputConvolutional only; empty otherwise).
    pub fn wta_groups(&self) -> &[i32] {
        &self.wta_groups
    }

    /// The winner-take-all groups as ranges of consecutive neurons, or `None` when no group has
    /// more than one neuron (InputConvolutional only).
    pub fn wta_ranges(&self) -> Option<Vec<std::ops::Range<usize>>> {
        let g = &self.wta_groups;
        let mut ranges = Vec::new();
        let mut start = 0;
        for i in 1..=g.len() {
            if i == g.len() || g[i] != g[i - 1] {
                ranges.push(start..i);
                start = i;
            }
        }
        ranges.iter().any(|r| r.len() > 1).then_some(ranges)
    }

    /// The learning configuration and state, once the layer is compiled.
    pub fn learning(&self) -> Option<&Learning> {
        self.learning.as_ref()
    }

    pub(crate) fn weights_mut(&mut self) -> &mut Vec<i8> {
        &mut self.weights
    }

    /// The weights and the learning state at once, for a learning step.
    pub(crate) fn weights_and_learning_mut(&mut self) -> (&mut [i8], Option<&mut Learning>) {
        (&mut self.weights, self.learning.as_mut())
    }

    /// Number of inputs each neuron connects to (FullyConnected: the input size; convolutions:
    /// kernel taps times input channels).
    pub fn connections(&self) -> usize {
        match (&self.params, &self.resolved) {
            (LayerParams::FullyConnected { .. }, Some(r)) => r.input_shape.len(),
            (p, Some(r)) => p.convolution().map_or(0, |c| c.kernel_height * c.kernel_width * r.input_shape.channels),
            (_, None) => 0,
        }
    }

    /// The number of neurons after adding `extra`, if the neuron and weight limits allow it.
    pub(crate) fn grown_neuron_count(&self, extra: usize) -> Result<usize> {
        let old = self.expect_resolved()?.potentials_shape.channels;
        let new = old.checked_add(extra).filter(|&n| n <= crate::params::MAX_NEURONS as usize);
        let Some(new) = new else {
            bail!(
                Parameter,
                "layer {} cannot grow from {old} to {old} + {extra} neurons (at most {})",
                self.label(),
                crate::params::MAX_NEURONS
            );
        };
        if (self.weights.len() / old) as u128 * new as u128 > MAX_WEIGHTS {
            bail!(Architecture, "layer {} would have more than {MAX_WEIGHTS} weights", self.label());
        }
        Ok(new)
    }

    /// Adds `extra` neurons at the end: the weight matrix grows by columns (filled by `init`),
    /// thresholds and steps take the constructor values, output scales 1 and offsets 0.
    pub(crate) fn grow_neurons(&mut self, extra: usize, mut init: impl FnMut(&mut [i8], usize, usize)) -> Result<()> {
        let r = *self.expect_resolved()?;
        let old = r.potentials_shape.channels;
        let new = self.grown_neuron_count(extra)?;
        let connections = self.weights.len() / old;
        let mut weights: Vec<i8> = crate::error::zeroed_vec(connections.checked_mul(new), "the grown weights")?;
        for (dst, src) in weights.chunks_exact_mut(new).zip(self.weights.chunks_exact(old)) {
            dst[..old].copy_from_slice(src);
        }
        for n in old..new {
            init(&mut weights, new, n);
        }
        let saved = self.params.clone();
        match &mut self.params {
            LayerParams::FullyConnected { num_neurons, .. } => *num_neurons = new,
            LayerParams::Convolutional { conv, .. } => conv.num_neurons = new,
            _ => bail!(Architecture, "layer {} cannot grow neurons", self.label()),
        }
        // The input shape is unchanged, so resolving keeps the variables as they are.
        if let Err(e) = self.resolve(r.input_shape, r.input_max) {
            self.params = saved;
            self.resolve(r.input_shape, r.input_max)?;
            return Err(e);
        }
        let activation = *self.params.activation().expect("weighted layers have an activation");
        self.weights = weights;
        self.threshold_fire.resize(new, activation.threshold_fire);
        self.threshold_fire_step.resize(new, activation.threshold_fire_step);
        self.output_scale.resize(new, 1.0);
        self.output_offset.resize(new, 0.0);
        Ok(())
    }

    /// Fixes the geometry for `input_shape` and allocates the variables (zero weights, thresholds
    /// and steps from the constructor). Rejects shapes the layer cannot take and potentials that
    /// could overflow int32.
    pub(crate) fn resolve(&mut self, input_shape: Shape3, input_max: i32) -> Result<()> {
        let name = self.label();
        let kind = self.kind();
        let mut conv_geometry = None;
        let (potentials_shape, connections, weight_max) = match &self.params {
            LayerParams::InputData { .. } => (input_shape, 0u128, 0u128),
            LayerParams::Concat { .. } => (input_shape, 1, 1),
            LayerParams::FullyConnected { num_neurons, weights_bits, .. } => {
                (Shape3::new(1, 1, *num_neurons), input_shape.len() as u128, weight_range(*weights_bits).1 as u128)
            }
            LayerParams::InputConvolutional { conv, .. }
            | LayerParams::Convolutional { conv, .. }
            | LayerParams::SeparableConvolutional { conv, .. } => {
                let axis = |n, k, s, which: &str| {
                    AxisGeometry::new(n, k, s, conv.mode).ok_or_else(|| {
                        Error::Architecture(format!(
                            "layer {name}: kernel_{which} {k} is larger than the input {which} {n} \
                             in {:?} mode",
                            conv.mode
                        ))
                    })
                };
                let g = ConvGeometry {
                    y: axis(input_shape.height, conv.kernel_height, conv.stride_y, "height")?,
                    x: axis(input_shape.width, conv.kernel_width, conv.stride_x, "width")?,
                };
                conv_geometry = Some(g);
                let taps = (conv.kernel_height * conv.kernel_width) as u128;
                let w = weight_range(conv.weights_bits).1 as u128;
                let connections = if kind == LayerKind::SeparableConvolutional {
                    // Depthwise then pointwise: C * (taps * w) * w per potential.
                    taps * input_shape.channels as u128 * w
                } else {
                    taps * input_shape.channels as u128
                };
                (Shape3::new(g.y.output, g.x.output, conv.num_neurons), connections, w)
            }
        };
        let bound = connections * weight_max * input_max.max(0) as u128;
        if bound > i32::MAX as u128 {
            bail!(
                Architecture,
                "layer {name}: its potentials could reach {bound}, beyond the int32 range \
                 (input {input_shape}, largest input value {input_max}); use fewer connections or bits"
            );
        }
        let elements = match &self.params {
            LayerParams::FullyConnected { .. } => connections * potentials_shape.channels as u128,
            p => p.convolution().map_or(0, |c| {
                (c.kernel_height * c.kernel_width) as u128 * input_shape.channels as u128 * c.num_neurons as u128
            }),
        };
        if elements > MAX_WEIGHTS {
            bail!(Architecture, "layer {name} would have {elements} weights; the engine allows at most {MAX_WEIGHTS}");
        }
        let pool = match self.params.pooling() {
            Some(p) => {
                let mode = self.params.convolution().expect("pooling layers have a convolution").mode;
                PoolGeometry::new(p, potentials_shape.height, potentials_shape.width, mode, &name)?
            }
            None => None,
        };
        let output_shape = match &pool {
            Some(p) => Shape3::new(p.y.output, p.x.output, potentials_shape.channels),
            None => potentials_shape,
        };
        let output = match self.params.activation() {
            None => OutputKind::Activations { max: input_max },
            Some(a) if a.enabled => OutputKind::Activations { max: a.max_value() },
            Some(_) if kind == LayerKind::Concat => OutputKind::Activations { max: input_max },
            Some(_) => OutputKind::Potentials,
        };
        let resolved = Resolved {
            input_shape,
            input_max,
            conv: conv_geometry,
            potentials_shape,
            pool,
            output_shape,
            output,
            potential_bound: bound as u64,
        };
        if self.resolved.map(|r| r.input_shape) != Some(input_shape) {
            self.resolved = Some(resolved);
            self.allocate_variables()?;
        } else {
            self.resolved = Some(resolved);
        }
        Ok(())
    }

    fn allocate_variables(&mut self) -> Result<()> {
        use crate::error::{collected_vec, filled_vec, zeroed_vec};
        let specs = self.variable_specs();
        for (name, shape) in specs {
            let len = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            let what = format!("variable '{name}' of layer {}", self.label());
            let Some(len) = len else {
                bail!(Memory, "{what} is too large to address");
            };
            match name {
                "weights" => self.weights = zeroed_vec(Some(len), &what)?,
                "weights_pw" => self.weights_pw = zeroed_vec(Some(len), &what)?,
                "threshold_fire" => {
                    let t = self.params.activation().map_or(0, |a| a.threshold_fire);
                    self.threshold_fire = filled_vec(len, t, &what)?;
                }
                "threshold_fire_step" => {
                    let s = self.params.activation().map_or(1.0, |a| a.threshold_fire_step);
                    self.threshold_fire_step = filled_vec(len, s, &what)?;
                }
                "output_scale" => self.output_scale = filled_vec(len, 1.0, &what)?,
                "output_offset" => self.output_offset = zeroed_vec(Some(len), &what)?,
                "wta_groups" => self.wta_groups = collected_vec(0..len as i32, &what)?,
                _ => unreachable!("unknown variable spec {name}"),
            }
        }
        Ok(())
    }

    /// Names and shapes of the variables; empty until the layer is resolved.
    pub fn variable_specs(&self) -> Vec<(&'static str, Vec<usize>)> {
        let Some(r) = &self.resolved else { return Vec::new() };
        let c = r.input_shape.channels;
        let n = r.potentials_shape.channels;
        let mut specs = Vec::new();
        match &self.params {
            LayerParams::InputData { .. } => return specs,
            LayerParams::Concat { .. } => {}
            LayerParams::FullyConnected { .. } => {
                specs.push(("weights", vec![r.input_shape.height, r.input_shape.width, c, n]))
            }
            LayerParams::InputConvolutional { conv, .. } | LayerParams::Convolutional { conv, .. } => {
                specs.push(("weights", vec![conv.kernel_height, conv.kernel_width, c, n]))
            }
            LayerParams::SeparableConvolutional { conv, .. } => {
                specs.push(("weights", vec![conv.kernel_height, conv.kernel_width, c, 1]));
                specs.push(("weights_pw", vec![1, 1, c, n]));
            }
        }
        specs.push(("threshold_fire", vec![n]));
        specs.push(("threshold_fire_step", vec![n]));
        specs.push(("output_scale", vec![n]));
        specs.push(("output_offset", vec![n]));
        if self.kind() == LayerKind::InputConvolutional {
            specs.push(("wta_groups", vec![n]));
        }
        if self.learning.is_some() {
            specs.push(("threshold_learning", vec![n]));
        }
        specs
    }

    /// Names of the variables; empty until the layer is resolved.
    pub fn variable_names(&self) -> Vec<&'static str> {
        self.variable_specs().into_iter().map(|(n, _)| n).collect()
    }

    /// The shape of variable `name` of [`Layer::variable_names`].
    pub fn variable_shape(&self, name: &str) -> Result<Vec<usize>> {
        if self.resolved.is_none() && self.kind() != LayerKind::InputData {
            self.expect_resolved()?;
        }
        match self.variable_specs().into_iter().find(|(n, _)| *n == name) {
            Some((_, shape)) => Ok(shape),
            None => bail!(
                Variable,
                "layer {} ({}) has no variable '{name}'; its variables are {:?}",
                self.label(),
                self.kind().type_name(),
                self.variable_names()
            ),
        }
    }

    /// A copy of variable `name`.
    pub fn get_variable(&self, name: &str) -> Result<Variable> {
        let shape = self.variable_shape(name)?;
        let copy = |what: &str| format!("a copy of variable '{what}' of layer {}", self.label());
        use crate::error::copied_vec;
        let data = match name {
            "weights" => VariableData::I8(copied_vec(&self.weights, &copy(name))?),
            "weights_pw" => VariableData::I8(copied_vec(&self.weights_pw, &copy(name))?),
            "threshold_fire" => VariableData::I32(copied_vec(&self.threshold_fire, &copy(name))?),
            "wta_groups" => VariableData::I32(copied_vec(&self.wta_groups, &copy(name))?),
            "threshold_learning" => VariableData::I32(match self.learning.as_ref() {
                Some(l) => copied_vec(&l.state.threshold_learning, &copy(name))?,
                None => Vec::new(),
            }),
            "output_scale" => VariableData::F32(copied_vec(&self.output_scale, &copy(name))?),
            "output_offset" => VariableData::F32(copied_vec(&self.output_offset, &copy(name))?),
            _ => VariableData::F32(copied_vec(&self.threshold_fire_step, &copy(name))?),
        };
        Ok(Variable { shape, data })
    }

    /// Replaces variable `name` after checking the shape, the element type and every value.
    pub fn set_variable(&mut self, name: &str, shape: &[usize], values: VariableValues) -> Result<()> {
        let expected = self.variable_shape(name)?;
        let layer = &self.label();
        if shape != expected.as_slice() {
            bail!(Variable, "variable '{name}' of layer {layer} has shape {expected:?}, got {shape:?}");
        }
        if values.len() != expected.iter().product::<usize>() {
            bail!(
                Variable,
                "variable '{name}' of layer {layer} needs {} values, got {}",
                expected.iter().product::<usize>(),
                values.len()
            );
        }
        let what = format!("the values of variable '{name}' of layer {layer}");
        let data = match (name, values) {
            (_, VariableValues::Exact(data)) => data,
            ("threshold_fire_step", VariableValues::Float(f)) => {
                VariableData::F32(converted(f, &what, |i, v| match crate::params::step_problem(v) {
                    None => Ok(v as f32),
                    Some(why) => Err(Error::Variable(format!(
                        "variable '{name}' of layer {layer}: the value at index {i} {why}"
                    ))),
                })?)
            }
            ("threshold_fire_step" | "output_scale" | "output_offset", VariableValues::Int(ints)) => {
                VariableData::F32(converted(ints, &what, |_, v| Ok(v as f32))?)
            }
            ("output_scale" | "output_offset", VariableValues::Float(f)) => {
                VariableData::F32(converted(f, &what, |i, v| {
                    if v.is_finite() && (v as f32).is_finite() {
                        Ok(v as f32)
                    } else {
                        Err(Error::Variable(format!(
                            "variable '{name}' of layer {layer}: value {v} at index {i} is not a finite float32 number"
                        )))
                    }
                })?)
            }
            (_, values) => {
                let ints = integers(values, name, layer)?;
                if name == "threshold_fire" || name == "threshold_learning" || name == "wta_groups" {
                    let limit = i64::from(i32::MIN)..=i64::from(i32::MAX);
                    VariableData::I32(converted(ints, &what, |i, v| {
                        if limit.contains(&v) {
                            Ok(v as i32)
                        } else {
                            Err(Error::Variable(format!(
                                "variable '{name}' of layer {layer}: value {v} at flat index {i} does not fit its type"
                            )))
                        }
                    })?)
                } else {
                    // Out-of-range weights are reported with their range by the check below.
                    VariableData::I8(converted(ints, &what, |i, v| {
                        if (-128..=127).contains(&v) {
                            return Ok(v as i8);
                        }
                        let (lo, hi) = weight_range(self.params.weights_bits().unwrap_or(1));
                        Err(Error::Variable(format!(
                            "variable '{name}' of layer {layer}: value {v} at flat index {i} is outside the weight range {lo}..={hi}"
                        )))
                    })?)
                }
            }
        };
        self.set_variable_data(name, data)
    }

    /// Replaces variable `name` with `data`, which must have the variable's element type and
    /// length; every value is range-checked.
    fn set_variable_data(&mut self, name: &str, data: VariableData) -> Result<()> {
        let layer = &self.label();
        match (name, data) {
            ("weights" | "weights_pw", VariableData::I8(values)) => {
                let bits = self.params.weights_bits().unwrap_or(1);
                let (lo, hi) = weight_range(bits);
                if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !(lo..=hi).contains(&i32::from(**v))) {
                    bail!(
                        Variable,
                        "variable '{name}' of layer {layer}: value {v} at flat index {i} is outside \
                         the {bits}-bit weight range {lo}..={hi}"
                    );
                }
                if name == "weights" {
                    self.weights = values;
                } else {
                    self.weights_pw = values;
                }
            }
            ("threshold_fire", VariableData::I32(values)) => self.threshold_fire = values,
            ("wta_groups", VariableData::I32(values)) => {
                // One pass: a group id is closed when the next id starts; seeing it again splits it.
                let mut closed = std::collections::HashSet::new();
                for i in 1..values.len() {
                    if values[i] == values[i - 1] {
                        continue;
                    }
                    closed.insert(values[i - 1]);
                    if closed.contains(&values[i]) {
                        bail!(
                            Variable,
                            "variable '{name}' of layer {layer}: group {} is split (neuron {i}); a group must be \
                             consecutive neurons",
                            values[i]
                        );
                    }
                }
                self.wta_groups = values;
            }
            ("threshold_learning", VariableData::I32(values)) => {
                if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| **v < 0) {
                    bail!(Variable, "variable '{name}' of layer {layer}: value {v} at index {i} is negative");
                }
                if let Some(learning) = self.learning.as_mut() {
                    learning.state.threshold_learning = values;
                }
            }
            ("threshold_fire_step", VariableData::F32(values)) => {
                if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !(v.is_finite() && **v > 0.0)) {
                    bail!(
                        Variable,
                        "variable '{name}' of layer {layer}: value {v} at index {i} is not a finite number > 0"
                    );
                }
                self.threshold_fire_step = values;
            }
            ("output_scale" | "output_offset", VariableData::F32(values)) => {
                if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                    bail!(
                        Variable,
                        "variable '{name}' of layer {layer}: value {v} at index {i} is not a finite number"
                    );
                }
                if name == "output_scale" {
                    self.output_scale = values;
                } else {
                    self.output_offset = values;
                }
            }
            (_, data) => {
                let kind = match data {
                    VariableData::I8(_) => "int8",
                    VariableData::I32(_) => "int32",
                    VariableData::F32(_) => "float32",
                };
                bail!(DType, "variable '{name}' of layer {layer} does not hold {kind} values")
            }
        }
        Ok(())
    }
}

/// `values` mapped by `f` (which may refuse a value) into a vector allocated fallibly, or
/// [`Error::Memory`] naming `what`.
fn converted<T, U>(values: Vec<T>, what: &str, mut f: impl FnMut(usize, T) -> Result<U>) -> Result<Vec<U>> {
    let mut out = crate::error::reserved_vec(values.len(), what)?;
    for (i, v) in values.into_iter().enumerate() {
        out.push(f(i, v)?);
    }
    Ok(out)
}

fn integers(values: VariableValues, name: &str, layer: &str) -> Result<Vec<i64>> {
    match values {
        VariableValues::Int(v) => Ok(v),
        VariableValues::Exact(_) | VariableValues::Float(_) => {
            bail!(DType, "variable '{name}' of layer {layer} holds integers; got a floating-point array")
        }
    }
}
