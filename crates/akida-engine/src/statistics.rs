//! Per-layer counters of forward and fit: samples, input and output sizes and non-zero values,
//! synaptic operations.

use crate::graph::Model;

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
    /// Samples whose potentials each kernel computed, indexed by [`crate::plan::Method`]
    /// (events, dense, bit-packed); zero for layers without weights.
    pub kernels: [u64; 3],
}

impl LayerStatistics {
    /// Zero counters of a layer with inputs and outputs of these sizes.
    pub fn sized(input_size: usize, output_size: usize) -> Self {
        LayerStatistics { input_size: input_size as u64, output_size: output_size as u64, ..Self::default() }
    }

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
        for (k, o) in self.kernels.iter_mut().zip(other.kernels) {
            *k += o;
        }
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

/// Adds every layer's counters of `b` to `a`'s.
pub fn merge_all(mut a: Vec<LayerStatistics>, b: &[LayerStatistics]) -> Vec<LayerStatistics> {
    a.iter_mut().zip(b).for_each(|(x, y)| x.merge(y));
    a
}

impl Model {
    /// Zero counters of every layer, with their input and output sizes.
    pub fn empty_statistics(&self) -> Vec<LayerStatistics> {
        self.layers()
            .iter()
            .map(|l| {
                let r = l.resolved().expect("layers in a model are resolved");
                LayerStatistics::sized(r.input_shape.len(), r.output_shape.len())
            })
            .collect()
    }
}
