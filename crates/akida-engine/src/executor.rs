//! The executor: runs the layers of a [`Model`] on one sample with the kernels its [`Plan`] chose
//! ([`run_layer`], [`run_sample`]), reusing a worker's [`Scratch`] buffers, and the parallel
//! forward pass built on them ([`Model::forward`], [`Model::forward_with`] and its
//! [`Observer`]). Learning and emulators call the same functions.

use rayon::prelude::*;

use crate::error::{bail, Result};
use crate::events::{Event, EventBatch};
use crate::graph::Model;
use crate::kernels::dot::{self, Windows};
use crate::kernels::{self, Accumulator, OutputRegion, WeightsView};
use crate::layer::OutputKind;
use crate::params::LayerParams;
use crate::plan::{AccumulatorWidth, Kernel, Method, Plan};
use crate::statistics::{merge_all, LayerStatistics};

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

/// Where one sample's model output goes: a `(H, W, C)` slice of an [`Output`].
#[derive(Debug)]
pub enum Sink<'a> {
    Activations(&'a mut [u8]),
    Potentials(&'a mut [i32]),
    Rescaled(&'a mut [f32]),
}

/// The output of one layer for one sample.
#[derive(Debug, Clone, Copy)]
pub enum LayerValues<'a> {
    /// Activations (or passed-through inputs) as events in canonical order.
    Events(&'a [Event]),
    /// Potentials `(H, W, C)`, for a layer with activations disabled.
    Potentials(&'a [i32]),
}

/// What an [`Observer`] sees after each layer of each sample.
#[derive(Debug, Clone, Copy)]
pub struct LayerOutput<'a> {
    pub sample: usize,
    pub layer: usize,
    pub values: LayerValues<'a>,
    /// The layer's counters for this sample alone.
    pub statistics: &'a LayerStatistics,
}

/// A per-layer callback of [`Model::forward_with`]: called after every layer of every sample, from
/// the worker thread that ran it (samples in any order when parallel, layers of one sample in
/// order). Closures `Fn(&LayerOutput)` are observers.
pub trait Observer: Sync {
    fn observe(&self, output: &LayerOutput<'_>);

    /// Whether the caller gave the run up (Ctrl-C in the bindings). Read before each layer of
    /// each sample; once it returns true it must stay true: the remaining layers and outputs are
    /// skipped, so the output of a cancelled run is meaningless and is meant to be dropped.
    #[inline(always)]
    fn cancelled(&self) -> bool {
        false
    }

    /// Whether the observer reads [`LayerOutput::values`]; when it does not, a forward pass may
    /// skip building the events of layers whose outputs only fixed-work kernels read.
    fn sees_values(&self) -> bool {
        true
    }
}

impl<F: Fn(&LayerOutput<'_>) + Sync> Observer for F {
    fn observe(&self, output: &LayerOutput<'_>) {
        self(output)
    }
}

/// The observer of [`Model::forward`]: ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {
    #[inline(always)]
    fn observe(&self, _: &LayerOutput<'_>) {}

    fn sees_values(&self) -> bool {
        false
    }
}

/// Buffers one worker reuses from sample to sample: every layer's output and the working space
/// of the kernels.
#[derive(Debug, Default)]
pub struct Scratch {
    outputs: Vec<LayerBuffers>,
    potentials: Vec<i32>,
    pooled: Vec<i32>,
    depthwise: Vec<i32>,
    sums: Vec<i64>,
    narrow: Vec<i16>,
    /// The dense input map of the dot-product kernel.
    map: Vec<u8>,
    /// The input bit planes of the bit-packed kernel.
    planes: Vec<u64>,
    /// Whether a thresholded layer may leave its output dense only (no events) when no layer it
    /// feeds reads events; see [`Scratch::with_lazy_events`].
    lazy_events: bool,
}

#[derive(Debug, Default)]
struct LayerBuffers {
    events: Vec<Event>,
    potentials: Vec<i32>,
    /// The same output as `events`, dense `(H, W, C)`, when `dense` is set: the fixed-work
    /// kernels of the next layer build their input from it instead of scattering the events.
    levels: Vec<u8>,
    dense: bool,
    /// The number of non-zero values of the output (the length of `events` when they were
    /// built).
    nonzero: usize,
}

impl Scratch {
    /// Buffers for a model of `layers` layers.
    pub fn new(layers: usize) -> Self {
        Scratch { outputs: (0..layers).map(|_| LayerBuffers::default()).collect(), ..Scratch::default() }
    }

    /// Buffers for a model of `layers` layers whose layers build their output events only when
    /// a layer they feed runs an event-driven kernel (or is a Concat): the others leave their
    /// activations dense, which is all the fixed-work kernels and [`write_output`] read. Then
    /// [`Scratch::events`], [`Scratch::values`] and [`Scratch::take_events`] of such a layer are
    /// empty: for forward runs that read only the output, through [`write_output`].
    pub fn with_lazy_events(layers: usize) -> Self {
        Scratch { lazy_events: true, ..Scratch::new(layers) }
    }

    /// The events layer `layer` emitted for the last sample it ran (empty for a potentials layer).
    pub fn events(&self, layer: usize) -> &[Event] {
        &self.outputs[layer].events
    }

    /// The output potentials of layer `layer` (a layer with activations disabled) for the last
    /// sample it ran.
    pub fn potentials(&self, layer: usize) -> &[i32] {
        &self.outputs[layer].potentials
    }

    /// The output of layer `layer` of `model` for the last sample it ran.
    pub fn values(&self, model: &Model, layer: usize) -> LayerValues<'_> {
        let r = model.layers()[layer].resolved().expect("layers in a model are resolved");
        match r.output {
            OutputKind::Potentials => LayerValues::Potentials(&self.outputs[layer].potentials),
            OutputKind::Activations { .. } => LayerValues::Events(&self.outputs[layer].events),
        }
    }

    /// The accumulated potentials `(H, W, N)` of the last weighted layer run, before pooling.
    pub fn accumulated(&self) -> &[i32] {
        &self.potentials
    }

    /// Makes `values` the accumulated potentials of the layer [`finish_layer`] finishes next, as
    /// its kernel would have left them.
    pub fn set_accumulated(&mut self, values: &[i32]) {
        self.potentials.clear();
        self.potentials.extend_from_slice(values);
    }

    /// Takes the events of layer `layer` out of the buffers.
    pub fn take_events(&mut self, layer: usize) -> Vec<Event> {
        self.outputs[layer].dense = false;
        std::mem::take(&mut self.outputs[layer].events)
    }

    /// Makes `events` the output of layer `layer` (the input of the layers it feeds) and returns
    /// the events it held.
    pub fn replace_events(&mut self, layer: usize, events: Vec<Event>) -> Vec<Event> {
        self.outputs[layer].dense = false;
        self.outputs[layer].nonzero = events.len();
        std::mem::replace(&mut self.outputs[layer].events, events)
    }
}

/// Runs layer `i` of `model` on sample `sample`: reads the outputs of its inbound layers from
/// `scratch` (or the sample of `input`, for the input layer), accumulates with the kernel of
/// `plan`, pools, applies winner-take-all and thresholds, and leaves its output in `scratch`.
/// Returns the layer's counters for this sample.
pub fn run_layer(
    model: &Model,
    plan: &Plan,
    i: usize,
    input: &Input<'_>,
    sample: usize,
    scratch: &mut Scratch,
) -> LayerStatistics {
    with_glue_features(plan, || {
        let (mut st, stage) = accumulate_body(model, plan, i, input, sample, scratch);
        if stage == Stage::Accumulated {
            finish_body(model, plan, i, scratch, &mut st);
        }
        st
    })
}

/// The end of [`run_layer`] for data-processing layer `i` (one with weights) whose potentials
/// before pooling were set with [`Scratch::set_accumulated`] (and whose input is in `scratch`):
/// pools, applies winner-take-all and thresholds, leaves the output in `scratch` and adds its
/// non-zero values to `st`.
pub fn finish_layer(model: &Model, plan: &Plan, i: usize, scratch: &mut Scratch, st: &mut LayerStatistics) {
    debug_assert!(plan.layers[i].kernel != Kernel::PassThrough, "finish_layer runs layers with weights");
    with_glue_features(plan, || {
        scratch.outputs[i].events.clear();
        scratch.outputs[i].dense = false;
        finish_body(model, plan, i, scratch, st)
    })
}

/// The counters [`run_layer`] records before [`finish_layer`] for FullyConnected layer `i` fed
/// `nonzero` events (every kernel of such a layer counts `nonzero * neurons` operations): for a
/// caller that computes its potentials itself and finishes it with [`finish_layer`].
pub fn fully_connected_counters(model: &Model, plan: &Plan, i: usize, nonzero: usize) -> LayerStatistics {
    let r = model.layers()[i].resolved().expect("layers in a model are resolved");
    debug_assert!(r.conv.is_none(), "fully_connected_counters counts FullyConnected layers");
    let mut st = LayerStatistics::sized(r.input_shape.len(), r.output_shape.len());
    st.samples = 1;
    st.input_nonzero = nonzero as u64;
    st.kernels[plan.layers[i].method(nonzero) as usize] += 1;
    st.synaptic_operations = (nonzero * r.potentials_shape.channels) as u64;
    st
}

/// Whether [`accumulate_body`] left a complete output or potentials for [`finish_body`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Done,
    Accumulated,
}

/// Runs `f` compiled with AVX2 enabled when the plan's kernel set has it: the glue between the
/// kernels (maps, offsets, counts) vectorizes better with AVX2.
#[inline(always)]
fn with_glue_features<R>(plan: &Plan, f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if plan.kernels.has_avx2() {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: the plan's kernel set has AVX2 only when the processor supports it.
        return unsafe { avx2(f) };
    }
    f()
}

/// The first half of [`run_layer`]: the layer's counters for this sample and whether its output
/// is complete (InputData, Concat without activation); otherwise its potentials (before pooling)
/// are in `scratch` for [`finish_body`].
#[inline(always)]
fn accumulate_body(
    model: &Model,
    plan: &Plan,
    i: usize,
    input: &Input<'_>,
    sample: usize,
    scratch: &mut Scratch,
) -> (LayerStatistics, Stage) {
    let layer = &model.layers()[i];
    let lp = &plan.layers[i];
    let r = layer.resolved().expect("layers in a model are resolved");
    let mut st = LayerStatistics::sized(r.input_shape.len(), r.output_shape.len());
    st.samples = 1;
    // Whether the events of this layer's output must be built: some layer it feeds reads them.
    let events_needed = |nonzero: usize| !scratch.lazy_events || reads_events(model, plan, i, nonzero);
    let (before, rest) = scratch.outputs.split_at_mut(i);
    let out = &mut rest[0];
    out.events.clear();
    out.dense = false;
    // Cleared by the paths that add into it; the fixed-work kernels write every potential.
    let potentials = &mut scratch.potentials;
    // The kernel for this sample, from its count of non-zero inputs.
    let method = (lp.kernel != Kernel::PassThrough).then(|| {
        let nnz = input_nonzero(model, i, input, sample, before);
        st.input_nonzero += nnz as u64;
        let m = lp.method(nnz);
        st.kernels[m as usize] += 1;
        m
    });
    match (layer.params(), lp.accumulator, method) {
        (LayerParams::InputData { .. }, _, _) => {
            potentials.clear();
            match input {
                Input::Dense { data, .. } => {
                    let n = r.input_shape.len();
                    out.levels.clear();
                    out.levels.extend_from_slice(&data[sample * n..(sample + 1) * n]);
                    out.nonzero = kernels::post::count_nonzero(&out.levels);
                    if events_needed(out.nonzero) {
                        kernels::post::events_from_levels(&out.levels, &r.input_shape, &mut out.events);
                    }
                    out.dense = true;
                }
                Input::Events(batch) => {
                    out.events.extend_from_slice(batch.sample(sample));
                    out.nonzero = out.events.len();
                }
            }
            st.input_nonzero += out.nonzero as u64;
            st.output_nonzero += out.nonzero as u64;
            return (st, Stage::Done);
        }
        (LayerParams::Concat { activation }, _, _) => {
            // With an activation the joined values are thresholded densely (a negative threshold
            // makes zero inputs fire); without one, events pass through.
            potentials.clear();
            potentials.resize(r.potentials_shape.len(), 0);
            let mut offset = 0u32;
            for &j in model.inbound(i) {
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
                    model.layers()[j].resolved().expect("layers in a model are resolved").output_shape.channels as u32;
            }
            if !activation.enabled {
                out.nonzero = out.events.len();
                st.output_nonzero += out.nonzero as u64;
                return (st, Stage::Done);
            }
        }
        (_, _, Some(Method::Dense | Method::BitPacked)) => {
            // Every potential is written: keep the old contents instead of zeroing.
            potentials.resize(r.potentials_shape.len(), 0);
            potentials.truncate(r.potentials_shape.len());
            let work =
                FixedWork { map: &mut scratch.map, planes: &mut scratch.planes, depthwise: &mut scratch.depthwise };
            st.synaptic_operations += accumulate_fixed(model, plan, i, input, sample, before, work, potentials);
        }
        (_, AccumulatorWidth::I16, _) => {
            let narrow = &mut scratch.narrow;
            narrow.clear();
            narrow.resize(r.potentials_shape.len(), 0);
            st.synaptic_operations +=
                accumulate::<i16>(model, plan, i, input, sample, before, &mut scratch.depthwise, narrow);
            potentials.clear();
            potentials.extend(narrow.iter().map(|v| v.widen()));
        }
        (_, AccumulatorWidth::I32, _) => {
            potentials.clear();
            potentials.resize(r.potentials_shape.len(), 0);
            st.synaptic_operations +=
                accumulate::<i32>(model, plan, i, input, sample, before, &mut scratch.depthwise, potentials);
        }
    }
    (st, Stage::Accumulated)
}

/// The second half of [`run_layer`] for a layer whose potentials (before pooling) are in
/// `scratch`: pools, applies winner-take-all and thresholds, leaves the output in `scratch` and
/// adds its non-zero values to `st`.
#[inline(always)]
fn finish_body(model: &Model, plan: &Plan, i: usize, scratch: &mut Scratch, st: &mut LayerStatistics) {
    let lp = &plan.layers[i];
    let r = model.layers()[i].resolved().expect("layers in a model are resolved");
    let events_needed = |nonzero: usize| !scratch.lazy_events || reads_events(model, plan, i, nonzero);
    let out = &mut scratch.outputs[i];
    let potentials = &mut scratch.potentials;
    let values: &mut [i32] = match &r.pool {
        Some(g) => {
            // Pooling writes every value.
            scratch.pooled.resize(r.output_shape.len(), 0);
            scratch.pooled.truncate(r.output_shape.len());
            kernels::pool(potentials, &r.potentials_shape, g, &mut scratch.pooled, &mut scratch.sums);
            &mut scratch.pooled
        }
        None => potentials,
    };
    if let Some(groups) = &lp.wta {
        kernels::winner_take_all(values, r.output_shape.channels, groups);
    }
    match &lp.thresholds {
        Some(t) => {
            out.levels.clear();
            out.levels.resize(values.len(), 0);
            t.levels(values, &mut out.levels);
            out.nonzero = kernels::post::count_nonzero(&out.levels);
            if events_needed(out.nonzero) {
                kernels::post::events_from_levels(&out.levels, &r.output_shape, &mut out.events);
            }
            out.dense = true;
            st.output_nonzero += out.nonzero as u64;
        }
        None => {
            out.potentials.clear();
            out.potentials.extend_from_slice(values);
            out.nonzero = 0;
            st.output_nonzero += values.iter().filter(|&&v| v != 0).count() as u64;
        }
    }
}

/// The non-zero inputs of data-processing layer `i` for this sample: pixels of the image, or
/// events of its inbound layer.
fn input_nonzero(model: &Model, i: usize, input: &Input<'_>, sample: usize, before: &[LayerBuffers]) -> usize {
    match model.layers()[i].params() {
        LayerParams::InputConvolutional { .. } => {
            let Input::Dense { data, .. } = input else { unreachable!("checked by check_input") };
            let n = model.layers()[i].resolved().expect("layers in a model are resolved").input_shape.len();
            kernels::post::count_nonzero(&data[sample * n..(sample + 1) * n])
        }
        _ => before[model.inbound(i)[0]].nonzero,
    }
}

/// Whether some layer that layer `i` of `model` feeds reads its output as events when it holds
/// `nonzero` non-zero values: a Concat, or a layer whose kernel for that many inputs is
/// event-driven.
fn reads_events(model: &Model, plan: &Plan, i: usize, nonzero: usize) -> bool {
    (i + 1..model.layers().len()).filter(|&j| model.inbound(j).contains(&i)).any(|j| {
        let lp = &plan.layers[j];
        lp.kernel == Kernel::PassThrough || lp.method(nonzero) == Method::Events
    })
}

/// The scratch buffers of [`accumulate_fixed`].
struct FixedWork<'a> {
    map: &'a mut Vec<u8>,
    planes: &'a mut Vec<u64>,
    depthwise: &'a mut Vec<i32>,
}

