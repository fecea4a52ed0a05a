//! What follows accumulation: pooling, winner-take-all and thresholding into events. Their
//! plain twins are [`crate::reference`]'s `pool` and the threshold formula of
//! [`crate::activation`].

use crate::activation::Thresholds;
use crate::events::Event;
use crate::params::PoolingType;
use crate::shape::{PoolGeometry, Shape3};

/// Pools `input` (`(H, W, N)` potentials) into `out` (`(PH, PW, N)`): each window covers the map
/// cells [`PoolAxis::cells`](crate::shape::PoolAxis::cells) gives (Same-mode padding is skipped, so
/// an average divides by the number of map cells). `sums` is scratch space.
pub fn pool(input: &[i32], shape: &Shape3, g: &PoolGeometry, out: &mut [i32], sums: &mut Vec<i64>) {
    #[cfg(target_arch = "x86_64")]
    if super::KernelSet::detected().has_avx2() {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(input: &[i32], shape: &Shape3, g: &PoolGeometry, out: &mut [i32], sums: &mut Vec<i64>) {
            pool_body(input, shape, g, out, sums)
        }
        // SAFETY: the detected set has AVX2 only when the processor supports it.
        unsafe { avx2(input, shape, g, out, sums) };
        return;
    }
    pool_body(input, shape, g, out, sums)
}

/// The body of [`pool`], built for the instruction set of its caller (`vpmaxsd` needs SSE4.1).
#[inline(always)]
fn pool_body(input: &[i32], shape: &Shape3, g: &PoolGeometry, out: &mut [i32], sums: &mut Vec<i64>) {
    if g.kind == PoolingType::Max {
        max_pool_rows(input, shape, g, out);
        return;
    }
    let n = shape.channels;
    for py in 0..g.y.output {
        let (y0, y1) = g.y.cells(py);
        for px in 0..g.x.output {
            let (x0, x1) = g.x.cells(px);
            let o = (py * g.x.output + px) * n;
            let dst = &mut out[o..o + n];
            match g.kind {
                PoolingType::Average => {
                    sums.clear();
                    sums.resize(n, 0);
                    for y in y0..y1 {
                        let row = &input[shape.index(y, x0, 0)..shape.index(y, x1 - 1, n)];
                        for values in row.chunks_exact(n) {
                            for (acc, &v) in sums.iter_mut().zip(values) {
                                *acc += i64::from(v);
                            }
                        }
                    }
                    let count = ((y1 - y0) * (x1 - x0)) as i64;
                    for (d, &sum) in dst.iter_mut().zip(sums.iter()) {
                        *d = sum.div_euclid(count) as i32;
                    }
                }
                PoolingType::Max => unreachable!("max pooling runs in max_pool_rows"),
                PoolingType::NoPooling => unreachable!("no geometry is built without pooling"),
            }
        }
    }
}

/// Max pooling in two passes that run over long contiguous spans: the maximum of each window's
/// rows over the whole map row, then of each window's columns in that row (an empty window gives
/// `i32::MIN`). Its plain twin is [`crate::reference`]'s `pool`.
#[inline(always)]
fn max_pool_rows(input: &[i32], shape: &Shape3, g: &PoolGeometry, out: &mut [i32]) {
    let n = shape.channels;
    let span = shape.width * n;
    let mut rows = vec![i32::MIN; span];
    for py in 0..g.y.output {
        let (y0, y1) = g.y.cells(py);
        rows.fill(i32::MIN);
        for y in y0..y1 {
            for (r, &v) in rows.iter_mut().zip(&input[y * span..(y + 1) * span]) {
                *r = (*r).max(v);
            }
        }
        for px in 0..g.x.output {
            let (x0, x1) = g.x.cells(px);
            let dst = &mut out[(py * g.x.output + px) * n..][..n];
            dst.fill(i32::MIN);
            for x in x0..x1 {
                for (d, &v) in dst.iter_mut().zip(&rows[x * n..(x + 1) * n]) {
                    *d = (*d).max(v);
                }
            }
        }
    }
}

/// Winner-take-all: within each group of consecutive neurons, at each position, only the largest
/// potential (the lowest neuron on ties) is kept; the others become `i32::MIN` and cannot fire.
pub fn winner_take_all(values: &mut [i32], neurons: usize, groups: &[std::ops::Range<usize>]) {
    for pixel in values.chunks_exact_mut(neurons) {
        for g in groups.iter().filter(|g| g.len() > 1) {
            let mut best = g.start;
            for n in g.clone() {
                if pixel[n] > pixel[best] {
                    best = n;
                }
            }
            for n in g.clone() {
                if n != best {
                    pixel[n] = i32::MIN;
                }
            }
        }
    }
}

/// Thresholds `potentials` (`(H, W, N)`) and appends the resulting spikes to `out`, in canonical
/// order. `levels` is scratch space; see [`activate_dense`].
pub fn activate(potentials: &[i32], shape: &Shape3, thresholds: &Thresholds, out: &mut Vec<Event>) {
    let mut levels = Vec::new();
    activate_dense(potentials, shape, thresholds, &mut levels, out);
}

/// Thresholds `potentials` (`(H, W, N)`) into `levels`, the dense activations (same length,
/// resized), and appends the spikes (the non-zero levels) to `out`, in canonical order. The
/// thresholds are one vectorized pass ([`Thresholds::levels`]); the events come from the dense
/// levels eight at a time ([`events_from_levels`]).
pub fn activate_dense(
    potentials: &[i32],
    shape: &Shape3,
    thresholds: &Thresholds,
    levels: &mut Vec<u8>,
    out: &mut Vec<Event>,
) {
    levels.clear();
    levels.resize(potentials.len(), 0);
    thresholds.levels(potentials, levels);
    events_from_levels(levels, shape, out);
}

