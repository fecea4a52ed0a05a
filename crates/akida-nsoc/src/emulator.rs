//! Running a mapped model NP by NP, counting what each NP does.
//!
//! Each NP of a layer receives the events of the input columns its share needs (its band plus the
//! halo its kernel and pooling reach), computes the potentials of its filters, pools, thresholds,
//! and keeps the outputs of the columns it owns: the band's proportional share of the layer's
//! output columns, for its filters. Each owned output depends only on the events its band
//! receives, so the union of the NPs' outputs is the layer's output: the emulator computes the
//! layer once per chunk of samples with the engine's own plan and gives each output to the NP that
//! owns it, and derives every NP's counts from the events its band receives ([`np_outputs`]). A
//! plain twin runs band by band as the hardware does ([`run_nps_by_band`]); the tests check on
//! random models in both modes that the two agree in outputs and counts, and that the emulated
//! forward equals the software forward exactly.
//!
//! Synaptic operations of an NP: every (input event, potential it reaches, filter of the NP)
//! update it computes, its halo included; for a separable layer, also the depthwise updates,
//! which every NP of the layer performs on the events it receives.
//!
//! The input conversion block (HRC) and software layers run the engine's layer as a whole; a
//! Concat (software: the 1.0 hardware has none) joins its inbound layers' events.

use std::collections::BTreeMap;
use std::ops::Range;

use akida_engine::activation::Thresholds;
use akida_engine::error::reserved_vec;
use akida_engine::events::events_from_dense;
use akida_engine::kernels;
use akida_engine::shape::{ConvGeometry, PoolGeometry};
use akida_engine::{Error, Event, Input, Layer, LayerKind, LayerParams, Model, Output, OutputKind, Result, Shape3};

use crate::cost::{xy_hops, Counts};
use crate::device::NpIdent;
use crate::mapper::{Mapping, NpShare, Placement};

/// The virtual position of the input conversion block on the mesh, for hop counts (assumption:
/// the HRC sits west of the first column, level with the first row).
pub const HRC_IDENT: NpIdent = NpIdent { col: 0, row: 1, id: 0 };

/// What an emulated forward produced and counted.
#[derive(Debug, Clone, PartialEq)]
pub struct Emulation {
    /// The last layer's output, dense `(samples, H, W, C)`, as int32 (activations or potentials).
    pub output: Vec<i32>,
    /// Per layer, everything its units did.
    pub layers: Vec<Counts>,
    /// Per NP, everything it did (over all layers it holds).
    pub nps: BTreeMap<NpIdent, Counts>,
    /// The HRC's dense work (synaptic ops = multiply-adds, whatever the sparsity).
    pub hrc: Counts,
    /// Per layer and NP: what the NP did for that layer.
    pub layer_nps: BTreeMap<(usize, NpIdent), Counts>,
    /// Samples run.
    pub samples: u64,
}

impl Emulation {
    /// Adds the counts of `other` (a later chunk of the same call) to these; outputs are not kept.
    pub fn absorb(&mut self, other: Emulation) {
        if self.layers.len() < other.layers.len() {
            self.layers.resize(other.layers.len(), Counts::default());
        }
        for (a, b) in self.layers.iter_mut().zip(other.layers) {
            *a += b;
        }
        for (k, v) in other.nps {
            *self.nps.entry(k).or_default() += v;
        }
        for (k, v) in other.layer_nps {
            *self.layer_nps.entry(k).or_default() += v;
        }
        self.hrc += other.hrc;
        self.samples += other.samples;
        self.output.clear();
    }

    /// Every NP's and the HRC's counts together.
    pub fn totals(&self) -> Counts {
        let mut total = self.hrc;
        for c in self.nps.values() {
            total += *c;
        }
        total
    }

    /// The cost model's estimates for this run: each hardware pass lasts as long as its busiest
    /// NP (the HRC's dense work counts in the first pass), passes add up.
    pub fn estimate(&self, mapping: &Mapping, device: &crate::Device, cost: &crate::CostModel) -> crate::Estimate {
        let mut cycles = 0.0;
        let mut first = true;
        for sequence in mapping.sequences.iter().filter(|s| s.backend == crate::Backend::Hardware) {
            for pass in &sequence.passes {
                let mut per_np: BTreeMap<NpIdent, Counts> = BTreeMap::new();
                let mut hrc = None;
                for layer in &pass.layers {
                    match &layer.placement {
                        Placement::Nps(shares) => {
                            for share in shares {
                                if let Some(c) = self.layer_nps.get(&(layer.layer, share.ident)) {
                                    *per_np.entry(share.ident).or_default() += *c;
                                }
                            }
                        }
                        Placement::Hrc if first => hrc = Some(self.hrc),
                        _ => {}
                    }
                }
                let nps: Vec<Counts> = per_np.into_values().collect();
                cycles += cost.pass_cycles(&nps, hrc.as_ref());
                first = false;
            }
        }
        cost.estimate(device, cycles, &self.totals(), self.samples)
    }
}

/// Most samples [`Emulator::run_parallel`] gives one [`Emulator::run`] call: a part's layer
/// buffers then stay small enough to be reused by the allocator and to sit in cache, instead of
/// fresh pages per part (an assumption tuned on `benches/bench_nsoc.py`).
const PART_SAMPLES: usize = 64;

/// An event and the unit that sent it (for hop counts).
type Sent = (Event, NpIdent);

/// One NP's share of a layer, ready to run.
struct NpUnit {
    share: NpShare,
    /// The input columns the NP receives.
    receive: Range<usize>,
    /// The output columns (after pooling) the NP owns.
    own: Range<usize>,
}

