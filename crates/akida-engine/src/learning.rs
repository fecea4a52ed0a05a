//! Akida unsupervised ("edge") learning of the last layer. The rule, every tie and rounding, is
//! documented in `docs/learning.md`; the code below follows it step by step.

use crate::activation::Thresholds;
use crate::error::Error;
use crate::error::{bail, Result};
use crate::events::Event;
use crate::kernels;
use crate::layer::{OutputKind, Resolved};
use crate::model::{Input, LayerStatistics, Model, Output, Plan, Scratch, Sink};
use crate::params::{LayerKind, LayerParams};
use rayon::prelude::*;

/// Parameters given to `Model::compile`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LearningConfig {
    /// Number of weights equal to 1 of every neuron, constant over time.
    pub num_weights: usize,
    /// Neurons form this many equal contiguous groups, one per class.
    pub num_classes: usize,
    pub initial_plasticity: f32,
    pub min_plasticity: f32,
    pub plasticity_decay: f32,
    pub learning_competition: f32,
    /// Seed of the random initial weights and of the choice of moved weights.
    pub seed: u64,
}

impl LearningConfig {
    /// Validates the ranges: `num_weights >= 1`, `num_classes >= 1`, the four floats in [0, 1].
    pub fn new(
        num_weights: i64,
        num_classes: i64,
        initial_plasticity: f64,
        min_plasticity: f64,
        plasticity_decay: f64,
        learning_competition: f64,
        seed: u64,
    ) -> Result<Self> {
        if num_weights < 1 {
            bail!(Parameter, "num_weights must be at least 1, got {num_weights}");
        }
        if num_classes < 1 {
            bail!(Parameter, "num_classes must be at least 1, got {num_classes}");
        }
        for (name, value) in [
            ("initial_plasticity", initial_plasticity),
            ("min_plasticity", min_plasticity),
            ("plasticity_decay", plasticity_decay),
            ("learning_competition", learning_competition),
        ] {
            if !(0.0..=1.0).contains(&value) {
                bail!(Parameter, "{name} must be in [0, 1], got {value}");
            }
        }
        Ok(LearningConfig {
            num_weights: num_weights as usize,
            num_classes: num_classes as usize,
            initial_plasticity: initial_plasticity as f32,
            min_plasticity: min_plasticity as f32,
            plasticity_decay: plasticity_decay as f32,
            learning_competition: learning_competition as f32,
            seed,
        })
    }
}

/// Everything `fit` depends on besides the weights; saved with the model.
#[derive(Debug, Clone, PartialEq)]
pub struct LearningState {
    /// Per neuron, between min(min_plasticity, initial_plasticity) and initial_plasticity.
    pub plasticity: Vec<f32>,
    /// Per neuron: 0 until it learns, then its potential right after its last learning step.
    pub threshold_learning: Vec<i32>,
    /// State of the SplitMix64 generator.
    pub rng: u64,
    /// Neuron-major `(neurons, connections)`: how many of the neuron's learning steps saw that
    /// connection's input spike (see [`MAX_INPUT_COUNT`] for saturation). A learning step drops
    /// the least used silent weights and adopts the most used new inputs.
    pub input_counts: Vec<u8>,
}

/// Input counts saturate here: before a step would push a count of a neuron past it, all the
/// counts of that neuron are halved (rounding down), so the older steps weigh less.
pub const MAX_INPUT_COUNT: u8 = u8::MAX;

/// The learning configuration and state of a compiled layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Learning {
    pub config: LearningConfig,
    pub state: LearningState,
}

