//! Bit-packed kernels: a fully connected layer whose inputs and weights have few bits, computed as
//! AND + popcount over packed 64-bit words. An input of `a` bits is `a` bit planes
//! (`x = sum_i 2^i x_i`), a weight of `b` bits is `b` planes: unsigned for 1-bit weights (`0, 1`),
//! two's complement otherwise (`w = -2^(b-1) w_(b-1) + sum_(j < b-1) 2^j w_j`), so
//! `sum_k x_k w_k = sum_i sum_j ±2^(i+j) popcount(x_i AND w_j)`. Its cost is `a * b * N * K / 64`
//! word operations whatever the input density; the plan weighs it against the event-driven kernel.
//!
//! [`KernelSet::and_popcount`] has a portable build (four words at a time; with the POPCNT
//! instruction where the processor has it) and an AVX-512 VPOPCNTDQ one; the plain twin
//! of the whole path is `events::plain_fully_connected`, which the property tests compare with.

use super::KernelSet;
use crate::events::Event;
use crate::shape::Shape3;

/// Bits in a word.
const WORD: usize = 64;

/// Weights `(K, N)` as bit planes: `[neuron][plane][word]`, `words = ceil(K / 64)`, bits past `K`
/// zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitWeights {
    data: Vec<u64>,
    words: usize,
    planes: usize,
    signed: bool,
    inputs: usize,
    neurons: usize,
}

impl BitWeights {
    /// Packs `weights` `(inputs, N)` of `bits` bits (1: values 0 and 1; more: signed values that
    /// fit `bits` bits in two's complement). Reads the weights in blocks of 64 inputs, each
    /// block's rows once, so that the packing streams through memory; [`BitWeights::plain_new`]
    /// is its plain twin.
    pub fn new(weights: &[i8], inputs: usize, neurons: usize, bits: u8) -> Self {
        assert_eq!(weights.len(), inputs * neurons, "weights (inputs, N)");
        let words = inputs.div_ceil(WORD);
        let planes = usize::from(bits.max(1));
        let mut data = vec![0u64; neurons * planes * words];
        if neurons > 0 {
            // One word per plane and neuron for the block being packed, `[plane][neuron]`.
            let mut block_words = vec![0u64; planes * neurons];
            for (word, block) in weights.chunks(WORD * neurons).enumerate() {
                block_words.fill(0);
                for (b, row) in block.chunks_exact(neurons).enumerate() {
                    for (j, plane) in block_words.chunks_exact_mut(neurons).enumerate() {
                        for (w, &v) in plane.iter_mut().zip(row) {
                            *w |= u64::from((v as u8) >> j & 1) << b;
                        }
                    }
                }
                for (j, plane) in block_words.chunks_exact(neurons).enumerate() {
                    for (n, &w) in plane.iter().enumerate() {
                        data[(n * planes + j) * words + word] = w;
                    }
                }
            }
        }
        BitWeights { data, words, planes, signed: bits > 1, inputs, neurons }
    }

    /// Plain twin of [`BitWeights::new`]: sets the bits one weight at a time.
    pub fn plain_new(weights: &[i8], inputs: usize, neurons: usize, bits: u8) -> Self {
        assert_eq!(weights.len(), inputs * neurons, "weights (inputs, N)");
        let words = inputs.div_ceil(WORD);
        let planes = usize::from(bits.max(1));
        let mut data = vec![0u64; neurons * planes * words];
        for k in 0..inputs {
            for n in 0..neurons {
                let value = weights[k * neurons + n] as u8;
                for j in 0..planes {
                    if value >> j & 1 == 1 {
                        data[(n * planes + j) * words + k / WORD] |= 1 << (k % WORD);
                    }
                }
            }
        }
        BitWeights { data, words, planes, signed: bits > 1, inputs, neurons }
    }

