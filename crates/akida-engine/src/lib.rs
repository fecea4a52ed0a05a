//! Pure-Rust core of the akida engine: layer parameters and geometry, sparse event buffers,
//! optimized kernels with plain twins, the model graph, its plan, and the executor of the parallel
//! forward pass.
//!
//! The arithmetic contract is `docs/semantics.md` at the repository root.

pub mod activation;
pub mod error;
pub mod events;
pub mod executor;
pub mod graph;
pub mod kernels;
pub mod layer;
pub mod learning;
pub mod model;
pub mod packetize;
pub mod params;
pub mod plan;
pub mod reference;
pub mod shape;
pub mod statistics;
pub mod summary;
pub mod testing;
pub mod variables;

pub use error::{Error, Result};
pub use events::{Event, EventBatch};
pub use executor::{run_layer, run_sample, LayerOutput, LayerValues, NoObserver, Observer, Scratch, Sink};
pub use kernels::KernelSet;
pub use layer::{Layer, OutputKind, Resolved};
pub use model::{Input, LayerStatistics, Model, Output};
pub use params::{
    Activation, Convolution, ConvolutionMode, LayerKind, LayerParams, Pooling, PoolingType, INPUT_CONV_WEIGHT_BITS,
    WEIGHT_BITS,
};
pub use plan::{AccumulatorWidth, ForcedKernels, Kernel, LayerPlan, Method, Plan};
pub use shape::Shape3;
pub use variables::{Variable, VariableData, VariableValues};

/// Number of worker threads the parallel forward pass uses (rayon's global pool; set
/// `RAYON_NUM_THREADS` to change it).
pub fn worker_threads() -> usize {
    rayon::current_num_threads()
}

/// The SIMD instruction set the kernels run with on this processor.
pub fn simd_level() -> &'static str {
    KernelSet::detected().name()
}
