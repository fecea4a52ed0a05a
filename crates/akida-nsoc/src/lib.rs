//! The Akida NSoC as data, and the mapping of akida models onto it.
//!
//! - [`device`]: a versioned description of the AKD1000: its mesh of neural processing units
//!   (NPs), their types, memories and clock, and the per-layer limits of the 1.0 hardware. Every
//!   number carries its source: a public document, or the word "assumption" with the reason.
//! - [`mapper`]: which layer runs where: on the input conversion block (HRC), on which NPs with
//!   which share of the filters or of the input width, in which pass and sequence; and, for every
//!   layer that falls back to software, the rule it breaks.
//!
//! Pure Rust, no Python: the bindings expose it as `akida.AKD1000()` and `Model.map`.

pub mod cost;
pub mod device;
pub mod emulator;
pub mod mapper;

pub use cost::{xy_hops, CostModel, Counts, Estimate};
pub use device::{Device, Fact, Limits, Np, NpIdent, NpType};
pub use emulator::{emulate_forward, emulate_forward_with, Emulation, Emulator};
pub use mapper::{
    map, map_with, report, Backend, LayerMapping, MapMode, MapperOptions, Mapping, NpShare, Pass, Placement, Sequence,
    SoftwareReason,
};