/// Writes the potentials (before pooling) of data-processing layer `i` into `acc` with the
/// fixed-work kernel [`crate::plan::LayerPlan::method`] chose (dense or bit-packed); returns the
/// synaptic operations the event-driven kernel would count.
#[allow(clippy::too_many_arguments)]
fn accumulate_fixed(
    model: &Model,
    plan: &Plan,
    i: usize,
    input: &Input<'_>,
    sample: usize,
    before: &[LayerBuffers],
    work: FixedWork<'_>,
    acc: &mut [i32],
) -> u64 {
    let FixedWork { map, planes, depthwise } = work;
    let layer = &model.layers()[i];
    let lp = &plan.layers[i];
    let r = layer.resolved().expect("layers in a model are resolved");
    let neurons = r.potentials_shape.channels as u64;
    // The inbound layer's output (none for InputConvolutional), and its dense values when it
    // left them.
    let source = model.inbound(i).first().map(|&j| &before[j]);
    let events = || &source.expect("data-processing layers have an inbound layer").events;
    let dense_input = source.filter(|s| s.dense).map(|s| &s.levels[..]);
    // The dense input of a Convolutional or SeparableConvolutional layer over its map.
    let input_map = |g, map: &mut Vec<u8>| {
        if let Some(levels) = dense_input {
            dot::image_map(levels, &r.input_shape, g, 0, map);
        } else {
            dot::events_map(events(), &r.input_shape, g, map);
        }
    };
    let k = plan.kernels;
    if let (Some(bits), Kernel::FullyConnectedEvents) = (&lp.bits, lp.kernel) {
        if let Some(levels) = dense_input {
            crate::kernels::bits::input_planes_dense(levels, lp.input_planes, planes);
        } else {
            crate::kernels::bits::input_planes(events(), &r.input_shape, lp.input_planes, planes);
        }
        k.fully_connected_bits(planes, bits, acc);
        return source.map_or(0, |s| s.nonzero) as u64 * neurons;
    }
    let weights = lp.dot.as_ref().expect("the plan packs the weights of the kernels it may choose");
    match lp.kernel {
        Kernel::FullyConnectedEvents => {
            if let Some(levels) = dense_input {
                dot::dense_vector_map(levels, map);
            } else {
                dot::vector_map(events(), &r.input_shape, map);
            }
            k.dot_product(map, r.input_max as u8, &Windows::fully_connected(), weights, acc);
            source.map_or(0, |s| s.nonzero) as u64 * neurons
        }
        Kernel::InputConvolution | Kernel::ConvolveEvents => {
            let g = r.conv.as_ref().expect("convolutional layers have a geometry");
            if let LayerParams::InputConvolutional { padding_value, .. } = layer.params() {
                let Input::Dense { data, .. } = input else { unreachable!("checked by check_input") };
                let n = r.input_shape.len();
                dot::image_map(&data[sample * n..(sample + 1) * n], &r.input_shape, g, *padding_value, map);
            } else {
                input_map(g, map);
            }
            let channels = r.input_shape.channels;
            // Image pixels and the padding value are at most 255.
            let input_max =
                if matches!(layer.params(), LayerParams::InputConvolutional { .. }) { 255 } else { r.input_max as u8 };
            k.dot_product(map, input_max, &Windows::convolution(g, channels), weights, acc);
            dot::convolution_operations(map, g, channels, r.potentials_shape.channels)
        }
        Kernel::SeparableEvents => {
            // The depthwise step over the input map, channels in lanes; the pointwise step as a
            // 1x1 dot product of the depthwise values offset by 128 (see
            // `LayerPlan::pointwise_sums`).
            let g = r.conv.as_ref().expect("convolutional layers have a geometry");
            let channels = r.input_shape.channels;
            let positions = g.y.output * g.x.output;
            depthwise.clear();
            depthwise.resize(positions * channels, 0);
            input_map(g, map);
            k.depthwise_dense(map, g, channels, layer.weights(), depthwise);
            let mut ops = dot::convolution_operations(map, g, channels, 1);
            map.clear();
            map.extend(depthwise.iter().map(|&d| (d + 128) as u8));
            map.resize(positions * channels + 4, 0);
            ops += depthwise.iter().filter(|&&d| d != 0).count() as u64 * neurons;
            let windows = Windows { outputs: (1, positions), y_step: 0, x_step: channels, row_step: 0 };
            k.dot_product(map, 255, &windows, weights, acc);
            let n = r.potentials_shape.channels;
            for values in acc.chunks_exact_mut(n) {
                for (v, &sum) in values.iter_mut().zip(&lp.pointwise_sums) {
                    *v -= 128 * sum;
                }
            }
            ops
        }
        Kernel::PassThrough => unreachable!("layers without weights do not accumulate"),
    }
}

