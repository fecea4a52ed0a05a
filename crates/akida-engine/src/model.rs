//! The model graph: layers in topological order, validation of every addition, and the parallel
//! forward pass.

use rayon::prelude::*;

use crate::activation::Thresholds;
use crate::error::{bail, Error, Result};
use crate::events::{events_from_dense, Event, EventBatch};
use crate::kernels::{self, Accumulator};
use crate::layer::{Layer, OutputKind};
use crate::params::{LayerKind, LayerParams};
use crate::shape::Shape3;

/// Inputs of one forward call.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// `num_samples` dense `uint8` samples of the model's input shape, concatenated.
    Dense { data: &'a [u8], num_samples: usize },
    /// Events, for InputData models.
    Events(&'a EventBatch),
}

impl Input<'_> {
    pub fn num_samples(&self) -> usize {
        match self {
            Input::Dense { num_samples, .. } => *num_samples,
            Input::Events(b) => b.num_samples(),
        }
    }
}

/// Where a forward call writes the model output, `(num_samples, H, W, C)` dense.
#[derive(Debug)]
pub enum Output<'a> {
    /// For models whose last layer emits activations.
    Activations(&'a mut [u8]),
    /// For models whose last layer emits potentials.
    Potentials(&'a mut [i32]),
    /// For models whose last layer emits potentials: each potential `p` of neuron `c` rescaled to
    /// `float32(float64(p) * float64(output_scale[c]) + float64(output_offset[c]))` (see
    /// [`rescale`]).
    Rescaled(&'a mut [f32]),
}

/// Counters of one layer, summed over the samples of one or more forward calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerStatistics {
    pub samples: u64,
    /// Values per input sample (all inbound layers together) and per output sample.
    pub input_size: u64,
    pub output_size: u64,
    pub input_nonzero: u64,
    pub output_nonzero: u64,
    pub synaptic_operations: u64,
}

impl LayerStatistics {
    /// Fraction of zero input values.
    pub fn input_sparsity(&self) -> f64 {
        sparsity(self.input_nonzero, self.input_size * self.samples)
    }

    /// Fraction of zero output values.
    pub fn output_sparsity(&self) -> f64 {
        sparsity(self.output_nonzero, self.output_size * self.samples)
    }

    /// Adds the counters of `other`.
    pub fn merge(&mut self, other: &LayerStatistics) {
        self.samples += other.samples;
        self.input_nonzero += other.input_nonzero;
        self.output_nonzero += other.output_nonzero;
        self.synaptic_operations += other.synaptic_operations;
        self.input_size = other.input_size;
        self.output_size = other.output_size;
    }
}

fn sparsity(nonzero: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        1.0 - nonzero as f64 / total as f64
    }
}

/// A sequential (or branching, through Concat) network with exactly one input layer, first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    pub(crate) layers: Vec<Layer>,
    /// Indices of the inbound layers of each layer (all smaller than the layer's own index).
    pub(crate) inbound: Vec<Vec<usize>>,
    /// Accumulate every layer in `i32` (tests compare both accumulator widths).
    force_wide: bool,
}

impl Model {
    pub fn new() -> Self {
        Model::default()
    }

    /// Makes every layer accumulate in `i32`, disabling the `i16` fast path; results are the same.
    pub fn set_force_wide_accumulators(&mut self, force: bool) {
        self.force_wide = force;
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    pub fn layer(&self, index: usize) -> Result<&Layer> {
        self.layers.get(index).ok_or_else(|| self.index_error(index))
    }

    pub fn layer_mut(&mut self, index: usize) -> Result<&mut Layer> {
        let err = self.index_error(index);
        self.layers.get_mut(index).ok_or(err)
    }

    fn index_error(&self, index: usize) -> Error {
        Error::LayerNotFound(format!("no layer at index {index}: the model has {} layers", self.layers.len()))
    }

    /// The index of the layer called `name`.
    pub fn index_of(&self, name: &str) -> Result<usize> {
        self.layers.iter().position(|l| l.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.layers.iter().map(|l| l.name()).collect();
            Error::LayerNotFound(format!("no layer named '{name}'; the layers are {names:?}"))
        })
    }

    /// Indices of the layers feeding layer `index`.
    pub fn inbound(&self, index: usize) -> &[usize] {
        &self.inbound[index]
    }

    /// Shape of one input sample.
    pub fn input_shape(&self) -> Result<Shape3> {
        Ok(self.first()?.expect_resolved()?.input_shape)
    }

