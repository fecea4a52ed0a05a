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
//!    [`MapMode::Minimal`] uses the largest groups that fit.
//! 4. Consecutive hardware layers form a hardware sequence, cut into passes: a layer that does not
//!    fit in the NPs left in the pass (convolutions: CNP1/CNP2-capable NPs; FullyConnected: FNP3)
//!    starts a new pass. Software layers form software sequences.
//! 5. [`MapMode::AllNps`] then spreads each pass over its free NPs: it doubles the filter groups
//!    of the convolutional layer whose NPs hold the most filters, as long as the pass has the NPs
//!    and every NP keeps at least `min_filters_per_np` filters ([`MapperOptions`]).
//! 6. NPs are given in mesh order; fully connected layers first, and convolutional layers take
//!    the NPs that cannot be FNP3 before those that can.

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
    /// In [`MapMode::AllNps`], the fewest filters an NP keeps when a layer spreads (assumption:
    /// the published DS-CNN mapping puts each 64-filter separable layer on 16 NPs, 4 filters each).
    pub min_filters_per_np: usize,
    /// Bytes an NP needs per filter besides its weights: threshold and step (assumption: a
    /// 20-bit threshold and a 4-bit step rounded up to 4 bytes).
    pub bytes_per_filter_overhead: usize,
    /// Bytes of a program that configure one NP (or the HRC) besides what it holds: its layer
    /// geometry, its filter and column ranges and its routes (assumption: no public figure; a
    /// register block of 64 bytes).
    pub unit_config_bytes: usize,
}

impl Default for MapperOptions {
    fn default() -> Self {
        MapperOptions { min_filters_per_np: 4, bytes_per_filter_overhead: 4, unit_config_bytes: 64 }
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
    /// Bytes of the program that loads a hardware sequence, every pass: for each NP its weights
    /// and thresholds ([`NpShare::memory_bytes`]) plus [`MapperOptions::unit_config_bytes`], and
    /// the same for the HRC's InputConvolutional. 0 for a software sequence.
    pub program_bytes: usize,
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
    let planned: Vec<(String, Result<Planned, SoftwareReason>)> = (0..model.layers().len())
        .map(|index| {
            let layer = &model.layers()[index];
            let mut plan = place(model, index, device, options, input_bits(model, index));
            if let Ok(Planned::Nps(p)) = &plan {
                let (needed, capacity) = (p.nps(), capacity(device, p.np_type));
                if needed > capacity {
                    plan = Err(reason(
                        layer.kind(),
                        layer.name(),
                        format!("needs {needed} {} NPs, the device has {capacity}", p.np_type),
                        "use fewer filters, fewer input channels or a narrower input",
                    ));
                }
            }
            (layer.name().to_owned(), plan)
        })
        .collect();
    // Sequences of consecutive layers with one backend; hardware sequences cut into passes.
    let mut sequences: Vec<Sequence> = Vec::new();
    let mut pass_plans: Vec<Vec<(usize, NpPlan)>> = Vec::new();
    let mut usage = Usage::default();
    for (index, (name, plan)) in planned.into_iter().enumerate() {
        let backend = if plan.is_err() { Backend::Software } else { Backend::Hardware };
        if sequences.last().map(|s| s.backend) != Some(backend) {
            finish_passes(&mut sequences, &mut pass_plans, device, mode, options);
            sequences.push(Sequence { backend, passes: vec![Pass::default()], program_bytes: 0 });
            usage = Usage::default();
            if backend == Backend::Hardware {
                pass_plans.push(Vec::new());
            }
        }
        let placement = match plan {
            Err(reason) => Placement::Software(reason),
            Ok(Planned::Input) => Placement::Input,
            Ok(Planned::Hrc) => Placement::Hrc,
            Ok(Planned::Nps(p)) => {
                if !usage.fits(device, p.np_type, p.nps()) {
                    sequences.last_mut().expect("pushed above").passes.push(Pass::default());
                    pass_plans.push(Vec::new());
                    usage = Usage::default();
                }
                usage.add(p.np_type, p.nps());
                pass_plans.last_mut().expect("a hardware sequence has a pass").push((index, p));
                Placement::Nps(Vec::new())
            }
        };
        let sequence = sequences.last_mut().expect("pushed above");
        sequence.passes.last_mut().expect("a sequence has a pass").layers.push(LayerMapping {
            layer: index,
            name,
            placement,
        });
    }
    finish_passes(&mut sequences, &mut pass_plans, device, mode, options);
    for sequence in sequences.iter_mut().filter(|s| s.backend == Backend::Hardware) {
        sequence.program_bytes = program_bytes(model, sequence, options);
    }
    Mapping { mode, device: device.version.clone(), sequences }
}

/// See [`Sequence::program_bytes`].
fn program_bytes(model: &Model, sequence: &Sequence, options: MapperOptions) -> usize {
    let config = options.unit_config_bytes;
    let mut total = 0usize;
    for layer in sequence.passes.iter().flat_map(|p| p.layers.iter()) {
        total += match &layer.placement {
            Placement::Nps(shares) => shares.iter().map(|s| s.memory_bytes + config).sum(),
            Placement::Hrc => {
                let LayerParams::InputConvolutional { conv, channels, .. } = model.layers()[layer.layer].params()
                else {
                    unreachable!("the HRC holds InputConvolutional layers only")
                };
                let filter_bits = conv.kernel_width * conv.kernel_height * channels * usize::from(conv.weights_bits);
                conv.num_neurons * (filter_bits.div_ceil(8) + options.bytes_per_filter_overhead) + config
            }
            Placement::Input | Placement::Software(_) => 0,
        };
    }
    total
}

/// NPs of a pass so far, by kind.
#[derive(Default)]
struct Usage {
    convolutional: usize,
    fully_connected: usize,
}

impl Usage {
    fn fits(&self, device: &Device, kind: NpType, extra: usize) -> bool {
        let (c, f) = if kind.is_convolutional() {
            (self.convolutional + extra, self.fully_connected)
        } else {
            (self.convolutional, self.fully_connected + extra)
        };
        c <= capacity(device, NpType::Cnp1) && f <= capacity(device, NpType::Fnp3) && c + f <= device.nps.len()
    }