/// The NPs of a layer, grouped by column band: the NPs of one band receive the same events and
/// differ only by their filters, so the emulator computes a band's filters in one kernel call
/// (wide vectors) and keeps each NP's outputs and counts apart.
struct NpLayer {
    nps: Vec<NpUnit>,
    /// Per band: the indices of its NPs in `nps`.
    bands: Vec<Vec<usize>>,
    /// Per output column (after pooling): the band that owns it.
    band_of_column: Vec<usize>,
    /// Per band, per filter: the position in `bands[band]` of the NP that holds the filter.
    np_of_filter: Vec<Vec<usize>>,
    /// Per input column: the NPs that receive its events.
    receivers_of_column: Vec<Vec<NpIdent>>,
    /// The layer as a one-layer model, which computes the union of the NPs' outputs.
    whole: Model,
    thresholds: Option<Thresholds>,
}

enum Unit {
    Input,
    /// The whole layer on the HRC or in software: a one-layer model (with an InputData in front
    /// for a data-processing layer).
    Whole {
        model: Model,
        hrc: bool,
    },
    Nps(NpLayer),
    /// A Concat (software): joins its inbound layers' events along channels, then thresholds
    /// densely when its activation is enabled.
    Concat {
        thresholds: Option<Thresholds>,
    },
}

/// A mapped model ready to emulate.
///
/// It holds what it prepared (the one-layer models of the HRC and software layers, with their
/// kernel plans once they ran, and the NP tables), not the model: every run takes the model it
/// was prepared for, so a caller can keep it across calls until the model or its mapping changes.
pub struct Emulator {
    units: Vec<Unit>,
    /// Run NP layers band by band ([`run_nps_by_band`]) and count packets per receiving NP
    /// ([`count_packets_by_receiver`]): the plain twins of the default.
    by_band: bool,
}

fn layer_error(layer: &Layer, what: &str) -> Error {
    Error::Architecture(format!("cannot emulate layer {} ({}): {what}", layer.label(), layer.kind().type_name()))
}

impl Emulator {
    /// Prepares `model` as `mapping` places it.
    pub fn new(model: &Model, mapping: &Mapping) -> Result<Self> {
        let mut units = Vec::with_capacity(model.layers().len());
        for (index, layer) in model.layers().iter().enumerate() {
            if model.inbound(index).len() > 1 && layer.kind() != LayerKind::Concat {
                return Err(layer_error(layer, "only a Concat joins several inbound layers"));
            }
            let placement = mapping
                .layers()
                .find(|l| l.layer == index)
                .map(|l| &l.placement)
                .ok_or_else(|| layer_error(layer, "the mapping does not describe it (map the model again)"))?;
            let unit = match placement {
                _ if layer.kind() == LayerKind::Concat => {
                    let thresholds = layer.params().activation().filter(|a| a.enabled).map(|a| {
                        Thresholds::new(layer.threshold_fire(), layer.threshold_fire_step(), a.threshold_fire_bits)
                    });
                    Unit::Concat { thresholds }
                }
                Placement::Input => Unit::Input,
                Placement::Hrc => Unit::Whole { model: whole_layer_model(layer)?, hrc: true },
                Placement::Software(_) => Unit::Whole { model: whole_layer_model(layer)?, hrc: false },
                Placement::Nps(shares) => Unit::Nps(np_layer(layer, shares)?),
            };
            units.push(unit);
        }
        Ok(Emulator { units, by_band: false })
    }

    /// The same emulator running NP layers band by band, as the hardware does (the plain twin
    /// of the default, for the tests).
    #[cfg(test)]
    fn by_band(self) -> Self {
        Emulator { by_band: true, ..self }
    }

    /// [`run`](Self::run) with the samples spread over rayon's threads when `parallel`; the
    /// result is the same whatever the threads.
    pub fn run_parallel(&self, model: &Model, inputs: &[u8], samples: usize, parallel: bool) -> Result<Emulation> {
        use rayon::prelude::*;
        let per_sample = model.input_shape()?.len().max(1);
        let threads = rayon::current_num_threads();
        if !parallel || threads < 2 || samples < 2 {
            return self.run(model, inputs, samples);
        }
        let chunk = samples.div_ceil(threads * 4).clamp(1, PART_SAMPLES);
        let parts: Vec<Result<Emulation>> =
            inputs.par_chunks(chunk * per_sample).map(|part| self.run(model, part, part.len() / per_sample)).collect();
        let mut total: Option<Emulation> = None;
        for part in parts {
            let mut part = part?;
            match &mut total {
                None => total = Some(part),
                Some(t) => {
                    let output = std::mem::take(&mut part.output);
                    let mut kept = std::mem::take(&mut t.output);
                    kept.extend_from_slice(&output);
                    t.absorb(part);
                    t.output = kept;
                }
            }
        }
        total.ok_or_else(|| Error::Input("no samples".into()))
    }

