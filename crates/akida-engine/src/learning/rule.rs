//! The learning rule of `docs/learning.md`, step by step: the random generator, the initial
//! weights, the choice of the winner, and one learning step.

use super::state::{LearningConfig, MAX_INPUT_COUNT};
use crate::error::Result;
use crate::kernels::post::for_each_nonzero_byte;
use crate::kernels::KernelSet;

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
#[cfg(test)]
pub(crate) fn choose_ranked<K: Ord + Copy>(items: &mut [usize], k: usize, rank: impl Fn(usize) -> K, rng: &mut u64) {
    items.sort_unstable_by_key(|&j| (rank(j), j));
    take_ranked(items, k, rank, rng);
}

/// [`choose_ranked`] on `items` already sorted by `(rank, item)`.
#[cfg(test)]
fn take_ranked<K: Ord + Copy>(items: &mut [usize], k: usize, rank: impl Fn(usize) -> K, rng: &mut u64) {
    let k = k.min(items.len());
    if k == 0 {
        return;
    }
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

/// How familiar the layer's inputs are to each neuron, for [`select_winner`]: `expected[n]` is the
/// sum of the layer's counts (`LayerCounts::per_connection`) over the connections where neuron
/// `n` has a weight equal to 1, and `total` the sum of all the layer's counts
/// (`LayerCounts::total`), both before the sample is counted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Familiarity<'a> {
    pub expected: &'a [u64],
    pub total: u64,
}

/// The neuron that learns from a sample, given the potentials `(positions, neurons)`, the
/// neurons allowed to learn and the number of spikes in the input window of each position
/// (one entry for a FullyConnected layer; positions without a spike cannot learn). A trained
/// neuron ranks by its potential less the potential an input of as many spikes would give it if
/// it spiked like the layer's inputs on average, `potential - spikes * expected / total`
/// (exactly: `total * potential - spikes * expected`; the potential alone while `total` is 0);
/// an untrained neuron by its potential. See `docs/learning.md`, "Choosing the winner".
pub(crate) fn select_winner(
    potentials: &[i32],
    neurons: usize,
    allowed: std::ops::Range<usize>,
    window_spikes: &[u32],
    familiarity: Familiarity<'_>,
    threshold_learning: &[i32],
    competition: f32,
) -> Option<Candidate> {
    let mut best_trained: Option<(i128, Candidate)> = None;
    let mut best_untrained: Option<Candidate> = None;
    let total = i128::from(familiarity.total);
    for ((position, values), &spikes) in potentials.chunks_exact(neurons).enumerate().zip(window_spikes) {
        if spikes == 0 {
            continue;
        }
        for neuron in allowed.clone() {
            let candidate = Candidate { potential: values[neuron], position, neuron };
            if threshold_learning[neuron] > 0 {
                let potential = i128::from(candidate.potential);
                let rank = if total == 0 {
                    potential
                } else {
                    total * potential - i128::from(spikes) * i128::from(familiarity.expected[neuron])
                };
                if best_trained.is_none_or(|(b, _)| rank > b) {
                    best_trained = Some((rank, candidate));
                }
            } else if best_untrained.is_none_or(|b| candidate.potential > b.potential) {
                best_untrained = Some(candidate);
            }
        }
    }
    let best_trained = best_trained.map(|(_, t)| t);
    if let Some(t) = best_trained {
        let claim = (1.0 - competition) * threshold_learning[t.neuron] as f32;
        if competition > 0.0 && t.potential as f32 >= claim {
            return Some(t);
        }
    }
    best_untrained.or(best_trained)
}

/// [`Familiarity::expected`] of every neuron: `expected[n]` = the sum of `layer` over the
/// connections where neuron `n` has a weight equal to 1, from the neuron-major weights `rows`
/// (`(neurons, connections)`, each neuron's weights as 0 or 1).
pub(crate) fn familiarity(rows: &[u8], connections: usize, layer: &LayerCounts, expected: &mut [u64]) {
    expected.fill(0);
    if connections == 0 {
        return;
    }
    for (e, row) in expected.iter_mut().zip(rows.chunks_exact(connections)) {
        *e = neuron_familiarity(row, layer);
    }
}

/// [`familiarity`] of one neuron, from its weights `row` (0 or 1 per connection).
pub(crate) fn neuron_familiarity(row: &[u8], layer: &LayerCounts) -> u64 {
    row.iter().zip(&layer.per_connection).map(|(&w, &g)| u64::from(w) * g).sum()
}

/// `floor(plasticity * n + 0.5)`, evaluated exactly on the float32 value of `plasticity` (in
/// double precision, where the product of a float32 and an integer below 2^29 is exact), and
/// never more than `n`.
pub(crate) fn share(plasticity: f32, n: usize) -> usize {
    let exact = (f64::from(plasticity) * n as f64 + 0.5).floor();
    (exact as usize).min(n)
}

