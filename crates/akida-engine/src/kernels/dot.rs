//! Dot-product kernels: Convolutional, InputConvolutional and FullyConnected potentials computed
//! densely, every output as dot products of unsigned 8-bit inputs with signed 8-bit weights, four
//! products at a time (one `vpdpbusd` lane on AVX-512 VNNI). They do the same work whatever the
//! input density, so the plan picks them for dense inputs ([`crate::plan::Method`]).
//!
//! The input is first written into a dense *map* ([`image_map`], [`events_map`], [`vector_map`]):
//! the cells the windows read, padding included, `(MH, MW, C)` `u8` with 4 slack bytes at the
//! end. A window row of a convolution is then `kw * C` consecutive bytes, which is why the weights
//! are packed by kernel row ([`DotWeights`]): element `e = tx * C + c` of kernel row `ty`, in
//! groups of four, neurons padded to [`LANES`]. A group that runs past the window row reads the
//! next cells (or the slack) against zero weights, which adds nothing.
//!
//! Builds ([`KernelSet::dot_product`]): AVX-512 VNNI (`vpdpbusd`), AVX2 (`vpmaddubsw` +
//! `vpmaddwd`; with the inputs split into nibbles when an i16 pair sum could saturate,
//! [`DotWeights::pairs_fit`]) and portable. Each writes every output; the plain twins of the whole path
//! (map + kernel) are the event and image kernels' twins (`events::plain_convolve`,
//! `dense::plain_input_convolution`, `events::plain_fully_connected`), which the property tests
//! compare it with.

use super::KernelSet;
use crate::events::Event;
use crate::shape::{ConvGeometry, Shape3};

/// Neurons per block: one 512-bit register of `i32`.
pub const LANES: usize = 16;

/// Weights packed for [`KernelSet::dot_product`]: `rows` kernel rows (1 for a fully connected
/// layer) of `span` inputs each, in `groups = ceil(span / 4)` groups of four, as
/// `[row][group][neuron (padded to LANES)][4]`; padding elements and neurons are zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotWeights {
    data: Vec<i8>,
    rows: usize,
    span: usize,
    groups: usize,
    neurons: usize,
    padded: usize,
    /// The largest `|w|`, which bounds the pair sums of the AVX2 build.
    max_abs: i32,
}

impl DotWeights {
    fn zeroed(rows: usize, span: usize, neurons: usize) -> Self {
        let groups = span.div_ceil(4);
        let padded = neurons.div_ceil(LANES) * LANES;
        DotWeights { data: vec![0; rows * groups * padded * 4], rows, span, groups, neurons, padded, max_abs: 0 }
    }

    #[inline(always)]
    fn set(&mut self, row: usize, element: usize, neuron: usize, w: i8) {
        let (k, j) = (element / 4, element % 4);
        self.data[((row * self.groups + k) * self.padded + neuron) * 4 + j] = w;
        self.max_abs = self.max_abs.max(i32::from(w).abs());
    }

    /// Convolution weights `(kh, kw, C, N)`. `flip`: a true convolution (Convolutional), whose
    /// window tap `(ty, tx)` meets weight `(kh - 1 - ty, kw - 1 - tx)`; otherwise a
    /// cross-correlation (InputConvolutional).
    pub fn convolution(weights: &[i8], kh: usize, kw: usize, channels: usize, neurons: usize, flip: bool) -> Self {
        assert_eq!(weights.len(), kh * kw * channels * neurons, "weights (kh, kw, C, N)");
        let mut packed = DotWeights::zeroed(kh, kw * channels, neurons);
        for ty in 0..kh {
            for tx in 0..kw {
                let (sy, sx) = if flip { (kh - 1 - ty, kw - 1 - tx) } else { (ty, tx) };
                for c in 0..channels {
                    let src = ((sy * kw + sx) * channels + c) * neurons;
                    for n in 0..neurons {
                        packed.set(ty, tx * channels + c, n, weights[src + n]);
                    }
                }
            }
        }
        packed
    }