    /// Runs `samples` dense inputs (`u8`, the model's input shape, concatenated), layer by layer:
    /// every layer runs once for all the samples (an NP layer's outputs are then given to their
    /// NPs, and its counts derived sample by sample; band by band in the plain twin).
    ///
    /// `model` is the model the emulator was prepared for ([`Emulator::new`]), unchanged since.
    pub fn run(&self, model: &Model, inputs: &[u8], samples: usize) -> Result<Emulation> {
        if model.layers().len() != self.units.len() {
            return Err(Error::Architecture(format!(
                "the emulator was prepared for a model of {} layers, not {}: prepare it again",
                self.units.len(),
                model.layers().len()
            )));
        }
        let input_shape = model.input_shape()?;
        let output_shape = model.output_shape()?;
        if inputs.len() != input_shape.len() * samples {
            return Err(Error::Input(format!("{} input values for {samples} samples of {input_shape}", inputs.len())));
        }
        let layer_count = model.layers().len();
        let batch_len = |len: usize| len.saturating_mul(samples);
        let mut emulation = Emulation {
            output: reserved_vec(batch_len(output_shape.len()), "the emulated output")?,
            layers: vec![Counts::default(); layer_count],
            nps: BTreeMap::new(),
            hrc: Counts::default(),
            layer_nps: BTreeMap::new(),
            samples: samples as u64,
        };
        // Per layer, per sample: its output events and which unit sent each (for hops).
        let mut outputs: Vec<Vec<Vec<Sent>>> = Vec::with_capacity(layer_count);
        let mut last_dense: Option<Vec<i32>> = None;
        for (index, unit) in self.units.iter().enumerate() {
            let layer = &model.layers()[index];
            let inbound = model.inbound(index).first().copied();
            let last = index + 1 == layer_count;
            let mut produced: Vec<Vec<Sent>> = Vec::with_capacity(samples);
            match unit {
                Unit::Input => {
                    for sample in inputs.chunks_exact(input_shape.len().max(1)).take(samples) {
                        let mut events = Vec::new();
                        events_from_dense(&input_shape, sample, &mut events);
                        emulation.layers[index].output_events += events.len() as u64;
                        produced.push(events.into_iter().map(|e| (e, HRC_IDENT)).collect());
                    }
                }
                Unit::Whole { model: whole, hrc } => {
                    let r = layer.resolved().expect("in a model");
                    let image_input = layer.kind() == LayerKind::InputConvolutional;
                    let (output, mut counts) = if image_input {
                        run_whole(whole, inputs, samples)?
                    } else {
                        let source = &outputs[inbound.expect("a data-processing layer has an inbound layer")];
                        run_whole(whole, &dense_inputs(source, &r.input_shape)?, samples)?
                    };
                    let mut events = Vec::new();
                    for sample in 0..samples {
                        events.clear();
                        output.sample_events(&r.output_shape, sample, &mut events);
                        counts.output_events += events.len() as u64;
                        produced.push(events.iter().map(|&e| (e, HRC_IDENT)).collect());
                    }
                    if !image_input {
                        counts.input_events = outputs[inbound.expect("checked")].iter().map(|v| v.len() as u64).sum();
                    }
                    emulation.layers[index] += counts;
                    if *hrc {
                        emulation.hrc += counts;
                    }
                    if last {
                        last_dense = Some(output.into_i32());
                    }
                }
                Unit::Concat { thresholds } => {
                    let r = layer.resolved().expect("in a model");
                    let mut dense = match last {
                        true => Some(reserved_vec(batch_len(output_shape.len()), "the emulated output")?),
                        false => None,
                    };
                    #[allow(clippy::needless_range_loop)] // one sample across several inbound layers
                    for sample in 0..samples {
                        let mut joined = Vec::new();
                        let mut offset = 0u32;
                        for &j in model.inbound(index) {
                            for (e, _) in &outputs[j][sample] {
                                joined.push(Event { c: e.c + offset, ..*e });
                            }
                            offset += model.layers()[j].resolved().expect("in a model").output_shape.channels as u32;
                        }
                        emulation.layers[index].input_events += joined.len() as u64;
                        let events = match thresholds {
                            Some(t) => {
                                let mut potentials = vec![0i32; r.output_shape.len()];
                                for e in &joined {
                                    potentials[r.output_shape.index(e.y as usize, e.x as usize, e.c as usize)] =
                                        e.value;
                                }
                                let mut fired = Vec::new();
                                kernels::activate(&potentials, &r.output_shape, t, &mut fired);
                                fired
                            }
                            None => {
                                joined.sort();
                                joined
                            }
                        };
                        emulation.layers[index].output_events += events.len() as u64;
                        if let Some(d) = dense.as_mut() {
                            d.extend(to_dense_i32(&events, &r.output_shape));
                        }
                        produced.push(events.into_iter().map(|e| (e, HRC_IDENT)).collect());
                    }
                    if last {
                        last_dense = dense;
                    }
                }
                Unit::Nps(unit) => {
                    let source = &outputs[inbound.expect("NP layers have an inbound layer")];
                    if self.by_band {
                        let mut dense = match last {
                            true => Some(reserved_vec(batch_len(output_shape.len()), "the emulated output")?),
                            false => None,
                        };
                        for received in source {
                            let (events, d) = run_nps_by_band(index, layer, unit, received, last, &mut emulation)?;
                            if let (Some(all), Some(d)) = (dense.as_mut(), d) {
                                all.extend_from_slice(&d);
                            }
                            produced.push(events);
                        }
                        if last {
                            last_dense = dense;
                        }
                    } else {
                        if unit.thresholds.is_none() && !last {
                            return Err(layer_error(layer, "a hidden layer must emit activations"));
                        }
                        // The layer's outputs, all samples at once with the engine's own plan:
                        // the union of the NPs' outputs (see `run_nps_by_band`).
                        let r = layer.resolved().expect("in a model");
                        let (output, _) = run_whole(&unit.whole, &dense_inputs(source, &r.input_shape)?, samples)?;
                        let (mut fired, mut depthwise) = (Vec::new(), Vec::new());
                        for (sample, received) in source.iter().enumerate() {
                            fired.clear();
                            if unit.thresholds.is_some() {
                                output.sample_events(&r.output_shape, sample, &mut fired);
                            }
                            produced.push(np_outputs(
                                index,
                                layer,
                                unit,
                                received,
                                &fired,
                                &mut depthwise,
                                &mut emulation,
                            ));
                        }
                        if last {
                            last_dense = Some(output.into_i32());
                        }
                    }
                }
            }
            outputs.push(produced);
        }
        // Packets and hops: every event goes to each NP of each consumer layer that receives its
        // column.
        if self.by_band {
            for sample in 0..samples {
                let per_layer: Vec<&[Sent]> = outputs.iter().map(|l| l[sample].as_slice()).collect();
                count_packets_by_receiver(model, &self.units, &per_layer, &mut emulation);
            }
        } else {
            count_packets(model, &self.units, &outputs, &mut emulation);
        }
        emulation.output = match last_dense {
            Some(d) => d,
            None => outputs
                .last()
                .map(|l| {
                    l.iter().flat_map(|events| to_dense_i32(events.iter().map(|(e, _)| e), &output_shape)).collect()
                })
                .unwrap_or_default(),
        };
        Ok(emulation)
    }
}

