//! `compile`, `restore_learning`, `add_classes` and `fit` of a [`Model`]: the layers before the
//! learning layer run through the executor in parallel, then the learning layer runs through the
//! executor and learns, one sample after the other. A FullyConnected learning layer's potentials
//! are computed ahead instead, a chunk of samples on another worker while this one learns, and
//! brought up to date sample by sample (see [`Model::fit_ahead`]).

use super::relay::{CloseOnDrop, Relay};
use super::rule::{
    connection_indices, decayed, familiarity, learn_step, neuron_familiarity, random_neuron, select_winner,
    Familiarity, LayerCounts, StepBuffers,
};
use super::state::{Learning, LearningConfig, LearningState};
use crate::error::{bail, Error, Result};
use crate::events::Event;
use crate::executor::{
    finish_layer, fully_connected_counters, map_reduce, run_layer, run_sample, write_output, Input, NoObserver, Output,
    Scratch, Sink,
};
use crate::graph::Model;
use crate::kernels::bits::BitWeights;
use crate::kernels::KernelSet;
use crate::layer::{OutputKind, Resolved};
use crate::params::{LayerKind, LayerParams};
use crate::plan::Plan;
use crate::statistics::{merge_all, LayerStatistics};
use std::sync::Arc;

impl Model {
    /// Prepares the last layer for Akida learning: checks the learning constraints, gives every
    /// neuron `num_weights` random weights equal to 1 and resets the learning state.
    pub fn compile(&mut self, config: LearningConfig) -> Result<()> {
        let Some(last) = self.layers().len().checked_sub(1) else {
            bail!(Architecture, "cannot compile a model with no layers")
        };
        self.check_learnable(last, &config)?;
        let neurons = self.layers()[last].expect_resolved()?.potentials_shape.channels;
        let connections = self.layers()[last].connections();
        let input_counts = crate::error::zeroed_vec(neurons.checked_mul(connections), "the learning input counts")?;
        let mut rng = config.seed;
        let layer = self.layer_mut(last)?;
        let mut indices = connection_indices(connections)?;
        let weights = layer.weights_mut();
        for n in 0..neurons {
            random_neuron(weights, neurons, n, config.num_weights, &mut indices, &mut rng);
        }
        layer.learning = Some(Learning {
            config,
            state: LearningState {
                plasticity: vec![config.initial_plasticity; neurons],
                threshold_learning: vec![0; neurons],
                rng,
                input_counts,
            },
        });
        Ok(())
    }

    /// Checks the learning constraints for layer `last` (the last layer when compiling).
    fn check_learnable(&self, last: usize, config: &LearningConfig) -> Result<()> {
        let layer = self.layer(last)?;
        let name = layer.name().to_owned();
        let r = *layer.expect_resolved()?;
        if !matches!(layer.kind(), LayerKind::FullyConnected | LayerKind::Convolutional) {
            bail!(
                Architecture,
                "only a FullyConnected or Convolutional last layer can learn; '{name}' is {}",
                layer.kind().type_name()
            );
        }
        if let Some(bits) = layer.params().weights_bits().filter(|&b| b != 1) {
            bail!(Architecture, "the learning layer '{name}' needs weights_bits=1, it has weights_bits={bits}");
        }
        if r.input_max != 1 {
            bail!(
                Architecture,
                "the learning layer '{name}' needs binary input spikes (a previous layer with 1-bit activations, \
                 or InputData with input_bits=1); its inputs reach {}",
                r.input_max
            );
        }
        let neurons = r.potentials_shape.channels;
        if !neurons.is_multiple_of(config.num_classes) {
            bail!(
                Parameter,
                "num_classes={} does not divide the {neurons} neurons of '{name}' into equal groups",
                config.num_classes
            );
        }
        let connections = layer.connections();
        if config.num_weights > connections {
            bail!(
                Parameter,
                "num_weights={} exceeds the {connections} connections of each neuron of '{name}'",
                config.num_weights
            );
        }
        Ok(())
    }

