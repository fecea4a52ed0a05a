//! The quantized threshold activation: reference formula and the integer cut-point form used by
//! the kernels. Both implement `docs/semantics.md`, section "Activation".

/// Interval length of the activation for `bits` bits and step `step`: the step itself for 4 bits,
/// four steps for 2 bits (the seed's "for 2 bits, this is 1/4 of the length of the intervals").
pub fn interval_length(step: f32, bits: u8) -> f64 {
    if bits == 2 {
        4.0 * f64::from(step)
    } else {
        f64::from(step)
    }
}

/// Reference activation of one potential: straight from the formula
/// `min(ceil((p - T) / L), 2^bits - 1)` when `p > T`, else 0.
pub fn reference_response(potential: i32, threshold: i32, step: f32, bits: u8) -> u8 {
    if potential <= threshold {
        return 0;
    }
    let max = (1u32 << bits) - 1;
    if bits == 1 {
        return 1;
    }
    let excess = f64::from(potential) - f64::from(threshold);
    let level = (excess / interval_length(step, bits)).ceil();
    if level >= f64::from(max) {
        max as u8
    } else {
        level as u8
    }
}

/// Per-neuron integer cut points: the response to `p` is the number of cut points strictly below
/// `p`. Cut point `j` (0-based) is `T + floor(j * L)`, exact because `j * L` is exact in `f64` and
/// `T` is an integer.
#[derive(Debug, Clone)]
pub struct Thresholds {
    /// `levels` cut points per neuron, neuron-major.
    cuts: Vec<i64>,
    levels: usize,
    /// For 1-bit activations: the thresholds themselves (a spike when `p > T`).
    binary: Option<Vec<i32>>,
    /// The cut points again, clamped to `i32` (a cut point above `i32::MAX` is never below a
    /// potential, and none is below `i32::MIN`), level-major and tiled over `tile / N` whole
    /// positions: `tiled[j * tile + k]` is cut point `j` of neuron `k % N`. Used by
    /// [`Thresholds::levels`], which vectorizes across positions when `N` is small.
    tiled: Vec<i32>,
    tile: usize,
}

impl Thresholds {
    /// Builds the cut points of `threshold.len()` neurons.
    pub fn new(threshold: &[i32], step: &[f32], bits: u8) -> Self {
        debug_assert_eq!(threshold.len(), step.len());
        let levels = (1usize << bits) - 1;
        let mut cuts = Vec::with_capacity(threshold.len() * levels);
        for (&t, &s) in threshold.iter().zip(step) {
            let length = interval_length(s, bits);
            for j in 0..levels {
                let offset = (j as f64 * length).floor();
                // Offsets beyond any reachable potential saturate; i32 potentials differ from an i32
                // threshold by less than 2^33.
                let offset = if offset > 1e15 { 1_000_000_000_000_000 } else { offset as i64 };
                cuts.push(i64::from(t) + offset);
            }
        }
        let binary = (bits == 1).then(|| threshold.to_vec());
        let n = threshold.len();
        let tile = n * (64 / n.max(1)).max(1);
        let mut tiled = Vec::with_capacity(levels * tile);
        for j in 0..levels {
            tiled.extend(
                (0..tile).map(|k| cuts[(k % n) * levels + j].clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32),
            );
        }
        Thresholds { cuts, levels, binary, tiled, tile }
    }

    /// Writes the activation of every potential of `potentials` (`(positions, N)`) into `out`
    /// (same length): `out[i] == self.response(i % N, potentials[i])`. Branch-free and
    /// vectorizable: one compare per cut point and value.
    pub fn levels(&self, potentials: &[i32], out: &mut [u8]) {
        assert_eq!(potentials.len(), out.len(), "one level per potential");
        let n = self.len();
        if n == 0 {
            return;
        }
        assert_eq!(potentials.len() % n, 0, "whole positions");
        #[cfg(target_arch = "x86_64")]
        if crate::kernels::KernelSet::detected().has_avx2() {
            #[target_feature(enable = "avx2")]
            unsafe fn avx2(t: &Thresholds, potentials: &[i32], out: &mut [u8]) {
                t.levels_body(potentials, out)
            }
            // SAFETY: the detected set has AVX2 only when the processor supports it.
            unsafe { avx2(self, potentials, out) };
            return;
        }
        self.levels_body(potentials, out)
    }

