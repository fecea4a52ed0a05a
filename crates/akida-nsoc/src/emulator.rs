//! Running a mapped model NP by NP, counting what each NP does.
//!
//! Each NP of a layer receives the events of the input columns its share needs (its band plus the
//! halo its kernel and pooling reach), computes the potentials of its filters with the engine's
//! own kernels, pools, thresholds, and keeps the outputs of the columns it owns: the band's
//! proportional share of the layer's output columns, for its filters. The NPs of one band
//! receive the same events, so their filters are computed in one kernel call and split after;
//! each NP's events and counts stay its own. The union of the NPs' outputs is the layer's output,
//! so the emulated forward equals the software forward exactly; the tests check it on random
//! models in both modes.
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
use akida_engine::error::{copied_vec, reserved_vec};
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
pub struct Emulator<'m> {
    model: &'m Model,
    units: Vec<Unit>,
}

fn layer_error(layer: &Layer, what: &str) -> Error {
    Error::Architecture(format!("cannot emulate layer {} ({}): {what}", layer.label(), layer.kind().type_name()))
}

impl<'m> Emulator<'m> {
    /// Prepares `model` as `mapping` places it.
    pub fn new(model: &'m Model, mapping: &Mapping) -> Result<Self> {
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
        Ok(Emulator { model, units })
    }

    /// [`run`](Self::run) with the samples spread over rayon's threads when `parallel`; the
    /// result is the same whatever the threads.
    pub fn run_parallel(&self, inputs: &[u8], samples: usize, parallel: bool) -> Result<Emulation> {
        use rayon::prelude::*;
        let per_sample = self.model.input_shape()?.len().max(1);
        let threads = rayon::current_num_threads();
        if !parallel || threads < 2 || samples < 2 {
            return self.run(inputs, samples);
        }
        let chunk = samples.div_ceil(threads * 4).max(1);
        let parts: Vec<Result<Emulation>> =
            inputs.par_chunks(chunk * per_sample).map(|part| self.run(part, part.len() / per_sample)).collect();
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
    /// a whole layer (HRC or software) runs once for all the samples, NPs sample by sample.
    pub fn run(&self, inputs: &[u8], samples: usize) -> Result<Emulation> {
        let model = self.model;
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
                    let dense_in: Vec<u8> = if image_input {
                        copied_vec(inputs, "a copy of the emulated inputs")?
                    } else {
                        let source = &outputs[inbound.expect("a data-processing layer has an inbound layer")];
                        let mut dense = reserved_vec(batch_len(r.input_shape.len()), "the emulated layer inputs")?;
                        dense.extend(source.iter().flat_map(|events| to_dense(events, &r.input_shape)));
                        dense
                    };
                    let (values, mut counts) = run_whole(whole, &dense_in, samples)?;
                    let out_len = r.output_shape.len();
                    for sample in values.chunks_exact(out_len.max(1)).take(samples) {
                        let mut events = Vec::new();
                        events_from_dense(&r.output_shape, sample, &mut events);
                        counts.output_events += events.len() as u64;
                        produced.push(events.into_iter().map(|e| (e, HRC_IDENT)).collect());
                    }
                    if !image_input {
                        counts.input_events = outputs[inbound.expect("checked")].iter().map(|v| v.len() as u64).sum();
                    }
                    emulation.layers[index] += counts;
                    if *hrc {
                        emulation.hrc += counts;
                    }
                    if last {
                        last_dense = Some(values);
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
                    let mut dense = match last {
                        true => Some(reserved_vec(batch_len(output_shape.len()), "the emulated output")?),
                        false => None,
                    };
                    for received in source {
                        let (events, d) = run_nps(index, layer, unit, received, last, &mut emulation)?;
                        if let (Some(all), Some(d)) = (dense.as_mut(), d) {
                            all.extend_from_slice(&d);
                        }
                        produced.push(events);
                    }
                    if last {
                        last_dense = dense;
                    }
                }
            }
            outputs.push(produced);
        }
        // Packets and hops: every event goes to each NP of each consumer layer that receives its
        // column.
        for sample in 0..samples {
            let per_layer: Vec<&[Sent]> = outputs.iter().map(|l| l[sample].as_slice()).collect();
            count_packets(model, &self.units, &per_layer, &mut emulation);
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

fn count_packets(model: &Model, units: &[Unit], outputs: &[&[Sent]], emulation: &mut Emulation) {
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

/// Runs a one-layer model on `samples` dense inputs (on this thread: [`Emulator::run_parallel`]
/// spreads whole chunks over threads); returns its dense output as i32 and its counts.
fn run_whole(model: &Model, input: &[u8], samples: usize) -> Result<(Vec<i32>, Counts)> {
    let shape = model.output_shape()?;
    let total = shape.len().checked_mul(samples);
    let mut values: Vec<i32> = akida_engine::error::zeroed_vec(total, "the emulated layer output")?;
    let input = Input::Dense { data: input, num_samples: samples };
    let stats = match model.output_kind()? {
        OutputKind::Potentials => model.forward(input, Output::Potentials(&mut values), false)?,
        OutputKind::Activations { .. } => {
            let mut out: Vec<u8> = akida_engine::error::zeroed_vec(total, "the emulated layer output")?;
            let s = model.forward(input, Output::Activations(&mut out), false)?;
            values.iter_mut().zip(&out).for_each(|(v, &o)| *v = i32::from(o));
            s
        }
    };
    let last = stats.last().copied().unwrap_or_default();
    Ok((values, Counts { synaptic_ops: last.synaptic_operations, ..Counts::default() }))
}

fn to_dense(events: &[Sent], shape: &Shape3) -> Vec<u8> {
    let mut dense = vec![0u8; shape.len()];
    for (e, _) in events {
        dense[shape.index(e.y as usize, e.x as usize, e.c as usize)] = e.value.clamp(0, 255) as u8;
    }
    dense
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
    Ok(NpLayer { nps, bands, thresholds })
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

fn run_nps(
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
    let emulator = Emulator::new(model, mapping)?;
    let emulation = emulator.run_parallel(&dense, samples, parallel)?;
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
                let run = emulator.run(&inputs, samples).unwrap();
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
                let run = Emulator::new(&model, &mapping).unwrap().run(&inputs, samples).unwrap();
                assert_eq!(run.output, expected, "seed {seed} {mode:?}\n{}", crate::mapper::report(&mapping, &device));
                emulated += 1;
            }
        }
        eprintln!("emulated {emulated} hardware mappings, {multi_np_layers} layers split over several NPs");
        assert!(emulated >= 400 && multi_np_layers >= 200);
    }
}
