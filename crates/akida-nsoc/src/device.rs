//! The AKD1000 as data.
//!
//! A [`Device`] lists its neural processing units (NPs) with their mesh identifiers and types,
//! the input conversion block (HRC), its memories and clock, and the per-layer limits of the 1.0
//! hardware. Each number is a [`Fact`]: its value and where it comes from. Public figures cite the
//! public document they come from; numbers no public document gives are marked `assumption`, with
//! the reason for the choice, and every one of them can be changed on the description.

use std::fmt;

/// A number of the description and its source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fact<T> {
    pub value: T,
    /// The public document it comes from, or `"assumption: ..."` with the reason.
    pub source: &'static str,
}

impl<T: Copy> Fact<T> {
    pub const fn public(value: T, source: &'static str) -> Self {
        Fact { value, source }
    }

    /// A chosen number; `why` says why this value (it is prefixed with "assumption: ").
    pub const fn assumption(value: T, why: &'static str) -> Self {
        Fact { value, source: why }
    }

    pub fn is_assumption(&self) -> bool {
        self.source.starts_with("assumption")
    }
}

/// Sources cited by the AKD1000 description.
pub mod sources {
    pub const PRODUCT: &str = "public: BrainChip AKD1000 product brief and MetaTF documentation (80 NPs in 20 \
                               nodes of 4, a mesh, 300 MHz, about 8 MB of SRAM, input conversion block)";
    pub const VIRTUAL_DEVICE: &str = "public: MetaTF documentation of the virtual AKD1000 (NP idents (col, row, id); \
                                      id 0 is CNP1 or FNP3, ids 1-3 are CNP1 or CNP2)";
    pub const LIMITS_1_0: &str = "public: MetaTF 1.x documentation, hardware constraints of Akida 1.0";
    pub const THRESHOLDS: &str = "public: MetaTF 1.x documentation (the hardware needs thresholds to fit in 20 \
                                  signed bits)";
    pub const SPLITTER: &str = "public: MetaTF documentation of the model splitter (Akida 1 parts: at most 32 \
                                columns wide, 256 rows, 512 filters per NP)";
}

/// The types of NP that public documents name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NpType {
    /// Convolutional NP (runs Convolutional and SeparableConvolutional layers).
    Cnp1,
    /// Convolutional NP, second kind.
    Cnp2,
    /// Fully-connected NP.
    Fnp2,
    /// Fully-connected NP with learning.
    Fnp3,
}

impl NpType {
    pub fn name(self) -> &'static str {
        match self {
            NpType::Cnp1 => "CNP1",
            NpType::Cnp2 => "CNP2",
            NpType::Fnp2 => "FNP2",
            NpType::Fnp3 => "FNP3",
        }
    }

    pub fn is_convolutional(self) -> bool {
        matches!(self, NpType::Cnp1 | NpType::Cnp2)
    }
}

impl fmt::Display for NpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where an NP sits: mesh column, row, and its index inside the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NpIdent {
    pub col: u8,
    pub row: u8,
    pub id: u8,
}

impl fmt::Display for NpIdent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {}, {})", self.col, self.row, self.id)
    }
}

/// One neural processing unit: where it is and the types it can take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Np {
    pub ident: NpIdent,
    /// The types this NP can be configured as (one at a time).
    pub types: Vec<NpType>,
}

/// The per-layer limits of the hardware; a layer that breaks one runs in software.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// InputConvolutional (on the HRC): square kernels of these sizes.
    pub input_conv_kernels: Fact<&'static [usize]>,
    pub input_conv_max_stride: Fact<usize>,
    pub input_conv_max_height: Fact<usize>,
    /// Largest filter count per kernel size (3, 5, 7) for 1-channel and 3-channel inputs.
    pub input_conv_max_filters_gray: Fact<[usize; 3]>,
    pub input_conv_max_filters_rgb: Fact<[usize; 3]>,
    /// Convolutional: square kernels of these sizes; stride 2 only with 3 x 3.
    pub conv_kernels: Fact<&'static [usize]>,
    pub conv_max_stride: Fact<usize>,
    /// SeparableConvolutional: square kernels of these sizes, weights of these bits.
    pub separable_kernels: Fact<&'static [usize]>,
    pub separable_weight_bits: Fact<&'static [u8]>,
    /// Bits of inputs, weights and activations of the data-processing layers.
    pub data_bits: Fact<&'static [u8]>,
    /// Max pooling windows of the convolutional NPs (square); global average pooling is also allowed.
    pub max_pool_windows: Fact<&'static [usize]>,
    /// FullyConnected takes a 1 x 1 x C input with C up to this.
    pub fc_max_inputs: Fact<usize>,
    /// Bits of a firing threshold, signed: a layer with activations holds thresholds in
    /// `-2^(bits-1) ..= 2^(bits-1) - 1`.
    pub threshold_bits: Fact<u32>,
    /// Widest input (in columns) one NP processes; wider inputs are split over NPs.
    pub np_max_width: Fact<usize>,
    /// Highest input (in rows) an NP processes.
    pub np_max_height: Fact<usize>,
    /// Most filters one convolutional NP holds (fully connected NPs are bounded by their memory
    /// only: an assumption, since the published AkidaNet 0.5 mapping runs a 1000-class
    /// classifier on one FNP3).
    pub np_max_filters: Fact<usize>,
    /// SRAM of one convolutional NP for weights and thresholds, in bytes.
    pub np_memory_bytes: Fact<usize>,
    /// SRAM of one fully connected NP (FNP3), in bytes.
    pub fnp_memory_bytes: Fact<usize>,
}

