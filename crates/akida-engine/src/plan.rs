//! The plan of a model: what every layer needs besides its weights to run, prepared once. The
//! model caches it ([`crate::Model::plan`]) until a `&mut` method changes the layers. It depends
//! on layers only, not on the graph, so the graph can hold it.
//!
//! # Kernel choice
//! A Convolutional, InputConvolutional or FullyConnected layer has several kernels that compute
//! the same integers ([`Method`]): event-driven (work proportional to the non-zero inputs),
//! dot products over a dense map of the input (fixed work, [`crate::kernels::dot`]) and, for a
//! FullyConnected layer with few input and weight bits, AND + popcount over bit planes (fixed
//! work, [`crate::kernels::bits`]). The plan packs the weights the fixed-work kernels read and
//! keeps a cost model ([`Costs`]); the executor counts the sample's non-zero inputs and runs the
//! cheapest kernel ([`LayerPlan::method`]), so the choice follows the input density sample by
//! sample with no setting. Statistics count the samples each kernel ran
//! ([`crate::LayerStatistics::kernels`]).
//!
//! A compiled FullyConnected layer (1-bit weights and inputs) has the bit-packed kernel too:
//! `fit` takes the plan out of the model's cache, sets the bits of the weights each learning step
//! moved in the plan's copy, and caches the plan again when it returns
//! ([`BitWeights::set_binary`]). A compiled Convolutional layer keeps the event-driven kernel
//! only (the plan packs no copy of its weights). The weights of every other layer change only
//! through `&mut` paths that drop the plan. Layers of more than 64 Mi weights keep the
//! event-driven kernel too, so that packing never adds more than that per layer.

use std::ops::Range;
use std::sync::Arc;

use crate::activation::Thresholds;
use crate::kernels::bits::BitWeights;
use crate::kernels::dot::{self, DotWeights, LANES};
use crate::kernels::KernelSet;
use crate::layer::{Layer, Resolved};
use crate::params::{weight_range, LayerParams};

/// The integer type a layer accumulates its potentials in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccumulatorWidth {
    /// The layer's potential bound fits in `i16`: twice the SIMD lanes.
    I16,
    I32,
}

/// The kernel that computes a layer's potentials (before pooling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// No accumulation: InputData passes its input on, Concat joins its inbound layers.
    PassThrough,
    /// Dense cross-correlation of the input image ([`KernelSet::input_convolution`]).
    InputConvolution,
    /// Event-driven true convolution ([`KernelSet::convolve_events`]).
    ConvolveEvents,
    /// Event-driven depthwise convolution, then the pointwise step
    /// ([`KernelSet::depthwise_events`], [`KernelSet::pointwise`]).
    SeparableEvents,
    /// Event-driven fully connected layer ([`KernelSet::fully_connected_events`]).
    FullyConnectedEvents,
}

/// The kernels that can compute the potentials of a Convolutional, InputConvolutional or
/// FullyConnected layer, chosen per sample ([`LayerPlan::method`]); all give the same integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Each non-zero input adds its weight rows ([`Kernel`] says which kernel).
    Events = 0,
    /// Dot products over a dense map of the input ([`KernelSet::dot_product`]).
    Dense = 1,
    /// AND + popcount over bit planes ([`KernelSet::fully_connected_bits`]).
    BitPacked = 2,
}

impl Method {
    pub const ALL: [Method; 3] = [Method::Events, Method::Dense, Method::BitPacked];

    /// `"events"`, `"dense"` or `"bit-packed"`.
    pub fn name(self) -> &'static str {
        match self {
            Method::Events => "events",
            Method::Dense => "dense",
            Method::BitPacked => "bit-packed",
        }
    }
}

/// A test hook: run every layer with one kernel set and, where a layer can, one method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ForcedKernels {
    pub set: Option<KernelSet>,
    pub method: Option<Method>,
}