/// The layer-wide input counts the learning step compares a neuron with: per connection, the sum
/// over all neurons of their input counts, and the sum of those. Derived from
/// [`LearningState::input_counts`](super::LearningState::input_counts) (so never saved), and kept
/// equal to it by [`learn_step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LayerCounts {
    pub per_connection: Vec<u64>,
    pub total: u64,
}

impl LayerCounts {
    /// Sums the neuron-major `(neurons, connections)` counts.
    pub(crate) fn new(input_counts: &[u8], connections: usize) -> Result<Self> {
        let mut per_connection: Vec<u64> =
            crate::error::zeroed_vec(Some(connections), "the layer's input counts of the learning step")?;
        if connections > 0 {
            for row in input_counts.chunks_exact(connections) {
                for (g, &c) in per_connection.iter_mut().zip(row) {
                    *g += u64::from(c);
                }
            }
        }
        let total = per_connection.iter().sum();
        Ok(LayerCounts { per_connection, total })
    }
}

/// Buffers of [`learn_step`], reused from step to step.
#[derive(Debug, Default)]
pub(crate) struct StepBuffers {
    score: Vec<f64>,
    /// Per connection: bit 0 set for a drop candidate, bit 1 for a rise candidate.
    flags: Vec<u8>,
    /// The drop and rise candidates, in increasing connection order until the step takes its
    /// moves to their front.
    drop: Vec<usize>,
    rise: Vec<usize>,
    /// The candidates' keys (score of a drop candidate, minus score of a rise candidate).
    drop_keys: Vec<i64>,
    rise_keys: Vec<i64>,
    tie: Vec<usize>,
    /// The number of weights the last step moved: the first `moved` entries of `drop` fell to 0,
    /// those of `rise` rose to 1.
    moved: usize,
}

impl StepBuffers {
    /// The connections whose weight the last [`learn_step`] dropped to 0 and raised to 1.
    pub(crate) fn moved(&self) -> (&[usize], &[usize]) {
        (&self.drop[..self.moved], &self.rise[..self.moved])
    }
}

/// `value` (below 2^52) as a double, exactly: the bits of 2^52 + `value` less 2^52, which AVX2
/// computes four at a time (it has no conversion from 64-bit integers).
#[inline(always)]
fn exact_f64(value: u64) -> f64 {
    const TWO_52: u64 = 0x4330_0000_0000_0000;
    debug_assert!(value < 1 << 52);
    f64::from_bits(value | TWO_52) - f64::from_bits(TWO_52)
}

/// Keeps of `keys` its `len` lowest entries, in increasing order.
fn lowest_sorted(keys: &mut Vec<i64>, len: usize) {
    if len == 0 {
        keys.clear();
        return;
    }
    if keys.len() > len {
        keys.select_nth_unstable(len - 1);
        keys.truncate(len);
    }
    keys.sort_unstable();
}

/// What `take_ranked` (the tests' reference) does to `items` in increasing order, given the
/// `k`-th lowest rank `cut` (`k` >= 1): the first `k` entries of `items` become the entries
/// ranked below `cut`, in increasing order, then the entries drawn from those ranked `cut`
/// (partial Fisher-Yates in increasing order, one random number per entry drawn). `tie` is
/// scratch space.
fn take_lowest(
    items: &mut [usize],
    k: usize,
    cut: i64,
    rank: impl Fn(usize) -> i64,
    tie: &mut Vec<usize>,
    rng: &mut u64,
) {
    tie.clear();
    let mut below = 0;
    for i in 0..items.len() {
        let (j, r) = (items[i], rank(items[i]));
        if r < cut {
            items[below] = j;
            below += 1;
        } else if r == cut {
            tie.push(j);
        }
    }
    choose(tie, k - below, rng);
    items[below..k].copy_from_slice(&tie[..k - below]);
}

/// The weight of the layer's frequency in a connection's score: `-CONTRAST_NUM / SCORE_DEN`
/// (-0.15) per input count of the neuron, and `PRIOR_NUM / SCORE_DEN` (+0.3) per input spike of
/// the step; a move must gain more than `MARGIN_NUM / SCORE_DEN` (0.5) of one count. Chosen on
/// validation splits of the MNIST benchmark's training images (see `docs/learning.md`, "Learning
/// step of the winner").
pub(crate) const SCORE_DEN: i64 = 20;
pub(crate) const CONTRAST_NUM: i64 = 3;
pub(crate) const PRIOR_NUM: i64 = 6;
pub(crate) const MARGIN_NUM: i64 = 10;