    /// Fully connected weights `(inputs, N)`.
    pub fn fully_connected(weights: &[i8], inputs: usize, neurons: usize) -> Self {
        assert_eq!(weights.len(), inputs * neurons, "weights (inputs, N)");
        let mut packed = DotWeights::zeroed(1, inputs, neurons);
        for (e, row) in weights.chunks_exact(neurons.max(1)).enumerate() {
            for (n, &w) in row.iter().enumerate() {
                packed.set(0, e, n, w);
            }
        }
        packed
    }

    pub fn neurons(&self) -> usize {
        self.neurons
    }

    /// Whether the AVX2 build is exact for inputs up to `input_max`: its `vpmaddubsw` pair sums
    /// `x0 * w0 + x1 * w1` stay in the i16 range.
    pub fn pairs_fit(&self, input_max: i32) -> bool {
        2 * i64::from(input_max) * i64::from(self.max_abs) <= i64::from(i16::MAX)
    }

    /// Bytes held.
    pub fn size(&self) -> usize {
        self.data.len()
    }
}

/// Where the windows of a dot-product call read their map: `outputs` `(OH, OW)`, and the byte
/// offsets between output rows, output columns and kernel rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    pub outputs: (usize, usize),
    pub y_step: usize,
    pub x_step: usize,
    pub row_step: usize,
}

impl Windows {
    /// The windows of a convolution over its map ([`map_size`]).
    pub fn convolution(g: &ConvGeometry, channels: usize) -> Self {
        let (_, mw) = map_size(g);
        Windows {
            outputs: (g.y.output, g.x.output),
            y_step: g.y.stride * mw * channels,
            x_step: g.x.stride * channels,
            row_step: mw * channels,
        }
    }

    /// The one window of a fully connected layer.
    pub fn fully_connected() -> Self {
        Windows { outputs: (1, 1), y_step: 0, x_step: 0, row_step: 0 }
    }
}

/// `(MH, MW)`: the map cells the windows of `g` read, padding included.
pub fn map_size(g: &ConvGeometry) -> (usize, usize) {
    ((g.y.output - 1) * g.y.stride + g.y.kernel, (g.x.output - 1) * g.x.stride + g.x.kernel)
}

/// Bytes past the map that a group may read.
const SLACK: usize = 4;

/// The map of a `u8` image for the windows of `g`, padded cells holding `padding`.
pub fn image_map(image: &[u8], shape: &Shape3, g: &ConvGeometry, padding: u8, map: &mut Vec<u8>) {
    let (mh, mw) = map_size(g);
    let c = shape.channels;
    map.clear();
    map.resize(mh * mw * c, padding);
    map.resize(mh * mw * c + SLACK, 0);
    let (py, px) = (g.y.pad_before, g.x.pad_before);
    let columns = shape.width.min(mw.saturating_sub(px));
    for my in py..mh.min(py + shape.height) {
        let y = my - py;
        let src = &image[y * shape.width * c..][..columns * c];
        map[(my * mw + px) * c..][..columns * c].copy_from_slice(src);
    }
}

/// The map of events (values `<= 255`) for the windows of `g`, padded cells holding zero.
pub fn events_map(events: &[Event], shape: &Shape3, g: &ConvGeometry, map: &mut Vec<u8>) {
    let (mh, mw) = map_size(g);
    let c = shape.channels;
    map.clear();
    map.resize(mh * mw * c + SLACK, 0);
    let (py, px) = (g.y.pad_before, g.x.pad_before);
    for e in events {
        let (my, mx) = (e.y as usize + py, e.x as usize + px);
        if my < mh && mx < mw {
            map[(my * mw + mx) * c + e.c as usize] = e.value as u8;
        }
    }
}

/// The input vector of a fully connected layer from events (values `<= 255`).
pub fn vector_map(events: &[Event], shape: &Shape3, map: &mut Vec<u8>) {
    map.clear();
    map.resize(shape.len() + SLACK, 0);
    for e in events {
        map[e.index(shape)] = e.value as u8;
    }
}