/// A versioned description of a device.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// The device and the version of this description, e.g. "AKD1000 (description 1)".
    pub version: String,
    pub nps: Vec<Np>,
    pub clock_hz: Fact<u64>,
    /// Total on-chip SRAM, bytes.
    pub sram_bytes: Fact<usize>,
    /// DMA engines moving events and programs between memory and the mesh.
    pub dma_engines: Fact<usize>,
    pub limits: Limits,
}

/// Version of the AKD1000 description; raised whenever a fact changes.
pub const AKD1000_DESCRIPTION_VERSION: u32 = 1;

impl Device {
    /// The AKD1000: 20 nodes of 4 NPs in a 5-column x 4-row mesh.
    pub fn akd1000() -> Device {
        Device::akd1000_mesh(5, 4)
    }

    /// The AKD1000 with its 20 nodes arranged in `columns x rows` (the public documents do not
    /// give the arrangement; 5 x 4 is the default assumption). Node `(col, row)` has NPs 0..=3:
    /// NP 0 can be CNP1 or FNP3, NPs 1-3 CNP1 or CNP2. Columns and rows count from 1.
    pub fn akd1000_mesh(columns: u8, rows: u8) -> Device {
        let mut nps = Vec::new();
        for col in 1..=columns {
            for row in 1..=rows {
                for id in 0..4u8 {
                    let types =
                        if id == 0 { vec![NpType::Cnp1, NpType::Fnp3] } else { vec![NpType::Cnp1, NpType::Cnp2] };
                    nps.push(Np { ident: NpIdent { col, row, id }, types });
                }
            }
        }
        Device {
            version: format!("AKD1000 (description {AKD1000_DESCRIPTION_VERSION})"),
            nps,
            clock_hz: Fact::public(300_000_000, sources::PRODUCT),
            sram_bytes: Fact::public(8 << 20, sources::PRODUCT),
            dma_engines: Fact::assumption(
                3,
                "assumption: the product brief mentions DMA engines without a count; one each for events in, events \
                 out and programs",
            ),
            limits: Limits {
                input_conv_kernels: Fact::public(&[3, 5, 7], sources::LIMITS_1_0),
                input_conv_max_stride: Fact::public(3, sources::LIMITS_1_0),
                input_conv_max_height: Fact::public(256, sources::LIMITS_1_0),
                input_conv_max_filters_gray: Fact::public([512, 192, 96], sources::LIMITS_1_0),
                input_conv_max_filters_rgb: Fact::public([192, 64, 32], sources::LIMITS_1_0),
                conv_kernels: Fact::public(&[1, 3, 5, 7], sources::LIMITS_1_0),
                conv_max_stride: Fact::public(2, sources::LIMITS_1_0),
                separable_kernels: Fact::public(&[3, 5, 7], sources::LIMITS_1_0),
                separable_weight_bits: Fact::public(&[2, 4], sources::LIMITS_1_0),
                data_bits: Fact::public(&[1, 2, 4], sources::LIMITS_1_0),
                max_pool_windows: Fact::public(&[2], sources::LIMITS_1_0),
                fc_max_inputs: Fact::public(57_334, sources::LIMITS_1_0),
                threshold_bits: Fact::public(20, sources::THRESHOLDS),
                np_max_width: Fact::public(32, sources::SPLITTER),
                np_max_height: Fact::public(256, sources::SPLITTER),
                np_max_filters: Fact::public(512, sources::SPLITTER),
                np_memory_bytes: Fact::assumption(
                    100 * 1024,
                    "assumption: no public per-NP figure; about 8 MB of SRAM shared by 80 NPs is 100 KB each",
                ),
                fnp_memory_bytes: Fact::assumption(
                    320 * 1024,
                    "assumption: the published AkidaNet 0.5 mapping runs its 1000-class classifier (512 inputs, 4-bit \
                     weights: 260 KB with thresholds) on one FNP3",
                ),
            },
        }
    }