/// Adds the weighted inputs of data-processing layer `i` into `acc` (its potentials before
/// pooling, zeroed) with the event-driven kernel of the plan; returns the synaptic operations.
#[allow(clippy::too_many_arguments)]
fn accumulate<A: Accumulator>(
    model: &Model,
    plan: &Plan,
    i: usize,
    input: &Input<'_>,
    sample: usize,
    before: &[LayerBuffers],
    depthwise: &mut Vec<i32>,
    acc: &mut [A],
) -> u64 {
    let layer = &model.layers()[i];
    let r = layer.resolved().expect("layers in a model are resolved");
    let neurons = r.potentials_shape.channels;
    let k = plan.kernels;
    let weights = WeightsView::full(layer.weights(), neurons);
    let out = OutputRegion::dense(acc, neurons);
    let events = || &before[model.inbound(i)[0]].events;
    let geometry = || r.conv.as_ref().expect("convolutional layers have a geometry");
    match plan.layers[i].kernel {
        Kernel::InputConvolution => {
            let Input::Dense { data, .. } = input else { unreachable!("checked by check_input") };
            let LayerParams::InputConvolutional { padding_value, .. } = layer.params() else {
                unreachable!("the plan gives this kernel to InputConvolutional layers only")
            };
            let n = r.input_shape.len();
            let image = &data[sample * n..(sample + 1) * n];
            k.input_convolution(image, &r.input_shape, geometry(), *padding_value, weights, out)
        }
        Kernel::FullyConnectedEvents => k.fully_connected_events(events(), &r.input_shape, weights, out),
        Kernel::ConvolveEvents => k.convolve_events(events(), &r.input_shape, geometry(), weights, out),
        Kernel::SeparableEvents => {
            let g = geometry();
            let channels = r.input_shape.channels;
            depthwise.clear();
            depthwise.resize(g.y.output * g.x.output * channels, 0);
            let ops = k.depthwise_events(events(), &r.input_shape, g, layer.weights(), depthwise);
            ops + k.pointwise(depthwise, channels, WeightsView::full(layer.weights_pw(), neurons), out)
        }
        Kernel::PassThrough => unreachable!("layers without weights do not accumulate"),
    }
}

