//! Optimized kernels: event-driven accumulation for the data-processing layers, a dense path for
//! the image input layer, pooling and thresholding. Every function here has a plain counterpart in
//! [`crate::reference`] and property tests that compare the two exactly.
//!
//! Weight tensors keep the user-facing layout with the neuron axis last, so the weights one input
//! value feeds are a contiguous row and every kernel reduces to `acc[..] += value * row[..]`.

use crate::activation::Thresholds;
use crate::events::Event;
use crate::params::PoolingType;
use crate::shape::{ConvGeometry, PoolGeometry, Shape3};

/// An integer accumulator for potentials. The engine uses `i16` when a layer's potential bound
/// allows it (twice the SIMD lanes) and `i32` otherwise; both give identical results within the
/// bound.
pub trait Accumulator: Copy + Default + Send + Sync + 'static {
    /// `acc[i] += value * row[i]` for every `i`; the caller guarantees no overflow.
    fn mac(acc: &mut [Self], row: &[i8], value: i32);
    fn widen(self) -> i32;
}

macro_rules! lanes_mac {
    ($acc:ident, $row:ident, $value:ident, $t:ty, $lanes:literal) => {{
        let (acc_chunks, acc_rest) = $acc.as_chunks_mut::<$lanes>();
        let (row_chunks, row_rest) = $row.as_chunks::<$lanes>();
        if $value == 1 {
            for (a, r) in acc_chunks.iter_mut().zip(row_chunks) {
                for i in 0..$lanes {
                    a[i] += <$t>::from(r[i]);
                }
            }
        } else {
            let v = $value as $t;
            for (a, r) in acc_chunks.iter_mut().zip(row_chunks) {
                for i in 0..$lanes {
                    a[i] += v * <$t>::from(r[i]);
                }
            }
        }
        let v = $value as $t;
        for (a, &w) in acc_rest.iter_mut().zip(row_rest) {
            *a += v * <$t>::from(w);
        }
    }};
}

impl Accumulator for i32 {
    #[inline(always)]
    fn mac(acc: &mut [i32], row: &[i8], value: i32) {
        debug_assert_eq!(acc.len(), row.len());
        lanes_mac!(acc, row, value, i32, 8)
    }
    #[inline(always)]
    fn widen(self) -> i32 {
        self
    }
}

impl Accumulator for i16 {
    #[inline(always)]
    fn mac(acc: &mut [i16], row: &[i8], value: i32) {
        debug_assert_eq!(acc.len(), row.len());
        lanes_mac!(acc, row, value, i16, 16)
    }
    #[inline(always)]
    fn widen(self) -> i32 {
        i32::from(self)
    }
}

/// Defines a public kernel that runs an AVX2 build of `$imp` when the processor has AVX2 and the
/// portable build otherwise; both compute the same integers.
macro_rules! with_avx2 {
    ($(#[$doc:meta])* pub fn $name:ident<A>($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty = $imp:ident;) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        pub fn $name<A: Accumulator>($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2<A: Accumulator>($($arg: $ty),*) -> $ret {
                    $imp::<A>($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the processor supports AVX2, checked just above.
                    return unsafe { avx2::<A>($($arg),*) };
                }
            }
            $imp::<A>($($arg),*)
        }
    };
}

with_avx2! {
    /// Cross-correlation of a dense `u8` image with `weights` `(kh, kw, C, N)`, padded cells holding
    /// `padding`. Adds into `out` (`(OH, OW, N)`, zeroed by the caller); returns the synaptic
    /// operations.
    pub fn input_convolution<A>(
        image: &[u8],
        shape: &Shape3,
        g: &ConvGeometry,
        weights: &[i8],
        neurons: usize,
        padding: u8,
        out: &mut [A],
    ) -> u64 = input_convolution_impl;
}