/// SplitMix64 step: the generator of initial weights and of learning choices.
pub(crate) fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Moves the first `k` entries of `items` to a uniformly random `k`-subset (partial
/// Fisher-Yates), consuming `k` random numbers.
pub(crate) fn choose(items: &mut [usize], k: usize, rng: &mut u64) {
    let n = items.len();
    for i in 0..k.min(n) {
        let j = i + (next_random(rng) % (n - i) as u64) as usize;
        items.swap(i, j);
    }
}

/// Moves to the front of `items` the `k` entries that come first by `rank` (smaller first); among
/// the entries whose rank equals the `k`-th one's, a uniformly random subset is taken (partial
/// Fisher-Yates over them in increasing item order), consuming one random number per entry taken
/// from that tie. Returns with `items` sorted by `(rank, item)` except for that tie.
pub(crate) fn choose_ranked(items: &mut [usize], k: usize, rank: impl Fn(usize) -> i32, rng: &mut u64) {
    let k = k.min(items.len());
    if k == 0 {
        return;
    }
    items.sort_unstable_by_key(|&j| (rank(j), j));
    let cut = rank(items[k - 1]);
    let first = items[..k].partition_point(|&j| rank(j) < cut);
    let end = k + items[k..].partition_point(|&j| rank(j) == cut);
    choose(&mut items[first..end], k - first, rng);
}

/// Sets exactly `num_weights` random weights of neuron `neuron` to 1 (others 0) in a
/// `(connections, neurons)` weight matrix. `indices` is scratch space of one entry per connection
/// (allocated once by the caller, fallibly: see [`connection_indices`]).
pub(crate) fn random_neuron(
    weights: &mut [i8],
    neurons: usize,
    neuron: usize,
    num_weights: usize,
    indices: &mut [usize],
    rng: &mut u64,
) {
    let connections = weights.len() / neurons;
    let indices = &mut indices[..connections];
    indices.iter_mut().enumerate().for_each(|(j, v)| *v = j);
    choose(indices, num_weights, rng);
    for j in 0..connections {
        weights[j * neurons + neuron] = 0;
    }
    for &j in &indices[..num_weights] {
        weights[j * neurons + neuron] = 1;
    }
}

/// Scratch space for [`random_neuron`], or [`Error::Memory`] when it cannot be allocated.
pub(crate) fn connection_indices(connections: usize) -> Result<Vec<usize>> {
    crate::error::zeroed_vec(Some(connections), "the connection indices of the initial weights")
}

/// A candidate winner: potential, then position and neuron.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub potential: i32,
    pub position: usize,
    pub neuron: usize,
}

/// The neuron that learns from a sample, given the potentials `(positions, neurons)`, the
/// neurons allowed to learn and, for a convolution, the positions allowed to learn. See `docs/learning.md`, "Choosing the winner".
pub(crate) fn select_winner(
    potentials: &[i32],
    neurons: usize,
    allowed: std::ops::Range<usize>,
    eligible_positions: Option<&[bool]>,
    threshold_learning: &[i32],
    competition: f32,
) -> Option<Candidate> {
    let mut best_trained: Option<Candidate> = None;
    let mut best_untrained: Option<Candidate> = None;
    for (position, values) in potentials.chunks_exact(neurons).enumerate() {
        if eligible_positions.is_some_and(|e| !e[position]) {
            continue;
        }
        for neuron in allowed.clone() {
            let candidate = Candidate { potential: values[neuron], position, neuron };
            let slot = if threshold_learning[neuron] > 0 { &mut best_trained } else { &mut best_untrained };
            if slot.is_none_or(|b| candidate.potential > b.potential) {
                *slot = Some(candidate);
            }
        }
    }
    if let Some(t) = best_trained {
        let claim = (1.0 - competition) * threshold_learning[t.neuron] as f32;
        if competition > 0.0 && t.potential as f32 >= claim {
            return Some(t);
        }
    }
    best_untrained.or(best_trained)
}

/// `floor(plasticity * n + 0.5)`, evaluated exactly on the float32 value of `plasticity` (in
/// double precision, where the product of a float32 and an integer below 2^29 is exact), and
/// never more than `n`.
pub(crate) fn share(plasticity: f32, n: usize) -> usize {
    let exact = (f64::from(plasticity) * n as f64 + 0.5).floor();
    (exact as usize).min(n)
}