    /// Sets the 1-bit weight of input `input` to neuron `neuron` (weights packed with `bits`
    /// 1): how `fit` keeps the plan's copy of a learning layer equal to its weights. Panics on
    /// more planes or indices out of range.
    pub fn set_binary(&mut self, input: usize, neuron: usize, on: bool) {
        assert!(self.planes == 1 && !self.signed, "set_binary needs 1-bit weights");
        assert!(neuron < self.neurons && input < self.inputs, "weight index out of range");
        let word = &mut self.data[neuron * self.words + input / WORD];
        let bit = 1u64 << (input % WORD);
        *word = if on { *word | bit } else { *word & !bit };
    }

    pub fn planes(&self) -> usize {
        self.planes
    }

    /// Words per plane.
    pub fn words(&self) -> usize {
        self.words
    }

    pub fn neurons(&self) -> usize {
        self.neurons
    }

    /// Bytes held.
    pub fn size(&self) -> usize {
        self.data.len() * 8
    }

    /// The weight of plane `j`: `2^j`, negative for the sign plane of signed weights.
    fn plane_weight(&self, j: usize) -> i32 {
        if self.signed && j == self.planes - 1 {
            -(1 << j)
        } else {
            1 << j
        }
    }
}

/// The bit planes `[plane][word]` of events of values below `2^planes`, `words = ceil(len / 64)`
/// words per plane, for the input of shape `shape`.
pub fn input_planes(events: &[Event], shape: &Shape3, planes: usize, out: &mut Vec<u64>) {
    let words = shape.len().div_ceil(WORD);
    out.clear();
    out.resize(planes * words, 0);
    for e in events {
        let k = e.index(shape);
        let v = e.value as u32;
        for i in 0..planes {
            if v >> i & 1 == 1 {
                out[i * words + k / WORD] |= 1 << (k % WORD);
            }
        }
    }
}

/// [`input_planes`] of a dense input (`values`, below `2^planes`, in the layer's `(H, W, C)`
/// order): the same planes, built 64 values at a time without scattering events.
pub fn input_planes_dense(values: &[u8], planes: usize, out: &mut Vec<u64>) {
    #[cfg(target_arch = "x86_64")]
    if KernelSet::detected().has_avx2() {
        /// Each plane's bits of 32 values by one byte shift and `vpmovmskb`.
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(values: &[u8], planes: usize, out: &mut Vec<u64>) {
            use std::arch::x86_64::*;
            let words = values.len().div_ceil(WORD);
            out.clear();
            out.resize(planes * words, 0);
            let whole = values.len() / WORD;
            for w in 0..whole {
                // SAFETY: bytes `64 w..64 w + 64` are inside `values`.
                let (lo, hi) = unsafe {
                    let p = values.as_ptr().add(w * WORD);
                    (_mm256_loadu_si256(p.cast()), _mm256_loadu_si256(p.add(32).cast()))
                };
                for i in 0..planes.min(8) {
                    // Shifting 16-bit lanes left by `7 - i` brings bit `i` of every byte to its
                    // top bit (bits from the lane's low byte land below it).
                    let count = _mm_cvtsi32_si128(7 - i as i32);
                    let bits_lo = _mm256_movemask_epi8(_mm256_sll_epi16(lo, count)) as u32;
                    let bits_hi = _mm256_movemask_epi8(_mm256_sll_epi16(hi, count)) as u32;
                    out[i * words + w] = u64::from(bits_lo) | u64::from(bits_hi) << 32;
                }
            }
            if whole < words {
                let chunk = &values[whole * WORD..];
                for i in 0..planes.min(8) {
                    let mut word = 0u64;
                    for (k, &v) in chunk.iter().enumerate() {
                        word |= u64::from(v >> i & 1) << k;
                    }
                    out[i * words + whole] = word;
                }
            }
        }
        // SAFETY: the detected set has AVX2 only when the processor supports it.
        unsafe { avx2(values, planes, out) };
        return;
    }
    plain_input_planes_dense(values, planes, out)
}

/// The portable build and plain twin of [`input_planes_dense`].
pub fn plain_input_planes_dense(values: &[u8], planes: usize, out: &mut Vec<u64>) {
    let words = values.len().div_ceil(WORD);
    out.clear();
    out.resize(planes * words, 0);
    for (w, chunk) in values.chunks(WORD).enumerate() {
        for i in 0..planes {
            let mut word = 0u64;
            for (k, &v) in chunk.iter().enumerate() {
                word |= u64::from(v >> i & 1) << k;
            }
            out[i * words + w] = word;
        }
    }
}