    /// Restores the learning configuration and state of layer `last` (from a saved model), after
    /// checking the learning constraints and the state's lengths and ranges. A compiled layer that later got layers added
    /// after it keeps its state (it learns again if they are popped).
    pub fn restore_learning(&mut self, last: usize, learning: Learning) -> Result<()> {
        self.check_learnable(last, &learning.config)?;
        let layer = &self.layers()[last];
        let neurons = layer.expect_resolved()?.potentials_shape.channels;
        let state = &learning.state;
        if state.plasticity.len() != neurons || state.threshold_learning.len() != neurons {
            bail!(
                Variable,
                "the learning state must have one plasticity and one threshold_learning per neuron ({neurons})"
            );
        }
        let connections = layer.connections();
        if state.input_counts.len() as u128 != neurons as u128 * connections as u128 {
            bail!(
                Variable,
                "the learning state must have {neurons} x {connections} input counts, it has {}",
                state.input_counts.len()
            );
        }
        if state.plasticity.iter().any(|p| !(0.0..=1.0).contains(p)) {
            bail!(Variable, "plasticity values must be in [0, 1]");
        }
        // threshold_learning and the weights may have been edited with set_variable after
        // compile; only what the rule cannot work with is refused.
        if state.threshold_learning.iter().any(|&t| t < 0) {
            bail!(Variable, "threshold_learning values must be >= 0");
        }
        self.layer_mut(last)?.learning = Some(learning);
        Ok(())
    }

    /// Adds `classes` classes to the compiled last layer: `classes` groups of new neurons with
    /// random initial weights, keeping everything learned so far.
    pub fn add_classes(&mut self, classes: usize) -> Result<()> {
        let last = self.compiled_layer()?;
        let layer = self.layer_mut(last)?;
        let learning = layer.learning.as_ref().expect("checked by compiled_layer");
        let neurons = learning.state.plasticity.len();
        let per_class = neurons / learning.config.num_classes;
        let Some(extra) = per_class.checked_mul(classes).filter(|&e| e > 0) else {
            bail!(Parameter, "cannot add {classes} classes of {per_class} neurons");
        };
        // Everything that can fail comes before any change: the size limits, then the memory.
        let total = layer.grown_neuron_count(extra)?;
        let connections = layer.connections();
        let mut indices = connection_indices(connections)?;
        let counts = &mut layer.learning.as_mut().expect("checked by compiled_layer").state.input_counts;
        // Within the weight limit that grown_neuron_count checked, so no overflow.
        if counts.try_reserve_exact(total * connections - counts.len()).is_err() {
            bail!(Memory, "cannot allocate the learning input counts of {classes} more classes");
        }
        let learning = layer.learning.as_ref().expect("checked by compiled_layer");
        let (num_weights, mut rng) = (learning.config.num_weights, learning.state.rng);
        layer.grow_neurons(extra, |w, total, n| random_neuron(w, total, n, num_weights, &mut indices, &mut rng))?;
        let learning = layer.learning.as_mut().expect("checked by compiled_layer");
        learning.config.num_classes += classes;
        learning.state.rng = rng;
        learning.state.plasticity.resize(total, learning.config.initial_plasticity);
        learning.state.threshold_learning.resize(total, 0);
        // Neuron-major, so the new neurons' counts go at the end (reserved above).
        learning.state.input_counts.resize(total * connections, 0);
        Ok(())
    }

    fn compiled_layer(&self) -> Result<usize> {
        match self.layers().last() {
            Some(l) if l.learning.is_some() => Ok(self.layers().len() - 1),
            Some(last) => match self.layers().iter().rev().find(|l| l.learning.is_some()) {
                Some(compiled) => bail!(
                    Architecture,
                    "the last layer '{}' is not compiled for learning; layer '{}' is: pop the layers after it \
                     to resume its learning, or call compile() to make the last layer learn",
                    last.name(),
                    compiled.name()
                ),
                None => bail!(Architecture, "the model is not compiled for learning; call compile() first"),
            },
            None => bail!(Architecture, "the model is not compiled for learning; call compile() first"),
        }
    }