/// Runs the layers `order` (as [`Model::needed_layers`] gives them) of `model` on sample `sample`,
/// adding each layer's counters to `stats` and showing its output to `observer`.
#[allow(clippy::too_many_arguments)]
pub fn run_sample<O: Observer + ?Sized>(
    model: &Model,
    plan: &Plan,
    order: &[usize],
    input: &Input<'_>,
    sample: usize,
    scratch: &mut Scratch,
    stats: &mut [LayerStatistics],
    observer: &O,
) {
    for &i in order {
        if observer.cancelled() {
            return;
        }
        let st = run_layer(model, plan, i, input, sample, scratch);
        stats[i].merge(&st);
        observer.observe(&LayerOutput { sample, layer: i, values: scratch.values(model, i), statistics: &st });
    }
}

/// Writes the output of layer `layer` held in `scratch` densely into `sink`.
pub fn write_output(model: &Model, layer: usize, scratch: &Scratch, sink: Sink<'_>) {
    let l = &model.layers()[layer];
    let shape = l.resolved().expect("layers in a model are resolved").output_shape;
    let result = &scratch.outputs[layer];
    match sink {
        Sink::Activations(chunk) if result.dense => chunk.copy_from_slice(&result.levels),
        Sink::Activations(chunk) => {
            chunk.fill(0);
            for e in &result.events {
                chunk[e.index(&shape)] = e.value as u8;
            }
        }
        Sink::Potentials(chunk) => chunk.copy_from_slice(&result.potentials),
        Sink::Rescaled(chunk) => rescale(&result.potentials, l.output_scale(), l.output_offset(), chunk),
    }
}