    #[inline(always)]
    fn levels_body(&self, potentials: &[i32], out: &mut [u8]) {
        let tile = self.tile;
        for (p, o) in potentials.chunks(tile).zip(out.chunks_mut(tile)) {
            let len = p.len();
            o.fill(0);
            for cut in self.tiled.chunks_exact(tile) {
                for ((o, &p), &c) in o.iter_mut().zip(p).zip(&cut[..len]) {
                    *o += u8::from(p > c);
                }
            }
        }
    }

    /// The per-neuron thresholds when the activation is 1-bit (response 1 iff `p > T`).
    pub fn binary_thresholds(&self) -> Option<&[i32]> {
        self.binary.as_deref()
    }

    /// Number of neurons.
    pub fn len(&self) -> usize {
        self.cuts.len() / self.levels
    }

    pub fn is_empty(&self) -> bool {
        self.cuts.is_empty()
    }

    /// The activation of `potential` for neuron `neuron`.
    #[inline]
    pub fn response(&self, neuron: usize, potential: i32) -> u8 {
        let cuts = &self.cuts[neuron * self.levels..(neuron + 1) * self.levels];
        let p = i64::from(potential);
        if p <= cuts[0] {
            return 0;
        }
        // Cut points rise with j, so the response is the number of them below `p`.
        cuts.iter().map(|&c| u8::from(p > c)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn boundaries() {
        // T = 10, step 2, 4 bits: (10, 12] -> 1, (12, 14] -> 2 ...
        assert_eq!(reference_response(10, 10, 2.0, 4), 0);
        assert_eq!(reference_response(11, 10, 2.0, 4), 1);
        assert_eq!(reference_response(12, 10, 2.0, 4), 1);
        assert_eq!(reference_response(13, 10, 2.0, 4), 2);
        assert_eq!(reference_response(1000, 10, 2.0, 4), 15);
        // 2 bits: intervals of 4 * step.
        assert_eq!(reference_response(18, 10, 2.0, 2), 1);
        assert_eq!(reference_response(19, 10, 2.0, 2), 2);
        assert_eq!(reference_response(100, 10, 2.0, 2), 3);
        // 1 bit ignores the step.
        assert_eq!(reference_response(11, 10, 1000.0, 1), 1);
        let t = Thresholds::new(&[10], &[2.0], 4);
        assert_eq!(t.response(0, 12), 1);
        assert_eq!(t.response(0, 13), 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn cut_points_match_the_formula(
            p in any::<i32>(),
            t in prop_oneof![any::<i32>(), -100i32..100],
            step in prop_oneof![0.01f32..50.0, 1e-7f32..1e-3, 1.0f32..1e6, Just(0.25f32), Just(1.0f32)],
            bits in prop_oneof![Just(1u8), Just(2u8), Just(4u8)],
            near in -70i32..70,
        ) {
            let th = Thresholds::new(&[t], &[step], bits);
            prop_assert_eq!(th.response(0, p), reference_response(p, t, step, bits));
            let q = t.saturating_add(near);
            prop_assert_eq!(th.response(0, q), reference_response(q, t, step, bits));
        }

        /// The vectorized [`Thresholds::levels`] against the formula, on random neuron counts
        /// (tiles with and without a partial last tile), positions and cut points.
        #[test]
        fn levels_match_the_formula(
            n in 1usize..80,
            positions in 0usize..40,
            bits in prop_oneof![Just(1u8), Just(2u8), Just(4u8)],
            seed in any::<u64>(),
        ) {
            let mut rng = crate::testing::Rng(seed);
            let spread = rng.pick(&[5i64, 100, i64::from(i32::MAX)]);
            let t: Vec<i32> = (0..n).map(|_| rng.range(-spread, spread) as i32).collect();
            let step: Vec<f32> = (0..n).map(|_| rng.pick(&[0.25f32, 1.0, 3.3, 1e9])).collect();
            let p: Vec<i32> = (0..n * positions).map(|_| rng.range(-spread - 50, spread + 50).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32).collect();
            let th = Thresholds::new(&t, &step, bits);
            let mut out = vec![7u8; p.len()];
            th.levels(&p, &mut out);
            let expected: Vec<u8> = p.iter().enumerate().map(|(i, &v)| reference_response(v, t[i % n], step[i % n], bits)).collect();
            prop_assert_eq!(out, expected);
        }
    }
}