    /// Learns from `input` sample by sample, in order, and writes the last layer's outputs as
    /// `forward` would (computed before each sample's learning step). `labels` holds one label per
    /// sample, or one for all; a label `>= num_classes` means "do not learn this sample".
    pub fn fit(
        &mut self,
        input: Input<'_>,
        labels: Option<&[i64]>,
        output: Output<'_>,
        parallel: bool,
    ) -> Result<Vec<LayerStatistics>> {
        let last = self.compiled_layer()?;
        self.check_input(&input)?;
        self.check_working_memory(if parallel { rayon::current_num_threads() } else { 1 })?;
        let samples = input.num_samples();
        if let Some(l) = labels {
            if l.len() != samples && l.len() != 1 {
                bail!(Input, "expected one label per sample ({samples}) or one for all, got {}", l.len());
            }
            if let Some(v) = l.iter().find(|&&v| v < 0) {
                bail!(Input, "labels must be >= 0, got {v}");
            }
        }
        let r = *self.layers()[last].expect_resolved()?;
        let out_len = r.output_shape.len();
        let expected = samples.checked_mul(out_len);
        let size_ok = match (&output, r.output) {
            (Output::Activations(o), OutputKind::Activations { .. }) => Some(o.len()) == expected,
            (Output::Potentials(o), OutputKind::Potentials) => Some(o.len()) == expected,
            (Output::Rescaled(o), OutputKind::Potentials) => Some(o.len()) == expected,
            _ => false,
        };
        if !size_ok {
            bail!(Input, "the output buffer does not match the model output");
        }
        // Learning changes the learning layer's weights and state only; the plan holds for the
        // whole call but for its packed copy of those weights (bit-packed kernel), which every
        // learning step updates. The plan is out of the model's cache meanwhile (a failure leaves
        // no stale copy behind) and goes back when every sample has learned.
        let mut plan = self.take_plan();
        let cached = self.take_learning_cache();
        let layer = &self.layers()[last];
        let mut work = match cached {
            Some(cache) if cache.layer == last && cache.kernels == plan.kernels => cache,
            _ => Box::new(LearningScratch::new(
                last,
                &r,
                layer.weights(),
                layer.connections(),
                layer.learning(),
                plan.kernels,
            )?),
        };
        let mut scratch = Scratch::new(self.layers().len());
        let mut stats = self.empty_statistics();
        let mut output = output;
        let source = self.inbound(last)[0];
        let order = self.needed_layers(source);
        let run = Run { last, r: &r, input: &input, labels, source, order: &order };
        let ahead = parallel
            && rayon::current_num_threads() > 1
            && work.ahead.is_some()
            && self.forced_kernels().method.is_none();
        if ahead {
            // All on the pool: handing work to the other worker from a worker is cheap, from a
            // thread outside the pool it costs two thread wake-ups.
            rayon::scope(|_| self.fit_ahead(&run, &mut output, &mut plan, &mut work, &mut scratch, &mut stats))?;
        } else {
            // Chunks bound the memory held for the learning layer's inputs, whatever the batch
            // size.
            for first in (0..samples).step_by(FIT_CHUNK) {
                let chunk = first..samples.min(first + FIT_CHUNK);
                // 1. The inputs of the learning layer (in parallel: nothing learns in these
                // layers).
                let (inputs, prefix_stats) = learning_inputs(self, &plan, &run, chunk.clone(), parallel);
                stats = merge_all(stats, &prefix_stats);
                // 2. Learning, one sample after the other: the learning layer runs through the
                // executor on its inputs, its output is written as forward writes it, then it
                // learns.
                for (s, events) in chunk.zip(inputs) {
                    scratch.replace_events(source, events);
                    let st = run_layer(self, &plan, last, &input, s, &mut scratch);
                    self.output_and_learn(&run, s, st, &mut output, &mut plan, &mut work, &scratch, &mut stats)?;
                }
            }
        }
        self.restore_plan(plan);
        self.restore_learning_cache(work);
        Ok(stats)
    }