    fn add(&mut self, kind: NpType, extra: usize) {
        if kind.is_convolutional() {
            self.convolutional += extra;
        } else {
            self.fully_connected += extra;
        }
    }
}

fn capacity(device: &Device, kind: NpType) -> usize {
    device.nps_of(kind).count()
}

/// Spreads the layers of the pending passes (AllNps) and gives them concrete NPs.
fn finish_passes(
    sequences: &mut [Sequence],
    pass_plans: &mut Vec<Vec<(usize, NpPlan)>>,
    device: &Device,
    mode: MapMode,
    options: MapperOptions,
) {
    let Some(sequence) = sequences.last_mut().filter(|s| s.backend == Backend::Hardware) else {
        pass_plans.clear();
        return;
    };
    for (pass, mut plans) in sequence.passes.iter_mut().zip(pass_plans.drain(..)) {
        if mode == MapMode::AllNps {
            spread(&mut plans, device, options);
        }
        let mut pool = NpPool::new(device);
        // Fully connected layers first: they need the NPs that can be FNP3.
        plans.sort_by_key(|(_, p)| p.np_type.is_convolutional());
        for (index, plan) in plans {
            let shares = plan.shares(&mut pool);
            let mapping = pass.layers.iter_mut().find(|l| l.layer == index).expect("planned layers are in their pass");
            mapping.placement = Placement::Nps(shares);
        }
    }
}

/// AllNps: while the pass has free NPs, doubles the filter groups of the convolutional layer whose
/// NPs hold the most filters, as long as each NP keeps at least `min_filters_per_np` filters.
fn spread(plans: &mut [(usize, NpPlan)], device: &Device, options: MapperOptions) {
    let mut usage = Usage::default();
    for (_, p) in plans.iter() {
        usage.add(p.np_type, p.nps());
    }
    let mut frozen = vec![false; plans.len()];
    loop {
        let candidate = plans
            .iter()
            .enumerate()
            .filter(|(i, (_, p))| !frozen[*i] && p.np_type.is_convolutional())
            .max_by_key(|(i, (_, p))| (p.neurons.div_ceil(p.groups), std::cmp::Reverse(*i)))
            .map(|(i, _)| i);
        let Some(i) = candidate else { break };
        let p = &mut plans[i].1;
        let most = (p.neurons / options.min_filters_per_np.max(1)).max(1);
        let groups = (p.groups * 2).min(most);
        let extra = (groups - p.groups.min(groups)) * p.bands.len();
        if groups <= p.groups || !usage.fits(device, p.np_type, extra) {
            frozen[i] = true;
            continue;
        }
        usage.add(p.np_type, extra);
        p.groups = groups;
    }
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
}

enum Planned {
    Input,
    Hrc,
    Nps(NpPlan),
}

/// How a layer splits over NPs: `groups` filter groups times its column bands.
struct NpPlan {
    np_type: NpType,
    neurons: usize,
    groups: usize,
    bands: Vec<Range<usize>>,
    /// Bytes an NP holds for its share: shared (depthwise kernels) + per filter.
    shared_bytes: usize,
    bytes_per_filter: usize,
}

impl NpPlan {
    fn nps(&self) -> usize {
        self.groups * self.bands.len()
    }