impl KernelSet {
    /// `out[n] = sum_k x_k w_kn` for the input planes `input` (`[plane][word]`, as many words per
    /// plane as the weights) and packed `weights`; writes every neuron. Panics on mismatched
    /// sizes.
    pub fn fully_connected_bits(self, input: &[u64], weights: &BitWeights, out: &mut [i32]) {
        let words = weights.words;
        assert!(words > 0 || input.is_empty(), "input planes");
        let in_planes = input.len().checked_div(words).unwrap_or(0);
        assert_eq!(in_planes * words, input.len(), "input planes of {words} words");
        assert!(out.len() >= weights.neurons, "output buffer too short");
        #[cfg(target_arch = "x86_64")]
        if self.has_avx512() {
            // SAFETY: the set has AVX-512 F/VPOPCNTDQ only if the processor supports them; the
            // sizes were checked above.
            unsafe { avx512::fully_connected(input, weights, out) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if has_popcnt() {
            #[target_feature(enable = "popcnt")]
            unsafe fn popcnt(input: &[u64], weights: &BitWeights, out: &mut [i32]) {
                neurons_loop(input, weights, out, blocked_and_popcount)
            }
            // SAFETY: the processor has POPCNT.
            unsafe { popcnt(input, weights, out) };
            return;
        }
        neurons_loop(input, weights, out, blocked_and_popcount)
    }

    /// [`KernelSet::fully_connected_bits`] of the neurons `neurons` only, into `out[n]` for each
    /// `n` of them. Panics on mismatched sizes or a neuron out of range.
    pub fn fully_connected_bits_of(self, input: &[u64], weights: &BitWeights, neurons: &[usize], out: &mut [i32]) {
        let words = weights.words;
        let in_planes = input.len().checked_div(words).unwrap_or(0);
        assert_eq!(in_planes * words, input.len(), "input planes of {words} words");
        assert!(neurons.iter().all(|&n| n < weights.neurons && n < out.len()), "neuron out of range");
        #[cfg(target_arch = "x86_64")]
        if self.has_avx512() {
            // SAFETY: the set has AVX-512 F/VPOPCNTDQ only if the processor supports them; the
            // sizes were checked above.
            unsafe { avx512::fully_connected_of(input, weights, neurons, out) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if has_popcnt() {
            #[target_feature(enable = "popcnt")]
            unsafe fn popcnt(input: &[u64], weights: &BitWeights, neurons: &[usize], out: &mut [i32]) {
                for &n in neurons {
                    out[n] = neuron_sum(input, weights, n, blocked_and_popcount);
                }
            }
            // SAFETY: the processor has POPCNT.
            unsafe { popcnt(input, weights, neurons, out) };
            return;
        }
        for &n in neurons {
            out[n] = neuron_sum(input, weights, n, blocked_and_popcount);
        }
    }

    /// `sum_k popcount(a[k] AND b[k])` over equally long slices.
    #[inline]
    pub fn and_popcount(self, a: &[u64], b: &[u64]) -> u32 {
        assert_eq!(a.len(), b.len(), "and_popcount of unequal lengths");
        #[cfg(target_arch = "x86_64")]
        if self.has_avx512() {
            // SAFETY: the set has AVX-512 F/VPOPCNTDQ only if the processor supports them; the
            // lengths are equal.
            return unsafe { avx512::and_popcount(a, b) };
        }
        #[cfg(target_arch = "x86_64")]
        if has_popcnt() {
            #[target_feature(enable = "popcnt")]
            unsafe fn popcnt(a: &[u64], b: &[u64]) -> u32 {
                blocked_and_popcount(a, b)
            }
            // SAFETY: the processor has POPCNT.
            return unsafe { popcnt(a, b) };
        }
        blocked_and_popcount(a, b)
    }
}

/// `sum_k x_k w_kn` of neuron `n`, for every build of [`KernelSet::fully_connected_bits`] and
/// [`KernelSet::fully_connected_bits_of`], inlined into each with its `and_popcount`.
#[inline(always)]
fn neuron_sum(input: &[u64], weights: &BitWeights, n: usize, and_popcount: impl Fn(&[u64], &[u64]) -> u32) -> i32 {
    let words = weights.words;
    if input.len() == words && weights.planes == 1 && !weights.signed {
        // One input plane, unsigned 1-bit weights (a learning layer's): the count itself.
        return and_popcount(input, &weights.data[n * words..][..words]) as i32;
    }
    let w = &weights.data[n * weights.planes * words..][..weights.planes * words];
    let mut sum = 0i32;
    for (i, x) in input.chunks_exact(words.max(1)).enumerate() {
        for (j, wj) in w.chunks_exact(words.max(1)).enumerate() {
            sum += (weights.plane_weight(j) << i) * and_popcount(x, wj) as i32;
        }
    }
    sum
}

/// The neuron loop of [`KernelSet::fully_connected_bits`], inlined into each build with its
/// `and_popcount`.
#[inline(always)]
fn neurons_loop(input: &[u64], weights: &BitWeights, out: &mut [i32], and_popcount: impl Fn(&[u64], &[u64]) -> u32) {
    for (n, o) in out[..weights.neurons].iter_mut().enumerate() {
        *o = neuron_sum(input, weights, n, &and_popcount);
    }
}

/// Whether the processor has the POPCNT instruction (most x86-64 processors since 2008; the
/// portable builds count bits without it), detected once.
#[cfg(target_arch = "x86_64")]
fn has_popcnt() -> bool {
    static POPCNT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *POPCNT.get_or_init(|| std::arch::is_x86_feature_detected!("popcnt"))
}

/// The plain twin of [`KernelSet::and_popcount`].
#[inline(always)]
pub fn plain_and_popcount(a: &[u64], b: &[u64]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x & y).count_ones()).sum()
}

/// [`plain_and_popcount`] four words at a time, with one count each (independent additions, and
/// a loop unrolled whatever the inlining around it): the portable and POPCNT builds of
/// [`KernelSet::and_popcount`].
#[inline(always)]
fn blocked_and_popcount(a: &[u64], b: &[u64]) -> u32 {
    let ((blocks_a, tail_a), (blocks_b, tail_b)) = (a.as_chunks::<4>(), b.as_chunks::<4>());
    let mut counts = [0u32; 4];
    for (x, y) in blocks_a.iter().zip(blocks_b) {
        for l in 0..4 {
            counts[l] += (x[l] & y[l]).count_ones();
        }
    }
    let tail: u32 = tail_a.iter().zip(tail_b).map(|(x, y)| (x & y).count_ones()).sum();
    counts.iter().sum::<u32>() + tail
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::BitWeights;

    /// [`super::KernelSet::fully_connected_bits`] with [`and_popcount`] inlined.
    ///
    /// # Safety
    /// The processor supports AVX-512 F/VPOPCNTDQ; the sizes are as the caller checked.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub unsafe fn fully_connected(input: &[u64], weights: &BitWeights, out: &mut [i32]) {
        let words = weights.words;
        let neurons = weights.neurons;
        let blocks = neurons / 4 * 4;
        if words == 0 || blocks == 0 {
            // SAFETY: forwarded from the caller; the loop passes equally long slices.
            return super::neurons_loop(input, weights, out, |a, b| unsafe { and_popcount(a, b) });
        }
        // SAFETY: forwarded from the caller; the blocks cover neurons `0..blocks`.
        unsafe { four_neurons(input, weights, &mut out[..blocks]) };
        for (n, o) in out.iter_mut().enumerate().take(neurons).skip(blocks) {
            // SAFETY: forwarded from the caller; the loop passes equally long slices.
            *o = super::neuron_sum(input, weights, n, |a, b| unsafe { and_popcount(a, b) });
        }
    }

    /// [`super::KernelSet::fully_connected_bits_of`] with [`and_popcount`] inlined.
    ///
    /// # Safety
    /// The processor supports AVX-512 F/VPOPCNTDQ; the sizes are as the caller checked.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub unsafe fn fully_connected_of(input: &[u64], weights: &BitWeights, neurons: &[usize], out: &mut [i32]) {
        for &n in neurons {
            // SAFETY: forwarded from the caller; the loop passes equally long slices.
            out[n] = super::neuron_sum(input, weights, n, |a, b| unsafe { and_popcount(a, b) });
        }
    }