    /// `fit` with the potentials of the FullyConnected learning layer computed ahead: while this
    /// worker learns from a chunk of samples, another computes the next chunk's potentials with
    /// the weights as they are when the chunk starts (a copy, [`ChunkPotentials`]). Each sample's
    /// potentials are then brought up to date for the neurons whose weights moved since the
    /// copy was made (those that learned in this chunk and the one before), so that every sample
    /// sees exactly the weights the samples before it left, as in the loop of [`Model::fit`]; the
    /// layer's counters are those of its kernel.
    fn fit_ahead(
        &mut self,
        run: &Run<'_>,
        output: &mut Output<'_>,
        plan: &mut Arc<Plan>,
        work: &mut LearningScratch,
        scratch: &mut Scratch,
        stats: &mut [LayerStatistics],
    ) -> Result<()> {
        let (last, r) = (run.last, run.r);
        let samples = run.input.num_samples();
        if samples == 0 {
            return Ok(());
        }
        let neurons = r.potentials_shape.channels;
        // The first chunk is short (its potentials are computed before anything can overlap),
        // and each is at most twice the one before (the other worker computes it meanwhile).
        let (mut bounds, longest) = (vec![0], ahead_chunk(neurons));
        let mut len = longest.min(AHEAD_FIRST_CHUNK);
        while bounds[bounds.len() - 1] < samples {
            bounds.push(samples.min(bounds[bounds.len() - 1] + len));
            len = (len * 2).min(longest);
        }
        let chunk_of = |c: usize| bounds[c]..bounds[c + 1];
        let chunks = bounds.len() - 1;
        let kernels = plan.kernels;
        let shape = r.input_shape;
        let ahead = work.ahead.as_mut().expect("checked by fit");
        ahead.restart();
        // The layers before the learning layer, as a model of their own: the other worker runs
        // them while this one changes the learning layer.
        // (Out of the scratch meanwhile, and back when every sample has learned.)
        let inputs = ahead.inputs.take().unwrap_or_else(|| {
            let prefix = self.prefix(run.source + 1);
            let plan = prefix.plan();
            Box::new((prefix, plan))
        });
        let (prefix, prefix_plan) = (&inputs.0, &inputs.1);
        let ahead_of = |chunk: std::ops::Range<usize>, bits: &BitWeights| {
            let (events, prefix_stats) = learning_inputs(prefix, prefix_plan, run, chunk, false);
            let potentials = potentials_ahead(kernels, &events, bits, &shape, neurons);
            (events, potentials, prefix_stats)
        };
        // This worker learns; the other serves the relay: while chunk c learns, it computes
        // chunk c + 1 with the weights as they were when chunk c started. (A chunk that no
        // worker has taken when it is needed is computed here, by `collect`.)
        let first_chunk = ahead_of(chunk_of(0), &ahead.bits);
        let relay = Relay::new();
        let this = &mut *self;
        let (learned, ()) = rayon::join(
            || {
                let _close = CloseOnDrop(&relay);
                let mut current = first_chunk;
                for c in 0..chunks {
                    let (events, (mut potentials, planes), prefix_stats) = current;
                    for (a, b) in stats.iter_mut().zip(&prefix_stats) {
                        a.merge(b);
                    }
                    let next = c + 1 < chunks;
                    if next {
                        relay.post((c + 1, work.ahead.as_ref().expect("checked by fit").bits.clone()));
                    }
                    let first = chunk_of(c).start;
                    for (i, events) in events.into_iter().enumerate() {
                        let s = first + i;
                        let values = &mut potentials[i * neurons..(i + 1) * neurons];
                        work.ahead.as_mut().expect("checked by fit").bring_up_to_date(kernels, planes.of(i), values);
                        let mut st = fully_connected_counters(this, plan, last, events.len());
                        scratch.replace_events(run.source, events);
                        scratch.set_accumulated(values);
                        finish_layer(this, plan, last, scratch, &mut st);
                        this.output_and_learn(run, s, st, output, plan, work, scratch, stats)?;
                    }
                    work.ahead.as_mut().expect("checked by fit").next_chunk();
                    if !next {
                        break;
                    }
                    current = relay.collect(|(c, snapshot)| ahead_of(chunk_of(c), &snapshot));
                }
                Ok::<(), Error>(())
            },
            || relay.serve(|(c, snapshot): (usize, BitWeights)| ahead_of(chunk_of(c), &snapshot)),
        );
        learned?;
        work.ahead.as_mut().expect("checked by fit").inputs = Some(inputs);
        Ok(())
    }