/// The input vector of a fully connected layer from its dense input `values` (the same vector
/// as [`vector_map`] of their events).
pub fn dense_vector_map(values: &[u8], map: &mut Vec<u8>) {
    map.clear();
    map.extend_from_slice(values);
    map.resize(values.len() + SLACK, 0);
}

/// The synaptic operations the event-driven kernels count for the input in `map` (non-zero cells,
/// padding included, times the outputs each reaches, times `neurons`), so that statistics do not
/// depend on the kernel that ran.
pub fn convolution_operations(map: &[u8], g: &ConvGeometry, channels: usize, neurons: usize) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if KernelSet::detected().has_avx2() {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(map: &[u8], g: &ConvGeometry, channels: usize, neurons: usize) -> u64 {
            convolution_operations_body(map, g, channels, neurons)
        }
        // SAFETY: the detected set has AVX2 only when the processor supports it.
        return unsafe { avx2(map, g, channels, neurons) };
    }
    convolution_operations_body(map, g, channels, neurons)
}

#[inline(always)]
fn convolution_operations_body(map: &[u8], g: &ConvGeometry, channels: usize, neurons: usize) -> u64 {
    let (mh, mw) = map_size(g);
    let cover = |a: &crate::shape::AxisGeometry, m: usize| {
        let hi = (m / a.stride + 1).min(a.output);
        let lo = if m + 1 > a.kernel { (m + 1 - a.kernel).div_ceil(a.stride) } else { 0 };
        hi.saturating_sub(lo) as u32
    };
    // Each cell's horizontal cover, repeated per channel, so that a map row is one vectorizable
    // sum of `(v != 0) * cover` in u32 (flushed to u64 every 256 cells: at most 256 * 2^20).
    let cover_x: Vec<u32> = (0..mw).flat_map(|m| std::iter::repeat_n(cover(&g.x, m), channels)).collect();
    if cover_x.iter().any(|&c| c > 1 << 20) {
        return plain_convolution_operations(map, g, channels, neurons);
    }
    let mut ops = 0u64;
    for my in 0..mh {
        let cy = u64::from(cover(&g.y, my));
        if cy == 0 {
            continue;
        }
        let row = &map[my * mw * channels..(my + 1) * mw * channels];
        let mut in_row = 0u64;
        for (cells, covers) in row.chunks(256).zip(cover_x.chunks(256)) {
            let sum: u32 = cells.iter().zip(covers).map(|(&v, &c)| u32::from(v != 0) * c).sum();
            in_row += u64::from(sum);
        }
        ops += cy * in_row;
    }
    ops * neurons as u64
}

/// Plain twin of [`convolution_operations`].
pub fn plain_convolution_operations(map: &[u8], g: &ConvGeometry, channels: usize, neurons: usize) -> u64 {
    let (mh, mw) = map_size(g);
    // The number of windows covering map cell `m` along one axis.
    let cover = |a: &crate::shape::AxisGeometry, m: usize| {
        let hi = (m / a.stride + 1).min(a.output);
        let lo = if m + 1 > a.kernel { (m + 1 - a.kernel).div_ceil(a.stride) } else { 0 };
        hi.saturating_sub(lo) as u64
    };
    let cover_x: Vec<u64> = (0..mw).map(|m| cover(&g.x, m)).collect();
    let mut ops = 0u64;
    for my in 0..mh {
        let cy = cover(&g.y, my);
        if cy == 0 {
            continue;
        }
        let row = &map[my * mw * channels..(my + 1) * mw * channels];
        let mut in_row = 0u64;
        for (pixel, &cx) in row.chunks_exact(channels).zip(&cover_x) {
            in_row += cx * pixel.iter().filter(|&&v| v != 0).count() as u64;
        }
        ops += cy * in_row;
    }
    ops * neurons as u64
}