/// One learning step of a neuron whose weights are `row` (0 or 1 per connection) and whose
/// connections' inputs are `active` (see `docs/learning.md`, "Learning step of the winner"): the
/// neuron's input counts (`counts`, its row of
/// [`LearningState::input_counts`](super::LearningState::input_counts)) and the layer's (`layer`)
/// count the step's spikes; every connection gets a score, how much more often than the layer's
/// inputs on average its input spiked in the neuron's steps; then the `k = share(plasticity, m)`
/// silent weights (weight 1, no spike) of lowest score drop to 0 and the `k` zero weights of
/// highest score rise to 1, where `m` is the number of such moves that each gain more than the
/// margin (ties at the cut drawn at random, see [`choose_ranked`]). Changes `row` only (the moves
/// are in [`StepBuffers::moved`], for the caller's other copies of the weights). Returns the
/// neuron's potential after the step (its weights equal to 1 whose input spiked).
///
/// The per-connection passes run in the AVX-512, AVX2 or portable build of kernel set `set` (the
/// plan's, so that forced sets reach the step too), which compute the same integers (integer
/// arithmetic only).
#[allow(clippy::too_many_arguments)]
pub(crate) fn learn_step(
    set: KernelSet,
    row: &mut [u8],
    active: &[bool],
    counts: &mut [u8],
    layer: &mut LayerCounts,
    plasticity: f32,
    rng: &mut u64,
    buffers: &mut StepBuffers,
) -> i32 {
    assert!(row.len() == active.len() && counts.len() == active.len() && layer.per_connection.len() == active.len());
    /// [`learn_step_body`] compiled with `$features` enabled, called.
    #[cfg(target_arch = "x86_64")]
    macro_rules! build {
        ($features:literal) => {{
            #[target_feature(enable = $features)]
            unsafe fn build(
                row: &mut [u8],
                active: &[bool],
                counts: &mut [u8],
                layer: &mut LayerCounts,
                plasticity: f32,
                rng: &mut u64,
                buffers: &mut StepBuffers,
            ) -> i32 {
                learn_step_body::<true>(row, active, counts, layer, plasticity, rng, buffers)
            }
            // SAFETY: a kernel set has AVX-512 F/BW/DQ/VL or AVX2 only when the processor does.
            unsafe { build(row, active, counts, layer, plasticity, rng, buffers) }
        }};
    }
    #[cfg(target_arch = "x86_64")]
    {
        if set.has_avx512() {
            return build!("avx2,avx512f,avx512bw,avx512dq,avx512vl");
        }
        if set.has_avx2() {
            return build!("avx2");
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = set;
    learn_step_body::<false>(row, active, counts, layer, plasticity, rng, buffers)
}

/// The score pass of [`learn_step_body`] (step 2) over the first `n / 4 * 4` connections, four
/// at a time: adds the spikes to the layer's counts, writes the scores
/// `unit * count + layer_weight * layer count` and returns the highest score of a zero weight,
/// the lowest of a silent weight (1, no spike; the infinities when there is none) and the number
/// of connections done. The same doubles as the scalar loop (every product and sum is exact).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn score_pass_avx2(
    row: &[u8],
    active: &[bool],
    counts: &[u8],
    per_connection: &mut [u64],
    score: &mut [f64],
    unit: f64,
    layer_weight: f64,
) -> (f64, f64, usize) {
    use std::arch::x86_64::*;
    let n = active.len();
    assert!(row.len() == n && counts.len() == n && per_connection.len() == n && score.len() == n);
    let done = n / 4 * 4;
    let (mut hz, mut ls) = ([0.0f64; 4], [0.0f64; 4]);
    // SAFETY: AVX2 is enabled (this function's contract), and every pointer read or written is
    // below index j + 4 <= done <= n of a slice of length n (asserted).
    unsafe {
        // 2^52 as a double and as bits: (2^52 + v) - 2^52 = v for v < 2^52 (see `exact_f64`).
        let two_52 = _mm256_set1_epi64x(0x4330_0000_0000_0000);
        let two_52_f = _mm256_castsi256_pd(two_52);
        let (unit, layer_weight) = (_mm256_set1_pd(unit), _mm256_set1_pd(layer_weight));
        let (zero, one) = (_mm256_setzero_si256(), _mm256_set1_epi64x(1));
        let (mut highest_zero, mut lowest_silent) = (_mm256_set1_pd(f64::NEG_INFINITY), _mm256_set1_pd(f64::INFINITY));
        // Four bytes from `bytes[j..j + 4]` as four 64-bit lanes.
        let widen = |bytes: *const u8| _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(bytes.cast::<i32>().read_unaligned()));
        let (row_p, active_p, counts_p) = (row.as_ptr(), active.as_ptr().cast::<u8>(), counts.as_ptr());
        let (layer_p, score_p) = (per_connection.as_mut_ptr(), score.as_mut_ptr());
        for j in (0..done).step_by(4) {
            let (w, a, c) = (widen(row_p.add(j)), widen(active_p.add(j)), widen(counts_p.add(j)));
            let g = _mm256_add_epi64(_mm256_loadu_si256(layer_p.add(j).cast()), a);
            _mm256_storeu_si256(layer_p.add(j).cast(), g);
            let as_f64 = |v| _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(v, two_52)), two_52_f);
            let sc = _mm256_add_pd(_mm256_mul_pd(unit, as_f64(c)), _mm256_mul_pd(layer_weight, as_f64(g)));
            _mm256_storeu_pd(score_p.add(j), sc);
            let is_zero = _mm256_castsi256_pd(_mm256_cmpeq_epi64(w, zero));
            let is_silent =
                _mm256_castsi256_pd(_mm256_andnot_si256(_mm256_cmpeq_epi64(a, one), _mm256_cmpeq_epi64(w, one)));
            highest_zero = _mm256_blendv_pd(highest_zero, _mm256_max_pd(highest_zero, sc), is_zero);
            lowest_silent = _mm256_blendv_pd(lowest_silent, _mm256_min_pd(lowest_silent, sc), is_silent);
        }
        _mm256_storeu_pd(hz.as_mut_ptr(), highest_zero);
        _mm256_storeu_pd(ls.as_mut_ptr(), lowest_silent);
    }
    (hz.iter().fold(f64::NEG_INFINITY, |x, &y| x.max(y)), ls.iter().fold(f64::INFINITY, |x, &y| x.min(y)), done)
}