    /// Shape of one output sample.
    pub fn output_shape(&self) -> Result<Shape3> {
        Ok(self.last()?.expect_resolved()?.output_shape)
    }

    /// What the last layer emits.
    pub fn output_kind(&self) -> Result<OutputKind> {
        Ok(self.last()?.expect_resolved()?.output)
    }

    /// Checks that the model output can be rescaled (`Output::Rescaled`, `Model.evaluate`): the
    /// last layer must emit potentials.
    pub fn check_rescalable(&self) -> Result<()> {
        let last = self.last()?;
        if last.expect_resolved()?.output == OutputKind::Potentials {
            return Ok(());
        }
        let why = match last.kind() {
            LayerKind::InputData => " (InputData has no potentials)".to_owned(),
            LayerKind::Concat => {
                " (a Concat layer passes activations through even with activations_enabled=False)".to_owned()
            }
            _ => String::new(),
        };
        bail!(
            Architecture,
            "evaluate needs a last layer with activations_enabled=False, whose potentials it rescales; the last \
             layer '{}' ({}) outputs activations{why}: use forward to get its activations",
            last.name,
            last.kind().type_name()
        )
    }

    fn first(&self) -> Result<&Layer> {
        self.layers.first().ok_or_else(|| Error::Architecture("the model has no layers".into()))
    }

    fn last(&self) -> Result<&Layer> {
        self.layers.last().ok_or_else(|| Error::Architecture("the model has no layers".into()))
    }

    /// A default name for a layer of `kind`: the type's base name, or the first free `<base>_<k>`.
    pub fn free_name(&self, kind: LayerKind) -> String {
        let base = kind.default_name();
        let taken: std::collections::HashSet<&str> = self.layers.iter().map(|l| l.name.as_str()).collect();
        if !taken.contains(base) {
            return base.to_owned();
        }
        // At most `layers` names are taken, so a free suffix exists within that many tries.
        (1..=self.layers.len() + 1)
            .map(|k| format!("{base}_{k}"))
            .find(|n| !taken.contains(n.as_str()))
            .expect("one of layers + 1 suffixes is free")
    }

    /// Appends `layer`, fed by `inbound` (default: the last layer). Resolves its geometry and checks
    /// every structural rule; on error the model is unchanged.
    pub fn add(&mut self, mut layer: Layer, inbound: Option<&[usize]>) -> Result<()> {
        if layer.name.is_empty() {
            layer.name = self.free_name(layer.kind());
        }
        let name = layer.name.clone();
        let type_name = layer.kind().type_name();
        if self.layers.iter().any(|l| l.name == name) {
            bail!(Architecture, "cannot add layer '{name}': the model already has a layer of that name");
        }
        if self.layers.is_empty() {
            if !layer.kind().is_input() {
                bail!(
                    Architecture,
                    "cannot add layer '{name}' ({type_name}) first: the first layer must be InputData or InputConvolutional"
                );
            }
            if inbound.is_some_and(|i| !i.is_empty()) {
                bail!(Architecture, "input layer '{name}' cannot have inbound layers");
            }
            self.layers.push(layer);
            self.inbound.push(Vec::new());
            return Ok(());
        }
        if layer.kind().is_input() {
            bail!(
                Architecture,
                "cannot add input layer '{name}' ({type_name}): a model has one input layer and it must be first"
            );
        }
        let inbound: Vec<usize> = match inbound {
            None => vec![self.layers.len() - 1],
            Some(i) => i.to_vec(),
        };
        for &i in &inbound {
            if i >= self.layers.len() {
                bail!(Architecture, "layer '{name}': inbound layer index {i} is not in the model");
            }
        }
        let mut unique = inbound.clone();
        unique.sort_unstable();
        unique.dedup();
        if unique.len() != inbound.len() {
            bail!(Architecture, "layer '{name}': an inbound layer is listed twice");
        }
        if layer.kind() == LayerKind::Concat {
            if inbound.len() < 2 {
                bail!(Architecture, "Concat layer '{name}' needs at least 2 inbound layers, got {}", inbound.len());
            }
        } else if inbound.len() != 1 {
            bail!(Architecture, "layer '{name}' ({type_name}) takes exactly one inbound layer, got {}", inbound.len());
        }
        let mut input_max = 0;
        let mut shape: Option<Shape3> = None;
        for &i in &inbound {
            let source = &self.layers[i];
            let r = source.expect_resolved()?;
            match r.output {
                OutputKind::Potentials => bail!(
                    Architecture,
                    "layer '{name}' cannot take the output of layer '{}': that layer has activations \
                     disabled, so it emits potentials and must be the last layer",
                    source.name
                ),
                OutputKind::Activations { max } => input_max = input_max.max(max),
            }
            let s = r.output_shape;
            shape = Some(match shape {
                None => s,
                Some(prev) if (prev.height, prev.width) == (s.height, s.width) => {
                    Shape3::new(s.height, s.width, prev.channels + s.channels)
                }
                Some(prev) => bail!(
                    Architecture,
                    "Concat layer '{name}': inbound layer '{}' has output {s}, which does not match \
                     the height and width of the previous inbound layers {prev}",
                    source.name
                ),
            });
        }
        layer.resolve(shape.expect("at least one inbound layer"), input_max)?;
        self.layers.push(layer);
        self.inbound.push(inbound);
        Ok(())
    }