    /// The NPs that can take `kind`, in mesh order (column, row, id).
    pub fn nps_of(&self, kind: NpType) -> impl Iterator<Item = &Np> {
        self.nps.iter().filter(move |np| np.types.contains(&kind))
    }

    /// Every fact of the description with its name, for documentation and reports.
    pub fn facts(&self) -> Vec<(&'static str, String, &'static str)> {
        let l = &self.limits;
        vec![
            ("NPs", self.nps.len().to_string(), sources::PRODUCT),
            ("NP types", "id 0: CNP1 or FNP3; ids 1-3: CNP1 or CNP2".into(), sources::VIRTUAL_DEVICE),
            ("clock (Hz)", self.clock_hz.value.to_string(), self.clock_hz.source),
            ("SRAM (bytes)", self.sram_bytes.value.to_string(), self.sram_bytes.source),
            ("DMA engines", self.dma_engines.value.to_string(), self.dma_engines.source),
            ("InputConvolutional kernels", format!("{:?}", l.input_conv_kernels.value), l.input_conv_kernels.source),
            (
                "InputConvolutional max stride",
                l.input_conv_max_stride.value.to_string(),
                l.input_conv_max_stride.source,
            ),
            (
                "InputConvolutional max height",
                l.input_conv_max_height.value.to_string(),
                l.input_conv_max_height.source,
            ),
            (
                "InputConvolutional max filters (1 channel; k 3/5/7)",
                format!("{:?}", l.input_conv_max_filters_gray.value),
                l.input_conv_max_filters_gray.source,
            ),
            (
                "InputConvolutional max filters (3 channels; k 3/5/7)",
                format!("{:?}", l.input_conv_max_filters_rgb.value),
                l.input_conv_max_filters_rgb.source,
            ),
            ("Convolutional kernels", format!("{:?}", l.conv_kernels.value), l.conv_kernels.source),
            (
                "Convolutional max stride (2 only with 3 x 3)",
                l.conv_max_stride.value.to_string(),
                l.conv_max_stride.source,
            ),
            ("SeparableConvolutional kernels", format!("{:?}", l.separable_kernels.value), l.separable_kernels.source),
            (
                "SeparableConvolutional weight bits",
                format!("{:?}", l.separable_weight_bits.value),
                l.separable_weight_bits.source,
            ),
            ("input / weight / activation bits", format!("{:?}", l.data_bits.value), l.data_bits.source),
            ("max pooling windows", format!("{:?}", l.max_pool_windows.value), l.max_pool_windows.source),
            ("FullyConnected max inputs (1 x 1 x C)", l.fc_max_inputs.value.to_string(), l.fc_max_inputs.source),
            ("threshold bits (signed)", l.threshold_bits.value.to_string(), l.threshold_bits.source),
            ("NP max input width", l.np_max_width.value.to_string(), l.np_max_width.source),
            ("NP max input height", l.np_max_height.value.to_string(), l.np_max_height.source),
            ("NP max filters", l.np_max_filters.value.to_string(), l.np_max_filters.source),
            ("NP memory (bytes)", l.np_memory_bytes.value.to_string(), l.np_memory_bytes.source),
            ("FNP3 memory (bytes)", l.fnp_memory_bytes.value.to_string(), l.fnp_memory_bytes.source),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn akd1000_has_80_nps_in_20_nodes_with_the_public_types() {
        let d = Device::akd1000();
        assert_eq!(d.nps.len(), 80);
        let nodes: std::collections::HashSet<_> = d.nps.iter().map(|np| (np.ident.col, np.ident.row)).collect();
        assert_eq!(nodes.len(), 20);
        assert_eq!(d.nps_of(NpType::Fnp3).count(), 20);
        assert_eq!(d.nps_of(NpType::Cnp1).count(), 80);
        assert_eq!(d.nps_of(NpType::Cnp2).count(), 60);
        assert!(d.nps.iter().all(|np| np.ident.id < 4));
    }

    #[test]
    fn every_fact_names_its_source() {
        let d = Device::akd1000();
        for (name, _, source) in d.facts() {
            assert!(source.starts_with("public: ") || source.starts_with("assumption: "), "{name}: {source}");
        }
        assert!(d.limits.np_memory_bytes.is_assumption());
        assert!(!d.clock_hz.is_assumption());
    }
}