/// Packets and hops of every sample at once: every event goes to each NP of each consumer layer
/// that receives its column. Events are counted per sender and input column first; each
/// (sender, column) pair then costs its receivers once.
fn count_packets(model: &Model, units: &[Unit], outputs: &[Vec<Vec<Sent>>], emulation: &mut Emulation) {
    for (consumer, unit) in units.iter().enumerate() {
        let Unit::Nps(layer) = unit else { continue };
        let Some(&source) = model.inbound(consumer).first() else { continue };
        let columns = layer.receivers_of_column.len();
        let mut senders: Vec<NpIdent> = Vec::new();
        // `per_column[i * columns + x]`: the events of sender `i` in input column `x`.
        let mut per_column: Vec<u64> = Vec::new();
        let mut current = usize::MAX;
        for (event, from) in outputs[source].iter().flatten() {
            if current == usize::MAX || senders[current] != *from {
                current = match senders.iter().position(|s| s == from) {
                    Some(i) => i,
                    None => {
                        senders.push(*from);
                        per_column.resize(senders.len() * columns, 0);
                        senders.len() - 1
                    }
                };
            }
            per_column[current * columns + event.x as usize] += 1;
        }
        for (i, &from) in senders.iter().enumerate() {
            let (mut packets, mut hops) = (0u64, 0u64);
            for (receivers, &events) in
                layer.receivers_of_column.iter().zip(&per_column[i * columns..(i + 1) * columns])
            {
                packets += events * receivers.len() as u64;
                hops += events * receivers.iter().map(|&to| xy_hops(from, to)).sum::<u64>();
            }
            if packets == 0 {
                continue;
            }
            if from == HRC_IDENT {
                emulation.hrc.packets += packets;
                emulation.hrc.hops += hops;
            } else {
                let sender = emulation.nps.entry(from).or_default();
                sender.packets += packets;
                sender.hops += hops;
                let per_layer = emulation.layer_nps.entry((source, from)).or_default();
                per_layer.packets += packets;
                per_layer.hops += hops;
            }
            emulation.layers[source].packets += packets;
            emulation.layers[source].hops += hops;
        }
    }
}

/// The plain twin of [`count_packets`]: every (event, receiving NP) pair on its own.
fn count_packets_by_receiver(model: &Model, units: &[Unit], outputs: &[&[Sent]], emulation: &mut Emulation) {
    for (consumer, unit) in units.iter().enumerate() {
        let Unit::Nps(layer) = unit else { continue };
        let Some(&source) = model.inbound(consumer).first() else { continue };
        for (event, from) in outputs[source] {
            for np in &layer.nps {
                if np.receive.contains(&(event.x as usize)) {
                    let hops = xy_hops(*from, np.share.ident);
                    let sender = emulation.nps.entry(*from).or_default();
                    if *from != HRC_IDENT {
                        sender.packets += 1;
                        sender.hops += hops;
                        let per_layer = emulation.layer_nps.entry((source, *from)).or_default();
                        per_layer.packets += 1;
                        per_layer.hops += hops;
                    }
                    emulation.layers[source].packets += 1;
                    emulation.layers[source].hops += hops;
                    if *from == HRC_IDENT {
                        emulation.hrc.packets += 1;
                        emulation.hrc.hops += hops;
                    }
                }
            }
        }
    }
    emulation.nps.remove(&HRC_IDENT);
}

/// A one-layer model computing `layer` whole.
fn whole_layer_model(layer: &Layer) -> Result<Model> {
    let mut model = Model::new();
    let resolved = layer.resolved().ok_or_else(|| layer_error(layer, "its shapes are unknown"))?;
    if layer.kind() != LayerKind::InputConvolutional {
        let s = resolved.input_shape;
        let bits = (32 - (resolved.input_max.max(1) as u32).leading_zeros()) as i64;
        let input = LayerParams::input_data(s.width as i64, s.height as i64, s.channels as i64, bits)?;
        model.add(Layer::new("emulated_input", input)?, None)?;
    }
    model.add(layer.clone(), None)?;
    Ok(model)
}

/// The output of a one-layer model for a batch: activation levels, or potentials.
enum WholeOutput {
    Levels(Vec<u8>),
    Potentials(Vec<i32>),
}

impl WholeOutput {
    /// Appends the non-zero outputs of `sample` (of `shape`) to `out`, in canonical order.
    fn sample_events(&self, shape: &Shape3, sample: usize, out: &mut Vec<Event>) {
        let len = shape.len();
        match self {
            WholeOutput::Levels(v) => events_from_dense(shape, &v[sample * len..(sample + 1) * len], out),
            WholeOutput::Potentials(v) => events_from_dense(shape, &v[sample * len..(sample + 1) * len], out),
        }
    }

    fn into_i32(self) -> Vec<i32> {
        match self {
            WholeOutput::Levels(v) => v.into_iter().map(i32::from).collect(),
            WholeOutput::Potentials(v) => v,
        }
    }
}