    /// Removes and returns the last layer.
    pub fn pop_layer(&mut self) -> Result<Layer> {
        self.inbound.pop();
        self.layers.pop().ok_or_else(|| Error::Architecture("cannot pop a layer: the model has no layers".into()))
    }

    /// Indices of the layers the output of layer `target` depends on, in order.
    fn needed_layers(&self, target: usize) -> Vec<usize> {
        let mut needed = vec![false; self.layers.len()];
        needed[target] = true;
        for i in (0..=target).rev() {
            if needed[i] {
                for &j in &self.inbound[i] {
                    needed[j] = true;
                }
            }
        }
        (0..self.layers.len()).filter(|&i| needed[i]).collect()
    }

    /// Checks `input` against the input layer: shape, event coordinates and value range.
    pub fn check_input(&self, input: &Input<'_>) -> Result<()> {
        let first = self.first()?;
        let shape = first.expect_resolved()?.input_shape;
        match input {
            Input::Dense { data, num_samples } => {
                if Some(data.len()) != num_samples.checked_mul(shape.len()) {
                    bail!(Input, "expected {num_samples} samples of shape {shape}, got {} values", data.len());
                }
                if let LayerParams::InputData { input_bits, .. } = first.params() {
                    let max = data.iter().copied().max().unwrap_or(0);
                    if u32::from(max) >= 1u32 << input_bits {
                        let at = data.iter().position(|&v| v == max).unwrap_or(0);
                        bail!(
                            Input,
                            "input value {max} (sample {}) is out of range: input layer '{}' has \
                             input_bits={input_bits}, so values must be below {}",
                            at / shape.len().max(1),
                            first.name,
                            1u32 << input_bits
                        );
                    }
                }
            }
            Input::Events(batch) => {
                let LayerParams::InputData { input_bits, .. } = first.params() else {
                    bail!(
                        Input,
                        "events can only feed an InputData layer; '{}' is {} and takes dense uint8 images",
                        first.name,
                        first.kind().type_name()
                    );
                };
                if batch.shape() != shape {
                    bail!(Input, "events of shape {} do not match the model input shape {shape}", batch.shape());
                }
                let max = batch.max_value();
                if max >= 1 << input_bits {
                    bail!(
                        Input,
                        "event value {max} is out of range: input_bits={input_bits} allows values below {}",
                        1 << input_bits
                    );
                }
            }
        }
        Ok(())
    }