    fn shares(&self, pool: &mut NpPool<'_>) -> Vec<NpShare> {
        let mut shares = Vec::with_capacity(self.nps());
        for filters in ranges(self.neurons, self.groups) {
            for columns in &self.bands {
                let ident = pool.take(self.np_type).expect("the pass was sized to its NPs");
                shares.push(NpShare {
                    ident,
                    np_type: self.np_type,
                    filters: filters.clone(),
                    columns: columns.clone(),
                    memory_bytes: self.shared_bytes + filters.len() * self.bytes_per_filter,
                });
            }
        }
        shares
    }
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
    if params.activation().is_some_and(|a| a.enabled) {
        let bits = limits.threshold_bits.value.clamp(1, 32);
        let (low, high) = (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1);
        if let Some(&t) = layer.threshold_fire().iter().find(|&&t| !(low..=high).contains(&i64::from(t))) {
            return fail(
                format!("threshold_fire {t}, the hardware holds {bits}-bit signed thresholds ({low} to {high})"),
                "lower the thresholds (cnn2snn quantizes them within this range), or disable the activations of a last layer",
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
    let memory = if np_type.is_convolutional() { limits.np_memory_bytes.value } else { limits.fnp_memory_bytes.value };
    if shared_bytes + bytes_per_filter > memory {
        return fail(
            format!("one filter needs {} bytes, an NP holds {memory}", shared_bytes + bytes_per_filter),
            "use fewer input channels or weight bits",
        );
    }
    let by_memory = (memory - shared_bytes) / bytes_per_filter;
    let per_np = if np_type.is_convolutional() { limits.np_max_filters.value.min(by_memory) } else { by_memory };
    let groups = neurons.div_ceil(per_np.max(1));
    Ok(Planned::Nps(NpPlan { np_type, neurons, groups, bands: column_bands, shared_bytes, bytes_per_filter }))
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
        let mapping = map(&m, &Device::akd1000(), MapMode::Minimal);
        assert!(mapping.software_reasons().is_empty(), "{:?}", mapping.software_reasons());
        assert_eq!(mapping.sequences.len(), 1);
        assert_eq!(mapping.sequences[0].passes.len(), 1);
        assert_eq!(mapping.layers().next().unwrap().placement, Placement::Input);
        assert_eq!(mapping.nps_used(), 5);
        let spread = map(&m, &Device::akd1000(), MapMode::AllNps);
        assert_eq!(spread.sequences[0].passes.len(), 1);
        assert!(spread.nps_used() > 5 && spread.nps_used() <= 80);
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
    fn thresholds_must_fit_in_20_signed_bits() {
        let layer = |name: &str, threshold: i32, enabled: bool| {
            let a = Activation::new(enabled, threshold.into(), 1.0, 1).unwrap();
            Layer::new(name, LayerParams::fully_connected(8, 4, a).unwrap()).unwrap()
        };
        let placed = |threshold: i32, enabled: bool| {
            let mut m = Model::new();
            m.add(Layer::new("input", LayerParams::input_data(1, 1, 16, 1).unwrap()).unwrap(), None).unwrap();
            m.add(layer("fc", threshold, enabled), None).unwrap();
            let mapping = map(&m, &Device::akd1000(), MapMode::Minimal);
            mapping.software_reasons().iter().map(|r| r.to_string()).collect::<Vec<_>>()
        };
        for t in [(1 << 19) - 1, -(1 << 19), 0] {
            assert!(placed(t, true).is_empty(), "{t}: {:?}", placed(t, true));
        }
        for t in [1 << 19, -(1 << 19) - 1, i32::MAX, i32::MIN] {
            let reasons = placed(t, true);
            assert_eq!(reasons.len(), 1, "{t}");
            assert!(
                reasons[0].contains(&format!("threshold_fire {t}, the hardware holds 20-bit signed thresholds")),
                "{}",
                reasons[0]
            );
        }
        // Without activations a layer outputs potentials and holds no threshold.
        assert!(placed(1 << 25, false).is_empty());
    }

    #[test]
    fn a_hardware_sequence_has_a_program_of_its_weights_thresholds_and_configuration() {
        // HRC: 8 filters of 3 x 3 x 1 weights of 4 bits = 36 bits -> 5 bytes, + 4 bytes of
        // threshold and step each, + 64 bytes of configuration: 8 * 9 + 64 = 136.
        // FC on 1 x 1 x 8 after global pooling: 10 neurons of 8 inputs x 4 bits = 4 bytes + 4,
        // on one NP: 10 * 8 + 64 = 144.
        let mut m = Model::new();
        let c =
            Convolution::new(3, 3, 8, ConvolutionMode::Same, 1, 1, 4, akida_engine::INPUT_CONV_WEIGHT_BITS).unwrap();
        let global = Pooling::new(PoolingType::Max, -1, -1, -1, -1).unwrap();
        let input = LayerParams::input_convolutional(8, 8, 1, c, global, activation(1), 0).unwrap();
        m.add(Layer::new("conv", input).unwrap(), None).unwrap();
        m.add(dense("fc", 10, false), None).unwrap();
        let mapping = map(&m, &Device::akd1000(), MapMode::Minimal);
        assert!(mapping.software_reasons().is_empty(), "{:?}", mapping.software_reasons());
        assert_eq!(mapping.sequences.len(), 1);
        assert_eq!(mapping.sequences[0].program_bytes, 136 + 144);
        let text = report(&mapping, &Device::akd1000());
        assert!(text.contains("sequence 0 (hardware): program 280 bytes"), "{text}");
        // A software sequence has no program.
        let m = model((16, 16, 8), vec![convolutional("big_kernel", 9, 8, Pooling::default())]);
        let mapping = map(&m, &Device::akd1000(), MapMode::Minimal);
        let software: Vec<_> = mapping.sequences.iter().filter(|s| s.backend == Backend::Software).collect();
        assert_eq!(software.len(), 1);
        assert_eq!(software[0].program_bytes, 0);
    }

    #[test]
    fn wide_inputs_split_into_bands_and_many_filters_into_groups() {
        let m = model((16, 112, 64), vec![convolutional("wide", 3, 512, Pooling::default())]);
        let all = map(&m, &Device::akd1000(), MapMode::AllNps);
        let minimal = map(&m, &Device::akd1000(), MapMode::Minimal);
        // 112 columns: 4 bands of at most 32. One filter: 3 * 3 * 64 weights of 4 bits + 4 bytes =
        // 292 bytes, so 350 fit in 100 KB: Minimal needs 2 groups. AllNps doubles the groups while
        // the 80 NPs allow: 4 groups (16 NPs), then 8 (32), then 16 (64); 32 would need 128.
        assert_eq!(nps(&minimal, "wide"), 4 * 2);
        assert_eq!(nps(&all, "wide"), 4 * 16);
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
        // 393: 2 groups): 4 NPs in Minimal. 20 layers fill the 80 NPs of a pass.
        let layers = (0..24).map(|i| convolutional(&format!("c{i}"), 1, 512, Pooling::default())).collect();
        let m = model((8, 64, 16), layers);
        let mapping = map(&m, &Device::akd1000(), MapMode::Minimal);
        assert!(mapping.software_reasons().is_empty());
        assert_eq!(mapping.sequences.len(), 1);
        let passes = &mapping.sequences[0].passes;
        assert_eq!(passes.len(), 2);
        // c0 sees 16 channels: its 512 filters fit one group, so 2 NPs; then 19 layers of 4.
        assert_eq!(passes[0].layers.len(), 1 + 20);
        assert_eq!(mapping.nps_used(), 78);
        let spread = map(&m, &Device::akd1000(), MapMode::AllNps);
        assert_eq!(spread.sequences[0].passes.len(), 2);
    }

    fn separable(name: &str, neurons: i64, stride: i64, pooling: Pooling) -> Layer {
        let params = LayerParams::SeparableConvolutional {
            conv: conv(3, neurons, stride, 4),
            pooling,
            activation: activation(4),
        };
        Layer::new(name, params).unwrap()
    }

    fn conv4(name: &str, neurons: i64, stride: i64) -> Layer {
        let params = LayerParams::Convolutional {
            conv: conv(3, neurons, stride, 4),
            pooling: Pooling::default(),
            activation: activation(4),
        };
        Layer::new(name, params).unwrap()
    }

    fn image_model(input: (i64, i64, i64), kernel: i64, filters: i64, stride: i64, layers: Vec<Layer>) -> Model {
        let c = Convolution::new(
            kernel,
            kernel,
            filters,
            ConvolutionMode::Same,
            stride,
            stride,
            8,
            akida_engine::INPUT_CONV_WEIGHT_BITS,
        )
        .unwrap();
        let params =
            LayerParams::input_convolutional(input.1, input.0, input.2, c, Pooling::default(), activation(4), 0)
                .unwrap();
        let mut m = Model::new();
        m.add(Layer::new("conv_0", params).unwrap(), None).unwrap();
        for layer in layers {
            m.add(layer, None).unwrap();
        }
        m
    }

    /// AkidaNet 0.5 at 224 x 224 as the public model zoo describes it: an input convolution, three
    /// convolutions, ten separable convolutions, a 1000-class classifier.
    pub(crate) fn akidanet_half_224() -> Model {
        let mut layers = vec![conv4("conv_1", 32, 1), conv4("conv_2", 64, 2), conv4("conv_3", 64, 1)];
        layers.push(separable("separable_4", 128, 1, max2()));
        layers.push(separable("separable_5", 128, 1, Pooling::default()));
        layers.push(separable("separable_6", 256, 1, max2()));
        for i in 7..=11 {
            layers.push(separable(&format!("separable_{i}"), 256, 1, Pooling::default()));
        }
        layers.push(separable("separable_12", 512, 1, max2()));
        layers.push(separable("separable_13", 512, 1, global_average()));
        layers.push(
            Layer::new(
                "classifier",
                LayerParams::fully_connected(1000, 4, Activation::new(false, 0, 1.0, 1).unwrap()).unwrap(),
            )
            .unwrap(),
        );
        image_model((224, 224, 3), 3, 16, 2, layers)
    }

    /// A DS-CNN keyword-spotting net: MFCC frames 49 x 10, an input convolution, four separable
    /// convolutions of 64 filters (the last pooling globally), a 33-word classifier.
    pub(crate) fn ds_cnn_kws() -> Model {
        let mut layers: Vec<Layer> =
            (1..=3).map(|i| separable(&format!("separable_{i}"), 64, 1, Pooling::default())).collect();
        layers.push(separable("separable_4", 64, 1, global_average()));
        layers.push(
            Layer::new(
                "classifier",
                LayerParams::fully_connected(33, 4, Activation::new(false, 0, 1.0, 1).unwrap()).unwrap(),
            )
            .unwrap(),
        );
        image_model((49, 10, 1), 5, 64, 2, layers)
    }

    fn within(measured: usize, published: usize, tolerance: f64) -> bool {
        (measured as f64 - published as f64).abs() <= tolerance * published as f64
    }

    #[test]
    fn published_architectures_land_near_their_published_np_counts() {
        let device = Device::akd1000();
        let akidanet = map(&akidanet_half_224(), &device, MapMode::AllNps);
        let kws_all = map(&ds_cnn_kws(), &device, MapMode::AllNps);
        let kws_minimal = map(&ds_cnn_kws(), &device, MapMode::Minimal);
        for m in [&akidanet, &kws_all, &kws_minimal] {
            assert!(m.software_reasons().is_empty(), "{:?}", m.software_reasons());
            assert_eq!(m.sequences.len(), 1);
            assert_eq!(m.sequences[0].passes.len(), 1);
        }
        let counts = (akidanet.nps_used(), kws_all.nps_used(), kws_minimal.nps_used());
        eprintln!("AkidaNet 0.5 AllNps {}, DS-CNN AllNps {}, Minimal {}", counts.0, counts.1, counts.2);
        assert!(within(counts.0, 68, 0.15), "AkidaNet 0.5: {} NPs, published 68", counts.0);
        assert!(within(counts.1, 65, 0.15), "DS-CNN AllNps: {} NPs, published 65", counts.1);
        assert!(within(counts.2, 5, 0.15), "DS-CNN Minimal: {} NPs, published 5", counts.2);
    }
}

/// A text report of a mapping: per sequence and pass, each layer's placement with its NPs and
/// memory, then the NPs used of the device and the largest memory an NP holds.
pub fn report(mapping: &Mapping, device: &Device) -> String {
    use std::fmt::Write;
    let mode = match mapping.mode {
        MapMode::AllNps => "AllNps",
        MapMode::Minimal => "Minimal",
    };
    let mut out = String::new();
    let passes: usize = mapping.sequences.iter().map(|s| s.passes.len()).sum();
    let _ = writeln!(
        out,
        "{} on {}: {} of {} NPs, {} sequence(s), {} pass(es)",
        mode,
        mapping.device,
        mapping.nps_used(),
        device.nps.len(),
        mapping.sequences.len(),
        passes
    );
    let mut largest = 0;
    for (s, sequence) in mapping.sequences.iter().enumerate() {
        let backend = match sequence.backend {
            Backend::Hardware => "hardware",
            Backend::Software => "software",
        };
        if sequence.backend == Backend::Hardware {
            let _ = writeln!(out, "  sequence {s} (hardware): program {} bytes", sequence.program_bytes);
        }
        for (p, pass) in sequence.passes.iter().enumerate() {
            let _ = writeln!(out, "  sequence {s} ({backend}), pass {p}:");
            for layer in &pass.layers {
                let place = match &layer.placement {
                    Placement::Input => "input (events over DMA)".to_owned(),
                    Placement::Hrc => "HRC (input conversion)".to_owned(),
                    Placement::Software(reason) => format!("software: {reason}"),
                    Placement::Nps(shares) => {
                        let bytes: Vec<usize> = shares.iter().map(|s| s.memory_bytes).collect();
                        let max = bytes.iter().copied().max().unwrap_or(0);
                        largest = largest.max(max);
                        let kind = shares.first().map_or("", |s| s.np_type.name());
                        format!("{} {kind} NP(s), up to {max} bytes each", shares.len())
                    }
                };
                let _ = writeln!(out, "    {:<24} {place}", layer.name);
            }
        }
    }
    // The mesh as text, one line per row of nodes: each node shows its NPs 0-3, each NP the
    // index (base 36) of the layer it holds in the first pass that uses it, '.' when free.
    let mut holder: std::collections::BTreeMap<NpIdent, usize> = std::collections::BTreeMap::new();
    for layer in mapping.layers() {
        if let Placement::Nps(shares) = &layer.placement {
            for share in shares {
                holder.entry(share.ident).or_insert(layer.layer);
            }
        }
    }
    let columns = device.nps.iter().map(|np| np.ident.col).max().unwrap_or(0);
    let rows = device.nps.iter().map(|np| np.ident.row).max().unwrap_or(0);
    let _ = writeln!(out, "mesh (rows of nodes; each node its NPs 0-3; the layer index each holds, '.' free):");
    for row in 1..=rows {
        let mut line = String::from("   ");
        for col in 1..=columns {
            line.push(' ');
            for id in 0..4u8 {
                let symbol = match holder.get(&NpIdent { col, row, id }) {
                    Some(&layer) => std::char::from_digit((layer % 36) as u32, 36).unwrap_or('?'),
                    None => '.',
                };
                line.push(symbol);
            }
        }
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "largest NP memory use: {largest} of {} bytes ({})",
        device.limits.np_memory_bytes.value,
        if device.limits.np_memory_bytes.is_assumption() { "an assumed size" } else { "public" }
    );
    out
}

#[cfg(test)]
mod report_tests {
    use super::*;

    #[test]
    fn the_report_lists_every_layer_and_the_totals() {
        let device = Device::akd1000();
        let mapping = map(&tests::ds_cnn_kws(), &device, MapMode::Minimal);
        let text = report(&mapping, &device);
        assert!(
            text.starts_with("Minimal on AKD1000 (description 1): 5 of 80 NPs, 1 sequence(s), 1 pass(es)"),
            "{text}"
        );
        assert!(text.contains("conv_0                   HRC (input conversion)"), "{text}");
        assert!(text.contains("classifier               1 FNP3 NP(s)"), "{text}");
    }
}