/// The cost model of one layer, in estimated nanoseconds per sample on the machine the constants
/// were fitted on (the criterion benches of `benches/kernels.rs`, `fixed_work_kernels`, on an
/// AMD EPYC with AVX-512; only ratios matter). Event-driven work grows with the non-zero inputs
/// `nnz`; the other kernels' does not:
/// - events: `nnz * per_input`, `per_input = reach * (4 * ceil(N / lanes) + 12)`, `reach` the
///   outputs one input reaches (`kh * kw / (sy * sx)`, 1 for FullyConnected), `lanes` 16 for
///   `i16` accumulators and 8 for `i32`;
/// - dense, AVX-512 VNNI: one `vpdpbusd` per output, kernel row, group of 4 inputs and block of
///   16 neurons, plus tile overheads, the map and the stores:
///   `P * kh * G * (B + 1.5) + map / 16 + 2 * P * B`; AVX2 (`vpmaddubsw` + `vpmaddwd`, when
///   no i16 pair sum can saturate): `P * kh * G * (4 * B + 2) + ...`; otherwise the AVX2 and
///   portable builds do one multiply-add per neuron: `P * kh * G * N * 0.85` and `* 3`; a FullyConnected layer whose
///   weights exceed 1 MiB streams them from memory every sample: times 5;
/// - bit-packed: per neuron and pair of input and weight planes, `words / 2 + 20` with VPOPCNTDQ,
///   `3 * words + 20` with scalar `popcnt`, plus `2 * nnz * input planes` to pack the input.
/// - SeparableConvolutional: events `nnz * reach * (4 * ceil(N / lanes) + 22)` (a scalar
///   depthwise step, then one pointwise row per non-zero depthwise value); dense: the depthwise
///   step over the map with channels in lanes (`P * kh * kw * C / 8 + map / 8`) and the
///   pointwise step as a 1x1 convolution.
///
/// Ties go to the event-driven kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Costs {
    pub events_per_input: f64,
    pub dense: Option<f64>,
    pub bit_packed: Option<f64>,
}

/// How one layer runs.
#[derive(Debug, Clone)]
pub struct LayerPlan {
    pub kernel: Kernel,
    pub accumulator: AccumulatorWidth,
    /// The weights packed for the dot-product kernel, when it is a candidate (for a
    /// SeparableConvolutional layer, the pointwise weights).
    pub dot: Option<Arc<DotWeights>>,
    /// SeparableConvolutional: `sum_c weights_pw[c, n]` per neuron. The dense pointwise step
    /// feeds the signed depthwise values `d` (`|d| <= 127`) as `d + 128` to the unsigned
    /// dot product and subtracts `128 * sum_c w[c, n]`.
    pub pointwise_sums: Vec<i32>,
    /// The weights as bit planes, when the bit-packed kernel is a candidate.
    pub bits: Option<Arc<BitWeights>>,
    /// The bit planes of the inputs (for the bit-packed kernel).
    pub input_planes: usize,
    pub costs: Costs,
    /// The method every sample uses, when forced ([`ForcedKernels`]).
    pub forced: Option<Method>,
    /// The threshold cut points, for layers with activations enabled.
    pub thresholds: Option<Thresholds>,
    /// Winner-take-all groups of consecutive neurons, for layers with activations enabled that
    /// have a group of more than one neuron (InputConvolutional only).
    pub wta: Option<Vec<Range<usize>>>,
}

/// One [`LayerPlan`] per layer of a model, and the kernel builds for this processor. Built from
/// the layers' parameters, geometry, thresholds, winner-take-all groups and weights (packed for
/// the fixed-work kernels, behind `Arc`s so that a copy of the plan shares them); never from
/// learning state. `fit` keeps the packed copy of a learning FullyConnected layer's weights equal
/// to the weights it learns (see the module documentation).
#[derive(Debug, Clone)]
pub struct Plan {
    pub layers: Vec<LayerPlan>,
    pub kernels: KernelSet,
}

impl Plan {
    /// The plan of the layers of a model, with the detected kernel set (or the forced one);
    /// `force_wide` makes every layer accumulate in `i32`.
    pub fn new(layers: &[Layer], force_wide: bool, forced: ForcedKernels) -> Self {
        let kernels = forced.set.unwrap_or_else(KernelSet::detected);
        let layers = layers.iter().map(|l| LayerPlan::new(l, force_wide, kernels, forced.method)).collect();
        Plan { layers, kernels }
    }
}

/// Largest product of input and weight bit planes for which the bit-packed kernel is a candidate.
const MAX_PLANE_PAIRS: usize = 4;

/// Layers with more weights than this keep the event-driven kernel only: a packed copy would add
/// that much memory to the model.
const MAX_PACKED_WEIGHTS: usize = 64 << 20;