    /// Runs `input` through the model, writing the last layer's output into `output`, and returns
    /// per-layer statistics. Samples run in parallel when `parallel` is set; the result is the same.
    pub fn forward(&self, input: Input<'_>, output: Output<'_>, parallel: bool) -> Result<Vec<LayerStatistics>> {
        self.check_input(&input)?;
        let out_shape = self.output_shape()?;
        let samples = input.num_samples();
        let out_len = out_shape.len();
        let expected = samples.checked_mul(out_len);
        if let Output::Rescaled(_) = output {
            self.check_rescalable()?;
        }
        match (&output, self.output_kind()?) {
            (Output::Activations(o), OutputKind::Activations { .. }) if Some(o.len()) == expected => {}
            (Output::Potentials(o), OutputKind::Potentials) if Some(o.len()) == expected => {}
            (Output::Rescaled(o), OutputKind::Potentials) if Some(o.len()) == expected => {}
            _ => bail!(Input, "the output buffer does not match the model output"),
        }
        let plan = Plan::new(self, self.layers.len() - 1);
        let zero = || self.empty_statistics();
        let run = |scratch: &mut Scratch, s: usize, sink: Sink<'_>| {
            let mut stats = zero();
            self.run_sample(&plan, &input, s, scratch, sink, &mut stats);
            stats
        };
        let merge = |mut a: Vec<LayerStatistics>, b: Vec<LayerStatistics>| {
            a.iter_mut().zip(&b).for_each(|(x, y)| x.merge(y));
            a
        };
        let new_scratch = || Scratch::new(self.layers.len());
        let stats = match output {
            Output::Activations(o) if parallel => o
                .par_chunks_mut(out_len)
                .enumerate()
                .map_init(new_scratch, |sc, (s, chunk)| run(sc, s, Sink::Activations(chunk)))
                .reduce(zero, merge),
            Output::Potentials(o) if parallel => o
                .par_chunks_mut(out_len)
                .enumerate()
                .map_init(new_scratch, |sc, (s, chunk)| run(sc, s, Sink::Potentials(chunk)))
                .reduce(zero, merge),
            Output::Rescaled(o) if parallel => o
                .par_chunks_mut(out_len)
                .enumerate()
                .map_init(new_scratch, |sc, (s, chunk)| run(sc, s, Sink::Rescaled(chunk)))
                .reduce(zero, merge),
            Output::Activations(o) => {
                let mut sc = new_scratch();
                o.chunks_mut(out_len)
                    .enumerate()
                    .map(|(s, c)| run(&mut sc, s, Sink::Activations(c)))
                    .fold(zero(), merge)
            }
            Output::Potentials(o) => {
                let mut sc = new_scratch();
                o.chunks_mut(out_len).enumerate().map(|(s, c)| run(&mut sc, s, Sink::Potentials(c))).fold(zero(), merge)
            }
            Output::Rescaled(o) => {
                let mut sc = new_scratch();
                o.chunks_mut(out_len).enumerate().map(|(s, c)| run(&mut sc, s, Sink::Rescaled(c))).fold(zero(), merge)
            }
        };
        Ok(stats)
    }

    pub(crate) fn empty_statistics(&self) -> Vec<LayerStatistics> {
        self.layers
            .iter()
            .map(|l| {
                let r = l.resolved().expect("layers in a model are resolved");
                LayerStatistics {
                    input_size: r.input_shape.len() as u64,
                    output_size: r.output_shape.len() as u64,
                    ..LayerStatistics::default()
                }
            })
            .collect()
    }

    /// Adds the weighted inputs of data-processing layer `i` into `acc` (its potentials before
    /// pooling, zeroed); returns the synaptic operations.
    #[allow(clippy::too_many_arguments)]
    fn accumulate<A: Accumulator>(
        &self,
        i: usize,
        input: &Input<'_>,
        sample: usize,
        before: &[LayerBuffers],
        depthwise: &mut Vec<i32>,
        st: &mut LayerStatistics,
        acc: &mut [A],
    ) -> u64 {
        let layer = &self.layers[i];
        let r = layer.resolved().expect("layers in a model are resolved");
        let neurons = r.potentials_shape.channels;
        let events = || &before[self.inbound[i][0]].events;
        match layer.params() {
            LayerParams::InputConvolutional { padding_value, .. } => {
                let Input::Dense { data, .. } = input else { unreachable!("checked by check_input") };
                let n = r.input_shape.len();
                let image = &data[sample * n..(sample + 1) * n];
                st.input_nonzero += image.iter().filter(|&&v| v != 0).count() as u64;
                let g = r.conv.as_ref().expect("convolutional layers have a geometry");
                kernels::input_convolution(image, &r.input_shape, g, layer.weights(), neurons, *padding_value, acc)
            }
            LayerParams::FullyConnected { .. } => {
                st.input_nonzero += events().len() as u64;
                kernels::fully_connected_events(events(), &r.input_shape, layer.weights(), neurons, acc)
            }
            LayerParams::Convolutional { .. } => {
                st.input_nonzero += events().len() as u64;
                let g = r.conv.as_ref().expect("convolutional layers have a geometry");
                kernels::convolve_events(events(), &r.input_shape, g, layer.weights(), neurons, acc)
            }
            LayerParams::SeparableConvolutional { .. } => {
                st.input_nonzero += events().len() as u64;
                let g = r.conv.as_ref().expect("convolutional layers have a geometry");
                depthwise.clear();
                depthwise.resize(g.y.output * g.x.output * r.input_shape.channels, 0);
                let ops = kernels::depthwise_events(events(), &r.input_shape, g, layer.weights(), depthwise);
                ops + kernels::pointwise(depthwise, r.input_shape.channels, layer.weights_pw(), neurons, acc)
            }
            LayerParams::InputData { .. } | LayerParams::Concat { .. } => {
                unreachable!("layers without weights do not accumulate")
            }
        }
    }

    pub(crate) fn run_sample(
        &self,
        plan: &Plan,
        input: &Input<'_>,
        sample: usize,
        scratch: &mut Scratch,
        sink: Sink<'_>,
        stats: &mut [LayerStatistics],
    ) {
        for &i in &plan.order {
            let layer = &self.layers[i];
            let r = layer.resolved().expect("layers in a model are resolved");
            let (before, rest) = scratch.outputs.split_at_mut(i);
            let out = &mut rest[0];
            out.events.clear();
            let st = &mut stats[i];
            st.samples += 1;
            let potentials = &mut scratch.potentials;
            potentials.clear();
            match layer.params() {
                LayerParams::InputData { .. } => {
                    match input {
                        Input::Dense { data, .. } => {
                            let n = r.input_shape.len();
                            events_from_dense(&r.input_shape, &data[sample * n..(sample + 1) * n], &mut out.events);
                        }
                        Input::Events(batch) => out.events.extend_from_slice(batch.sample(sample)),
                    }
                    st.input_nonzero += out.events.len() as u64;
                    st.output_nonzero += out.events.len() as u64;
                    continue;
                }
                LayerParams::Concat { activation } => {
                    // With an activation the joined values are thresholded densely (a negative
                    // threshold makes zero inputs fire); without one, events pass through.
                    potentials.resize(r.potentials_shape.len(), 0);
                    let mut offset = 0u32;
                    for &j in &self.inbound[i] {
                        let source = &before[j].events;
                        st.input_nonzero += source.len() as u64;
                        for e in source {
                            let c = e.c + offset;
                            if activation.enabled {
                                potentials[r.output_shape.index(e.y as usize, e.x as usize, c as usize)] = e.value;
                            } else {
                                out.events.push(Event { c, ..*e });
                            }
                        }
                        offset +=
                            self.layers[j].resolved().expect("layers in a model are resolved").output_shape.channels
                                as u32;
                    }
                    if !activation.enabled {
                        st.output_nonzero += out.events.len() as u64;
                        continue;
                    }
                }
                _ if plan.narrow[i] => {
                    let narrow = &mut scratch.narrow;
                    narrow.clear();
                    narrow.resize(r.potentials_shape.len(), 0);
                    st.synaptic_operations +=
                        self.accumulate::<i16>(i, input, sample, before, &mut scratch.depthwise, st, narrow);
                    potentials.extend(narrow.iter().map(|v| v.widen()));
                }
                _ => {
                    potentials.resize(r.potentials_shape.len(), 0);
                    st.synaptic_operations +=
                        self.accumulate::<i32>(i, input, sample, before, &mut scratch.depthwise, st, potentials);
                }
            }
            let values: &mut [i32] = match &r.pool {
                Some(g) => {
                    scratch.pooled.clear();
                    scratch.pooled.resize(r.output_shape.len(), 0);
                    kernels::pool(potentials, &r.potentials_shape, g, &mut scratch.pooled, &mut scratch.sums);
                    &mut scratch.pooled
                }
                None => potentials,
            };
            if let (Some(groups), Some(_)) = (&plan.wta[i], &plan.thresholds[i]) {
                kernels::winner_take_all(values, r.output_shape.channels, groups);
            }
            match &plan.thresholds[i] {
                Some(t) => {
                    kernels::activate(values, &r.output_shape, t, &mut out.events);
                    st.output_nonzero += out.events.len() as u64;
                }
                None => {
                    out.potentials.clear();
                    out.potentials.extend_from_slice(values);
                    st.output_nonzero += values.iter().filter(|&&v| v != 0).count() as u64;
                }
            }
        }
        let last = plan.target;
        let shape = self.layers[last].resolved().expect("layers in a model are resolved").output_shape;
        let result = &scratch.outputs[last];
        match sink {
            Sink::Discard => {}
            Sink::Activations(chunk) => {
                chunk.fill(0);
                for e in &result.events {
                    chunk[e.index(&shape)] = e.value as u8;
                }
            }
            Sink::Potentials(chunk) => chunk.copy_from_slice(&result.potentials),
            Sink::Rescaled(chunk) => {
                let layer = &self.layers[last];
                rescale(&result.potentials, layer.output_scale(), layer.output_offset(), chunk);
            }
        }
    }
}

