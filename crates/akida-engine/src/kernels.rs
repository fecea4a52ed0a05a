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

#[inline(always)]
fn axpy_portable(acc: &mut [i32], row: &[i8], value: i32) {
    if value == 1 {
        for (a, &w) in acc.iter_mut().zip(row) {
            *a += i32::from(w);
        }
    } else {
        for (a, &w) in acc.iter_mut().zip(row) {
            *a += value * i32::from(w);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn axpy_avx2(acc: &mut [i32], row: &[i8], value: i32) {
    axpy_portable(acc, row, value)
}

/// `acc[i] += value * row[i]` for every `i` (the slices have equal length). Uses AVX2 when the
/// processor has it; the result is the same either way.
#[inline]
pub fn axpy(acc: &mut [i32], row: &[i8], value: i32) {
    debug_assert_eq!(acc.len(), row.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the processor supports AVX2, checked just above.
            unsafe { axpy_avx2(acc, row, value) };
            return;
        }
    }
    axpy_portable(acc, row, value)
}

/// Cross-correlation of a dense `u8` image with `weights` `(kh, kw, C, N)`, padded cells holding
/// `padding`. Adds into `out` (`(OH, OW, N)`, zeroed by the caller); returns the synaptic operations.
pub fn input_convolution(
    image: &[u8],
    shape: &Shape3,
    g: &ConvGeometry,
    weights: &[i8],
    neurons: usize,
    padding: u8,
    out: &mut [i32],
) -> u64 {
    let (kh, kw, channels) = (g.y.kernel, g.x.kernel, shape.channels);
    let mut ops = 0u64;
    for oy in 0..g.y.output {
        for ox in 0..g.x.output {
            let o = (oy * g.x.output + ox) * neurons;
            let acc = &mut out[o..o + neurons];
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
                            axpy(acc, &weights[row..row + neurons], i32::from(value));
                            ops += neurons as u64;
                        }
                    }
                }
            }
        }
    }
    ops
}

/// True convolution driven by input events: every event adds its value times the flipped kernel
/// rows to the outputs it reaches. `weights` `(kh, kw, C, N)`, `out` `(OH, OW, N)` zeroed by the
/// caller. Returns the synaptic operations.
pub fn convolve_events(
    events: &[Event],
    shape: &Shape3,
    g: &ConvGeometry,
    weights: &[i8],
    neurons: usize,
    out: &mut [i32],
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
                axpy(&mut out[o..o + neurons], &weights[row..row + neurons], e.value);
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

/// Pointwise step of a separable convolution: `out[p, n] += sum_c depthwise[p, c] * weights[c, n]`,
/// skipping zero intermediate values. `out` is zeroed by the caller. Returns the operations.
pub fn pointwise(depthwise: &[i32], channels: usize, weights: &[i8], neurons: usize, out: &mut [i32]) -> u64 {
    let mut ops = 0u64;
    for (d, acc) in depthwise.chunks_exact(channels).zip(out.chunks_exact_mut(neurons)) {
        for (c, &value) in d.iter().enumerate() {
            if value != 0 {
                axpy(acc, &weights[c * neurons..(c + 1) * neurons], value);
                ops += neurons as u64;
            }
        }
    }
    ops
}

/// Fully connected layer driven by events: `weights` `(H, W, C, N)`, `out` `(N)` zeroed by the
/// caller. Returns the synaptic operations.
pub fn fully_connected_events(events: &[Event], shape: &Shape3, weights: &[i8], neurons: usize, out: &mut [i32]) -> u64 {
    for e in events {
        let row = e.index(shape) * neurons;
        axpy(out, &weights[row..row + neurons], e.value);
    }
    (events.len() * neurons) as u64
}

/// Pools `input` (`(H, W, N)` potentials) into `out` (`(PH, PW, N)`). `sums` is scratch space.
pub fn pool(input: &[i32], shape: &Shape3, g: &PoolGeometry, out: &mut [i32], sums: &mut Vec<i64>) {
    let n = shape.channels;
    let count = (g.y.window * g.x.window) as i64;
    for py in 0..g.y.output {
        for px in 0..g.x.output {
            let (y0, x0) = (py * g.y.stride, px * g.x.stride);
            let o = (py * g.x.output + px) * n;
            let dst = &mut out[o..o + n];
            match g.kind {
                PoolingType::Max => {
                    dst.fill(i32::MIN);
                    for y in y0..y0 + g.y.window {
                        for x in x0..x0 + g.x.window {
                            let s = shape.index(y, x, 0);
                            for (d, &v) in dst.iter_mut().zip(&input[s..s + n]) {
                                *d = (*d).max(v);
                            }
                        }
                    }
                }
                PoolingType::Average => {
                    sums.clear();
                    sums.resize(n, 0);
                    for y in y0..y0 + g.y.window {
                        for x in x0..x0 + g.x.window {
                            let s = shape.index(y, x, 0);
                            for (acc, &v) in sums.iter_mut().zip(&input[s..s + n]) {
                                *acc += i64::from(v);
                            }
                        }
                    }
                    for (d, &sum) in dst.iter_mut().zip(sums.iter()) {
                        *d = sum.div_euclid(count) as i32;
                    }
                }
                PoolingType::NoPooling => unreachable!("no geometry is built without pooling"),
            }
        }
    }
}

/// Thresholds `potentials` (`(H, W, N)`) and appends the resulting spikes to `out`, in canonical
/// order.
pub fn activate(potentials: &[i32], shape: &Shape3, thresholds: &Thresholds, out: &mut Vec<Event>) {
    let n = shape.channels;
    for (pixel, values) in potentials.chunks_exact(n).enumerate() {
        for (c, &p) in values.iter().enumerate() {
            let level = thresholds.response(c, p);
            if level != 0 {
                out.push(Event {
                    y: (pixel / shape.width) as u32,
                    x: (pixel % shape.width) as u32,
                    c: c as u32,
                    value: i32::from(level),
                });
            }
        }
    }
}