/// Maps `f` over `items` and folds the results with `merge`: on rayon's pool, with one `init()`
/// state per worker, when `parallel` is asked and worth it (more than one item and more than one
/// worker thread); otherwise in order with one state. `merge` must be associative; the result is
/// the same either way.
pub fn map_reduce<T: Send, S, R: Send>(
    parallel: bool,
    items: Vec<T>,
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, T) -> R + Sync + Send,
    identity: impl Fn() -> R + Sync + Send,
    merge: impl Fn(R, R) -> R + Sync + Send,
) -> R {
    if parallel && items.len() > 1 && rayon::current_num_threads() > 1 {
        items.into_par_iter().map_init(init, f).reduce(identity, merge)
    } else {
        let mut state = init();
        items.into_iter().fold(identity(), |acc, item| {
            let r = f(&mut state, item);
            merge(acc, r)
        })
    }
}

impl Model {
    /// An upper bound of the bytes one worker's [`Scratch`] needs for one sample of this model:
    /// every layer's output (events, dense activations or potentials) and the kernels' working space.
    pub fn working_bytes_per_sample(&self) -> usize {
        self.layers()
            .iter()
            .filter_map(|l| l.resolved())
            .map(|r| {
                let accumulated = r.potentials_shape.len().saturating_mul(4 + 2 + 4 + 8);
                let output = r.output_shape.len().saturating_mul(std::mem::size_of::<Event>() + 4 + 4 + 1);
                accumulated.saturating_add(output)
            })
            .fold(0usize, usize::saturating_add)
    }