/// Runs a one-layer model on `samples` dense inputs (on this thread: [`Emulator::run_parallel`]
/// spreads whole chunks over threads); returns its dense output and its counts.
fn run_whole(model: &Model, input: &[u8], samples: usize) -> Result<(WholeOutput, Counts)> {
    let shape = model.output_shape()?;
    let total = shape.len().checked_mul(samples);
    let input = Input::Dense { data: input, num_samples: samples };
    let (output, stats) = match model.output_kind()? {
        OutputKind::Potentials => {
            let mut values: Vec<i32> = akida_engine::error::zeroed_vec(total, "the emulated layer output")?;
            let stats = model.forward(input, Output::Potentials(&mut values), false)?;
            (WholeOutput::Potentials(values), stats)
        }
        OutputKind::Activations { .. } => {
            let mut levels: Vec<u8> = akida_engine::error::zeroed_vec(total, "the emulated layer output")?;
            let stats = model.forward(input, Output::Activations(&mut levels), false)?;
            (WholeOutput::Levels(levels), stats)
        }
    };
    let last = stats.last().copied().unwrap_or_default();
    Ok((output, Counts { synaptic_ops: last.synaptic_operations, ..Counts::default() }))
}

/// The dense inputs of a layer for every sample, from its inbound layer's events per sample.
fn dense_inputs(source: &[Vec<Sent>], shape: &Shape3) -> Result<Vec<u8>> {
    let len = shape.len();
    let mut dense: Vec<u8> =
        akida_engine::error::zeroed_vec(len.checked_mul(source.len()), "the emulated layer inputs")?;
    for (events, sample) in source.iter().zip(dense.chunks_exact_mut(len.max(1))) {
        for (e, _) in events {
            sample[shape.index(e.y as usize, e.x as usize, e.c as usize)] = e.value.clamp(0, 255) as u8;
        }
    }
    Ok(dense)
}

fn to_dense_i32<'e>(events: impl IntoIterator<Item = &'e Event>, shape: &Shape3) -> Vec<i32> {
    let mut dense = vec![0i32; shape.len()];
    for e in events {
        dense[shape.index(e.y as usize, e.x as usize, e.c as usize)] = e.value;
    }
    dense
}

/// Splits `total` output columns among `bands` NPs: band `i` owns `[i * total / bands, ...)`.
fn owned(total: usize, band: usize, bands: usize) -> Range<usize> {
    (band * total / bands)..((band + 1) * total / bands)
}

fn np_layer(layer: &Layer, shares: &[NpShare]) -> Result<NpLayer> {
    let r = layer.resolved().ok_or_else(|| layer_error(layer, "its shapes are unknown"))?;
    if !matches!(
        layer.params(),
        LayerParams::FullyConnected { .. }
            | LayerParams::Convolutional { .. }
            | LayerParams::SeparableConvolutional { .. }
    ) {
        return Err(layer_error(layer, "only FullyConnected and convolutional layers run on NPs"));
    }
    let mut columns: Vec<Range<usize>> = shares.iter().map(|s| s.columns.clone()).collect();
    columns.sort_by_key(|b| b.start);
    columns.dedup();
    let mut bands = vec![Vec::new(); columns.len()];
    let mut nps = Vec::with_capacity(shares.len());
    for share in shares {
        let band = columns.iter().position(|b| *b == share.columns).expect("the band is listed");
        let own = owned(r.output_shape.width, band, columns.len());
        let receive = receive_columns(layer, &own);
        bands[band].push(nps.len());
        nps.push(NpUnit { share: share.clone(), receive, own });
    }
    let thresholds = layer
        .params()
        .activation()
        .filter(|a| a.enabled)
        .map(|a| Thresholds::new(layer.threshold_fire(), layer.threshold_fire_step(), a.threshold_fire_bits));
    let mut band_of_column = vec![0; r.output_shape.width];
    let neurons = r.potentials_shape.channels;
    let mut np_of_filter = vec![vec![usize::MAX; neurons]; bands.len()];
    for (band, members) in bands.iter().enumerate() {
        for x in owned(r.output_shape.width, band, bands.len()) {
            band_of_column[x] = band;
        }
        for (k, &i) in members.iter().enumerate() {
            for f in nps[i].share.filters.clone() {
                np_of_filter[band][f] = k;
            }
        }
        if np_of_filter[band].contains(&usize::MAX) {
            return Err(layer_error(layer, "a band of its NPs does not hold every filter"));
        }
    }
    let receivers_of_column = (0..r.input_shape.width)
        .map(|x| nps.iter().filter(|np| np.receive.contains(&x)).map(|np| np.share.ident).collect())
        .collect();
    let whole = whole_layer_model(layer)?;
    Ok(NpLayer { nps, bands, band_of_column, np_of_filter, receivers_of_column, whole, thresholds })
}

/// The input columns the owners of output columns `own` need: the pooling windows of those
/// columns, then the kernel taps of those potentials.
fn receive_columns(layer: &Layer, own: &Range<usize>) -> Range<usize> {
    let r = layer.resolved().expect("checked by the caller");
    if own.is_empty() {
        return 0..0;
    }
    let (mut lo, mut hi) = (own.start, own.end);
    if let Some(pool) = &r.pool {
        lo = pool.x.cells(own.start).0;
        hi = pool.x.cells(own.end - 1).1;
    }
    match &r.conv {
        Some(g) => {
            let first = (lo * g.x.stride).saturating_sub(g.x.pad_before);
            let last = ((hi - 1) * g.x.stride + g.x.kernel).saturating_sub(g.x.pad_before).min(g.x.input);
            first..last.max(first)
        }
        None => 0..r.input_shape.width, // FullyConnected: every input
    }
}