pub(crate) enum Sink<'a> {
    Activations(&'a mut [u8]),
    Potentials(&'a mut [i32]),
    Rescaled(&'a mut [f32]),
    /// Keep the result in the scratch buffers only.
    Discard,
}

/// Per-call preparation: which layers to run and their threshold cut points.
pub(crate) struct Plan {
    order: Vec<usize>,
    target: usize,
    thresholds: Vec<Option<Thresholds>>,
    /// Layers whose potentials always fit in `i16`: they accumulate in `i16`.
    narrow: Vec<bool>,
    /// Winner-take-all groups of InputConvolutional layers that have some.
    wta: Vec<Option<Vec<std::ops::Range<usize>>>>,
}

impl Plan {
    /// The plan computing the output of layer `target`.
    pub(crate) fn new(model: &Model, target: usize) -> Self {
        let thresholds = model
            .layers
            .iter()
            .map(|l| match l.params().activation() {
                Some(a) if a.enabled => {
                    Some(Thresholds::new(l.threshold_fire(), l.threshold_fire_step(), a.threshold_fire_bits))
                }
                _ => None,
            })
            .collect();
        let narrow = model
            .layers
            .iter()
            .map(|l| l.resolved().is_some_and(|r| r.potential_bound <= i16::MAX as u64) && !model.force_wide)
            .collect();
        let wta = model.layers.iter().map(|l| l.wta_ranges()).collect();
        Plan { order: model.needed_layers(target), target, thresholds, narrow, wta }
    }
}

/// Buffers one worker reuses from sample to sample.
pub(crate) struct Scratch {
    pub(crate) outputs: Vec<LayerBuffers>,
    potentials: Vec<i32>,
    pooled: Vec<i32>,
    depthwise: Vec<i32>,
    sums: Vec<i64>,
    narrow: Vec<i16>,
}

#[derive(Default)]
pub(crate) struct LayerBuffers {
    pub(crate) events: Vec<Event>,
    potentials: Vec<i32>,
}

impl Scratch {
    pub(crate) fn new(layers: usize) -> Self {
        Scratch {
            outputs: (0..layers).map(|_| LayerBuffers::default()).collect(),
            potentials: Vec::new(),
            pooled: Vec::new(),
            depthwise: Vec::new(),
            sums: Vec::new(),
            narrow: Vec::new(),
        }
    }
}

/// Rescales potentials `(positions, neurons)` per neuron `c` into `out`:
/// `float32(float64(p) * float64(scale[c]) + float64(offset[c]))`, each operation rounded to the
/// nearest float64 (no fused multiply-add), then rounded once to float32.
pub fn rescale(potentials: &[i32], scale: &[f32], offset: &[f32], out: &mut [f32]) {
    let n = scale.len();
    debug_assert_eq!(offset.len(), n);
    for (values, dst) in potentials.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        for (((d, &p), &s), &o) in dst.iter_mut().zip(values).zip(scale).zip(offset) {
            *d = (f64::from(p) * f64::from(s) + f64::from(o)) as f32;
        }
    }
}

/// The class of each sample from a model output of `samples` x `(H, W, channels)` values: the score
/// of a neuron is its largest value over positions, neurons form `num_classes` equal contiguous
/// groups, and a sample gets the group of its best neuron (lowest index on ties), or -1 when no
/// score is above 0.
pub fn classify<T: Copy + Into<i32>>(
    output: &[T],
    channels: usize,
    samples: usize,
    num_classes: usize,
) -> Result<Vec<i32>> {
    if num_classes == 0 || num_classes > channels || !channels.is_multiple_of(num_classes) {
        bail!(Parameter, "num_classes must divide the {channels} output neurons into equal groups, got {num_classes}");
    }
    let per_class = channels / num_classes;
    let sample_len = output.len().checked_div(samples).unwrap_or(0);
    let mut classes = Vec::with_capacity(samples);
    let mut scores = vec![i32::MIN; channels];
    for s in 0..samples {
        scores.fill(i32::MIN);
        for values in output[s * sample_len..(s + 1) * sample_len].chunks_exact(channels) {
            for (score, &v) in scores.iter_mut().zip(values) {
                *score = (*score).max(v.into());
            }
        }
        let mut best = 0;
        for (n, &score) in scores.iter().enumerate() {
            if score > scores[best] {
                best = n;
            }
        }
        classes.push(if scores[best] > 0 { (best / per_class) as i32 } else { -1 });
    }
    Ok(classes)
}