    /// Fails with [`Error::Memory`](crate::Error::Memory) when the working buffers of `workers`
    /// workers cannot be allocated now (a probe: the memory is allocated and freed untouched), so
    /// that a model whose per-sample buffers do not fit raises instead of aborting mid-run.
    pub fn check_working_memory(&self, workers: usize) -> Result<()> {
        let bytes = self.working_bytes_per_sample().saturating_mul(workers.max(1));
        crate::error::reserved_vec::<u8>(bytes, "the working buffers of the layers").map(drop)
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
                            first.name(),
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
                        first.name(),
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

    /// Checks that `output` matches the model output for `samples` samples.
    pub fn check_output(&self, output: &Output<'_>, samples: usize) -> Result<()> {
        let expected = samples.checked_mul(self.output_shape()?.len());
        if let Output::Rescaled(_) = output {
            self.check_rescalable()?;
        }
        match (output, self.output_kind()?) {
            (Output::Activations(o), OutputKind::Activations { .. }) if Some(o.len()) == expected => Ok(()),
            (Output::Potentials(o), OutputKind::Potentials) if Some(o.len()) == expected => Ok(()),
            (Output::Rescaled(o), OutputKind::Potentials) if Some(o.len()) == expected => Ok(()),
            _ => bail!(Input, "the output buffer does not match the model output"),
        }
    }

    /// Runs `input` through the model, writing the last layer's output into `output`, and returns
    /// per-layer statistics. Samples run in parallel when `parallel` is set; the result is the same.
    pub fn forward(&self, input: Input<'_>, output: Output<'_>, parallel: bool) -> Result<Vec<LayerStatistics>> {
        self.forward_with(input, output, parallel, &NoObserver)
    }

    /// [`Model::forward`], showing every layer's output and counters of every sample to `observer`.
    pub fn forward_with<O: Observer + ?Sized>(
        &self,
        input: Input<'_>,
        output: Output<'_>,
        parallel: bool,
        observer: &O,
    ) -> Result<Vec<LayerStatistics>> {
        self.check_output(&output, input.num_samples())?;
        let last = self.layers().len() - 1;
        self.run_to(last, input, output, parallel, observer)
    }

    /// Runs `input` through the layers the output of layer `target` needs (and only those: the
    /// statistics of the others stay at zero samples) and writes layer `target`'s output into
    /// `output`: activations, or potentials for a layer with activations disabled; `Rescaled`
    /// only for the last layer. The result is what [`Model::forward`] gives on the model cut
    /// after `target` (its needed layers).
    pub fn forward_to(
        &self,
        target: usize,
        input: Input<'_>,
        output: Output<'_>,
        parallel: bool,
    ) -> Result<Vec<LayerStatistics>> {
        self.forward_to_with(target, input, output, parallel, &NoObserver)
    }

    /// [`Model::forward_to`] with an observer, as [`Model::forward_with`] is to
    /// [`Model::forward`].
    pub fn forward_to_with<O: Observer + ?Sized>(
        &self,
        target: usize,
        input: Input<'_>,
        output: Output<'_>,
        parallel: bool,
        observer: &O,
    ) -> Result<Vec<LayerStatistics>> {
        self.check_layer_output(target, &output, input.num_samples())?;
        self.run_to(target, input, output, parallel, observer)
    }

    /// Checks that `output` holds `samples` outputs of layer `target`.
    pub fn check_layer_output(&self, target: usize, output: &Output<'_>, samples: usize) -> Result<()> {
        let layer = self.layer(target)?;
        if target + 1 == self.layers().len() {
            return self.check_output(output, samples);
        }
        let r = layer.expect_resolved()?;
        let expected = samples.checked_mul(r.output_shape.len());
        match (output, r.output) {
            (Output::Activations(o), OutputKind::Activations { .. }) if Some(o.len()) == expected => Ok(()),
            (Output::Potentials(o), OutputKind::Potentials) if Some(o.len()) == expected => Ok(()),
            _ => bail!(Input, "the output buffer does not match the output of layer '{}'", layer.name()),
        }
    }

    /// The body of [`Model::forward_with`] and [`Model::forward_to_with`]; `output` was checked.
    fn run_to<O: Observer + ?Sized>(
        &self,
        target: usize,
        input: Input<'_>,
        output: Output<'_>,
        parallel: bool,
        observer: &O,
    ) -> Result<Vec<LayerStatistics>> {
        self.check_input(&input)?;
        self.check_working_memory(if parallel { rayon::current_num_threads() } else { 1 })?;
        let out_len = self.layer(target)?.expect_resolved()?.output_shape.len();
        let plan = self.plan();
        let order = self.needed_layers(target);
        let run = |scratch: &mut Scratch, s: usize, sink: Sink<'_>| {
            let mut stats = self.empty_statistics();
            run_sample(self, &plan, &order, &input, s, scratch, &mut stats, observer);
            if !observer.cancelled() {
                write_output(self, target, scratch, sink);
            }
            stats
        };
        // Only an observer sees the outputs of the layers in between as events.
        let lazy = !observer.sees_values();
        let new_scratch =
            || if lazy { Scratch::with_lazy_events(self.layers().len()) } else { Scratch::new(self.layers().len()) };
        let zero = || self.empty_statistics();
        let merge = |a, b: Vec<LayerStatistics>| merge_all(a, &b);
        fn samples<T>(o: &mut [T], len: usize) -> Vec<(usize, &mut [T])> {
            o.chunks_mut(len).enumerate().collect()
        }
        Ok(match output {
            Output::Activations(o) => map_reduce(
                parallel,
                samples(o, out_len),
                new_scratch,
                |sc, (s, c)| run(sc, s, Sink::Activations(c)),
                zero,
                merge,
            ),
            Output::Potentials(o) => map_reduce(
                parallel,
                samples(o, out_len),
                new_scratch,
                |sc, (s, c)| run(sc, s, Sink::Potentials(c)),
                zero,
                merge,
            ),
            Output::Rescaled(o) => map_reduce(
                parallel,
                samples(o, out_len),
                new_scratch,
                |sc, (s, c)| run(sc, s, Sink::Rescaled(c)),
                zero,
                merge,
            ),
        })
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::testing::{engine_forward, random_inputs, random_model, Rng};

    #[test]
    fn models_and_plans_stay_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Model>();
        check::<Plan>();
        check::<Scratch>();
    }