impl KernelSet {
    /// Writes `out[(oy * OW + ox) * N + n]`, for every output of `windows`, as the dot product of
    /// the window over `map` (values at most `input_max`) with the packed weights of neuron `n`.
    /// Panics when `map` is too short for the windows or `out` for the outputs.
    pub fn dot_product(self, map: &[u8], input_max: u8, windows: &Windows, weights: &DotWeights, out: &mut [i32]) {
        let (oh, ow) = windows.outputs;
        assert!(out.len() >= oh * ow * weights.neurons, "output buffer too short");
        if oh * ow == 0 || weights.neurons == 0 {
            return;
        }
        let last_read = (oh - 1) * windows.y_step
            + (ow - 1) * windows.x_step
            + (weights.rows - 1) * windows.row_step
            + weights.groups * 4;
        assert!(map.len() >= last_read, "map too short for its windows");
        #[cfg(target_arch = "x86_64")]
        if self.has_avx512() {
            // SAFETY: the set has AVX-512 F/BW/VNNI only if the processor supports them, and the
            // reads and writes were bounded above.
            unsafe { avx512::dot_product(map, windows, weights, out) };
            return;
        }
        // `vpmaddubsw` saturates its i16 pair sums: exact only when `2 * max x * max |w|` fits;
        // otherwise the inputs go in as two nibbles, whose pair sums always fit.
        #[cfg(target_arch = "x86_64")]
        if self.has_avx2() {
            // SAFETY: a set with AVX2 is only built when the processor supports it; reads and
            // writes were bounded above; without the nibble split, the pair sums cannot
            // saturate.
            unsafe {
                if weights.pairs_fit(i32::from(input_max)) {
                    avx2::dot_product::<false>(map, windows, weights, out)
                } else {
                    avx2::dot_product::<true>(map, windows, weights, out)
                }
            };
            return;
        }
        dot_product_lanes(map, windows, weights, out)
    }
}