/// What the NPs of a layer did for one sample, given the layer's output events `fired` for it
/// (none for a last layer without activation; computed by the engine for all the layer, the
/// union of the NPs' outputs: each owned output depends only on the events its band receives):
/// its events, each sent by the NP that owns its column and filter, and every NP's counts, from
/// the events its band received (a convolution's operations per event are the potentials it
/// reaches, known from its position; a separable layer's pointwise operations need the band's
/// own depthwise result, computed on the band's events in `depthwise`, a scratch buffer kept
/// zero between calls). Equal to [`run_nps_by_band`] in events and counts; the tests compare the
/// two on random models.
fn np_outputs(
    index: usize,
    layer: &Layer,
    unit: &NpLayer,
    received: &[Sent],
    fired: &[Event],
    band_depthwise: &mut Vec<i32>,
    emulation: &mut Emulation,
) -> Vec<Sent> {
    let r = layer.resolved().expect("in a model");
    let neurons = r.potentials_shape.channels;
    let mut fired_per_np: Vec<Vec<u64>> = unit.bands.iter().map(|b| vec![0u64; b.len()]).collect();
    let mut events = Vec::with_capacity(fired.len());
    for &e in fired {
        let band = unit.band_of_column[e.x as usize];
        let k = unit.np_of_filter[band][e.c as usize];
        fired_per_np[band][k] += 1;
        events.push((e, unit.nps[unit.bands[band][k]].share.ident));
    }
    // A separable layer's depthwise result for each band, zero outside the columns the band's
    // events reach (cleared after each band, so it stays zero between calls).
    if let LayerParams::SeparableConvolutional { .. } = layer.params() {
        band_depthwise.resize(r.potentials_shape.height * r.potentials_shape.width * r.input_shape.channels, 0);
    }
    for (band, members) in unit.bands.iter().enumerate() {
        let receive = &unit.nps[members[0]].receive;
        let mine = received.iter().map(|(e, _)| e).filter(|e| receive.contains(&(e.x as usize)));
        let (shared_ops, filter_ops, input_events) = match layer.params() {
            LayerParams::Convolutional { .. } => {
                let g: &ConvGeometry = r.conv.as_ref().expect("convolutional");
                let (mut n, mut reached) = (0u64, 0u64);
                for e in mine {
                    let (ylo, yhi) = g.y.reached_outputs(e.y as usize);
                    let (xlo, xhi) = g.x.reached_outputs(e.x as usize);
                    n += 1;
                    reached += ((yhi - ylo) * (xhi - xlo)) as u64;
                }
                (0, reached * neurons as u64, n)
            }
            LayerParams::SeparableConvolutional { .. } => {
                let g: &ConvGeometry = r.conv.as_ref().expect("separable");
                let band_events: Vec<Event> = mine.copied().collect();
                let dw = kernels::depthwise_events(&band_events, &r.input_shape, g, layer.weights(), band_depthwise);
                // The depthwise cells the band's events reach lie in these columns.
                let columns = match (receive.start, receive.end) {
                    (start, end) if start < end => g.x.reached_outputs(start).0..g.x.reached_outputs(end - 1).1,
                    _ => 0..0,
                };
                let (width, channels) = (r.potentials_shape.width, r.input_shape.channels);
                let mut nonzero = 0u64;
                for y in 0..r.potentials_shape.height {
                    let row = &mut band_depthwise
                        [(y * width + columns.start) * channels..(y * width + columns.end) * channels];
                    nonzero += row.iter().filter(|&&v| v != 0).count() as u64;
                    row.iter_mut().for_each(|v| *v = 0);
                }
                (dw, nonzero * neurons as u64, band_events.len() as u64)
            }
            // FullyConnected (NP layers are checked when the emulator is prepared)
            _ => {
                let n = mine.count() as u64;
                (0, n * neurons as u64, n)
            }
        };
        for (k, &i) in members.iter().enumerate() {
            let share = &unit.nps[i].share;
            let c = Counts {
                input_events,
                output_events: fired_per_np[band][k],
                synaptic_ops: shared_ops + filter_ops / neurons as u64 * share.filters.len() as u64,
                ..Counts::default()
            };
            *emulation.nps.entry(share.ident).or_default() += c;
            *emulation.layer_nps.entry((index, share.ident)).or_default() += c;
            emulation.layers[index] += c;
        }
    }
    events
}