    #[test]
    fn the_plan_is_cached_until_a_change() {
        let mut rng = Rng(7);
        let mut model = random_model(&mut rng);
        let plan = model.plan();
        assert!(Arc::ptr_eq(&plan, &model.plan()));
        let clone = model.clone();
        assert!(Arc::ptr_eq(&plan, &clone.plan()));
        model.layer_mut(0).unwrap();
        assert!(!Arc::ptr_eq(&plan, &model.plan()));
        let plan = model.plan();
        model.set_force_wide_accumulators(true);
        let wide = model.plan();
        assert!(!Arc::ptr_eq(&plan, &wide));
        assert!(wide.layers.iter().all(|l| l.accumulator == AccumulatorWidth::I32));
        let mut other = clone.clone();
        other.set_force_wide_accumulators(true);
        assert_eq!(model, other, "the cache takes no part in equality");
    }

    /// The observer sees every layer of every sample: its last layer's values are the output, and
    /// its counters add up to the returned statistics.
    #[test]
    fn a_cancelled_run_stops_before_its_layers() {
        struct Cancelled(std::sync::atomic::AtomicUsize);
        impl Observer for Cancelled {
            fn observe(&self, _: &LayerOutput<'_>) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            fn cancelled(&self) -> bool {
                true
            }
        }
        let mut rng = crate::testing::Rng(7);
        let model = crate::testing::random_model(&mut rng);
        let shape = model.input_shape().unwrap();
        let samples = 5;
        let data = vec![0u8; samples * shape.len()];
        let observer = Cancelled(Default::default());
        for parallel in [false, true] {
            let input = Input::Dense { data: &data, num_samples: samples };
            let mut out = vec![7u8; samples * model.output_shape().unwrap().len()];
            let mut potentials = vec![7i32; out.len()];
            let output = match model.output_kind().unwrap() {
                OutputKind::Potentials => Output::Potentials(&mut potentials),
                OutputKind::Activations { .. } => Output::Activations(&mut out),
            };
            model.forward_with(input, output, parallel, &observer).unwrap();
            assert_eq!(observer.0.load(std::sync::atomic::Ordering::Relaxed), 0, "no layer ran");
        }
    }