/// One learning step of `neuron`: with `active[j]` telling which of its connections saw a spike,
/// moves `k = min(round(plasticity * silent), round(plasticity * free))` of its 1-weights from
/// silent connections (weight 1, no spike) to free ones (weight 0, spike): the `k` silent ones
/// with the lowest input counts drop, the `k` free ones with the highest counts rise (ties at the
/// cut drawn at random, see [`choose_ranked`]). Then every active connection's count grows by one
/// (`counts` is this neuron's row of [`LearningState::input_counts`]). Returns the neuron's
/// potential after the step.
pub(crate) fn learn_step(
    weights: &mut [i8],
    neurons: usize,
    neuron: usize,
    active: &[bool],
    counts: &mut [u8],
    plasticity: f32,
    rng: &mut u64,
) -> i32 {
    let mut silent = Vec::new();
    let mut free = Vec::new();
    let mut matched = 0i32;
    for (j, &is_active) in active.iter().enumerate() {
        let w = weights[j * neurons + neuron];
        match (w == 1, is_active) {
            (true, true) => matched += 1,
            (true, false) => silent.push(j),
            (false, true) => free.push(j),
            (false, false) => {}
        }
    }
    let k = share(plasticity, silent.len()).min(share(plasticity, free.len()));
    if k > 0 {
        choose_ranked(&mut silent, k, |j| i32::from(counts[j]), rng);
        choose_ranked(&mut free, k, |j| -i32::from(counts[j]), rng);
        for i in 0..k {
            weights[silent[i] * neurons + neuron] = 0;
            weights[free[i] * neurons + neuron] = 1;
        }
    }
    let saturated = active.iter().zip(counts.iter()).any(|(&a, &c)| a && c == MAX_INPUT_COUNT);
    if saturated {
        counts.iter_mut().for_each(|c| *c /= 2);
    }
    for (c, &a) in counts.iter_mut().zip(active) {
        *c += u8::from(a);
    }
    matched + k as i32
}

/// Plasticity after a learning step: `plasticity_decay * initial_plasticity` less, never below
/// `min(min_plasticity, initial_plasticity)` (so it never rises), in float32 arithmetic.
pub(crate) fn decayed(plasticity: f32, config: &LearningConfig) -> f32 {
    let floor = config.min_plasticity.min(config.initial_plasticity);
    (plasticity - config.plasticity_decay * config.initial_plasticity).max(floor)
}

// ---------------------------------------------------------------------------------------------
// Model-level API
// ---------------------------------------------------------------------------------------------

impl Model {
    /// Prepares the last layer for Akida learning: checks the learning constraints, gives every
    /// neuron `num_weights` random weights equal to 1 and resets the learning state.
    pub fn compile(&mut self, config: LearningConfig) -> Result<()> {
        let Some(last) = self.layers.len().checked_sub(1) else {
            bail!(Architecture, "cannot compile a model with no layers")
        };
        self.check_learnable(last, &config)?;
        let neurons = self.layers[last].expect_resolved()?.potentials_shape.channels;
        let connections = self.layers[last].connections();
        let input_counts = crate::error::zeroed_vec(neurons.checked_mul(connections), "the learning input counts")?;
        let mut rng = config.seed;
        let layer = &mut self.layers[last];
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

    /// Checks the learning constraints for the last layer; returns its index.
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
        let layer = &self.layers[last];
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
        self.layers[last].learning = Some(learning);
        Ok(())
    }