impl KernelSet {
    /// The depthwise step of a SeparableConvolutional layer over the map of its input ([`events_map`]):
    /// `out[(oy * OW + ox) * C + c] = sum_(ty, tx) map[oy * sy + ty, ox * sx + tx, c] *
    /// weights[kh - 1 - ty, kw - 1 - tx, c]` (a true convolution, `weights` `(kh, kw, C, 1)`),
    /// channels in SIMD lanes; writes every output. Panics on short buffers.
    pub fn depthwise_dense(self, map: &[u8], g: &ConvGeometry, channels: usize, weights: &[i8], out: &mut [i32]) {
        let (mh, mw) = map_size(g);
        assert!(map.len() >= mh * mw * channels, "map too short for its windows");
        assert_eq!(weights.len(), g.y.kernel * g.x.kernel * channels, "depthwise weights (kh, kw, C, 1)");
        assert!(out.len() >= g.y.output * g.x.output * channels, "output buffer too short");
        #[cfg(target_arch = "x86_64")]
        if self.has_avx512() {
            #[target_feature(enable = "avx512f,avx512bw")]
            fn build(map: &[u8], g: &ConvGeometry, channels: usize, weights: &[i8], out: &mut [i32]) {
                depthwise_lanes(map, g, channels, weights, out)
            }
            // SAFETY: the set has AVX-512 F/BW only if the processor supports them.
            unsafe { build(map, g, channels, weights, out) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if self.has_avx2() {
            #[target_feature(enable = "avx2")]
            fn build(map: &[u8], g: &ConvGeometry, channels: usize, weights: &[i8], out: &mut [i32]) {
                depthwise_lanes(map, g, channels, weights, out)
            }
            // SAFETY: a set with AVX2 is only built when the processor supports it.
            unsafe { build(map, g, channels, weights, out) };
            return;
        }
        depthwise_lanes(map, g, channels, weights, out)
    }
}

/// The body of every build of [`KernelSet::depthwise_dense`]: per output and tap, one multiply-add
/// per channel over contiguous channels (vectorized by the compiler for the build's lanes).
#[inline(always)]
fn depthwise_lanes(map: &[u8], g: &ConvGeometry, channels: usize, weights: &[i8], out: &mut [i32]) {
    let (kh, kw) = (g.y.kernel, g.x.kernel);
    let (_, mw) = map_size(g);
    for oy in 0..g.y.output {
        for ox in 0..g.x.output {
            let acc = &mut out[(oy * g.x.output + ox) * channels..][..channels];
            acc.fill(0);
            for ty in 0..kh {
                for tx in 0..kw {
                    let cell = ((oy * g.y.stride + ty) * mw + ox * g.x.stride + tx) * channels;
                    let x = &map[cell..cell + channels];
                    let w = &weights[((kh - 1 - ty) * kw + (kw - 1 - tx)) * channels..][..channels];
                    for ((a, &v), &q) in acc.iter_mut().zip(x).zip(w) {
                        *a += i32::from(v) * i32::from(q);
                    }
                }
            }
        }
    }
}

/// The portable build of [`KernelSet::dot_product`]: per output, per group of four inputs that
/// is not all zero, four products into each neuron.
#[inline(always)]
fn dot_product_lanes(map: &[u8], windows: &Windows, w: &DotWeights, out: &mut [i32]) {
    let (oh, ow) = windows.outputs;
    let n = w.neurons;
    for oy in 0..oh {
        for ox in 0..ow {
            let acc = &mut out[(oy * ow + ox) * n..][..n];
            acc.fill(0);
            let base = oy * windows.y_step + ox * windows.x_step;
            for row in 0..w.rows {
                let at = base + row * windows.row_step;
                for k in 0..w.groups {
                    let x = &map[at + 4 * k..at + 4 * k + 4];
                    if x == [0; 4] {
                        continue;
                    }
                    let (x0, x1, x2, x3) = (i32::from(x[0]), i32::from(x[1]), i32::from(x[2]), i32::from(x[3]));
                    let wk = &w.data[(row * w.groups + k) * w.padded * 4..][..n * 4];
                    for (a, q) in acc.iter_mut().zip(wk.chunks_exact(4)) {
                        *a += x0 * i32::from(q[0]) + x1 * i32::from(q[1]) + x2 * i32::from(q[2]) + x3 * i32::from(q[3]);
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The AVX2 build: `vpmaddubsw` (u8 x i8 products summed in pairs into i16, exact when the
    //! caller checked that no pair sum saturates) then `vpmaddwd` with ones (pairs of pairs into
    //! i32): the four products of a group in one i32 lane, as `vpdpbusd` does. Tiles of up to 4
    //! outputs x one block of 16 neurons (two 256-bit halves).
    //!
    //! `SPLIT` (for inputs and weights whose pair sums could saturate, such as 8-bit pixels with
    //! 8-bit weights): each input byte `x = 16 * hi + lo` goes in as its two nibbles, whose pair
    //! sums are at most `2 * 15 * 128`, and the high nibble's sums are weighted by 16 in
    //! `vpmaddwd`: `x . w = 16 * (hi . w) + lo . w`, exact for every `u8` and `i8`.

    use std::arch::x86_64::*;

    use super::{DotWeights, Windows, LANES};

    /// # Safety
    /// The processor supports AVX2; `map` and `out` are long enough for the windows; unless
    /// `SPLIT`, no pair sum `x0 * w0 + x1 * w1` leaves the i16 range.
    #[target_feature(enable = "avx2")]
    pub unsafe fn dot_product<const SPLIT: bool>(map: &[u8], windows: &Windows, w: &DotWeights, out: &mut [i32]) {
        let (oh, ow) = windows.outputs;
        let blocks = w.padded / LANES;
        for oy in 0..oh {
            let mut ox = 0;
            while ox < ow {
                let r = (ow - ox).min(4);
                for b in 0..blocks {
                    // SAFETY: forwarded from the caller.
                    unsafe {
                        match r {
                            4 => tile::<4, SPLIT>(map, windows, w, out, oy, ox, b),
                            3 => tile::<3, SPLIT>(map, windows, w, out, oy, ox, b),
                            2 => tile::<2, SPLIT>(map, windows, w, out, oy, ox, b),
                            _ => tile::<1, SPLIT>(map, windows, w, out, oy, ox, b),
                        }
                    }
                }
                ox += r;
            }
        }
    }

    /// Outputs `(oy, ox..ox + R)` x neurons `16 * b..16 * b + 16`.
    ///
    /// # Safety
    /// As [`dot_product`]; `ox + R <= OW`, block `b` exists.
    #[target_feature(enable = "avx2")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const R: usize, const SPLIT: bool>(
        map: &[u8],
        windows: &Windows,
        w: &DotWeights,
        out: &mut [i32],
        oy: usize,
        ox: usize,
        b: usize,
    ) {
        let group_bytes = w.padded * 4;
        let mut base = [0usize; R];
        for (i, at) in base.iter_mut().enumerate() {
            *at = oy * windows.y_step + (ox + i) * windows.x_step;
        }
        let (ones, sixteens) = (_mm256_set1_epi16(1), _mm256_set1_epi16(16));
        let mut acc = [[_mm256_setzero_si256(); 2]; R];
        let (m, wp) = (map.as_ptr(), w.data.as_ptr());
        for row in 0..w.rows {
            let mrow = row * windows.row_step;
            let wrow = row * w.groups * group_bytes + b * LANES * 4;
            for k in 0..w.groups {
                let wk = wrow + k * group_bytes;
                // SAFETY: the 64 bytes of block `b` of group `k` are inside the weights.
                let wv = unsafe { [_mm256_loadu_si256(wp.add(wk).cast()), _mm256_loadu_si256(wp.add(wk + 32).cast())] };
                for i in 0..R {
                    // SAFETY: the caller bounded every group read of every window.
                    let x = unsafe { m.add(base[i] + mrow + 4 * k).cast::<u32>().read_unaligned() };
                    if SPLIT {
                        let lo = _mm256_set1_epi32((x & 0x0F0F_0F0F) as i32);
                        let hi = _mm256_set1_epi32(((x >> 4) & 0x0F0F_0F0F) as i32);
                        for h in 0..2 {
                            let low = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, wv[h]), ones);
                            let high = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, wv[h]), sixteens);
                            acc[i][h] = _mm256_add_epi32(acc[i][h], _mm256_add_epi32(low, high));
                        }
                    } else {
                        let x = _mm256_set1_epi32(x as i32);
                        for h in 0..2 {
                            let pairs = _mm256_maddubs_epi16(x, wv[h]);
                            acc[i][h] = _mm256_add_epi32(acc[i][h], _mm256_madd_epi16(pairs, ones));
                        }
                    }
                }
            }
        }
        let n = w.neurons;
        let ow = windows.outputs.1;
        for (i, a) in acc.iter().enumerate() {
            let p = (oy * ow + ox + i) * n;
            for (h, v) in a.iter().enumerate() {
                let first = b * LANES + h * 8;
                if first >= n {
                    break;
                }
                let mut lanes = [0i32; 8];
                // SAFETY: `lanes` holds 8 i32.
                unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), *v) };
                let valid = (n - first).min(8);
                out[p + first..p + first + valid].copy_from_slice(&lanes[..valid]);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    //! The AVX-512 VNNI build: tiles of up to 4 outputs x 4 blocks of 16 neurons held in 16
    //! registers; per group of four inputs, one broadcast per output and one weight load per
    //! block feed `R * NB` `vpdpbusd` (u8 x i8, four products summed into each i32 lane, exact:
    //! `4 * 255 * 128` is far from overflowing).

    use std::arch::x86_64::*;

    use super::{DotWeights, Windows, LANES};

    /// # Safety
    /// The processor supports AVX-512 F/BW/VNNI; `map` and `out` are long enough for the
    /// windows, as [`super::KernelSet::dot_product`] checks.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn dot_product(map: &[u8], windows: &Windows, w: &DotWeights, out: &mut [i32]) {
        let (oh, ow) = windows.outputs;
        let blocks = w.padded / LANES;
        for oy in 0..oh {
            let mut ox = 0;
            while ox < ow {
                let r = (ow - ox).min(4);
                let mut b0 = 0;
                while b0 < blocks {
                    let nb = (blocks - b0).min(4);
                    let t = Tile { map, windows, w, out: &mut *out, oy, ox, b0 };
                    // SAFETY: forwarded from the caller.
                    unsafe {
                        match (r, nb) {
                            (4, 4) => t.run::<4, 4>(),
                            (4, 3) => t.run::<4, 3>(),
                            (4, 2) => t.run::<4, 2>(),
                            (4, _) => t.run::<4, 1>(),
                            (3, 4) => t.run::<3, 4>(),
                            (3, 3) => t.run::<3, 3>(),
                            (3, 2) => t.run::<3, 2>(),
                            (3, _) => t.run::<3, 1>(),
                            (2, 4) => t.run::<2, 4>(),
                            (2, 3) => t.run::<2, 3>(),
                            (2, 2) => t.run::<2, 2>(),
                            (2, _) => t.run::<2, 1>(),
                            (_, 4) => t.run::<1, 4>(),
                            (_, 3) => t.run::<1, 3>(),
                            (_, 2) => t.run::<1, 2>(),
                            (_, _) => t.run::<1, 1>(),
                        }
                    }
                    b0 += nb;
                }
                ox += r;
            }
        }
    }

    /// Outputs `(oy, ox..ox + R)` x neuron blocks `b0..b0 + NB`.
    struct Tile<'a> {
        map: &'a [u8],
        windows: &'a Windows,
        w: &'a DotWeights,
        out: &'a mut [i32],
        oy: usize,
        ox: usize,
        b0: usize,
    }

    impl Tile<'_> {
        /// # Safety
        /// As [`dot_product`]; `ox + R <= OW` and `b0 + NB` blocks exist.
        #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
        #[inline]
        unsafe fn run<const R: usize, const NB: usize>(self) {
            let Tile { map, windows, w, out, oy, ox, b0 } = self;
            let group_bytes = w.padded * 4;
            let mut base = [0usize; R];
            for (i, b) in base.iter_mut().enumerate() {
                *b = oy * windows.y_step + (ox + i) * windows.x_step;
            }
            let mut acc = [[_mm512_setzero_si512(); NB]; R];
            let m = map.as_ptr();
            let wp = w.data.as_ptr();
            for row in 0..w.rows {
                let mrow = row * windows.row_step;
                let wrow = row * w.groups * group_bytes + b0 * LANES * 4;
                for k in 0..w.groups {
                    let wk = wrow + k * group_bytes;
                    let mut wv = [_mm512_setzero_si512(); NB];
                    for (b, v) in wv.iter_mut().enumerate() {
                        // SAFETY: `wk + b * 64 + 64 <= data.len()`: block `b0 + b` of group `k`.
                        *v = unsafe { _mm512_loadu_si512(wp.add(wk + b * 64).cast()) };
                    }
                    for i in 0..R {
                        // SAFETY: the caller bounded every group read of every window.
                        let x = unsafe { m.add(base[i] + mrow + 4 * k).cast::<i32>().read_unaligned() };
                        let x = _mm512_set1_epi32(x);
                        for b in 0..NB {
                            acc[i][b] = _mm512_dpbusd_epi32(acc[i][b], x, wv[b]);
                        }
                    }
                }
            }
            let n = w.neurons;
            let ow = windows.outputs.1;
            for (i, a) in acc.iter().enumerate() {
                let p = (oy * ow + ox + i) * n;
                for (b, v) in a.iter().enumerate() {
                    let first = (b0 + b) * LANES;
                    let valid = (n - first).min(LANES);
                    let mask: __mmask16 = if valid == LANES { 0xFFFF } else { (1u16 << valid) - 1 };
                    // SAFETY: lanes `first..first + valid` of output `p` are inside `out`.
                    unsafe { _mm512_mask_storeu_epi32(out.as_mut_ptr().add(p + first), mask, *v) };
                }
            }
        }
    }
}
