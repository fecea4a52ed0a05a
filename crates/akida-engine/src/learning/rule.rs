//! The learning rule of `docs/learning.md`, step by step: the random generator, the initial
//! weights, the choice of the winner, and one learning step.

use super::state::{LearningConfig, MAX_INPUT_COUNT};
use crate::error::Result;

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
