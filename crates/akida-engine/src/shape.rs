//! Tensor shapes and the geometry of convolutions and pooling.

use crate::error::{bail, Result};
use crate::params::{ConvolutionMode, Pooling, PoolingType};

/// The shape of one sample: rows, columns, channels. Dense data is row-major `(y, x, c)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape3 {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

impl Shape3 {
    pub const fn new(height: usize, width: usize, channels: usize) -> Self {
        Shape3 { height, width, channels }
    }

    /// Number of values in one sample.
    pub const fn len(&self) -> usize {
        self.height * self.width * self.channels
    }

    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Linear index of `(y, x, c)` in dense row-major storage.
    #[inline]
    pub const fn index(&self, y: usize, x: usize, c: usize) -> usize {
        (y * self.width + x) * self.channels + c
    }
}

impl std::fmt::Display for Shape3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}, {}, {})", self.height, self.width, self.channels)
    }
}

/// Geometry of a convolution along one axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisGeometry {
    pub input: usize,
    pub kernel: usize,
    pub stride: usize,
    /// Padding cells before the first input cell.
    pub pad_before: usize,
    pub output: usize,
}

impl AxisGeometry {
    /// Output size and padding for `mode`, as documented in `docs/semantics.md`.
    pub fn new(input: usize, kernel: usize, stride: usize, mode: ConvolutionMode) -> Option<Self> {
        if input == 0 || kernel == 0 || stride == 0 {
            return None;
        }
        let (output, pad_before) = match mode {
            ConvolutionMode::Valid => {
                if input < kernel {
                    return None;
                }
                ((input - kernel) / stride + 1, 0)
            }
            ConvolutionMode::Same => {
                let output = input.div_ceil(stride);
                let total = ((output - 1) * stride + kernel).saturating_sub(input);
                (output, total / 2)
            }
            ConvolutionMode::Full => ((input + kernel - 2) / stride + 1, kernel - 1),
        };
        Some(AxisGeometry { input, kernel, stride, pad_before, output })
    }

    /// The input cell read by output cell `o` at kernel tap `t`, or `None` when it is padding.
    #[inline]
    pub fn input_cell(&self, o: usize, t: usize) -> Option<usize> {
        let i = (o * self.stride + t).checked_sub(self.pad_before)?;
        (i < self.input).then_some(i)
    }

    /// The output cells that input cell `i` reaches: `o` such that `t = i + pad - o * stride` is a
    /// kernel tap. Returns the inclusive-exclusive range `lo..hi` (possibly empty).
    #[inline]
    pub fn reached_outputs(&self, i: usize) -> (usize, usize) {
        let shifted = i + self.pad_before; // = o * stride + t
                                           // o <= shifted / stride and o * stride >= shifted - (kernel - 1)
        let hi = (shifted / self.stride + 1).min(self.output);
        let lo = if shifted + 1 > self.kernel { (shifted + 1 - self.kernel).div_ceil(self.stride) } else { 0 };
        (lo, hi.max(lo))
    }
}

/// Geometry of a 2-D convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub y: AxisGeometry,
    pub x: AxisGeometry,
}

/// Geometry of a pooling stage along one axis: windows never leave the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolAxis {
    pub window: usize,
    pub stride: usize,
    pub output: usize,
}

/// Geometry of a pooling stage; `None` when the layer does not pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolGeometry {
    pub kind: PoolingType,
    pub y: PoolAxis,
    pub x: PoolAxis,
}

impl PoolGeometry {
    /// Resolves global pooling and default strides for a `height x width` map.
    pub fn new(pooling: &Pooling, height: usize, width: usize, layer: &str) -> Result<Option<Self>> {
        if pooling.kind == PoolingType::NoPooling {
            return Ok(None);
        }
        let axis = |size: i32, stride: i32, n: usize, which: &str| -> Result<PoolAxis> {
            let window = if size < 0 { n } else { size as usize };
            let stride = if stride < 0 { window } else { stride as usize };
            if window > n {
                bail!(Architecture, "layer {layer}: pooling_{which} {window} is larger than the map ({n})");
            }
            Ok(PoolAxis { window, stride, output: (n - window) / stride + 1 })
        };
        Ok(Some(PoolGeometry {
            kind: pooling.kind,
            y: axis(pooling.height, pooling.stride_y, height, "height")?,
            x: axis(pooling.width, pooling.stride_x, width, "width")?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_puts_the_odd_cell_at_the_end() {
        let g = AxisGeometry::new(5, 2, 1, ConvolutionMode::Same).unwrap();
        assert_eq!((g.output, g.pad_before), (5, 0));
        let g = AxisGeometry::new(5, 4, 1, ConvolutionMode::Same).unwrap();
        assert_eq!((g.output, g.pad_before), (5, 1));
        let g = AxisGeometry::new(7, 3, 2, ConvolutionMode::Same).unwrap();
        assert_eq!((g.output, g.pad_before), (4, 1));
    }

    #[test]
    fn full_and_valid_sizes() {
        assert_eq!(AxisGeometry::new(5, 3, 1, ConvolutionMode::Full).unwrap().output, 7);
        assert_eq!(AxisGeometry::new(5, 3, 2, ConvolutionMode::Valid).unwrap().output, 2);
        assert!(AxisGeometry::new(2, 3, 1, ConvolutionMode::Valid).is_none());
    }

    #[test]
    fn reached_outputs_is_the_inverse_of_input_cell() {
        for mode in [ConvolutionMode::Valid, ConvolutionMode::Same, ConvolutionMode::Full] {
            for n in 1..9 {
                for k in 1..6 {
                    for s in 1..4 {
                        let Some(g) = AxisGeometry::new(n, k, s, mode) else { continue };
                        for i in 0..n {
                            let (lo, hi) = g.reached_outputs(i);
                            for o in 0..g.output {
                                let hit = (0..k).any(|t| g.input_cell(o, t) == Some(i));
                                assert_eq!(hit, (lo..hi).contains(&o), "{mode:?} n{n} k{k} s{s} i{i} o{o}");
                            }
                        }
                    }
                }
            }
        }
    }
}
