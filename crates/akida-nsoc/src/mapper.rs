//! Mapping a model onto a device: which layer runs where, and why not when it cannot.
//!
//! The rules, in order (`docs/nsoc.md` has them with their sources):
//! 1. The input layer: InputData events arrive over DMA and need no NP; InputConvolutional runs on
//!    the input conversion block (HRC) when it fits the HRC limits, otherwise in software.
//! 2. Every other layer is checked against the per-layer limits of the device ([`Limits`]); a
//!    layer that breaks one runs in software, with a [`SoftwareReason`] naming the rule, the value
//!    and the limit, and what would make it fit.
//! 3. A hardware layer is split over NPs: its input width in bands of at most `np_max_width`
//!    columns (convolutions), and its filters in groups that fit one NP's filter limit and memory.
//!    [`MapMode::Minimal`] uses the largest groups that fit; [`MapMode::AllNps`] also caps a group
//!    at `allnps_filters_per_np` filters (an assumption, see [`MapperOptions`]) to spread the work.
//! 4. Consecutive hardware layers form a hardware sequence; NPs are taken in mesh order from the
//!    NPs that can take the layer's type (convolutions: CNP1/CNP2; FullyConnected: FNP3). When the
//!    mesh runs out, the sequence starts a new pass. Software layers form software sequences.

use std::fmt;
use std::ops::Range;

use akida_engine::{LayerKind, LayerParams, Model, PoolingType};

use crate::device::{Device, Limits, NpIdent, NpType};

/// How to spread layers over NPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapMode {
    /// As many NPs as the layer limits allow, for the fewest passes (the default).
    AllNps,
    /// The fewest NPs.
    Minimal,
}

/// Knobs of the mapper that no public document fixes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapperOptions {
    /// In [`MapMode::AllNps`], the most filters one NP takes (assumption: spread the filters of
    /// wide layers so that one NP never holds more than a quarter of the splitter's 512).
    pub allnps_filters_per_np: usize,
    /// Bytes an NP needs per filter besides its weights: threshold and step (assumption: a
    /// 20-bit threshold and a 4-bit step rounded up to 4 bytes).
    pub bytes_per_filter_overhead: usize,
}

impl Default for MapperOptions {
    fn default() -> Self {
        MapperOptions { allnps_filters_per_np: 128, bytes_per_filter_overhead: 4 }
    }
}

/// Why a layer runs in software: which rule, the layer's value, the limit, and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftwareReason {
    pub layer: String,
    pub layer_type: &'static str,
    pub rule: String,
    pub fix: String,
}

impl fmt::Display for SoftwareReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} '{}': {}", self.layer_type, self.layer, self.rule)?;
        if !self.fix.is_empty() {
            write!(f, "; {}", self.fix)?;
        }
        Ok(())
    }
}

/// One NP's share of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpShare {
    pub ident: NpIdent,
    pub np_type: NpType,
    /// The filters (output channels) this NP computes.
    pub filters: Range<usize>,
    /// The input columns this NP receives (the whole width for FullyConnected).
    pub columns: Range<usize>,
    /// Bytes of weights and thresholds the NP holds, bit-packed.
    pub memory_bytes: usize,
}

/// Where a layer runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// InputData: its events arrive over DMA.
    Input,
    /// InputConvolutional on the input conversion block.
    Hrc,
    /// On these NPs.
    Nps(Vec<NpShare>),
    /// In software, for this reason.
    Software(SoftwareReason),
}

/// The mapping of one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerMapping {
    pub layer: usize,
    pub name: String,
    pub placement: Placement,
}

/// Layers loaded on the mesh together.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pass {
    pub layers: Vec<LayerMapping>,
}

/// Whether a sequence runs on the device or in software.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Software,
    Hardware,
}

/// Consecutive layers with one backend, in passes loaded one after another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    pub backend: Backend,
    pub passes: Vec<Pass>,
}

/// The mapping of a whole model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub mode: MapMode,
    pub device: String,
    pub sequences: Vec<Sequence>,
}

impl Mapping {
    /// Every layer mapping in model order.
    pub fn layers(&self) -> impl Iterator<Item = &LayerMapping> {
        self.sequences.iter().flat_map(|s| s.passes.iter()).flat_map(|p| p.layers.iter())
    }