/// [`learn_step`], inlined into each build; `AVX2` (a build with AVX2 enabled) selects the
/// explicit AVX2 score pass. Its per-connection loops are separate branch-free passes over plain
/// slices.
#[inline(always)]
fn learn_step_body<const AVX2: bool>(
    row: &mut [u8],
    active: &[bool],
    counts: &mut [u8],
    layer: &mut LayerCounts,
    plasticity: f32,
    rng: &mut u64,
    buffers: &mut StepBuffers,
) -> i32 {
    let n = active.len();
    let (row, counts, per_connection) = (&mut row[..n], &mut counts[..n], &mut layer.per_connection[..n]);
    // 1. Counts: halve the neuron's if one would pass the maximum, then count the spikes (the
    // neuron's counts and the step's potential here, in one pass over bytes; the layer's with
    // the scores).
    let saturated = active.iter().zip(counts.iter()).fold(false, |s, (&a, &c)| s | (a & (c == MAX_INPUT_COUNT)));
    if saturated {
        for (c, g) in counts.iter_mut().zip(per_connection.iter_mut()) {
            let lost = *c - *c / 2;
            *g -= u64::from(lost);
            layer.total -= u64::from(lost);
            *c /= 2;
        }
    }
    let (mut spikes, mut matched, mut neuron_total) = (0u64, 0u64, 0u64);
    for ((c, &a), &w) in counts.iter_mut().zip(active).zip(row.iter()) {
        let spike = u8::from(a);
        *c += spike;
        spikes += u64::from(spike);
        matched += u64::from(spike & w);
        neuron_total += u64::from(*c);
    }
    let (spikes, neuron_total, mut matched) = (spikes as i64, neuron_total as i64, matched as i32);
    layer.total += spikes as u64;
    // 2. Scores, in units of 1 / (SCORE_DEN * total) of a count. With at most MAX_WEIGHTS = 2^31
    // counts of at most 255, total < 2^39, SCORE_DEN * total * count < 2^52 and
    // |layer_weight * layer count| < 771 * connections * 255 * neurons < 2^50, so a score and
    // both its terms are integers below 2^53 in magnitude: double precision computes them
    // exactly (each product and the sum is exact), faster than 64-bit integers (which AVX2 cannot
    // multiply).
    let total = layer.total as i64;
    let layer_weight = PRIOR_NUM * spikes - CONTRAST_NUM * neuron_total;
    let margin = MARGIN_NUM * total;
    let (unit, layer_weight_f) = ((SCORE_DEN * total) as f64, layer_weight as f64);
    let score = &mut buffers.score;
    score.clear();
    score.resize(n, 0.0);
    // One pass over the connections: counts the layer's spikes, scores every connection, and
    // finds the highest score of a zero weight and the lowest of a silent weight (1, no spike).
    let none_done = (f64::NEG_INFINITY, f64::INFINITY, 0);
    #[cfg(target_arch = "x86_64")]
    let extremes = if AVX2 {
        // SAFETY: AVX2 is enabled in the builds that pass AVX2 = true (see `learn_step`).
        unsafe { score_pass_avx2(row, active, counts, per_connection, score, unit, layer_weight_f) }
    } else {
        none_done
    };
    #[cfg(not(target_arch = "x86_64"))]
    let extremes = none_done;
    let (mut highest_zero, mut lowest_silent, done) = extremes;
    for j in done..n {
        per_connection[j] += u64::from(active[j]);
        score[j] = unit * f64::from(counts[j]) + layer_weight_f * exact_f64(per_connection[j]);
        highest_zero = highest_zero.max(if row[j] == 0 { score[j] } else { f64::NEG_INFINITY });
        lowest_silent = lowest_silent.min(if (row[j] == 1) & !active[j] { score[j] } else { f64::INFINITY });
    }
    // (A plain slice from here: the loops below keep its address and length in registers.)
    let score: &[f64] = score;
    // 3. Candidates. Only a silent weight scoring below (best zero weight - margin) and a zero
    // weight scoring above (worst silent weight + margin) can take part in a move, so the others
    // are left out (the result is the same). The candidates are flagged in one pass, then
    // gathered eight flags at a time (they are few), in increasing connection order, with their
    // keys: the score of a drop candidate, minus the score of a rise candidate.
    let (drop, rise) = (&mut buffers.drop, &mut buffers.rise);
    let (drop_keys, rise_keys) = (&mut buffers.drop_keys, &mut buffers.rise_keys);
    drop.clear();
    rise.clear();
    drop_keys.clear();
    rise_keys.clear();
    if lowest_silent.is_finite() && highest_zero.is_finite() && highest_zero as i64 - margin > lowest_silent as i64 {
        let (drop_below, rise_above) = ((highest_zero as i64 - margin) as f64, (lowest_silent as i64 + margin) as f64);
        let flags = &mut buffers.flags;
        flags.clear();
        flags.resize(n, 0);
        for (((f, &a), &w), &sc) in flags.iter_mut().zip(active).zip(row.iter()).zip(score.iter()) {
            let drop = (w == 1) & !a & (sc < drop_below);
            let rise = (w == 0) & (sc > rise_above);
            *f = u8::from(drop) | u8::from(rise) << 1;
        }
        for_each_nonzero_byte(flags, |j, f| {
            if f & 1 != 0 {
                drop.push(j);
                drop_keys.push(score[j] as i64);
            }
            if f & 2 != 0 {
                rise.push(j);
                rise_keys.push(-(score[j] as i64));
            }
        });
    }
    // 4. The moves that gain more than the margin pair the i-th lowest drop key with the i-th
    // lowest rise key for the first `moves` i (a prefix); their number depends on the keys alone,
    // and a pair needs one entry of each list, so only the lowest `min(drops, rises)` keys of each
    // list are sorted.
    let pairs = drop_keys.len().min(rise_keys.len());
    lowest_sorted(drop_keys, pairs);
    lowest_sorted(rise_keys, pairs);
    let moves = drop_keys.iter().zip(rise_keys.iter()).take_while(|&(&d, &r)| -r > d + margin).count();
    let k = share(plasticity, moves);
    buffers.moved = k;
    if k > 0 {
        // The k-th lowest key is the cut: the entries below it are taken, and the others from
        // the entries equal to it (the tie, in increasing connection order, as in a list sorted
        // by (key, connection)).
        take_lowest(drop, k, drop_keys[k - 1], |j| score[j] as i64, &mut buffers.tie, rng);
        take_lowest(rise, k, rise_keys[k - 1], |j| -(score[j] as i64), &mut buffers.tie, rng);
        for i in 0..k {
            row[drop[i]] = 0;
            row[rise[i]] = 1;
            matched += i32::from(active[rise[i]]);
        }
    }
    matched
}