/// The number of non-zero values of `values` (vectorized).
pub fn count_nonzero(values: &[u8]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if super::KernelSet::detected().has_avx2() {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(values: &[u8]) -> usize {
            count_nonzero_body(values)
        }
        // SAFETY: the detected set has AVX2 only when the processor supports it.
        return unsafe { avx2(values) };
    }
    count_nonzero_body(values)
}

#[inline(always)]
fn count_nonzero_body(values: &[u8]) -> usize {
    values.chunks(255 * 64).map(|chunk| chunk.iter().map(|&v| u32::from(v != 0)).sum::<u32>() as usize).sum()
}

/// Appends the non-zero values of the dense `levels` (`(H, W, N)`) to `out` as events, in
/// canonical order: eight values are tested at once and only set bytes are visited. Same result
/// as [`crate::events::events_from_dense`].
pub fn events_from_levels(levels: &[u8], shape: &Shape3, out: &mut Vec<Event>) {
    let n = shape.channels;
    if n == 0 || shape.width == 0 {
        return;
    }
    debug_assert_eq!(levels.len(), shape.len());
    if n < 8 && u32::try_from(shape.width * n).is_ok() {
        return events_from_few_channels(levels, shape, out);
    }
    let (mut y, mut x) = (0u32, 0u32);
    let width = shape.width as u32;
    for pixel in levels.chunks_exact(n) {
        let (words, tail) = pixel.as_chunks::<8>();
        for (w, word) in words.iter().enumerate() {
            let mut bits = u64::from_le_bytes(*word);
            while bits != 0 {
                let b = (bits.trailing_zeros() / 8) as usize;
                out.push(Event { y, x, c: (w * 8 + b) as u32, value: i32::from(word[b]) });
                bits &= !(0xFFu64 << (b * 8));
            }
        }
        let base = words.len() * 8;
        for (k, &v) in tail.iter().enumerate() {
            if v != 0 {
                out.push(Event { y, x, c: (base + k) as u32, value: i32::from(v) });
            }
        }
        x += 1;
        if x == width {
            x = 0;
            y += 1;
        }
    }
}

/// [`events_from_levels`] for fewer than eight channels (an image, or a map of few neurons):
/// eight bytes of the flat buffer at a time, the row of a set byte found by stepping rows (at most
/// `H` steps in all) and its column and channel by one multiply-shift division.
fn events_from_few_channels(levels: &[u8], shape: &Shape3, out: &mut Vec<Event>) {
    let n = shape.channels as u32;
    let row_len = shape.width * shape.channels;
    // Lemire's division by a constant: `floor(a / n) = (a * ceil(2^64 / n)) >> 64` for every
    // 32-bit `a` and `1 < n < 2^32`.
    let reciprocal = (u64::MAX / u64::from(n.max(2))).wrapping_add(1);
    let (mut y, mut row_end) = (0u32, row_len);
    let push = |k: usize, value: u8| {
        while k >= row_end {
            row_end += row_len;
            y += 1;
        }
        let offset = (k + row_len - row_end) as u32;
        let x = if n == 1 { offset } else { ((u128::from(reciprocal) * u128::from(offset)) >> 64) as u32 };
        out.push(Event { y, x, c: offset - x * n, value: i32::from(value) });
    };
    for_each_nonzero_byte(levels, push);
}

/// Calls `visit(k, bytes[k])` for every nonzero byte of `bytes`, in increasing `k`, testing eight
/// bytes at a time (fast where nonzero bytes are few).
#[inline(always)]
pub(crate) fn for_each_nonzero_byte(bytes: &[u8], mut visit: impl FnMut(usize, u8)) {
    let (words, tail) = bytes.as_chunks::<8>();
    for (w, word) in words.iter().enumerate() {
        let mut bits = u64::from_le_bytes(*word);
        while bits != 0 {
            let b = (bits.trailing_zeros() / 8) as usize;
            visit(w * 8 + b, word[b]);
            bits &= !(0xFFu64 << (b * 8));
        }
    }
    let base = words.len() * 8;
    for (k, &v) in tail.iter().enumerate() {
        if v != 0 {
            visit(base + k, v);
        }
    }
}

/// Plain twin of [`activate`]: thresholds `potentials` neuron by neuron with
/// [`Thresholds::response`] and appends the spikes to `out`, in canonical order.
pub fn plain_activate(potentials: &[i32], shape: &Shape3, thresholds: &Thresholds, out: &mut Vec<Event>) {
    let n = shape.channels;
    for (pixel, values) in potentials.chunks_exact(n).enumerate() {
        let (y, x) = ((pixel / shape.width) as u32, (pixel % shape.width) as u32);
        // Branch-free compaction: every candidate event is written to the spare capacity and the
        // length advances only past those that fire.
        out.reserve(n);
        let start = out.len();
        let spare = &mut out.spare_capacity_mut()[..n];
        let mut fired = 0;
        match thresholds.binary_thresholds() {
            Some(fire) => {
                for (c, (&p, &t)) in values.iter().zip(fire).enumerate() {
                    spare[fired].write(Event { y, x, c: c as u32, value: 1 });
                    fired += usize::from(p > t);
                }
            }
            None => {
                for (c, &p) in values.iter().enumerate() {
                    let level = thresholds.response(c, p);
                    spare[fired].write(Event { y, x, c: c as u32, value: i32::from(level) });
                    fired += usize::from(level != 0);
                }
            }
        }
        // SAFETY: the `fired` slots after `start` were initialized by `write` above, and
        // `reserve(n)` made room for at least `n >= fired` of them.
        unsafe { out.set_len(start + fired) };
    }
}