    /// The end of one sample of `fit`, once the learning layer has run on it (its counters
    /// `st`): writes its output and lets the layer learn from it.
    #[allow(clippy::too_many_arguments)]
    fn output_and_learn(
        &mut self,
        run: &Run<'_>,
        s: usize,
        st: LayerStatistics,
        output: &mut Output<'_>,
        plan: &mut Arc<Plan>,
        work: &mut LearningScratch,
        scratch: &Scratch,
        stats: &mut [LayerStatistics],
    ) -> Result<()> {
        let last = run.last;
        stats[last].merge(&st);
        let out_len = run.r.output_shape.len();
        let dst = s * out_len..(s + 1) * out_len;
        let sink = match output {
            Output::Activations(o) => Sink::Activations(&mut o[dst]),
            Output::Potentials(o) => Sink::Potentials(&mut o[dst]),
            Output::Rescaled(o) => Sink::Rescaled(&mut o[dst]),
        };
        write_output(self, last, scratch, sink);
        let label = run.labels.map(|l| l[if l.len() == 1 { 0 } else { s }]);
        // Copies are made on the first sample only, and only of what is shared: the plan's
        // small per-layer records and the learning layer's packed bits (the other layers' packed
        // weights stay shared behind their `Arc`s).
        let packed = if plan.layers[last].bits.is_some() {
            Arc::make_mut(plan).layers[last].bits.as_mut().map(Arc::make_mut)
        } else {
            None
        };
        self.learn_sample(last, run.r, scratch.events(run.source), scratch.accumulated(), label, work, packed)
    }

    /// The learning step of one sample of `fit` for the learning layer `last`, whose inputs are
    /// `events` and potentials (before pooling) `potentials`: lets the winner learn, and sets the
    /// weights it moved in `packed`, the plan's bit-packed copy of the layer's weights, if any.
    #[allow(clippy::too_many_arguments)]
    fn learn_sample(
        &mut self,
        last: usize,
        r: &Resolved,
        events: &[Event],
        potentials: &[i32],
        label: Option<i64>,
        work: &mut LearningScratch,
        packed: Option<&mut BitWeights>,
    ) -> Result<()> {
        let neurons = r.potentials_shape.channels;
        let layer = &self.layers()[last];
        let learning = layer.learning.as_ref().expect("checked by compiled_layer");
        let config = learning.config;
        let per_class = neurons / config.num_classes;
        let allowed = match label {
            None => 0..neurons,
            Some(label) if (label as u64) < config.num_classes as u64 => {
                label as usize * per_class..(label as usize + 1) * per_class
            }
            Some(_) => return Ok(()),
        };
        if events.is_empty() || config.initial_plasticity == 0.0 {
            return Ok(());
        }
        // The spikes in the input window of each position (for a convolution, only positions
        // whose window saw a spike can learn) and, for a FullyConnected layer, its input.
        let active = &mut work.active;
        active.fill(false);
        match &r.conv {
            Some(g) => {
                work.window_spikes.fill(0);
                for e in events {
                    let (y0, y1) = g.y.reached_outputs(e.y as usize);
                    let (x0, x1) = g.x.reached_outputs(e.x as usize);
                    for oy in y0..y1 {
                        for count in &mut work.window_spikes[oy * g.x.output + x0..oy * g.x.output + x1] {
                            *count += 1;
                        }
                    }
                }
            }
            None => {
                for e in events {
                    active[e.index(&r.input_shape)] = true;
                }
                work.window_spikes[0] = active.iter().map(|&a| u32::from(a)).sum();
            }
        }
        let familiar = Familiarity { expected: &work.expected, total: work.layer_counts.total };
        let Some(winner) = select_winner(
            potentials,
            neurons,
            allowed,
            &work.window_spikes,
            familiar,
            &learning.state.threshold_learning,
            config.learning_competition,
        ) else {
            return Ok(());
        };
        match (layer.params(), &r.conv) {
            (LayerParams::FullyConnected { .. }, None) => {}
            (_, Some(g)) => {
                work.dense_input.fill(false);
                for e in events {
                    work.dense_input[e.index(&r.input_shape)] = true;
                }
                let (oy, ox) = (winner.position / g.x.output, winner.position % g.x.output);
                let channels = r.input_shape.channels;
                for wy in 0..g.y.kernel {
                    let Some(iy) = g.y.input_cell(oy, g.y.kernel - 1 - wy) else { continue };
                    for wx in 0..g.x.kernel {
                        let Some(ix) = g.x.input_cell(ox, g.x.kernel - 1 - wx) else { continue };
                        for c in 0..channels {
                            active[(wy * g.x.kernel + wx) * channels + c] =
                                work.dense_input[r.input_shape.index(iy, ix, c)];
                        }
                    }
                }
            }
            _ => return Err(Error::Architecture("a learning convolution has no geometry".into())),
        }
        let (weights, learning) = self.layer_for_learning(last).weights_and_learning_mut();
        let learning = learning.expect("checked by compiled_layer");
        let n = winner.neuron;
        let connections = active.len();
        let state = &mut learning.state;
        let total_before = work.layer_counts.total;
        let potential = learn_step(
            work.kernels,
            &mut work.rows[n * connections..(n + 1) * connections],
            active,
            &mut state.input_counts[n * connections..(n + 1) * connections],
            &mut work.layer_counts,
            state.plasticity[n],
            &mut state.rng,
            &mut work.step,
        );
        // The layer's weights and the plan's packed copy follow the neuron-major copy.
        let (dropped, risen) = work.step.moved();
        for &j in dropped {
            weights[j * neurons + n] = 0;
        }
        for &j in risen {
            weights[j * neurons + n] = 1;
        }
        if let Some(packed) = packed {
            for &j in dropped {
                packed.set_binary(j, n, false);
            }
            for &j in risen {
                packed.set_binary(j, n, true);
            }
        }
        if let Some(ahead) = &mut work.ahead {
            ahead.moved(n, dropped, risen);
        }
        let active_spikes: u64 = active.iter().map(|&a| u64::from(a)).sum();
        if work.layer_counts.total == total_before + active_spikes {
            let at_winner = &potentials[winner.position * neurons..(winner.position + 1) * neurons];
            // (Potentials of 0/1 weights on spikes are counts, never negative.)
            for (e, &p) in work.expected.iter_mut().zip(at_winner) {
                *e += p as u64;
            }
            // The winner's familiarity also follows its moves (with the counts after the step).
            let g = &work.layer_counts.per_connection;
            let (dropped, risen) = work.step.moved();
            let gained: u64 = risen.iter().map(|&j| g[j]).sum();
            let lost: u64 = dropped.iter().map(|&j| g[j]).sum();
            work.expected[n] = work.expected[n] + gained - lost;
            debug_assert_eq!(
                work.expected[n],
                neuron_familiarity(&work.rows[n * connections..(n + 1) * connections], &work.layer_counts)
            );
        } else {
            familiarity(&work.rows, connections, &work.layer_counts, &mut work.expected);
        }
        // A winner whose weights already fit the input (nothing to move) has still learned it.
        if potential > 0 {
            state.threshold_learning[n] = potential;
            state.plasticity[n] = decayed(state.plasticity[n], &learning.config);
        }
        Ok(())
    }
}