    /// Adds `classes` classes to the compiled last layer: `classes` groups of new neurons with
    /// random initial weights, keeping everything learned so far.
    pub fn add_classes(&mut self, classes: usize) -> Result<()> {
        let last = self.compiled_layer()?;
        let layer = &mut self.layers[last];
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
        match self.layers.last() {
            Some(l) if l.learning.is_some() => Ok(self.layers.len() - 1),
            Some(last) => match self.layers.iter().rev().find(|l| l.learning.is_some()) {
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
        let samples = input.num_samples();
        if let Some(l) = labels {
            if l.len() != samples && l.len() != 1 {
                bail!(Input, "expected one label per sample ({samples}) or one for all, got {}", l.len());
            }
            if let Some(v) = l.iter().find(|&&v| v < 0) {
                bail!(Input, "labels must be >= 0, got {v}");
            }
        }
        let r = *self.layers[last].expect_resolved()?;
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
        let activation = *self.layers[last].params().activation().expect("learning layers have an activation");
        // Learning changes weights only, so the thresholds hold for the whole call.
        let thresholds = {
            let layer = &self.layers[last];
            Thresholds::new(layer.threshold_fire(), layer.threshold_fire_step(), activation.threshold_fire_bits)
        };
        let mut work = LearningScratch::new(&r, self.layers[last].connections());
        let mut stats = self.empty_statistics();
        let mut output = output;
        let source = self.inbound[last][0];
        let plan = Plan::new(self, source);
        // Chunks bound the memory held for the learning layer's inputs, whatever the batch size.
        for first in (0..samples).step_by(FIT_CHUNK) {
            let chunk = first..samples.min(first + FIT_CHUNK);
            // 1. The inputs of the learning layer (in parallel: nothing learns in these layers).
            let prefix = |scratch: &mut Scratch, s: usize| {
                let mut stats = self.empty_statistics();
                self.run_sample(&plan, &input, s, scratch, Sink::Discard, &mut stats);
                (std::mem::take(&mut scratch.outputs[source].events), stats)
            };
            let new_scratch = || Scratch::new(self.layers.len());
            let per_sample: Vec<(Vec<Event>, Vec<LayerStatistics>)> = if parallel {
                chunk.clone().into_par_iter().map_init(new_scratch, prefix).collect()
            } else {
                let mut scratch = new_scratch();
                chunk.clone().map(|s| prefix(&mut scratch, s)).collect()
            };
            // 2. Learning, one sample after the other.
            for (s, (events, sample_stats)) in chunk.zip(per_sample) {
                stats.iter_mut().zip(&sample_stats).for_each(|(a, b)| a.merge(b));
                let label = labels.map(|l| l[if l.len() == 1 { 0 } else { s }]);
                let values = self.learn_sample(last, &r, &events, label, &mut work, &mut stats[last])?;
                let dst = s * out_len..(s + 1) * out_len;
                let st = &mut stats[last];
                let values = match values {
                    OutputValues::Potentials => &work.potentials[..],
                    OutputValues::Pooled => &work.pooled[..],
                };
                match &mut output {
                    Output::Activations(o) => {
                        work.spikes.clear();
                        kernels::activate(values, &r.output_shape, &thresholds, &mut work.spikes);
                        let dst = &mut o[dst];
                        dst.fill(0);
                        for e in &work.spikes {
                            dst[e.index(&r.output_shape)] = e.value as u8;
                        }
                        st.output_nonzero += work.spikes.len() as u64;
                    }
                    Output::Potentials(o) => {
                        o[dst].copy_from_slice(values);
                        st.output_nonzero += values.iter().filter(|&&v| v != 0).count() as u64;
                    }
                    Output::Rescaled(o) => {
                        let layer = &self.layers[last];
                        crate::model::rescale(values, layer.output_scale(), layer.output_offset(), &mut o[dst]);
                        st.output_nonzero += values.iter().filter(|&&v| v != 0).count() as u64;
                    }
                }
            }
        }
        Ok(stats)
    }

    /// One sample of `fit` for the learning layer `last`: computes its potentials (and pooled
    /// output) from `events`, then lets the winner learn. Returns where the output values are in
    /// `work` (computed before the learning step).
    fn learn_sample(
        &mut self,
        last: usize,
        r: &Resolved,
        events: &[Event],
        label: Option<i64>,
        work: &mut LearningScratch,
        st: &mut LayerStatistics,
    ) -> Result<OutputValues> {
        let neurons = r.potentials_shape.channels;
        let layer = &self.layers[last];
        work.potentials.fill(0);
        st.samples += 1;
        st.input_nonzero += events.len() as u64;
        st.synaptic_operations += match layer.params() {
            LayerParams::FullyConnected { .. } => {
                kernels::fully_connected_events(events, &r.input_shape, layer.weights(), neurons, &mut work.potentials)
            }
            _ => kernels::convolve_events(
                events,
                &r.input_shape,
                r.conv.as_ref().expect("convolutions have a geometry"),
                layer.weights(),
                neurons,
                &mut work.potentials,
            ),
        };
        // The output, as forward computes it, before this sample's learning step.
        let values = match &r.pool {
            Some(g) => {
                kernels::pool(&work.potentials, &r.potentials_shape, g, &mut work.pooled, &mut work.sums);
                OutputValues::Pooled
            }
            None => OutputValues::Potentials,
        };
        // The learning step.
        let learning = layer.learning.as_ref().expect("checked by compiled_layer");
        let config = learning.config;
        let per_class = neurons / config.num_classes;
        let allowed = match label {
            None => 0..neurons,
            Some(label) if (label as u64) < config.num_classes as u64 => {
                label as usize * per_class..(label as usize + 1) * per_class
            }
            Some(_) => return Ok(values),
        };
        if events.is_empty() || config.initial_plasticity == 0.0 {
            return Ok(values);
        }
        // For a convolution, only positions whose window saw a spike can learn.
        let eligible = match &r.conv {
            Some(g) => {
                work.spiking_positions.fill(false);
                for e in events {
                    let (y0, y1) = g.y.reached_outputs(e.y as usize);
                    let (x0, x1) = g.x.reached_outputs(e.x as usize);
                    for oy in y0..y1 {
                        work.spiking_positions[oy * g.x.output + x0..oy * g.x.output + x1].fill(true);
                    }
                }
                Some(&work.spiking_positions[..])
            }
            _ => None,
        };
        let Some(winner) = select_winner(
            &work.potentials,
            neurons,
            allowed,
            eligible,
            &learning.state.threshold_learning,
            config.learning_competition,
        ) else {
            return Ok(values);
        };
        let active = &mut work.active;
        active.fill(false);
        match (layer.params(), &r.conv) {
            (LayerParams::FullyConnected { .. }, _) => {
                for e in events {
                    active[e.index(&r.input_shape)] = true;
                }
            }
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
        let (weights, learning) = self.layers[last].weights_and_learning_mut();
        let learning = learning.expect("checked by compiled_layer");
        let n = winner.neuron;
        let connections = active.len();
        let state = &mut learning.state;
        let potential = learn_step(
            weights,
            neurons,
            n,
            active,
            &mut state.input_counts[n * connections..(n + 1) * connections],
            state.plasticity[n],
            &mut state.rng,
        );
        // A winner whose weights already fit the input (nothing to move) has still learned it.
        if potential > 0 {
            state.threshold_learning[n] = potential;
            state.plasticity[n] = decayed(state.plasticity[n], &learning.config);
        }
        Ok(values)
    }
}

/// Samples whose learning-layer inputs `fit` holds at once.
const FIT_CHUNK: usize = 1024;

/// Buffers of `fit`, reused from sample to sample.
struct LearningScratch {
    potentials: Vec<i32>,
    pooled: Vec<i32>,
    sums: Vec<i64>,
    spikes: Vec<Event>,
    active: Vec<bool>,
    dense_input: Vec<bool>,
    spiking_positions: Vec<bool>,
}

impl LearningScratch {
    fn new(r: &Resolved, connections: usize) -> Self {
        let positions = r.potentials_shape.len() / r.potentials_shape.channels;
        LearningScratch {
            potentials: vec![0; r.potentials_shape.len()],
            pooled: vec![0; r.output_shape.len()],
            sums: Vec::new(),
            spikes: Vec::new(),
            active: vec![false; connections],
            dense_input: vec![false; r.input_shape.len()],
            spiking_positions: vec![false; positions],
        }
    }
}

/// Where a sample's output values are in [`LearningScratch`].
#[derive(Clone, Copy)]
enum OutputValues {
    Potentials,
    Pooled,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_ranges() {
        assert!(LearningConfig::new(0, 1, 1.0, 0.1, 0.25, 0.0, 0).is_err());
        assert!(LearningConfig::new(10, 0, 1.0, 0.1, 0.25, 0.0, 0).is_err());
        assert!(LearningConfig::new(10, 1, 1.5, 0.1, 0.25, 0.0, 0).is_err());
        assert!(LearningConfig::new(10, 1, 1.0, 0.1, 0.25, -0.1, 0).is_err());
        assert!(LearningConfig::new(10, 1, 1.0, 0.1, 0.25, 0.3, 0).is_ok());
    }

    #[test]
    fn a_step_keeps_the_weight_count_and_moves_toward_the_input() {
        let mut rng = 5;
        let neurons = 3;
        let mut w = vec![0i8; 20 * neurons];
        random_neuron(&mut w, neurons, 1, 8, &mut connection_indices(20).unwrap(), &mut rng);
        let active: Vec<bool> = (0..20).map(|j| j % 2 == 0).collect();
        let before: i32 = (0..20).filter(|&j| active[j] && w[j * neurons + 1] == 1).count() as i32;
        let mut counts = vec![0u8; 20];
        let after = learn_step(&mut w, neurons, 1, &active, &mut counts, 0.5, &mut rng);
        assert!(counts.iter().zip(&active).all(|(&c, &a)| c == u8::from(a)));
        assert_eq!((0..20).filter(|&j| w[j * neurons + 1] == 1).count(), 8);
        assert!(after > before);
        assert_eq!(after, (0..20).filter(|&j| active[j] && w[j * neurons + 1] == 1).count() as i32);
        assert!(w.iter().enumerate().all(|(i, &v)| i % neurons == 1 || v == 0));
    }

    #[test]
    fn choose_ranked_takes_the_lowest_ranks_and_draws_only_within_the_cut_tie() {
        let mut rng = 99u64;
        for case in 0..2000u64 {
            let wanted = (next_random(&mut rng) % 12) as usize;
            let ranks: Vec<i32> = (0..20).map(|_| (next_random(&mut rng) % 4) as i32).collect();
            let mut items: Vec<usize> =
                (0..20).filter(|_| !next_random(&mut rng).is_multiple_of(3)).take(wanted).collect();
            let n = items.len();
            let original = items.clone();
            let k = (next_random(&mut rng) % (n as u64 + 2)) as usize;
            let mut state = case;
            choose_ranked(&mut items, k, |j| ranks[j], &mut state);
            let mut sorted = items.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, original, "a permutation");
            let k = k.min(n);
            if k == 0 || k == n {
                continue;
            }
            let worst_taken = items[..k].iter().map(|&j| ranks[j]).max().unwrap();
            let best_left = items[k..].iter().map(|&j| ranks[j]).min().unwrap();
            assert!(worst_taken <= best_left, "the k first by rank");
            // Randomness is spent only on the tie at the cut: one draw per entry taken from it.
            let below = original.iter().filter(|&&j| ranks[j] < worst_taken).count();
            let mut replay = case;
            for _ in 0..k - below {
                next_random(&mut replay);
            }
            assert_eq!(state, replay);
        }
    }

    #[test]
    fn share_is_exact_and_never_exceeds_n() {
        assert_eq!(share(1.0, 5), 5);
        assert_eq!(share(0.5, 5), 3); // 2.5 + 0.5 = 3
        assert_eq!(share(0.5, 3), 2);
        assert_eq!(share(0.0, 7), 0);
        // 0.7 as float32 is 0.699999988...: 0.7 * 5 + 0.5 is just below 4.
        assert_eq!(share(0.7, 5), 3);
        // Beyond 2^24 a float32 product would round past n.
        for n in [(1 << 24) + 3, (1 << 30) + 1, usize::MAX >> 12] {
            assert_eq!(share(1.0, n), n);
            assert!(share(0.999_999_9, n) <= n);
        }
        let config = LearningConfig::new(3, 1, 0.35, 0.5, 0.25, 0.0, 0).unwrap();
        assert_eq!(decayed(0.35, &config), 0.35, "plasticity never rises above initial_plasticity");
    }

    #[test]
    fn winner_prefers_untrained_without_competition() {
        let p = [5, 9, 7, 2];
        let trained = [0, 8, 0, 0];
        assert_eq!(select_winner(&p, 4, 0..4, None, &trained, 0.0).unwrap().neuron, 2);
        assert_eq!(select_winner(&p, 4, 0..4, None, &trained, 0.5).unwrap().neuron, 1);
        assert_eq!(select_winner(&p, 4, 0..2, None, &[3, 8, 0, 0], 0.0).unwrap().neuron, 1);
        // Two positions of two neurons; the second position's window saw no spike.
        let p = [0, 0, 5, 9];
        let w = select_winner(&p, 2, 0..2, Some(&[true, false]), &[0, 0], 0.0).unwrap();
        assert_eq!((w.position, w.neuron, w.potential), (0, 0, 0));
        assert!(select_winner(&p, 2, 0..2, Some(&[false, false]), &[0, 0], 0.0).is_none());
    }
}
