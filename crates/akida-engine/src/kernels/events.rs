//! Event-driven accumulation: every input event adds its value times the weight rows it feeds to
//! the outputs it reaches. Each kernel has a plain twin (`plain_*`, `i32`, no lanes) that the
//! property tests compare it with.
//!
//! The optimized kernels take the fields of a [`WeightsView`] and an [`OutputRegion`] as plain
//! arguments (see [`super::KernelSet`] for why): row `r` of the viewed weights is
//! `weights[r * row_stride + first..][..width]`, and position `p` accumulates into
//! `out[p * out_stride..][..width]`.

use super::{Accumulator, OutputRegion, WeightsView};
use crate::events::Event;
use crate::shape::{ConvGeometry, Shape3};

/// True convolution driven by input events: `weights` `(kh, kw, C, N)`, `out` `(OH, OW)`
/// positions zeroed by the caller. Returns the synaptic operations.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn convolve<A: Accumulator>(
    events: &[Event],
    shape: &Shape3,
    g: &ConvGeometry,
    weights: &[i8],
    row_stride: usize,
    first: usize,
    width: usize,
    out: &mut [A],
    out_stride: usize,
) -> u64 {
    let (kh, kw, channels) = (g.y.kernel, g.x.kernel, shape.channels);
    let mut ops = 0u64;
    for e in events {
        let (y, x) = (e.y as usize, e.x as usize);
        let (ylo, yhi) = g.y.reached_outputs(y);
        let (xlo, xhi) = g.x.reached_outputs(x);
        ops += ((yhi - ylo) * (xhi - xlo) * width) as u64;
        for oy in ylo..yhi {
            let flipped_y = kh - 1 - (y + g.y.pad_before - oy * g.y.stride);
            for ox in xlo..xhi {
                let flipped_x = kw - 1 - (x + g.x.pad_before - ox * g.x.stride);
                let row = ((flipped_y * kw + flipped_x) * channels + e.c as usize) * row_stride + first;
                let o = (oy * g.x.output + ox) * out_stride;
                A::mac(&mut out[o..o + width], &weights[row..row + width], e.value);
            }
        }
    }
    ops
}

/// Plain twin of [`convolve`]: every output cell of every event, in `i32`.
pub fn plain_convolve(
    events: &[Event],
    shape: &Shape3,
    g: &ConvGeometry,
    weights: WeightsView<'_>,
    out: OutputRegion<'_, i32>,
) -> u64 {
    let (kh, kw, channels) = (g.y.kernel, g.x.kernel, shape.channels);
    let mut ops = 0;
    for e in events {
        for oy in 0..g.y.output {
            for ty in 0..kh {
                if g.y.input_cell(oy, ty) != Some(e.y as usize) {
                    continue;
                }
                for ox in 0..g.x.output {
                    for tx in 0..kw {
                        if g.x.input_cell(ox, tx) != Some(e.x as usize) {
                            continue;
                        }
                        let row = ((kh - 1 - ty) * kw + (kw - 1 - tx)) * channels + e.c as usize;
                        for (k, n) in weights.filters.clone().enumerate() {
                            let w = weights.data[row * weights.row_stride + n];
                            out.data[(oy * g.x.output + ox) * out.stride + k] += e.value * i32::from(w);
                            ops += 1;
                        }
                    }
                }
            }
        }
    }
    ops
}

/// Depthwise true convolution driven by events: `weights` `(kh, kw, C, 1)`, `out` `(OH, OW, C)`
/// zeroed by the caller. Returns the synaptic operations. It has no SIMD build: one weight per
/// tap and channel leaves nothing to vectorize.
pub fn depthwise(events: &[Event], shape: &Shape3, g: &ConvGeometry, weights: &[i8], out: &mut [i32]) -> u64 {
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

/// Plain twin of [`depthwise`]: every output cell of every event.
pub fn plain_depthwise(events: &[Event], shape: &Shape3, g: &ConvGeometry, weights: &[i8], out: &mut [i32]) -> u64 {
    let (kh, kw, channels) = (g.y.kernel, g.x.kernel, shape.channels);
    let mut ops = 0;
    for e in events {
        for oy in 0..g.y.output {
            for ty in (0..kh).filter(|&ty| g.y.input_cell(oy, ty) == Some(e.y as usize)) {
                for ox in 0..g.x.output {
                    for tx in (0..kw).filter(|&tx| g.x.input_cell(ox, tx) == Some(e.x as usize)) {
                        let w = weights[((kh - 1 - ty) * kw + (kw - 1 - tx)) * channels + e.c as usize];
                        out[(oy * g.x.output + ox) * channels + e.c as usize] += e.value * i32::from(w);
                        ops += 1;
                    }
                }
            }
        }
    }
    ops
}

/// Pointwise step of a separable convolution: `out[p, n] += sum_c depthwise[p, c] * weights[c, n]`,
/// skipping zero intermediate values. `out` is zeroed by the caller. Returns the operations.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn pointwise<A: Accumulator>(
    depthwise: &[i32],
    channels: usize,
    weights: &[i8],
    row_stride: usize,
    first: usize,
    width: usize,
    out: &mut [A],
    out_stride: usize,
) -> u64 {
    let mut ops = 0u64;
    for (p, d) in depthwise.chunks_exact(channels).enumerate() {
        let acc = &mut out[p * out_stride..p * out_stride + width];
        for (c, &value) in d.iter().enumerate() {
            if value != 0 {
                let row = c * row_stride + first;
                A::mac(acc, &weights[row..row + width], value);
                ops += width as u64;
            }
        }
    }
    ops
}

/// Plain twin of [`pointwise`].
pub fn plain_pointwise(
    depthwise: &[i32],
    channels: usize,
    weights: WeightsView<'_>,
    out: OutputRegion<'_, i32>,
) -> u64 {
    let mut ops = 0;
    for (p, d) in depthwise.chunks_exact(channels).enumerate() {
        for (c, &value) in d.iter().enumerate() {
            if value == 0 {
                continue;
            }
            for (k, n) in weights.filters.clone().enumerate() {
                out.data[p * out.stride + k] += value * i32::from(weights.data[c * weights.row_stride + n]);
                ops += 1;
            }
        }
    }
    ops
}

/// Fully connected layer driven by events: `weights` `(H, W, C, N)`, `out` one position zeroed by
/// the caller. Returns the synaptic operations.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn fully_connected<A: Accumulator>(
    events: &[Event],
    shape: &Shape3,
    weights: &[i8],
    row_stride: usize,
    first: usize,
    width: usize,
    out: &mut [A],
    _out_stride: usize,
) -> u64 {
    let acc = &mut out[..width];
    for e in events {
        let row = e.index(shape) * row_stride + first;
        A::mac(acc, &weights[row..row + width], e.value);
    }
    (events.len() * width) as u64
}

/// Plain twin of [`fully_connected`].
pub fn plain_fully_connected(
    events: &[Event],
    shape: &Shape3,
    weights: WeightsView<'_>,
    out: OutputRegion<'_, i32>,
) -> u64 {
    let mut ops = 0;
    for e in events {
        let row = e.index(shape);
        for (k, n) in weights.filters.clone().enumerate() {
            out.data[k] += e.value * i32::from(weights.data[row * weights.row_stride + n]);
            ops += 1;
        }
    }
    ops
}