/// The plain twin of [`np_outputs`], as the hardware works: each band of NPs computes the whole
/// layer's potentials from only the events it receives, pools, thresholds and keeps the outputs
/// of the columns it owns.
fn run_nps_by_band(
    index: usize,
    layer: &Layer,
    unit: &NpLayer,
    received: &[Sent],
    last: bool,
    emulation: &mut Emulation,
) -> Result<(Vec<Sent>, Option<Vec<i32>>)> {
    let r = layer.resolved().expect("in a model");
    let out_shape = r.output_shape;
    let neurons = r.potentials_shape.channels;
    let mut events = Vec::new();
    let mut dense = last.then(|| vec![0i32; out_shape.len()]);
    for band in &unit.bands {
        let first = &unit.nps[band[0]];
        let mine: Vec<Event> =
            received.iter().filter(|(e, _)| first.receive.contains(&(e.x as usize))).map(|(e, _)| *e).collect();
        let mut potentials = vec![0i32; r.potentials_shape.len()];
        // Operations of the shared part (the depthwise step every NP of the band performs) and of
        // the per-filter part (split among the NPs by their filter counts).
        let (shared_ops, filter_ops) = match layer.params() {
            LayerParams::FullyConnected { .. } => {
                let ops = kernels::fully_connected_events::<i32>(
                    &mine,
                    &r.input_shape,
                    layer.weights(),
                    neurons,
                    &mut potentials,
                );
                (0, ops)
            }
            LayerParams::Convolutional { .. } => {
                let g: &ConvGeometry = r.conv.as_ref().expect("convolutional");
                (
                    0,
                    kernels::convolve_events::<i32>(
                        &mine,
                        &r.input_shape,
                        g,
                        layer.weights(),
                        neurons,
                        &mut potentials,
                    ),
                )
            }
            LayerParams::SeparableConvolutional { .. } => {
                let g: &ConvGeometry = r.conv.as_ref().expect("separable");
                let mut d = vec![0i32; r.potentials_shape.height * r.potentials_shape.width * r.input_shape.channels];
                let dw = kernels::depthwise_events(&mine, &r.input_shape, g, layer.weights(), &mut d);
                let pw =
                    kernels::pointwise::<i32>(&d, r.input_shape.channels, layer.weights_pw(), neurons, &mut potentials);
                (dw, pw)
            }
            _ => return Err(layer_error(layer, "only FullyConnected and convolutional layers run on NPs")),
        };
        let pooled = match &r.pool {
            Some(pool) => {
                let g: &PoolGeometry = pool;
                let mut out = vec![0i32; out_shape.len()];
                let mut sums = Vec::new();
                kernels::pool(&potentials, &r.potentials_shape, g, &mut out, &mut sums);
                out
            }
            None => potentials,
        };
        let own = first.own.clone();
        let mut fired_per_np = vec![0u64; band.len()];
        match (&unit.thresholds, dense.as_mut()) {
            (Some(thresholds), _) => {
                let mut fired = Vec::new();
                kernels::activate(&pooled, &out_shape, thresholds, &mut fired);
                for e in fired.into_iter().filter(|e| own.contains(&(e.x as usize))) {
                    let k = band
                        .iter()
                        .position(|&i| unit.nps[i].share.filters.contains(&(e.c as usize)))
                        .expect("the band's NPs hold every filter");
                    fired_per_np[k] += 1;
                    if let Some(d) = dense.as_mut() {
                        d[out_shape.index(e.y as usize, e.x as usize, e.c as usize)] = e.value;
                    }
                    events.push((e, unit.nps[band[k]].share.ident));
                }
            }
            (None, Some(d)) => {
                for y in 0..out_shape.height {
                    for x in own.clone() {
                        for c in 0..neurons {
                            d[out_shape.index(y, x, c)] = pooled[out_shape.index(y, x, c)];
                        }
                    }
                }
            }
            (None, None) => return Err(layer_error(layer, "a hidden layer must emit activations")),
        }
        for (k, &i) in band.iter().enumerate() {
            let share = &unit.nps[i].share;
            let c = Counts {
                input_events: mine.len() as u64,
                output_events: fired_per_np[k],
                synaptic_ops: shared_ops + filter_ops / neurons as u64 * share.filters.len() as u64,
                ..Counts::default()
            };
            *emulation.nps.entry(share.ident).or_default() += c;
            *emulation.layer_nps.entry((index, share.ident)).or_default() += c;
            emulation.layers[index] += c;
        }
    }
    events.sort_by_key(|(e, _)| *e);
    Ok((events, dense))
}

/// The forward of a mapped model, computed by the emulator and written like `Model::forward`
/// writes its output (activations as `u8`, potentials as `i32`, or rescaled potentials).
pub fn emulate_forward(
    model: &Model,
    mapping: &Mapping,
    input: Input<'_>,
    output: Output<'_>,
    parallel: bool,
) -> Result<Emulation> {
    emulate_forward_with(&Emulator::new(model, mapping)?, model, input, output, parallel)
}

