//! Dense kernels: the image input layer reads every pixel of a `u8` image. The optimized kernels
//! take the fields of the [`WeightsView`] and of the [`OutputRegion`] as plain arguments (see
//! [`super::KernelSet`] for why). Each kernel has a plain
//! twin (`plain_*`, `i32`, one tap at a time) that the property tests compare it with.

use super::{Accumulator, OutputRegion, WeightsView};
use crate::shape::{ConvGeometry, Shape3};

/// Cross-correlation of a dense `u8` image with `weights` `(kh, kw, C, N)`, padded cells holding
/// `padding`. Adds into `out` (`(OH, OW)` positions, zeroed by the caller; arguments as in
/// [`super::events`]); returns the synaptic operations.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn input_convolution<A: Accumulator>(
    image: &[u8],
    shape: &Shape3,
    g: &ConvGeometry,
    padding: u8,
    weights: &[i8],
    row_stride: usize,
    first: usize,
    width: usize,
    out: &mut [A],
    out_stride: usize,
) -> u64 {
    let (kh, kw, channels) = (g.y.kernel, g.x.kernel, shape.channels);
    let row = |r: usize| &weights[r * row_stride + first..r * row_stride + first + width];
    let patch_row = kw * channels;
    let mut ops = 0u64;
    for oy in 0..g.y.output {
        let rows_inside = (0..kh).all(|ty| g.y.input_cell(oy, ty).is_some());
        for ox in 0..g.x.output {
            let o = (oy * g.x.output + ox) * out_stride;
            let acc = &mut out[o..o + width];
            let inside = rows_inside && g.x.input_cell(ox, 0).is_some() && g.x.input_cell(ox, kw - 1).is_some();
            if inside {
                // The whole window is in the image: each kernel row reads `kw * C` consecutive
                // pixels, which feed consecutive weight rows.
                let x0 = ox * g.x.stride - g.x.pad_before;
                for ty in 0..kh {
                    let y = oy * g.y.stride + ty - g.y.pad_before;
                    let start = shape.index(y, x0, 0);
                    let pixels = &image[start..start + patch_row];
                    let taps = &weights[ty * patch_row * row_stride..(ty + 1) * patch_row * row_stride];
                    for (j, &value) in pixels.iter().enumerate() {
                        if value != 0 {
                            let r = j * row_stride + first;
                            A::mac(acc, &taps[r..r + width], i32::from(value));
                            ops += width as u64;
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
                            A::mac(acc, row(tap + c), i32::from(value));
                            ops += width as u64;
                        }
                    }
                }
            }
        }
    }
    ops
}

/// Plain twin of [`input_convolution`].
pub fn plain_input_convolution(
    image: &[u8],
    shape: &Shape3,
    g: &ConvGeometry,
    padding: u8,
    weights: WeightsView<'_>,
    out: OutputRegion<'_, i32>,
) -> u64 {
    let (kh, kw, channels) = (g.y.kernel, g.x.kernel, shape.channels);
    let mut ops = 0;
    for oy in 0..g.y.output {
        for ox in 0..g.x.output {
            for ty in 0..kh {
                for tx in 0..kw {
                    for c in 0..channels {
                        let value = match (g.y.input_cell(oy, ty), g.x.input_cell(ox, tx)) {
                            (Some(y), Some(x)) => image[shape.index(y, x, c)],
                            _ => padding,
                        };
                        if value == 0 {
                            continue;
                        }
                        let row = (ty * kw + tx) * channels + c;
                        for (k, n) in weights.filters.clone().enumerate() {
                            let w = weights.data[row * weights.row_stride + n];
                            out.data[(oy * g.x.output + ox) * out.stride + k] += i32::from(value) * i32::from(w);
                            ops += 1;
                        }
                    }
                }
            }
        }
    }
    ops
}
