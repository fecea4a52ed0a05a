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

/// Geometry of a pooling stage along one axis, as documented in `docs/semantics.md`: in Valid and
/// Full mode the windows stay inside the map; in Same mode there are `ceil(n / s)` windows placed as
/// TensorFlow's 'same' pooling, and the cells of a window that fall outside the map are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolAxis {
    /// Cells of the map along this axis.
    pub input: usize,
    pub window: usize,
    pub stride: usize,
    /// Padding cells before the first map cell (Same mode only; 0 otherwise).
    pub pad_before: usize,
    pub output: usize,
}

impl PoolAxis {
    /// The geometry for a window of `size` (-1: the whole map) and `stride` (-1: the window size)
    /// over `n` cells, or a message saying why the window does not fit.
    pub fn new(size: i32, stride: i32, n: usize, mode: ConvolutionMode) -> std::result::Result<Self, String> {
        if size < 0 {
            // Global pooling: one window covering the whole map, whatever the mode and stride.
            let stride = if stride < 0 { n } else { stride as usize };
            return Ok(PoolAxis { input: n, window: n, stride, pad_before: 0, output: 1 });
        }
        let window = size as usize;
        let stride = if stride < 0 { window } else { stride as usize };
        if window == 0 || stride == 0 || n == 0 {
            return Err(format!("a window of {window} with stride {stride} over {n} cells is empty"));
        }
        match mode {
            ConvolutionMode::Same => {
                let output = n.div_ceil(stride);
                let total = ((output - 1) * stride + window).saturating_sub(n);
                Ok(PoolAxis { input: n, window, stride, pad_before: total / 2, output })
            }
            ConvolutionMode::Valid | ConvolutionMode::Full => {
                if window > n {
                    return Err(format!("is larger than the map ({n}) in {mode:?} mode"));
                }
                Ok(PoolAxis { input: n, window, stride, pad_before: 0, output: (n - window) / stride + 1 })
            }
        }
    }

    /// The map cells `lo..hi` of window `o` (padding excluded). Never empty: with `window >= 1`,
    /// `pad_before < window` and the last window starts inside the map.
    #[inline]
    pub fn cells(&self, o: usize) -> (usize, usize) {
        let start = o * self.stride; // in padded coordinates
        let lo = start.saturating_sub(self.pad_before);
        let hi = (start + self.window - self.pad_before).min(self.input);
        (lo, hi)
    }
}

/// Geometry of a pooling stage; `None` when the layer does not pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolGeometry {
    pub kind: PoolingType,
    pub y: PoolAxis,
    pub x: PoolAxis,
}

impl PoolGeometry {
    /// Resolves global pooling and default strides for a `height x width` map of a layer whose
    /// convolution runs in `mode` (which decides the pooling geometry too).
    pub fn new(
        pooling: &Pooling,
        height: usize,
        width: usize,
        mode: ConvolutionMode,
        layer: &str,
    ) -> Result<Option<Self>> {
        if pooling.kind == PoolingType::NoPooling {
            return Ok(None);
        }
        let axis = |size: i32, stride: i32, n: usize, which: &str| -> Result<PoolAxis> {
            match PoolAxis::new(size, stride, n, mode) {
                Ok(a) => Ok(a),
                Err(why) => bail!(
                    Architecture,
                    "layer {layer}: pooling_{which} {size} {why}; only Same mode pools with windows that \
                     overlap the edge of the map"
                ),
            }
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

    #[test]
    fn same_pooling_follows_tensorflow() {
        // 5 cells, window 2, stride 2: 3 windows, P = 2*2 + 2 - 5 = 1, none before, one after.
        let a = PoolAxis::new(2, -1, 5, ConvolutionMode::Same).unwrap();
        assert_eq!((a.output, a.pad_before), (3, 0));
        assert_eq!([a.cells(0), a.cells(1), a.cells(2)], [(0, 2), (2, 4), (4, 5)]);
        // 6 cells, window 3, stride 1: 6 windows, P = 2, one before and one after.
        let a = PoolAxis::new(3, 1, 6, ConvolutionMode::Same).unwrap();
        assert_eq!((a.output, a.pad_before), (6, 1));
        assert_eq!((a.cells(0), a.cells(5)), ((0, 2), (4, 6)));
        // A window larger than the map: one window over everything in Same mode, an error otherwise.
        let a = PoolAxis::new(5, -1, 3, ConvolutionMode::Same).unwrap();
        assert_eq!((a.output, a.pad_before, a.cells(0)), (1, 1, (0, 3)));
        assert!(PoolAxis::new(5, -1, 3, ConvolutionMode::Valid).is_err());
        assert!(PoolAxis::new(5, -1, 3, ConvolutionMode::Full).is_err());
        // Valid and Full keep the windows inside the map.
        let a = PoolAxis::new(2, 1, 5, ConvolutionMode::Full).unwrap();
        assert_eq!((a.output, a.pad_before, a.cells(3)), (4, 0, (3, 5)));
        // Global pooling ignores the mode and the stride.
        for mode in [ConvolutionMode::Valid, ConvolutionMode::Same, ConvolutionMode::Full] {
            let a = PoolAxis::new(-1, 2, 7, mode).unwrap();
            assert_eq!((a.output, a.cells(0)), (1, (0, 7)));
        }
    }

    #[test]
    fn every_same_pooling_window_holds_a_map_cell() {
        for n in 1..12 {
            for w in 1..9 {
                for s in 1..6 {
                    let a = PoolAxis::new(w, s, n, ConvolutionMode::Same).unwrap();
                    assert_eq!(a.output, n.div_ceil(s as usize));
                    let total = ((a.output - 1) * s as usize + w as usize).saturating_sub(n);
                    assert_eq!(a.pad_before, total / 2);
                    for o in 0..a.output {
                        let (lo, hi) = a.cells(o);
                        // The cells of the padded window o*s - pad .. o*s - pad + w inside the map.
                        let start = (o * s as usize) as i64 - a.pad_before as i64;
                        let expected: Vec<i64> =
                            (start..start + w as i64).filter(|&i| (0..n as i64).contains(&i)).collect();
                        assert!(lo < hi, "n{n} w{w} s{s} o{o}");
                        assert_eq!((lo as i64..hi as i64).collect::<Vec<_>>(), expected, "n{n} w{w} s{s} o{o}");
                    }
                }
            }
        }
    }
}