    #[test]
    fn the_observer_sees_every_layer_of_every_sample() {
        for seed in 0..40 {
            let mut rng = Rng(seed);
            let model = random_model(&mut rng);
            let samples = 3;
            let inputs = random_inputs(&model, &mut rng, samples);
            let input = Input::Dense { data: &inputs, num_samples: samples };
            let expected = engine_forward(&model, input, false);
            let last = model.layers().len() - 1;
            let shape = model.output_shape().unwrap();
            let seen = Mutex::new(vec![Vec::new(); samples]);
            let sums = Mutex::new(model.empty_statistics());
            let observer = |o: &LayerOutput<'_>| {
                sums.lock().unwrap()[o.layer].merge(o.statistics);
                if o.layer == last {
                    let dense = match o.values {
                        LayerValues::Potentials(p) => p.to_vec(),
                        LayerValues::Events(events) => {
                            let mut d = vec![0; shape.len()];
                            events.iter().for_each(|e| d[e.index(&shape)] = e.value);
                            d
                        }
                    };
                    seen.lock().unwrap()[o.sample] = dense;
                }
            };
            let stats = match model.output_kind().unwrap() {
                OutputKind::Potentials => {
                    let mut out = vec![0; expected.len()];
                    model.forward_with(input, Output::Potentials(&mut out), true, &observer).unwrap()
                }
                OutputKind::Activations { .. } => {
                    let mut out = vec![0; expected.len()];
                    model.forward_with(input, Output::Activations(&mut out), true, &observer).unwrap()
                }
            };
            assert_eq!(seen.into_inner().unwrap().concat(), expected, "seed {seed}");
            assert_eq!(sums.into_inner().unwrap(), stats, "seed {seed}");
        }
    }
}
