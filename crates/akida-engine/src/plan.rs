//! The plan of a model: what every layer needs besides its weights to run, prepared once. The
//! model caches it ([`crate::Model::plan`]) until a `&mut` method changes the layers. It depends
//! on layers only, not on the graph, so the graph can hold it.

use std::ops::Range;

use crate::activation::Thresholds;
use crate::kernels::KernelSet;
use crate::layer::Layer;
use crate::params::LayerParams;

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

/// How one layer runs.
#[derive(Debug, Clone)]
pub struct LayerPlan {
    pub kernel: Kernel,
    pub accumulator: AccumulatorWidth,
    /// The threshold cut points, for layers with activations enabled.
    pub thresholds: Option<Thresholds>,
    /// Winner-take-all groups of consecutive neurons, for layers with activations enabled that
    /// have a group of more than one neuron (InputConvolutional only).
    pub wta: Option<Vec<Range<usize>>>,
}

/// One [`LayerPlan`] per layer of a model, and the kernel builds for this processor. Built from
/// the layers' parameters, geometry, thresholds and winner-take-all groups; never from weight
/// values or learning state, so learning does not change it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub layers: Vec<LayerPlan>,
    pub kernels: KernelSet,
}

impl Plan {
    /// The plan of the layers of a model, with the detected kernel set; `force_wide` makes every
    /// layer accumulate in `i32`.
    pub fn new(layers: &[Layer], force_wide: bool) -> Self {
        let layers = layers.iter().map(|l| LayerPlan::new(l, force_wide)).collect();
        Plan { layers, kernels: KernelSet::detected() }
    }
}

impl LayerPlan {
    /// The plan of `layer` (resolved); `force_wide` makes it accumulate in `i32`.
    pub fn new(layer: &Layer, force_wide: bool) -> Self {
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
        LayerPlan {
            kernel,
            accumulator: if narrow { AccumulatorWidth::I16 } else { AccumulatorWidth::I32 },
            thresholds,
            wta,
        }
    }
}