/// Samples whose learning-layer inputs `fit` holds at once.
const FIT_CHUNK: usize = 1024;

/// Buffers of the learning step, reused from sample to sample, and what the step derives from
/// the learning layer's weights and state, kept equal to them; cached by the model between `fit`
/// calls ([`Model::take_learning_cache`]).
pub(crate) struct LearningScratch {
    /// The learning layer.
    layer: usize,
    active: Vec<bool>,
    dense_input: Vec<bool>,
    /// The learning layer's weights neuron-major, `(neurons, connections)`, 0 or 1: the learning
    /// step reads and moves one neuron's weights as one contiguous row. Kept equal to the layer's.
    rows: Vec<u8>,
    /// The spikes in the input window of each position (one entry for a FullyConnected layer).
    window_spikes: Vec<u32>,
    /// [`Familiarity::expected`] of every neuron, derived at the start of `fit` and kept up to
    /// date with the layer's counts and the weights.
    expected: Vec<u64>,
    /// The sums of the neurons' input counts, derived at the start of `fit` and kept up to date
    /// by every learning step.
    layer_counts: LayerCounts,
    step: StepBuffers,
    /// The plan's kernel set, whose build of the learning step runs.
    kernels: KernelSet,
    /// For a FullyConnected layer whose weights are all 0 or 1: what [`Model::fit_ahead`] needs.
    ahead: Option<ChunkPotentials>,
}