impl LayerPlan {
    /// The plan of `layer` (resolved) for kernel set `set`; `force_wide` makes it accumulate in
    /// `i32`, `forced` runs every sample with one method where the layer has it.
    pub fn new(layer: &Layer, force_wide: bool, set: KernelSet, forced: Option<Method>) -> Self {
        let thresholds = match layer.params().activation() {
            Some(a) if a.enabled => {
                Some(Thresholds::new(layer.threshold_fire(), layer.threshold_fire_step(), a.threshold_fire_bits))
            }
            _ => None,
        };
        let narrow = layer.resolved().is_some_and(|r| r.potential_bound <= i16::MAX as u64) && !force_wide;
        let kernel = match layer.params() {
            LayerParams::InputData { .. } | LayerParams::Concat { .. } => Kernel::PassThrough,
            LayerParams::InputConvolutional { .. } => Kernel::InputConvolution,
            LayerParams::Convolutional { .. } => Kernel::ConvolveEvents,
            LayerParams::SeparableConvolutional { .. } => Kernel::SeparableEvents,
            LayerParams::FullyConnected { .. } => Kernel::FullyConnectedEvents,
        };
        let wta = layer.wta_ranges().filter(|_| thresholds.is_some());
        let accumulator = if narrow { AccumulatorWidth::I16 } else { AccumulatorWidth::I32 };
        let mut plan = LayerPlan {
            kernel,
            accumulator,
            dot: None,
            pointwise_sums: Vec::new(),
            bits: None,
            input_planes: 0,
            costs: Costs { events_per_input: 0.0, dense: None, bit_packed: None },
            forced,
            thresholds,
            wta,
        };
        if let Some(r) = layer.resolved() {
            plan.pack(layer, r, set);
        }
        plan
    }