#[inline(always)]
fn input_convolution_impl<A: Accumulator>(
    image: &[u8],
    shape: &Shape3,
    g: &ConvGeometry,
    weights: &[i8],
    neurons: usize,
    padding: u8,
    out: &mut [A],
) -> u64 {
    let (kh, kw, channels) = (g.y.kernel, g.x.kernel, shape.channels);
    let patch_row = kw * channels;
    let mut ops = 0u64;
    for oy in 0..g.y.output {
        let rows_inside = (0..kh).all(|ty| g.y.input_cell(oy, ty).is_some());
        for ox in 0..g.x.output {
            let o = (oy * g.x.output + ox) * neurons;
            let acc = &mut out[o..o + neurons];
            let inside = rows_inside && g.x.input_cell(ox, 0).is_some() && g.x.input_cell(ox, kw - 1).is_some();
            if inside {
                // The whole window is in the image: each kernel row reads `kw * C` consecutive
                // pixels, which feed consecutive weight rows.
                let x0 = ox * g.x.stride - g.x.pad_before;
                for ty in 0..kh {
                    let y = oy * g.y.stride + ty - g.y.pad_before;
                    let start = shape.index(y, x0, 0);
                    let pixels = &image[start..start + patch_row];
                    let taps = &weights[ty * patch_row * neurons..(ty + 1) * patch_row * neurons];
                    for (j, &value) in pixels.iter().enumerate() {
                        if value != 0 {
                            A::mac(acc, &taps[j * neurons..(j + 1) * neurons], i32::from(value));
                            ops += neurons as u64;
                        }
                    }
                }
                continue;
            }
            for ty in 0..kh {
                let iy = g.y.input_cell(oy, ty);
                for tx in 0..kw {
                    let ix = g.x.input_cell(ox, tx);
                    let tap = (ty * kw + tx) * channels;
                    for c in 0..channels {
                        let value = match (iy, ix) {
                            (Some(y), Some(x)) => image[shape.index(y, x, c)],
                            _ => padding,
                        };
                        if value != 0 {
                            let row = (tap + c) * neurons;
                            A::mac(acc, &weights[row..row + neurons], i32::from(value));
                            ops += neurons as u64;
                        }
                    }
                }
            }
        }
    }
    ops
}

with_avx2! {
    /// True convolution driven by input events: every event adds its value times the flipped kernel
    /// rows to the outputs it reaches. `weights` `(kh, kw, C, N)`, `out` `(OH, OW, N)` zeroed by the
    /// caller. Returns the synaptic operations.
    pub fn convolve_events<A>(
        events: &[Event],
        shape: &Shape3,
        g: &ConvGeometry,
        weights: &[i8],
        neurons: usize,
        out: &mut [A],
    ) -> u64 = convolve_events_impl;
}

#[inline(always)]
fn convolve_events_impl<A: Accumulator>(
    events: &[Event],
    shape: &Shape3,
    g: &ConvGeometry,
    weights: &[i8],
    neurons: usize,
    out: &mut [A],
) -> u64 {
    let (kh, kw, channels) = (g.y.kernel, g.x.kernel, shape.channels);
    let mut ops = 0u64;
    for e in events {
        let (y, x) = (e.y as usize, e.x as usize);
        let (ylo, yhi) = g.y.reached_outputs(y);
        let (xlo, xhi) = g.x.reached_outputs(x);
        ops += ((yhi - ylo) * (xhi - xlo) * neurons) as u64;
        for oy in ylo..yhi {
            let flipped_y = kh - 1 - (y + g.y.pad_before - oy * g.y.stride);
            for ox in xlo..xhi {
                let flipped_x = kw - 1 - (x + g.x.pad_before - ox * g.x.stride);
                let row = ((flipped_y * kw + flipped_x) * channels + e.c as usize) * neurons;
                let o = (oy * g.x.output + ox) * neurons;
                A::mac(&mut out[o..o + neurons], &weights[row..row + neurons], e.value);
            }
        }
    }
    ops
}