/// [`emulate_forward`] with an emulator prepared for `model` ([`Emulator::new`]) and kept across
/// calls, which saves preparing it (and the kernel plans of its HRC and software layers) again.
pub fn emulate_forward_with(
    emulator: &Emulator,
    model: &Model,
    input: Input<'_>,
    output: Output<'_>,
    parallel: bool,
) -> Result<Emulation> {
    model.check_input(&input)?;
    let shape = model.input_shape()?;
    let samples = input.num_samples();
    let dense: std::borrow::Cow<'_, [u8]> = match input {
        Input::Dense { data, .. } => std::borrow::Cow::Borrowed(data),
        Input::Events(batch) => {
            let mut dense = vec![0u8; shape.len() * samples];
            for (sample, event) in batch.iter() {
                dense[sample * shape.len() + shape.index(event.y as usize, event.x as usize, event.c as usize)] =
                    event.value.clamp(0, 255) as u8;
            }
            std::borrow::Cow::Owned(dense)
        }
    };
    let emulation = emulator.run_parallel(model, &dense, samples, parallel)?;
    match output {
        Output::Potentials(out) => out.copy_from_slice(&emulation.output),
        Output::Activations(out) => {
            out.iter_mut().zip(&emulation.output).for_each(|(o, &v)| *o = v.clamp(0, 255) as u8)
        }
        Output::Rescaled(out) => {
            let last = model.layers().last().expect("checked");
            akida_engine::model::rescale(&emulation.output, last.output_scale(), last.output_offset(), out);
        }
    }
    Ok(emulation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Device;
    use crate::mapper::{map, MapMode};
    use akida_engine::testing::{engine_forward, random_inputs, random_model, Rng};

    #[test]
    fn emulated_forward_equals_the_software_forward_on_random_models() {
        let device = Device::akd1000();
        let (mut emulated, mut on_nps, mut skipped) = (0, 0, 0);
        for seed in 0..300u64 {
            let mut rng = Rng(seed * 7919 + 1);
            let model = random_model(&mut rng);
            let samples = 3;
            let inputs = random_inputs(&model, &mut rng, samples);
            let expected = engine_forward(&model, Input::Dense { data: &inputs, num_samples: samples }, false);
            for mode in [MapMode::AllNps, MapMode::Minimal] {
                let mapping = map(&model, &device, mode);
                let emulator = match Emulator::new(&model, &mapping) {
                    Ok(e) => e,
                    Err(_) => {
                        skipped += 1;
                        continue;
                    }
                };
                let run = emulator.run(&model, &inputs, samples).unwrap();
                let by_band = Emulator::new(&model, &mapping).unwrap().by_band().run(&model, &inputs, samples).unwrap();
                assert_eq!(run, by_band, "seed {seed} {mode:?}: once per layer != band by band (outputs or counts)");
                assert_eq!(
                    run.output,
                    expected,
                    "seed {seed} {mode:?}\n{}\n{}",
                    crate::mapper::report(&mapping, &device),
                    akida_engine::summary::summary(&model)
                );
                emulated += 1;
                on_nps += usize::from(!run.nps.is_empty());
            }
        }
        eprintln!("emulated {emulated} mappings ({on_nps} with NPs), skipped {skipped}");
        assert!(skipped == 0 && emulated == 600 && on_nps >= 80, "emulated {emulated}, on NPs {on_nps}");
    }

    fn randomize(model: &mut Model, index: usize, rng: &mut Rng) {
        let layer = model.layer_mut(index).unwrap();
        let bits = layer.params().weights_bits().unwrap_or(1);
        let (lo, hi) = akida_engine::params::weight_range(bits);
        for (name, shape) in layer.variable_specs() {
            let len: usize = shape.iter().product();
            let values = match name {
                "weights" | "weights_pw" => akida_engine::VariableValues::Int(
                    (0..len).map(|_| if rng.chance(0.4) { rng.range(lo.into(), hi.into()) } else { 0 }).collect(),
                ),
                "threshold_fire" => akida_engine::VariableValues::Int((0..len).map(|_| rng.range(-2, 10)).collect()),
                "threshold_fire_step" => {
                    akida_engine::VariableValues::Float((0..len).map(|_| rng.pick(&[0.5, 1.0, 2.5])).collect())
                }
                _ => continue,
            };
            layer.set_variable(name, &shape, values).unwrap();
        }
    }

    /// Random models inside the hardware limits: InputData, up to three square convolutions or
    /// separable convolutions (kernels 1/3/5/7, stride 2 only with 3 x 3, 2 x 2 max pooling or
    /// global average pooling), then FullyConnected layers on 1 x 1 x C; wide inputs (several
    /// column bands) and many filters (several groups).
    fn hardware_model(rng: &mut Rng) -> Option<Model> {
        use akida_engine::{Activation, Convolution, ConvolutionMode, Pooling, PoolingType};
        let mut model = Model::new();
        let (h, w, c) = (rng.range(3, 9), rng.range(3, 90), rng.range(1, 6));
        model.add(Layer::new("in", LayerParams::input_data(w, h, c, rng.range(1, 4)).ok()?).ok()?, None).ok()?;
        let convs = rng.range(1, 3);
        for i in 0..convs {
            let last_conv = i + 1 == convs;
            let k = rng.pick(&[1, 3, 3, 5]);
            let stride = if k == 3 && rng.chance(0.3) { 2 } else { 1 };
            let mode = if rng.chance(0.5) { ConvolutionMode::Same } else { ConvolutionMode::Valid };
            let neurons = rng.pick(&[3, 8, 17, 64, 130]);
            let separable = rng.chance(0.4);
            let bits = if separable { rng.pick(&[2, 4]) } else { rng.pick(&[1, 2, 4]) };
            let conv = Convolution::new(k, k, neurons, mode, stride, stride, bits, akida_engine::WEIGHT_BITS).ok()?;
            let pooling = match rng.range(0, 2) {
                0 => Pooling::default(),
                1 => Pooling::new(PoolingType::Max, 2, 2, -1, -1).ok()?,
                _ if last_conv => Pooling::new(PoolingType::Average, -1, -1, -1, -1).ok()?,
                _ => Pooling::default(),
            };
            let activation = Activation::new(true, 0, rng.pick(&[0.5, 1.0, 3.0]), rng.pick(&[1, 2, 4])).ok()?;
            let params = if separable {
                LayerParams::SeparableConvolutional { conv, pooling, activation }
            } else {
                LayerParams::Convolutional { conv, pooling, activation }
            };
            model.add(Layer::new("", params).ok()?, None).ok()?;
            let index = model.layers().len() - 1;
            randomize(&mut model, index, rng);
        }
        for i in 0..rng.range(0, 2) {
            let last = i == 1;
            let activation = Activation::new(!last || rng.chance(0.5), 0, 1.0, rng.pick(&[1, 2, 4])).ok()?;
            let params = LayerParams::fully_connected(rng.pick(&[5, 10, 40]), rng.pick(&[1, 2, 4]), activation).ok()?;
            model.add(Layer::new("", params).ok()?, None).ok()?;
            let index = model.layers().len() - 1;
            randomize(&mut model, index, rng);
        }
        Some(model)
    }

    #[test]
    fn emulated_forward_equals_the_software_forward_on_models_that_fit_the_hardware() {
        let device = Device::akd1000();
        let (mut emulated, mut multi_np_layers) = (0, 0);
        for seed in 0..300u64 {
            let mut rng = Rng(seed * 104_729 + 5);
            let Some(model) = hardware_model(&mut rng) else { continue };
            let samples = 2;
            let inputs = random_inputs(&model, &mut rng, samples);
            let expected = engine_forward(&model, Input::Dense { data: &inputs, num_samples: samples }, false);
            for mode in [MapMode::AllNps, MapMode::Minimal] {
                let mapping = map(&model, &device, mode);
                multi_np_layers +=
                    mapping.layers().filter(|l| matches!(&l.placement, Placement::Nps(s) if s.len() > 1)).count();
                let run = Emulator::new(&model, &mapping).unwrap().run(&model, &inputs, samples).unwrap();
                let by_band = Emulator::new(&model, &mapping).unwrap().by_band().run(&model, &inputs, samples).unwrap();
                assert_eq!(run, by_band, "seed {seed} {mode:?}: once per layer != band by band (outputs or counts)");
                assert_eq!(run.output, expected, "seed {seed} {mode:?}\n{}", crate::mapper::report(&mapping, &device));
                emulated += 1;
            }
        }
        eprintln!("emulated {emulated} hardware mappings, {multi_np_layers} layers split over several NPs");
        assert!(emulated >= 400 && multi_np_layers >= 200);
    }
}