    /// The reasons of every layer that runs in software.
    pub fn software_reasons(&self) -> Vec<&SoftwareReason> {
        self.layers()
            .filter_map(|l| match &l.placement {
                Placement::Software(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    /// Distinct NPs used over all passes of all sequences (an NP reused by two passes counts once).
    pub fn nps_used(&self) -> usize {
        let mut idents: Vec<NpIdent> = self
            .layers()
            .filter_map(|l| match &l.placement {
                Placement::Nps(shares) => Some(shares.iter().map(|s| s.ident)),
                _ => None,
            })
            .flatten()
            .collect();
        idents.sort();
        idents.dedup();
        idents.len()
    }
}

/// Maps `model` onto `device` in `mode` with the default [`MapperOptions`].
pub fn map(model: &Model, device: &Device, mode: MapMode) -> Mapping {
    map_with(model, device, mode, MapperOptions::default())
}

/// Maps `model` onto `device`.
pub fn map_with(model: &Model, device: &Device, mode: MapMode, options: MapperOptions) -> Mapping {
    let mut sequences: Vec<Sequence> = Vec::new();
    let mut pool = NpPool::new(device);
    for (index, layer) in model.layers().iter().enumerate() {
        let name = layer.name().to_owned();
        let input_bits = input_bits(model, index);
        let placement = place(model, index, device, mode, options, input_bits);
        let placement = match placement {
            Err(reason) => Placement::Software(reason),
            Ok(Planned::Input) => Placement::Input,
            Ok(Planned::Hrc) => Placement::Hrc,
            Ok(Planned::Nps { np_type, filter_groups, column_bands, shared_bytes, bytes_per_filter }) => {
                let needed = filter_groups.len() * column_bands.len();
                let available = pool.capacity(np_type);
                if needed > available {
                    Placement::Software(reason(
                        layer.kind(),
                        &name,
                        format!("needs {needed} {np_type} NPs, the device has {available}"),
                        "use fewer filters or a narrower input",
                    ))
                } else {
                    if pool.free(np_type) < needed {
                        pool.next_pass();
                        if let Some(seq) = sequences.last_mut().filter(|s| s.backend == Backend::Hardware) {
                            seq.passes.push(Pass::default());
                        }
                    }
                    let mut shares = Vec::with_capacity(needed);
                    for filters in &filter_groups {
                        for columns in &column_bands {
                            let ident = pool.take(np_type).expect("free NPs were counted");
                            shares.push(NpShare {
                                ident,
                                np_type,
                                filters: filters.clone(),
                                columns: columns.clone(),
                                memory_bytes: shared_bytes + filters.len() * bytes_per_filter,
                            });
                        }
                    }
                    Placement::Nps(shares)
                }
            }
        };
        let backend = match placement {
            Placement::Software(_) => Backend::Software,
            _ => Backend::Hardware,
        };
        if sequences.last().map(|s| s.backend) != Some(backend) {
            if backend == Backend::Hardware {
                pool = NpPool::new(device);
            }
            sequences.push(Sequence { backend, passes: vec![Pass::default()] });
        }
        let seq = sequences.last_mut().expect("pushed above");
        seq.passes.last_mut().expect("a sequence has a pass").layers.push(LayerMapping {
            layer: index,
            name,
            placement,
        });
    }
    Mapping { mode, device: device.version.clone(), sequences }
}

/// NPs still free in the current pass, by the type they would take.
struct NpPool<'d> {
    device: &'d Device,
    used: Vec<bool>,
}

impl<'d> NpPool<'d> {
    fn new(device: &'d Device) -> Self {
        NpPool { device, used: vec![false; device.nps.len()] }
    }

    fn capacity(&self, kind: NpType) -> usize {
        self.device.nps_of(kind).count()
    }

    fn free(&self, kind: NpType) -> usize {
        self.device.nps.iter().zip(&self.used).filter(|(np, used)| !**used && np.types.contains(&kind)).count()
    }

    /// The first free NP that can take `kind`. Convolutional layers take NPs that cannot be
    /// FNP3 first, so the fully connected layers keep theirs.
    fn take(&mut self, kind: NpType) -> Option<NpIdent> {
        let candidates = |prefer_exclusive: bool| {
            self.device.nps.iter().enumerate().find(|(i, np)| {
                !self.used[*i]
                    && np.types.contains(&kind)
                    && (!prefer_exclusive || !np.types.contains(&NpType::Fnp3) || kind == NpType::Fnp3)
            })
        };
        let (i, np) = candidates(true).or_else(|| candidates(false))?;
        self.used[i] = true;
        Some(np.ident)
    }

    fn next_pass(&mut self) {
        self.used.iter_mut().for_each(|u| *u = false);
    }
}

enum Planned {
    Input,
    Hrc,
    Nps {
        np_type: NpType,
        filter_groups: Vec<Range<usize>>,
        column_bands: Vec<Range<usize>>,
        /// Bytes an NP holds for its share: shared (depthwise kernels) + per filter.
        shared_bytes: usize,
        bytes_per_filter: usize,
    },
}

fn reason(kind: LayerKind, layer: &str, rule: String, fix: &str) -> SoftwareReason {
    SoftwareReason { layer: layer.to_owned(), layer_type: kind.type_name(), rule, fix: fix.to_owned() }
}

/// Bits needed by the largest value a layer receives.
fn input_bits(model: &Model, index: usize) -> u32 {
    let Some(r) = model.layers()[index].resolved() else { return 8 };
    32 - (r.input_max.max(1) as u32).leading_zeros()
}

fn ranges(total: usize, parts: usize) -> Vec<Range<usize>> {
    (0..parts).map(|i| (i * total / parts)..((i + 1) * total / parts)).collect()
}

fn place(
    model: &Model,
    index: usize,
    device: &Device,
    mode: MapMode,
    options: MapperOptions,
    input_bits: u32,
) -> Result<Planned, SoftwareReason> {
    let layer = &model.layers()[index];
    let kind = layer.kind();
    let name = layer.name();
    let limits = &device.limits;
    let fail = |rule: String, fix: &str| Err(reason(kind, name, rule, fix));
    let Some(resolved) = layer.resolved() else {
        return fail("its shapes are unknown".into(), "add it to a model");
    };
    let params = layer.params();
    if kind == LayerKind::InputData {
        return Ok(Planned::Input);
    }
    if kind == LayerKind::Concat {
        return fail("the 1.0 hardware has no Concat".into(), "");
    }
    if layer.learning().is_some() && kind != LayerKind::FullyConnected {
        return fail("learning runs only on a FullyConnected last layer".into(), "learn on a FullyConnected layer");
    }
    if let Some(a) = params.activation() {
        if a.enabled && !limits.data_bits.value.contains(&a.threshold_fire_bits) {
            return fail(
                format!("{}-bit activations, the hardware takes {:?}", a.threshold_fire_bits, limits.data_bits.value),
                "use 1, 2 or 4-bit activations",
            );
        }
    }
    if kind == LayerKind::InputConvolutional {
        return check_input_conv(layer, limits).map(|()| Planned::Hrc);
    }
    let widest = limits.data_bits.value.iter().copied().max().unwrap_or(4);
    if input_bits > u32::from(widest) {
        return fail(
            format!("{input_bits}-bit inputs, the hardware takes {:?}", limits.data_bits.value),
            "feed it 1, 2 or 4-bit values (InputData input_bits, or the previous layer's threshold_fire_bits)",
        );
    }
    let weight_bits = params.weights_bits().unwrap_or(1);
    if !limits.data_bits.value.contains(&weight_bits) {
        return fail(format!("{weight_bits}-bit weights, the hardware takes {:?}", limits.data_bits.value), "");
    }
    let input = resolved.input_shape;
    let neurons = params.num_neurons().unwrap_or(resolved.output_shape.channels);
    if input.height > limits.np_max_height.value {
        return fail(
            format!("input height {}, an NP takes at most {} rows", input.height, limits.np_max_height.value),
            "reduce the input height (pool or stride earlier)",
        );
    }
    let overhead = options.bytes_per_filter_overhead;
    let (np_type, bytes_per_filter, shared_bytes, column_bands) = match params {
        LayerParams::FullyConnected { .. } => {
            if input.height != 1 || input.width != 1 {
                return fail(
                    format!("input {input}, the hardware's FullyConnected takes 1 x 1 x C"),
                    "pool globally or flatten the input to 1 x 1 x C before it",
                );
            }
            if input.channels > limits.fc_max_inputs.value {
                return fail(
                    format!("{} inputs, at most {}", input.channels, limits.fc_max_inputs.value),
                    "reduce the channels feeding it",
                );
            }
            (NpType::Fnp3, (input.channels * weight_bits as usize).div_ceil(8) + overhead, 0, ranges(input.width, 1))
        }
        LayerParams::Convolutional { conv, pooling, .. }
        | LayerParams::SeparableConvolutional { conv, pooling, .. } => {
            let separable = kind == LayerKind::SeparableConvolutional;
            let kernels = if separable { limits.separable_kernels.value } else { limits.conv_kernels.value };
            if conv.kernel_width != conv.kernel_height || !kernels.contains(&conv.kernel_width) {
                return fail(
                    format!(
                        "kernel {} x {}, the 1.0 hardware takes {}",
                        conv.kernel_height,
                        conv.kernel_width,
                        list(kernels)
                    ),
                    "use a square kernel of a supported size",
                );
            }
            if separable && !limits.separable_weight_bits.value.contains(&weight_bits) {
                return fail(
                    format!(
                        "{weight_bits}-bit weights, separable layers take {:?}",
                        limits.separable_weight_bits.value
                    ),
                    "",
                );
            }
            let stride = conv.stride_x.max(conv.stride_y);
            if conv.stride_x != conv.stride_y
                || stride > limits.conv_max_stride.value
                || (stride == 2 && conv.kernel_width != 3)
            {
                return fail(
                    format!(
                        "stride {} x {}: the hardware takes 1, or 2 with a 3 x 3 kernel",
                        conv.stride_y, conv.stride_x
                    ),
                    "",
                );
            }
            match pooling.kind {
                PoolingType::NoPooling => {}
                PoolingType::Max => {
                    let map = resolved.potentials_shape;
                    let w = if pooling.width < 0 { map.width } else { pooling.width as usize };
                    let h = if pooling.height < 0 { map.height } else { pooling.height as usize };
                    let s = pooling.stride_x.max(pooling.stride_y);
                    let s = if s < 0 { w } else { s as usize };
                    if w != h || !limits.max_pool_windows.value.contains(&w) || s != w {
                        return fail(
                            format!("max pooling {h} x {w} stride {s}, the hardware pools 2 x 2 with stride 2"),
                            "use 2 x 2 max pooling or global average pooling",
                        );
                    }
                }
                PoolingType::Average => {
                    if pooling.width >= 0 || pooling.height >= 0 {
                        return fail(
                            "windowed average pooling; the hardware averages globally only".into(),
                            "use global average pooling or 2 x 2 max pooling",
                        );
                    }
                }
            }
            let taps = conv.kernel_width * conv.kernel_height;
            let (per_filter, shared) = if separable {
                (
                    (input.channels * weight_bits as usize).div_ceil(8) + overhead,
                    (taps * input.channels * weight_bits as usize).div_ceil(8),
                )
            } else {
                ((taps * input.channels * weight_bits as usize).div_ceil(8) + overhead, 0)
            };
            let bands = input.width.div_ceil(limits.np_max_width.value);
            (NpType::Cnp1, per_filter, shared, ranges(input.width, bands))
        }
        _ => return fail("no hardware unit runs this layer type".into(), ""),
    };
    let memory = limits.np_memory_bytes.value;
    if shared_bytes + bytes_per_filter > memory {
        return fail(
            format!("one filter needs {} bytes, an NP holds {memory}", shared_bytes + bytes_per_filter),
            "use fewer input channels or weight bits",
        );
    }
    let mut per_np = limits.np_max_filters.value.min((memory - shared_bytes) / bytes_per_filter);
    if mode == MapMode::AllNps {
        per_np = per_np.min(options.allnps_filters_per_np);
    }
    let groups = neurons.div_ceil(per_np.max(1));
    Ok(Planned::Nps { np_type, filter_groups: ranges(neurons, groups), column_bands, shared_bytes, bytes_per_filter })
}

fn check_input_conv(layer: &akida_engine::Layer, limits: &Limits) -> Result<(), SoftwareReason> {
    let LayerParams::InputConvolutional { conv, pooling, channels, height, .. } = layer.params() else {
        unreachable!("checked by the caller")
    };
    let fail = |rule: String, fix: &str| Err(reason(LayerKind::InputConvolutional, layer.name(), rule, fix));
    let k = conv.kernel_width;
    if conv.kernel_height != k || !limits.input_conv_kernels.value.contains(&k) {
        return fail(
            format!(
                "kernel {} x {}, the 1.0 hardware takes {}",
                conv.kernel_height,
                k,
                list(limits.input_conv_kernels.value)
            ),
            "use a square 3, 5 or 7 kernel",
        );
    }
    if conv.stride_x != conv.stride_y || conv.stride_x > limits.input_conv_max_stride.value {
        return fail(
            format!(
                "stride {} x {}, the input conversion takes 1 to {}",
                conv.stride_y, conv.stride_x, limits.input_conv_max_stride.value
            ),
            "",
        );
    }
    if *height > limits.input_conv_max_height.value {
        return fail(
            format!("input height {height}, the input conversion takes at most {}", limits.input_conv_max_height.value),
            "resize the images",
        );
    }
    if pooling.kind == PoolingType::Average {
        return fail("average pooling; the input conversion pools with max only".into(), "use max pooling");
    }
    let table =
        if *channels == 1 { limits.input_conv_max_filters_gray.value } else { limits.input_conv_max_filters_rgb.value };
    let max = table[(k - 3) / 2];
    if conv.num_neurons > max {
        return fail(
            format!(
                "{} filters, the input conversion takes at most {max} for a {k} x {k} kernel on {channels} channel(s)",
                conv.num_neurons
            ),
            "use fewer filters",
        );
    }
    Ok(())
}

fn list(values: &[usize]) -> String {
    let text: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    match text.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => text.join(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use akida_engine::{Activation, Convolution, ConvolutionMode, Layer, Pooling};

    fn activation(bits: i64) -> Activation {
        Activation::new(true, 0, 1.0, bits).unwrap()
    }

    fn conv(kernel: i64, neurons: i64, stride: i64, bits: i64) -> Convolution {
        Convolution::new(
            kernel,
            kernel,
            neurons,
            ConvolutionMode::Same,
            stride,
            stride,
            bits,
            akida_engine::WEIGHT_BITS,
        )
        .unwrap()
    }

    fn convolutional(name: &str, kernel: i64, neurons: i64, pooling: Pooling) -> Layer {
        let params =
            LayerParams::Convolutional { conv: conv(kernel, neurons, 1, 4), pooling, activation: activation(1) };
        Layer::new(name, params).unwrap()
    }

    fn dense(name: &str, neurons: i64, enabled: bool) -> Layer {
        let a = Activation::new(enabled, 0, 1.0, 1).unwrap();
        Layer::new(name, LayerParams::fully_connected(neurons, 4, a).unwrap()).unwrap()
    }

    fn model(input: (i64, i64, i64), layers: Vec<Layer>) -> Model {
        let mut m = Model::new();
        m.add(Layer::new("input", LayerParams::input_data(input.1, input.0, input.2, 1).unwrap()).unwrap(), None)
            .unwrap();
        for layer in layers {
            m.add(layer, None).unwrap();
        }
        m
    }

    fn max2() -> Pooling {
        Pooling::new(PoolingType::Max, 2, 2, -1, -1).unwrap()
    }

    fn global_average() -> Pooling {
        Pooling::new(PoolingType::Average, -1, -1, -1, -1).unwrap()
    }

    fn nps(mapping: &Mapping, name: &str) -> usize {
        match &mapping.layers().find(|l| l.name == name).unwrap().placement {
            Placement::Nps(shares) => shares.len(),
            other => panic!("{name} is not on NPs: {other:?}"),
        }
    }

    #[test]
    fn the_seed_mnist_network_maps_on_one_pass() {
        let m = model(
            (28, 28, 1),
            vec![
                convolutional("conv_1", 3, 32, Pooling::default()),
                convolutional("conv_2", 3, 64, max2()),
                convolutional("conv_3", 3, 64, global_average()),
                dense("fc_1", 128, true),
                dense("fc_2", 10, false),
            ],
        );
        let mapping = map(&m, &Device::akd1000(), MapMode::AllNps);
        assert!(mapping.software_reasons().is_empty(), "{:?}", mapping.software_reasons());
        assert_eq!(mapping.sequences.len(), 1);
        assert_eq!(mapping.sequences[0].passes.len(), 1);
        assert_eq!(mapping.layers().next().unwrap().placement, Placement::Input);
        assert_eq!(mapping.nps_used(), 5);
        for share in mapping.layers().filter_map(|l| match &l.placement {
            Placement::Nps(s) => Some(s),
            _ => None,
        }) {
            for s in share {
                assert!(s.memory_bytes <= Device::akd1000().limits.np_memory_bytes.value);
            }
        }
        let fc = mapping.layers().find(|l| l.name == "fc_1").unwrap();
        let Placement::Nps(shares) = &fc.placement else { panic!() };
        assert_eq!(shares[0].np_type, NpType::Fnp3);
        assert_eq!(shares[0].ident.id, 0);
    }

    #[test]
    fn wide_inputs_split_into_bands_and_many_filters_into_groups() {
        let m = model((16, 112, 64), vec![convolutional("wide", 3, 512, Pooling::default())]);
        let all = map(&m, &Device::akd1000(), MapMode::AllNps);
        let minimal = map(&m, &Device::akd1000(), MapMode::Minimal);
        // 112 columns: 4 bands of at most 32. One filter: 3 * 3 * 64 weights of 4 bits + 4 bytes =
        // 292 bytes, so 350 fit in 100 KB: Minimal needs 2 groups; AllNps caps groups at 128 filters.
        assert_eq!(nps(&minimal, "wide"), 4 * 2);
        assert_eq!(nps(&all, "wide"), 4 * 4);
        let Placement::Nps(shares) = &all.layers().nth(1).unwrap().placement else { panic!() };
        let covered: usize = shares.iter().filter(|s| s.columns.start == 0).map(|s| s.filters.len()).sum();
        assert_eq!(covered, 512);
        assert_eq!(shares.iter().filter(|s| s.filters.start == 0).map(|s| s.columns.len()).sum::<usize>(), 112);
    }

    #[test]
    fn refusals_name_the_rule_the_value_and_the_limit() {
        let m =
            model((16, 16, 8), vec![convolutional("big_kernel", 9, 8, Pooling::default()), dense("flat", 4, false)]);
        let mapping = map(&m, &Device::akd1000(), MapMode::AllNps);
        let reasons: Vec<String> = mapping.software_reasons().iter().map(|r| r.to_string()).collect();
        assert_eq!(
            reasons[0],
            "Convolutional 'big_kernel': kernel 9 x 9, the 1.0 hardware takes 1, 3, 5 or 7; use a square kernel of a \
             supported size"
        );
        assert!(reasons[1]
            .starts_with("FullyConnected 'flat': input (16, 16, 8), the hardware's FullyConnected takes 1 x 1 x C"));
        assert_eq!(mapping.sequences.len(), 2);
        assert_eq!(mapping.sequences[1].backend, Backend::Software);
    }

    #[test]
    fn a_full_mesh_starts_a_new_pass() {
        // Each layer: 64 columns (2 bands) x 512 1 x 1 filters (260 bytes each, so memory allows
        // 393) in AllNps groups of 128 (4 groups): 8 NPs. The 80 NPs hold 10 layers per pass.
        let layers = (0..12).map(|i| convolutional(&format!("c{i}"), 1, 512, Pooling::default())).collect();
        let m = model((8, 64, 16), layers);
        let mapping = map(&m, &Device::akd1000(), MapMode::AllNps);
        assert!(mapping.software_reasons().is_empty());
        assert_eq!(mapping.sequences.len(), 1);
        let passes = &mapping.sequences[0].passes;
        assert_eq!(passes.len(), 2);
        assert_eq!(passes[0].layers.len(), 1 + 10);
        assert_eq!(mapping.nps_used(), 80);
    }
}