/// Depthwise true convolution driven by events: `weights` `(kh, kw, C, 1)`, `out` `(OH, OW, C)`
/// zeroed by the caller. Returns the synaptic operations.
pub fn depthwise_events(events: &[Event], shape: &Shape3, g: &ConvGeometry, weights: &[i8], out: &mut [i32]) -> u64 {
    let (kh, kw, channels) = (g.y.kernel, g.x.kernel, shape.channels);
    let mut ops = 0u64;
    for e in events {
        let (y, x, c) = (e.y as usize, e.x as usize, e.c as usize);
        let (ylo, yhi) = g.y.reached_outputs(y);
        let (xlo, xhi) = g.x.reached_outputs(x);
        ops += ((yhi - ylo) * (xhi - xlo)) as u64;
        for oy in ylo..yhi {
            let flipped_y = kh - 1 - (y + g.y.pad_before - oy * g.y.stride);
            for ox in xlo..xhi {
                let flipped_x = kw - 1 - (x + g.x.pad_before - ox * g.x.stride);
                let w = weights[(flipped_y * kw + flipped_x) * channels + c];
                out[(oy * g.x.output + ox) * channels + c] += e.value * i32::from(w);
            }
        }
    }
    ops
}

with_avx2! {
    /// Pointwise step of a separable convolution: `out[p, n] += sum_c depthwise[p, c] * weights[c, n]`,
    /// skipping zero intermediate values. `out` is zeroed by the caller. Returns the operations.
    pub fn pointwise<A>(depthwise: &[i32], channels: usize, weights: &[i8], neurons: usize, out: &mut [A]) -> u64 = pointwise_impl;
}

#[inline(always)]
fn pointwise_impl<A: Accumulator>(
    depthwise: &[i32],
    channels: usize,
    weights: &[i8],
    neurons: usize,
    out: &mut [A],
) -> u64 {
    let mut ops = 0u64;
    for (d, acc) in depthwise.chunks_exact(channels).zip(out.chunks_exact_mut(neurons)) {
        for (c, &value) in d.iter().enumerate() {
            if value != 0 {
                A::mac(acc, &weights[c * neurons..(c + 1) * neurons], value);
                ops += neurons as u64;
            }
        }
    }
    ops
}

with_avx2! {
    /// Fully connected layer driven by events: `weights` `(H, W, C, N)`, `out` `(N)` zeroed by the
    /// caller. Returns the synaptic operations.
    pub fn fully_connected_events<A>(events: &[Event], shape: &Shape3, weights: &[i8], neurons: usize, out: &mut [A]) -> u64 = fully_connected_impl;
}

#[inline(always)]
fn fully_connected_impl<A: Accumulator>(
    events: &[Event],
    shape: &Shape3,
    weights: &[i8],
    neurons: usize,
    out: &mut [A],
) -> u64 {
    for e in events {
        let row = e.index(shape) * neurons;
        A::mac(out, &weights[row..row + neurons], e.value);
    }
    (events.len() * neurons) as u64
}

/// Pools `input` (`(H, W, N)` potentials) into `out` (`(PH, PW, N)`): each window covers the map
/// cells [`PoolAxis::cells`](crate::shape::PoolAxis::cells) gives (Same-mode padding is skipped, so
/// an average divides by the number of map cells). `sums` is scratch space.
pub fn pool(input: &[i32], shape: &Shape3, g: &PoolGeometry, out: &mut [i32], sums: &mut Vec<i64>) {
    let n = shape.channels;
    for py in 0..g.y.output {
        let (y0, y1) = g.y.cells(py);
        for px in 0..g.x.output {
            let (x0, x1) = g.x.cells(px);
            let o = (py * g.x.output + px) * n;
            let dst = &mut out[o..o + n];
            match g.kind {
                PoolingType::Max => {
                    dst.fill(i32::MIN);
                    for y in y0..y1 {
                        let row = &input[shape.index(y, x0, 0)..shape.index(y, x1 - 1, n)];
                        for values in row.chunks_exact(n) {
                            for (d, &v) in dst.iter_mut().zip(values) {
                                *d = (*d).max(v);
                            }
                        }
                    }
                }
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
                PoolingType::NoPooling => unreachable!("no geometry is built without pooling"),
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
/// order.
pub fn activate(potentials: &[i32], shape: &Shape3, thresholds: &Thresholds, out: &mut Vec<Event>) {
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