/// Plain twin of [`learn_step`], written from `docs/learning.md` ("Learning step of the
/// winner") without its shortcuts: every silent and zero connection in the sorted lists, scores
/// as 128-bit integers, and [`choose_ranked`] on the whole lists. Returns the
/// potential after the step and the connections dropped and risen, each in increasing order.
#[cfg(test)]
pub(crate) fn plain_learn_step(
    row: &mut [u8],
    active: &[bool],
    counts: &mut [u8],
    layer: &mut LayerCounts,
    plasticity: f32,
    rng: &mut u64,
) -> (i32, Vec<usize>, Vec<usize>) {
    let n = active.len();
    // a. Counts.
    if (0..n).any(|j| active[j] && counts[j] == MAX_INPUT_COUNT) {
        for (c, g) in counts.iter_mut().zip(&mut layer.per_connection) {
            let lost = u64::from(*c - *c / 2);
            *g -= lost;
            layer.total -= lost;
            *c /= 2;
        }
    }
    for j in (0..n).filter(|&j| active[j]) {
        counts[j] += 1;
        layer.per_connection[j] += 1;
        layer.total += 1;
    }
    // b. Scores, times SCORE_DEN * S.
    let spikes = active.iter().filter(|&&a| a).count() as i128;
    let neuron_total: i128 = counts.iter().map(|&c| i128::from(c)).sum();
    let total = i128::from(layer.total);
    let score = |j: usize| {
        i128::from(SCORE_DEN) * total * i128::from(counts[j])
            + (i128::from(PRIOR_NUM) * spikes - i128::from(CONTRAST_NUM) * neuron_total)
                * i128::from(layer.per_connection[j])
    };
    // c. Moves.
    let mut silent: Vec<usize> = (0..n).filter(|&j| row[j] == 1 && !active[j]).collect();
    let mut zero: Vec<usize> = (0..n).filter(|&j| row[j] == 0).collect();
    silent.sort_by_key(|&j| (score(j), j));
    zero.sort_by_key(|&j| (-score(j), j));
    let margin = i128::from(MARGIN_NUM) * total;
    let moves = silent.iter().zip(&zero).take_while(|&(&d, &r)| score(r) > score(d) + margin).count();
    let k = share(plasticity, moves);
    choose_ranked(&mut silent, k, score, rng);
    choose_ranked(&mut zero, k, |j| -score(j), rng);
    let (mut dropped, mut risen) = (silent[..k].to_vec(), zero[..k].to_vec());
    dropped.iter().for_each(|&j| row[j] = 0);
    risen.iter().for_each(|&j| row[j] = 1);
    dropped.sort_unstable();
    risen.sort_unstable();
    let potential = (0..n).filter(|&j| row[j] == 1 && active[j]).count() as i32;
    (potential, dropped, risen)
}