impl LearningScratch {
    fn new(
        layer: usize,
        r: &Resolved,
        weights: &[i8],
        connections: usize,
        learning: Option<&crate::learning::Learning>,
        kernels: KernelSet,
    ) -> Result<Self> {
        let neurons = r.potentials_shape.channels;
        let positions = r.potentials_shape.len() / neurons.max(1);
        let counts = learning.map_or(&[][..], |l| &l.state.input_counts[..]);
        let layer_counts = LayerCounts::new(counts, connections)?;
        let mut expected = crate::error::zeroed_vec(Some(neurons), "the familiarity of the neurons")?;
        let mut rows: Vec<u8> = crate::error::zeroed_vec(
            neurons.checked_mul(connections),
            "the neuron-major copy of the learning weights",
        )?;
        if learning.is_some() && neurons > 0 {
            neuron_major(weights, neurons, connections, &mut rows);
            familiarity(&rows, connections, &layer_counts, &mut expected);
        }
        let fully_connected = r.conv.is_none() && r.pool.is_none();
        let ahead = (learning.is_some() && fully_connected && weights.iter().all(|&w| w == 0 || w == 1))
            .then(|| ChunkPotentials::new(weights, connections, neurons));
        Ok(LearningScratch {
            layer,
            active: vec![false; connections],
            dense_input: vec![false; r.input_shape.len()],
            rows,
            window_spikes: vec![0; if r.conv.is_some() { positions } else { 1 }],
            expected,
            layer_counts,
            step: StepBuffers::default(),
            kernels,
            ahead,
        })
    }
}

/// Writes the `(connections, neurons)` weights `weights` neuron-major into `rows`, 1 where a weight
/// equals 1 and 0 elsewhere; in tiles, so that both sides stay in cache.
fn neuron_major(weights: &[i8], neurons: usize, connections: usize, rows: &mut [u8]) {
    const TILE: usize = 64;
    for j0 in (0..connections).step_by(TILE) {
        let j1 = connections.min(j0 + TILE);
        for n0 in (0..neurons).step_by(TILE) {
            let n1 = neurons.min(n0 + TILE);
            for j in j0..j1 {
                let weights_of_input = &weights[j * neurons + n0..j * neurons + n1];
                for (n, &w) in (n0..n1).zip(weights_of_input) {
                    rows[n * connections + j] = u8::from(w == 1);
                }
            }
        }
    }
}

/// What one `fit` call learns from, shared by its loops.
struct Run<'a> {
    /// The learning layer and its geometry.
    last: usize,
    r: &'a Resolved,
    input: &'a Input<'a>,
    labels: Option<&'a [i64]>,
    /// The layer feeding the learning layer, and the layers that lead to it.
    source: usize,
    order: &'a [usize],
}

/// The inputs of the learning layer of `run` for the samples `chunk`, from `model` (the model
/// of `run`, or the model of its first layers) with `plan`, the layers before it run in parallel
/// when asked; and those layers' counters (one entry per layer of `model`).
fn learning_inputs(
    model: &Model,
    plan: &Plan,
    run: &Run<'_>,
    chunk: std::ops::Range<usize>,
    parallel: bool,
) -> (Vec<Vec<Event>>, Vec<LayerStatistics>) {
    map_reduce(
        parallel,
        chunk.collect(),
        || Scratch::new(model.layers().len()),
        |sc, s| {
            let mut st = model.empty_statistics();
            run_sample(model, plan, run.order, run.input, s, sc, &mut st, &NoObserver);
            (vec![sc.take_events(run.source)], st)
        },
        || (Vec::new(), model.empty_statistics()),
        |(mut a, sa), (b, sb)| {
            a.extend(b);
            (a, merge_all(sa, &sb))
        },
    )
}

/// The length of [`Model::fit_ahead`]'s first chunk, at most.
const AHEAD_FIRST_CHUNK: usize = 8;

/// The chunk length of [`Model::fit_ahead`] for a layer of `neurons` neurons: long enough that
/// starting the other worker pays, short enough that few neurons learn within two chunks (each
/// is brought up to date for every sample of the next chunk) and that a chunk's potentials stay
/// small (at most 4 MiB).
fn ahead_chunk(neurons: usize) -> usize {
    ((1usize << 20) / neurons.max(1)).clamp(8, 64)
}