    /// Neurons four at a time (`out.len()` a multiple of four): each input word loaded once for
    /// the four, four independent accumulators, no per-neuron loop set-up.
    ///
    /// # Safety
    /// The processor supports AVX-512 F/VPOPCNTDQ; `input` holds whole planes of
    /// `weights.words` words; `out.len() <= weights.neurons`.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    unsafe fn four_neurons(input: &[u64], weights: &BitWeights, out: &mut [i32]) {
        let (words, planes) = (weights.words, weights.planes);
        let in_planes = input.len() / words;
        let full = words / 8;
        let tail: __mmask8 = ((1u16 << (words % 8)) - 1) as u8;
        let stride = planes * words;
        assert!(weights.data.len() >= out.len() * stride && input.len() == in_planes * words);
        let pw = weights.data.as_ptr();
        let px = input.as_ptr();
        for (block, o) in out.chunks_exact_mut(4).enumerate() {
            let n = block * 4;
            let mut sums = [0i32; 4];
            for i in 0..in_planes {
                // SAFETY: plane `i` is inside `input`.
                let x = unsafe { px.add(i * words) };
                for j in 0..planes {
                    // SAFETY: neurons `n..n + 4` are inside the weights (checked above).
                    let w: [*const u64; 4] = std::array::from_fn(|r| unsafe { pw.add((n + r) * stride + j * words) });
                    let mut acc = [_mm512_setzero_si512(); 4];
                    for k in 0..full {
                        // SAFETY: words `8k..8k + 8` are inside every plane.
                        unsafe {
                            let xv = _mm512_loadu_si512(x.add(8 * k).cast());
                            for r in 0..4 {
                                let wv = _mm512_loadu_si512(w[r].add(8 * k).cast());
                                acc[r] = _mm512_add_epi64(acc[r], _mm512_popcnt_epi64(_mm512_and_si512(xv, wv)));
                            }
                        }
                    }
                    if tail != 0 {
                        // SAFETY: the masked loads read words `8 * full..words` of each plane.
                        unsafe {
                            let xv = _mm512_maskz_loadu_epi64(tail, x.add(8 * full).cast());
                            for r in 0..4 {
                                let wv = _mm512_maskz_loadu_epi64(tail, w[r].add(8 * full).cast());
                                acc[r] = _mm512_add_epi64(acc[r], _mm512_popcnt_epi64(_mm512_and_si512(xv, wv)));
                            }
                        }
                    }
                    let scale = weights.plane_weight(j) << i;
                    for r in 0..4 {
                        sums[r] += scale * _mm512_reduce_add_epi64(acc[r]) as i32;
                    }
                }
            }
            o.copy_from_slice(&sums);
        }
    }

    /// Eight words per `vpopcntq`, the tail through a masked load.
    ///
    /// # Safety
    /// The processor supports AVX-512 F/VPOPCNTDQ; `a.len() == b.len()`.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    #[inline]
    pub unsafe fn and_popcount(a: &[u64], b: &[u64]) -> u32 {
        let len = a.len();
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = _mm512_setzero_si512();
        let mut k = 0;
        while k + 8 <= len {
            // SAFETY: words `k..k + 8` are inside both slices.
            let (x, y) = unsafe { (_mm512_loadu_si512(pa.add(k).cast()), _mm512_loadu_si512(pb.add(k).cast())) };
            acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_and_si512(x, y)));
            k += 8;
        }
        if k < len {
            let mask: __mmask8 = (1u8 << (len - k)) - 1;
            // SAFETY: the masked load reads words `k..len` only.
            let (x, y) = unsafe {
                (_mm512_maskz_loadu_epi64(mask, pa.add(k).cast()), _mm512_maskz_loadu_epi64(mask, pb.add(k).cast()))
            };
            acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_and_si512(x, y)));
        }
        _mm512_reduce_add_epi64(acc) as u32
    }
}