/// Plasticity after a learning step: `p / (1 + plasticity_decay * (p / initial_plasticity))`, so
/// that after `n` steps it is `initial_plasticity / (1 + plasticity_decay * n)` (up to rounding),
/// never below `min(min_plasticity, initial_plasticity)` (so it never rises), in float32
/// arithmetic, each operation rounded. Only called for a layer that learns
/// (`initial_plasticity > 0`).
pub(crate) fn decayed(plasticity: f32, config: &LearningConfig) -> f32 {
    let floor = config.min_plasticity.min(config.initial_plasticity);
    let relative = plasticity / config.initial_plasticity;
    (plasticity / (1.0 + config.plasticity_decay * relative)).max(floor)
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

    /// Neuron `neuron`'s weights of a `(connections, neurons)` matrix, as 0 or 1 per connection.
    fn row_of(weights: &[i8], neurons: usize, neuron: usize) -> Vec<u8> {
        weights.chunks_exact(neurons).map(|r| u8::from(r[neuron] == 1)).collect()
    }

    #[test]
    fn a_step_keeps_the_weight_count_and_moves_toward_the_input() {
        let mut rng = 5;
        let neurons = 3;
        let mut w = vec![0i8; 20 * neurons];
        random_neuron(&mut w, neurons, 1, 8, &mut connection_indices(20).unwrap(), &mut rng);
        let mut row = row_of(&w, neurons, 1);
        let active: Vec<bool> = (0..20).map(|j| j % 2 == 0).collect();
        let before: i32 = (0..20).filter(|&j| active[j] && row[j] == 1).count() as i32;
        let mut counts = vec![0u8; 20];
        let mut layer = LayerCounts::new(&counts, 20).unwrap();
        let mut buffers = StepBuffers::default();
        let after =
            learn_step(KernelSet::detected(), &mut row, &active, &mut counts, &mut layer, 0.5, &mut rng, &mut buffers);
        assert!(counts.iter().zip(&active).all(|(&c, &a)| c == u8::from(a)));
        assert_eq!(layer, LayerCounts::new(&counts, 20).unwrap(), "the layer counts follow the neuron's");
        assert_eq!(row.iter().filter(|&&v| v == 1).count(), 8);
        assert!(after > before);
        assert_eq!(after, (0..20).filter(|&j| active[j] && row[j] == 1).count() as i32);
        // The moves say what changed.
        let (dropped, risen) = buffers.moved();
        let mut moved = row_of(&w, neurons, 1);
        dropped.iter().for_each(|&j| moved[j] = 0);
        risen.iter().for_each(|&j| moved[j] = 1);
        assert_eq!(moved, row);
    }

    /// Every build of the learning step against its plain twin, on layers whose neurons learn
    /// one after the other (so scores spread as in `fit`), with few distinct counts (ties at the
    /// cut), counts near saturation (halving), every plasticity range and sparse to dense inputs.
    #[test]
    fn every_build_of_the_step_matches_the_plain_twin() {
        let mut rng = 0x5EED_u64;
        let mut steps = [0usize; 2];
        for case in 0..300u64 {
            let connections = 1 + (next_random(&mut rng) % 300) as usize;
            let neurons = 1 + (next_random(&mut rng) % 6) as usize;
            let num_weights = 1 + (next_random(&mut rng) % connections as u64) as usize;
            let mut w = vec![0i8; connections * neurons];
            let mut indices = connection_indices(connections).unwrap();
            for n in 0..neurons {
                random_neuron(&mut w, neurons, n, num_weights, &mut indices, &mut rng);
            }
            let rows: Vec<u8> = (0..neurons).flat_map(|n| row_of(&w, neurons, n)).collect();
            // Counts: zero, small (many ties) or near the maximum.
            let high = [1u64, 4, 256][(next_random(&mut rng) % 3) as usize];
            let counts: Vec<u8> = if case % 4 == 0 {
                vec![0; neurons * connections]
            } else {
                (0..neurons * connections).map(|_| (next_random(&mut rng) % high) as u8).collect()
            };
            for set in KernelSet::available() {
                let (mut rows_fast, mut counts_fast, mut rows_plain, mut counts_plain) =
                    (rows.clone(), counts.clone(), rows.clone(), counts.clone());
                let mut layer_fast = LayerCounts::new(&counts, connections).unwrap();
                let mut layer_plain = layer_fast.clone();
                let (mut rng_fast, mut rng_plain) = (case, case);
                let mut buffers = StepBuffers::default();
                let mut inputs = case ^ 0xABCD;
                for step in 0..20 {
                    let n = (next_random(&mut inputs) % neurons as u64) as usize;
                    let density = next_random(&mut inputs) % 101;
                    let active: Vec<bool> =
                        (0..connections).map(|_| next_random(&mut inputs) % 100 < density).collect();
                    let plasticity = match step % 4 {
                        0 => 1.0,
                        1 => 0.7,
                        2 => (next_random(&mut inputs) % 1000) as f32 / 1000.0,
                        _ => 0.1,
                    };
                    let span = n * connections..(n + 1) * connections;
                    let fast = learn_step(
                        set,
                        &mut rows_fast[span.clone()],
                        &active,
                        &mut counts_fast[span.clone()],
                        &mut layer_fast,
                        plasticity,
                        &mut rng_fast,
                        &mut buffers,
                    );
                    let (mut dropped, mut risen) = (buffers.moved().0.to_vec(), buffers.moved().1.to_vec());
                    dropped.sort_unstable();
                    risen.sort_unstable();
                    let plain = plain_learn_step(
                        &mut rows_plain[span.clone()],
                        &active,
                        &mut counts_plain[span],
                        &mut layer_plain,
                        plasticity,
                        &mut rng_plain,
                    );
                    let what = format!("{} case {case} step {step}", set.name());
                    assert_eq!((fast, dropped, risen), plain, "{what}");
                    assert_eq!(rows_fast, rows_plain, "{what}");
                    assert_eq!(counts_fast, counts_plain, "{what}");
                    assert_eq!(layer_fast, layer_plain, "{what}");
                    assert_eq!(rng_fast, rng_plain, "{what}: the same random numbers");
                    steps[0] += 1;
                    steps[1] += usize::from(!plain.1.is_empty());
                }
            }
        }
        // Most steps move weights (and a wrong draw at a tied cut fails this test).
        assert!(steps[1] > steps[0] / 4, "{steps:?}");
    }

    /// A move that gains exactly the margin is not made, one that gains more is: a fresh neuron
    /// with weights on inputs 0-5, inputs 0-4 spiking, and another neuron's count `other` on input
    /// 6. After the counts, S = 15, C = X = 5: input 5 (silent) scores 0 and input 6 (zero)
    /// `(6 X - 3 C) * other = 15 * other`, against a margin of `10 * S = 150`.
    #[test]
    fn a_move_must_gain_more_than_the_margin() {
        for (other, moves) in [(10u8, 0usize), (11, 1)] {
            let mut counts = vec![0u8; 14];
            counts[7 + 6] = other;
            let active: Vec<bool> = (0..7).map(|j| j < 5).collect();
            let row: Vec<u8> = (0..7).map(|j| u8::from(j < 6)).collect();
            let layer = LayerCounts::new(&counts, 7).unwrap();
            let (mut plain_row, mut plain_counts, mut plain_layer) = (row.clone(), counts.clone(), layer.clone());
            let plain =
                plain_learn_step(&mut plain_row, &active, &mut plain_counts[..7], &mut plain_layer, 1.0, &mut 1);
            assert_eq!(plain.1.len(), moves, "other = {other}");
            for set in KernelSet::available() {
                let (mut r, mut c, mut l) = (row.clone(), counts.clone(), layer.clone());
                let mut buffers = StepBuffers::default();
                learn_step(set, &mut r, &active, &mut c[..7], &mut l, 1.0, &mut 1, &mut buffers);
                assert_eq!(buffers.moved().0.len(), moves, "{} other = {other}", set.name());
                assert_eq!((r, c, l), (plain_row.clone(), plain_counts.clone(), plain_layer.clone()));
            }
        }
    }

    #[test]
    fn the_layer_counts_stay_the_sum_of_the_neuron_counts_through_halving() {
        let (neurons, connections) = (4, 12);
        let mut rng = 17u64;
        let mut w = vec![0i8; connections * neurons];
        let mut indices = connection_indices(connections).unwrap();
        for n in 0..neurons {
            random_neuron(&mut w, neurons, n, 5, &mut indices, &mut rng);
        }
        let mut rows: Vec<u8> = (0..neurons).flat_map(|n| row_of(&w, neurons, n)).collect();
        let mut counts = vec![0u8; neurons * connections];
        let mut layer = LayerCounts::new(&counts, connections).unwrap();
        let mut buffers = StepBuffers::default();
        let mut halvings = 0;
        for step in 0..3000 {
            let n = (next_random(&mut rng) % neurons as u64) as usize;
            // Input 0 spikes every step, so the counts of every neuron saturate and halve.
            let active: Vec<bool> =
                (0..connections).map(|j| j == 0 || next_random(&mut rng).is_multiple_of(3)).collect();
            let counts_row = &mut counts[n * connections..(n + 1) * connections];
            let before = counts_row[0];
            let row = &mut rows[n * connections..(n + 1) * connections];
            learn_step(
                KernelSet::detected(),
                row,
                &active,
                counts_row,
                &mut layer,
                [1.0, 0.4, 0.1][step % 3],
                &mut rng,
                &mut buffers,
            );
            halvings += usize::from(counts_row[0] < before);
            assert_eq!(layer, LayerCounts::new(&counts, connections).unwrap());
            assert!(rows.chunks_exact(connections).all(|r| r.iter().filter(|&&v| v == 1).count() == 5));
        }
        assert!(halvings > 0);
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
        // Harmonic: 1, 0.8, 2/3, 4/7, 0.5, ... with the defaults, down to min_plasticity.
        let defaults = LearningConfig::new(3, 1, 1.0, 0.1, 0.25, 0.0, 0).unwrap();
        let mut p = 1.0f32;
        for n in 1..=40 {
            p = decayed(p, &defaults);
            let exact = (1.0 / (1.0 + 0.25 * n as f64)).max(0.1);
            assert!((f64::from(p) - exact).abs() < 1e-5, "step {n}: {p} vs {exact}");
        }
        assert_eq!(p, 0.1);
    }

    #[test]
    fn winner_prefers_untrained_without_competition() {
        let none = Familiarity { expected: &[0; 4], total: 0 };
        let p = [5, 9, 7, 2];
        let trained = [0, 8, 0, 0];
        assert_eq!(select_winner(&p, 4, 0..4, &[3], none, &trained, 0.0).unwrap().neuron, 2);
        assert_eq!(select_winner(&p, 4, 0..4, &[3], none, &trained, 0.5).unwrap().neuron, 1);
        assert_eq!(select_winner(&p, 4, 0..2, &[3], none, &[3, 8, 0, 0], 0.0).unwrap().neuron, 1);
        // Two positions of two neurons; the second position's window saw no spike.
        let p = [0, 0, 5, 9];
        let w = select_winner(&p, 2, 0..2, &[1, 0], none, &[0, 0], 0.0).unwrap();
        assert_eq!((w.position, w.neuron, w.potential), (0, 0, 0));
        assert!(select_winner(&p, 2, 0..2, &[0, 0], none, &[0, 0], 0.0).is_none());
    }

    #[test]
    fn a_trained_winner_ranks_by_potential_less_the_expected_one() {
        // 10 spikes, total 100: neuron 0 expects 10 * 60 / 100 = 6 (rank 9 - 6 = 3), neuron 1
        // expects 2 (rank 8 - 2 = 6): neuron 1 wins though its potential is lower.
        let familiar = Familiarity { expected: &[60, 20], total: 100 };
        let w = select_winner(&[9, 8], 2, 0..2, &[10], familiar, &[5, 5], 0.0).unwrap();
        assert_eq!((w.neuron, w.potential), (1, 8));
        // Equal ranks (9 - 3 = 8 - 2) go to the lowest neuron; with total 0 the potential alone
        // ranks.
        let tie = Familiarity { expected: &[30, 20], total: 100 };
        assert_eq!(select_winner(&[9, 8], 2, 0..2, &[10], tie, &[5, 5], 0.0).unwrap().neuron, 0);
        let zero = Familiarity { expected: &[60, 20], total: 0 };
        assert_eq!(select_winner(&[9, 8], 2, 0..2, &[10], zero, &[5, 5], 0.0).unwrap().neuron, 0);
        // The familiarity sums agree with the direct definition.
        let (neurons, connections) = (3, 5);
        let weights: Vec<i8> = (0..neurons * connections).map(|i| i8::from(i % 3 != 1)).collect();
        let layer = LayerCounts { per_connection: vec![4, 0, 7, 1, 9], total: 21 };
        let rows: Vec<u8> = (0..neurons).flat_map(|n| row_of(&weights, neurons, n)).collect();
        let mut expected = vec![0; neurons];
        familiarity(&rows, connections, &layer, &mut expected);
        for (n, &e) in expected.iter().enumerate() {
            assert_eq!(e, neuron_familiarity(&row_of(&weights, neurons, n), &layer));
            let direct: u64 =
                (0..connections).filter(|&j| weights[j * neurons + n] == 1).map(|j| layer.per_connection[j]).sum();
            assert_eq!(e, direct);
        }
    }
}