    /// Packs the weights of the fixed-work candidates of `layer` and fills the cost model.
    fn pack(&mut self, layer: &Layer, r: &Resolved, set: KernelSet) {
        let neurons = r.potentials_shape.channels;
        let lanes = if self.accumulator == AccumulatorWidth::I16 { 16.0 } else { 8.0 };
        let per_row = 4.0 * neurons.div_ceil(lanes as usize) as f64 + 12.0;
        // Inputs above 255 would not fit the `u8` maps; none of the engine's layers has them.
        let learns = layer.learning().is_some();
        let events_only = (learns && !matches!(layer.params(), LayerParams::FullyConnected { .. }))
            || layer.weights().len() + layer.weights_pw().len() > MAX_PACKED_WEIGHTS
            || r.input_max > 255;
        // `pairs_fit`: the AVX2 build's i16 pair sums cannot saturate (`2 * max x * max |w|`);
        // otherwise it splits the inputs into nibbles.
        let dense_cost = |positions: usize, rows: usize, span: usize, map: usize, pairs_fit: bool| {
            let groups = span.div_ceil(4) as f64;
            let work = (positions * rows) as f64 * groups;
            let blocks = neurons.div_ceil(LANES) as f64;
            if set.has_avx512() {
                work * (blocks + 1.5) + map as f64 / 16.0 + 2.0 * positions as f64 * blocks
            } else if set.has_avx2() && pairs_fit {
                work * (4.0 * blocks + 2.0) + map as f64 / 16.0 + 2.0 * positions as f64 * blocks
            } else if set.has_avx2() {
                // The nibble split: twice the multiplies.
                work * (7.0 * blocks + 3.0) + map as f64 / 16.0 + 2.0 * positions as f64 * blocks
            } else {
                work * neurons as f64 * 3.0 + map as f64 / 4.0
            }
        };
        match (layer.params(), self.kernel) {
            (LayerParams::InputConvolutional { .. } | LayerParams::Convolutional { .. }, _) => {
                let g = r.conv.as_ref().expect("convolutional layers have a geometry");
                let channels = r.input_shape.channels;
                let reach = (g.y.kernel * g.x.kernel) as f64 / (g.y.stride * g.x.stride) as f64;
                self.costs.events_per_input = reach * per_row;
                if events_only {
                    return;
                }
                let (mh, mw) = dot::map_size(g);
                let positions = g.y.output * g.x.output;
                let flip = self.kernel == Kernel::ConvolveEvents;
                let packed = DotWeights::convolution(layer.weights(), g.y.kernel, g.x.kernel, channels, neurons, flip);
                // The executor passes 255 for images (pixels and padding value).
                let input_max = if flip { r.input_max } else { 255 };
                let fit = packed.pairs_fit(input_max);
                self.costs.dense =
                    Some(dense_cost(positions, g.y.kernel, g.x.kernel * channels, mh * mw * channels, fit));
                self.dot = Some(Arc::new(packed));
            }
            (LayerParams::SeparableConvolutional { conv, .. }, _) => {
                let g = r.conv.as_ref().expect("convolutional layers have a geometry");
                let channels = r.input_shape.channels;
                let reach = (g.y.kernel * g.x.kernel) as f64 / (g.y.stride * g.x.stride) as f64;
                // Events: a scalar depthwise step (about 10 per reached output), then the
                // pointwise step, one row per non-zero depthwise value.
                let positions = g.y.output * g.x.output;
                self.costs.events_per_input = reach * (per_row + 10.0);
                let taps = (g.y.kernel * g.x.kernel) as i64;
                let depthwise_bound = taps * i64::from(r.input_max) * i64::from(weight_range(conv.weights_bits).1);
                if events_only || depthwise_bound > 127 {
                    return;
                }
                let (mh, mw) = dot::map_size(g);
                let depthwise =
                    (positions * g.y.kernel * g.x.kernel * channels) as f64 / 8.0 + (mh * mw * channels) as f64 / 8.0;
                let pw = layer.weights_pw();
                self.pointwise_sums =
                    (0..neurons).map(|n| (0..channels).map(|c| i32::from(pw[c * neurons + n])).sum()).collect();
                let packed = DotWeights::fully_connected(pw, channels, neurons);
                let fit = packed.pairs_fit(255);
                self.costs.dense = Some(depthwise + dense_cost(positions, 1, channels, positions * channels, fit));
                self.dot = Some(Arc::new(packed));
            }
            (LayerParams::FullyConnected { weights_bits, .. }, _) => {
                self.costs.events_per_input = per_row;
                if events_only {
                    return;
                }
                let inputs = r.input_shape.len();
                self.input_planes = (32 - (r.input_max.max(1) as u32).leading_zeros()) as usize;
                let pairs = self.input_planes * usize::from(*weights_bits);
                if pairs <= MAX_PLANE_PAIRS {
                    let words = inputs.div_ceil(64) as f64;
                    // Without AVX-512: one AND + POPCNT + add per word. Measured on an AMD Zen 3
                    // against the event kernel (criterion `mnist_fully_connected`, 15 % of 4,608
                    // inputs, 1,000 neurons: 27.0 against 35.5 us): 1.64 per word; 2 leaves room
                    // for processors with a slower POPCNT (an assumption: not measured).
                    let per_pair = if set.has_avx512() { words / 2.0 + 20.0 } else { 2.0 * words + 20.0 };
                    self.costs.bit_packed = Some(neurons as f64 * pairs as f64 * per_pair);
                    self.bits = Some(Arc::new(BitWeights::new(layer.weights(), inputs, neurons, *weights_bits)));
                } else if !learns {
                    // (A learning layer has 1-bit weights and inputs, so it never gets here; if it
                    // did, it would stay event-driven: `fit` updates bit planes only.)
                    // Every sample streams the weights once: from memory when they exceed a
                    // share of the cache.
                    let stream = if inputs * neurons > 1 << 20 { 5.0 } else { 1.0 };
                    let packed = DotWeights::fully_connected(layer.weights(), inputs, neurons);
                    let fit = packed.pairs_fit(r.input_max);
                    self.costs.dense = Some(stream * dense_cost(1, 1, inputs, inputs, fit));
                    self.dot = Some(Arc::new(packed));
                }
            }
            _ => {}
        }
    }

    /// The method for a sample with `nnz` non-zero inputs: the forced one if the layer has it,
    /// otherwise the cheapest by [`Costs`] (events on a tie).
    pub fn method(&self, nnz: usize) -> Method {
        let available = |m: Method| match m {
            Method::Events => true,
            Method::Dense => self.dot.is_some(),
            Method::BitPacked => self.bits.is_some(),
        };
        if let Some(m) = self.forced.filter(|&m| available(m)) {
            return m;
        }
        let mut best = (Method::Events, nnz as f64 * self.costs.events_per_input);
        let planes = 2.0 * (nnz * self.input_planes) as f64;
        for (m, cost) in
            [(Method::Dense, self.costs.dense), (Method::BitPacked, self.costs.bit_packed.map(|c| c + planes))]
        {
            if let Some(c) = cost.filter(|&c| c < best.1) {
                best = (m, c);
            }
        }
        best.0
    }
}