/// The potentials `(samples, neurons)` of a FullyConnected layer whose weights are `bits`, for
/// the samples of input events `inputs` (of shape `shape`), and those inputs' bit planes.
fn potentials_ahead(
    kernels: KernelSet,
    inputs: &[Vec<Event>],
    bits: &BitWeights,
    shape: &crate::shape::Shape3,
    neurons: usize,
) -> (Vec<i32>, SamplePlanes) {
    let mut potentials = vec![0; inputs.len() * neurons];
    let mut planes = SamplePlanes { words: Vec::new(), ends: Vec::with_capacity(inputs.len()) };
    let mut sample = Vec::new();
    for (events, out) in inputs.iter().zip(potentials.chunks_exact_mut(neurons.max(1))) {
        input_planes(events, shape, &mut sample);
        kernels.fully_connected_bits(&sample, bits, out);
        planes.words.extend_from_slice(&sample);
        planes.ends.push(planes.words.len());
    }
    (potentials, planes)
}

/// The bit planes of the learning layer's inputs for the samples of a chunk, one after the other.
struct SamplePlanes {
    words: Vec<u64>,
    /// Where each sample's planes end in `words`.
    ends: Vec<usize>,
}

impl SamplePlanes {
    /// The planes of the chunk's `i`-th sample.
    fn of(&self, i: usize) -> &[u64] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.words[start..self.ends[i]]
    }
}

/// The bit planes of `events` for the bit-packed kernel: one plane when every value is 1 (as a
/// learning layer's inputs are), all eight otherwise.
fn input_planes(events: &[Event], shape: &crate::shape::Shape3, planes: &mut Vec<u64>) {
    let count = if events.iter().all(|e| e.value == 1) { 1 } else { 8 };
    crate::kernels::bits::input_planes(events, shape, count, planes);
}

/// The learning layer's weights bit-packed for [`Model::fit_ahead`], kept equal to the layer's,
/// and the neurons whose weights moved in the current chunk and the one before: the potentials
/// of a chunk are computed with the weights as they were when the chunk before it started.
struct ChunkPotentials {
    bits: BitWeights,
    /// The model of the layers before the learning layer and its plan, made on first use.
    inputs: Option<Box<(Model, Arc<Plan>)>>,
    /// The neurons that moved in the chunk before and in this one (each once per list; a neuron
    /// in both is brought up to date twice, to the same value), and whether a neuron is in the
    /// list of this chunk.
    moved_before: Vec<usize>,
    moved_now: Vec<usize>,
    in_now: Vec<bool>,
}

impl ChunkPotentials {
    fn new(weights: &[i8], connections: usize, neurons: usize) -> Self {
        ChunkPotentials {
            bits: BitWeights::new(weights, connections, neurons, 1),
            inputs: None,
            moved_before: Vec::new(),
            moved_now: Vec::new(),
            in_now: vec![false; neurons],
        }
    }

    /// Forgets the moves: the next potentials are computed with the weights as they are now.
    fn restart(&mut self) {
        self.next_chunk();
        self.next_chunk();
    }

    /// Starts the next chunk.
    fn next_chunk(&mut self) {
        for &n in &self.moved_now {
            self.in_now[n] = false;
        }
        self.moved_before = std::mem::take(&mut self.moved_now);
    }

    /// Records that neuron `n`'s weights of connections `dropped` fell to 0 and `risen` rose to 1.
    fn moved(&mut self, n: usize, dropped: &[usize], risen: &[usize]) {
        if dropped.is_empty() && risen.is_empty() {
            return;
        }
        for &j in dropped {
            self.bits.set_binary(j, n, false);
        }
        for &j in risen {
            self.bits.set_binary(j, n, true);
        }
        if !self.in_now[n] {
            self.in_now[n] = true;
            self.moved_now.push(n);
        }
    }

    /// Sets the potentials `(neurons)` of the neurons that moved since the chunk before this one
    /// started, for the sample of input bit planes `planes`, from their weights now.
    fn bring_up_to_date(&mut self, kernels: KernelSet, planes: &[u64], potentials: &mut [i32]) {
        if self.moved_before.is_empty() && self.moved_now.is_empty() {
            return;
        }
        kernels.fully_connected_bits_of(planes, &self.bits, &self.moved_before, potentials);
        kernels.fully_connected_bits_of(planes, &self.bits, &self.moved_now, potentials);
    }
}
