//! Layer parameters: the values given to layer constructors, validated once.

use crate::error::{bail, Result};

/// How a convolution pads its input. See `docs/semantics.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConvolutionMode {
    Valid,
    Same,
    Full,
}

/// How a layer pools its potentials before the activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolingType {
    NoPooling,
    Max,
    Average,
}

/// The layer types of the engine; a closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayerKind {
    InputData,
    InputConvolutional,
    FullyConnected,
    Convolutional,
    SeparableConvolutional,
    Concat,
}

impl LayerKind {
    /// The Python class name of the layer type.
    pub const fn type_name(self) -> &'static str {
        match self {
            LayerKind::InputData => "InputData",
            LayerKind::InputConvolutional => "InputConvolutional",
            LayerKind::FullyConnected => "FullyConnected",
            LayerKind::Convolutional => "Convolutional",
            LayerKind::SeparableConvolutional => "SeparableConvolutional",
            LayerKind::Concat => "Concat",
        }
    }

    /// The base of default layer names.
    pub const fn default_name(self) -> &'static str {
        match self {
            LayerKind::InputData => "input_data",
            LayerKind::InputConvolutional => "input_conv",
            LayerKind::FullyConnected => "fully_connected",
            LayerKind::Convolutional => "conv",
            LayerKind::SeparableConvolutional => "sep_conv",
            LayerKind::Concat => "concat",
        }
    }

    pub const fn is_input(self) -> bool {
        matches!(self, LayerKind::InputData | LayerKind::InputConvolutional)
    }
}

/// Activation parameters shared by every layer but InputData.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Activation {
    pub enabled: bool,
    pub threshold_fire: i32,
    pub threshold_fire_step: f32,
    /// 1, 2 or 4.
    pub threshold_fire_bits: u8,
}

impl Default for Activation {
    fn default() -> Self {
        Activation { enabled: true, threshold_fire: 0, threshold_fire_step: 1.0, threshold_fire_bits: 1 }
    }
}

impl Activation {
    /// Builds and validates activation parameters.
    pub fn new(enabled: bool, threshold_fire: i64, step: f64, bits: i64) -> Result<Self> {
        let Ok(threshold_fire) = i32::try_from(threshold_fire) else {
            bail!(Parameter, "threshold_fire must fit in 32 signed bits, got {threshold_fire}");
        };
        validate_step(step)?;
        if !matches!(bits, 1 | 2 | 4) {
            bail!(Parameter, "threshold_fire_bits must be 1, 2 or 4, got {bits}");
        }
        Ok(Activation { enabled, threshold_fire, threshold_fire_step: step as f32, threshold_fire_bits: bits as u8 })
    }

    /// Largest activation value.
    pub const fn max_value(&self) -> i32 {
        (1 << self.threshold_fire_bits) - 1
    }
}

/// Checks a threshold_fire_step value: finite, positive, representable as float32.
pub fn validate_step(step: f64) -> Result<()> {
    if let Some(why) = step_problem(step) {
        bail!(Parameter, "threshold_fire_step {why}");
    }
    Ok(())
}

/// What is wrong with a step value, as the end of a sentence, or None. Steps are stored as
/// float32, so a positive value that rounds to 0 or overflows there is refused as such.
pub fn step_problem(step: f64) -> Option<String> {
    if !(step.is_finite() && step > 0.0) {
        return Some(format!("must be a finite number > 0, got {step:?}"));
    }
    let stored = step as f32;
    if stored == 0.0 || !stored.is_finite() {
        return Some(format!("{step:?} becomes {stored:?} as a float32 (steps are float32: about 1.4e-45 to 3.4e38)"));
    }
    None
}

/// Pooling parameters as given (-1 meaning "global" for sizes and "window size" for strides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pooling {
    pub kind: PoolingType,
    pub width: i32,
    pub height: i32,
    pub stride_x: i32,
    pub stride_y: i32,
}

impl Default for Pooling {
    fn default() -> Self {
        Pooling { kind: PoolingType::NoPooling, width: -1, height: -1, stride_x: -1, stride_y: -1 }
    }
}

impl Pooling {
    pub fn new(kind: PoolingType, width: i64, height: i64, stride_x: i64, stride_y: i64) -> Result<Self> {
        let check = |value: i64, name: &str| -> Result<i32> {
            if value == -1 || (1..=i64::from(u16::MAX)).contains(&value) {
                Ok(value as i32)
            } else {
                bail!(Parameter, "{name} must be -1 or in [1, 65535], got {value}")
            }
        };
        let pooling = Pooling {
            kind,
            width: check(width, "pooling_width")?,
            height: check(height, "pooling_height")?,
            stride_x: check(stride_x, "pooling_stride_x")?,
            stride_y: check(stride_y, "pooling_stride_y")?,
        };
        if kind == PoolingType::NoPooling {
            if pooling != (Pooling { kind, ..Pooling::default() }) {
                bail!(
                    Parameter,
                    "pooling_width, pooling_height and pooling strides need a pooling_type (Max or Average); \
                     they were given with pooling_type NoPooling"
                );
            }
        } else if (pooling.width < 0) != (pooling.height < 0) {
            bail!(
                Parameter,
                "pooling_width and pooling_height must both be -1 (global pooling) or both be set, got {width} and {height}"
            );
        }
        Ok(pooling)
    }
}

/// Convolution parameters shared by the convolutional layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Convolution {
    pub kernel_width: usize,
    pub kernel_height: usize,
    pub num_neurons: usize,
    pub mode: ConvolutionMode,
    pub stride_x: usize,
    pub stride_y: usize,
    pub weights_bits: u8,
}

/// Largest kernel side, stride and neuron count accepted (far above any hardware limit, low enough
/// that shape arithmetic cannot overflow).
pub const MAX_DIMENSION: i64 = 1 << 16;
/// Largest number of neurons of a layer.
pub const MAX_NEURONS: i64 = 1 << 20;

pub(crate) fn check_dimension(value: i64, name: &str, max: i64) -> Result<usize> {
    if !(1..=max).contains(&value) {
        bail!(Parameter, "{name} must be in 1..={max}, got {value}");
    }
    Ok(value as usize)
}

pub(crate) fn check_weights_bits(bits: i64, allowed: &[u8]) -> Result<u8> {
    match u8::try_from(bits) {
        Ok(b) if allowed.contains(&b) => Ok(b),
        _ => bail!(Parameter, "weights_bits must be one of {allowed:?}, got {bits}"),
    }
}

impl Convolution {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kernel_width: i64,
        kernel_height: i64,
        num_neurons: i64,
        mode: ConvolutionMode,
        stride_x: i64,
        stride_y: i64,
        weights_bits: i64,
        allowed_bits: &[u8],
    ) -> Result<Self> {
        Ok(Convolution {
            kernel_width: check_dimension(kernel_width, "kernel_width", MAX_DIMENSION)?,
            kernel_height: check_dimension(kernel_height, "kernel_height", MAX_DIMENSION)?,
            num_neurons: check_dimension(num_neurons, "num_neurons", MAX_NEURONS)?,
            mode,
            stride_x: check_dimension(stride_x, "stride_x", MAX_DIMENSION)?,
            stride_y: check_dimension(stride_y, "stride_y", MAX_DIMENSION)?,
            weights_bits: check_weights_bits(weights_bits, allowed_bits)?,
        })
    }
}

/// Weight bit widths of InputConvolutional.
pub const INPUT_CONV_WEIGHT_BITS: &[u8] = &[1, 2, 4, 8];
/// Weight bit widths of the data-processing layers.
pub const WEIGHT_BITS: &[u8] = &[1, 2, 4];

/// The inclusive range of a `bits`-bit weight: {0, 1} for 1 bit, symmetric signed otherwise.
pub const fn weight_range(bits: u8) -> (i32, i32) {
    if bits == 1 {
        (0, 1)
    } else {
        let m = (1 << (bits - 1)) - 1;
        (-m, m)
    }
}

/// Everything a layer constructor takes, per layer type. Validated by the constructors.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerParams {
    InputData {
        width: usize,
        height: usize,
        channels: usize,
        input_bits: u8,
    },
    InputConvolutional {
        width: usize,
        height: usize,
        channels: usize,
        conv: Convolution,
        pooling: Pooling,
        activation: Activation,
        padding_value: u8,
    },
    FullyConnected {
        num_neurons: usize,
        weights_bits: u8,
        activation: Activation,
    },
    Convolutional {
        conv: Convolution,
        pooling: Pooling,
        activation: Activation,
    },
    SeparableConvolutional {
        conv: Convolution,
        pooling: Pooling,
        activation: Activation,
    },
    Concat {
        activation: Activation,
    },
}

impl LayerParams {
    pub fn input_data(width: i64, height: i64, channels: i64, input_bits: i64) -> Result<Self> {
        let input_bits = match u8::try_from(input_bits) {
            Ok(b @ 1..=8) => b,
            _ => bail!(Parameter, "input_bits must be in [1, 8], got {input_bits}"),
        };
        Ok(LayerParams::InputData {
            width: check_dimension(width, "input_width", MAX_DIMENSION)?,
            height: check_dimension(height, "input_height", MAX_DIMENSION)?,
            channels: check_dimension(channels, "input_channels", MAX_NEURONS)?,
            input_bits,
        })
    }

    pub fn input_convolutional(
        width: i64,
        height: i64,
        channels: i64,
        conv: Convolution,
        pooling: Pooling,
        activation: Activation,
        padding_value: i64,
    ) -> Result<Self> {
        if channels != 1 && channels != 3 {
            bail!(Parameter, "input_channels of InputConvolutional must be 1 (grayscale) or 3 (RGB), got {channels}");
        }
        let Ok(padding_value) = u8::try_from(padding_value) else {
            bail!(Parameter, "padding_value must be in [0, 255], got {padding_value}");
        };
        Ok(LayerParams::InputConvolutional {
            width: check_dimension(width, "input_width", MAX_DIMENSION)?,
            height: check_dimension(height, "input_height", MAX_DIMENSION)?,
            channels: channels as usize,
            conv,
            pooling,
            activation,
            padding_value,
        })
    }

    pub fn fully_connected(num_neurons: i64, weights_bits: i64, activation: Activation) -> Result<Self> {
        Ok(LayerParams::FullyConnected {
            num_neurons: check_dimension(num_neurons, "num_neurons", MAX_NEURONS)?,
            weights_bits: check_weights_bits(weights_bits, WEIGHT_BITS)?,
            activation,
        })
    }

    pub fn kind(&self) -> LayerKind {
        match self {
            LayerParams::InputData { .. } => LayerKind::InputData,
            LayerParams::InputConvolutional { .. } => LayerKind::InputConvolutional,
            LayerParams::FullyConnected { .. } => LayerKind::FullyConnected,
            LayerParams::Convolutional { .. } => LayerKind::Convolutional,
            LayerParams::SeparableConvolutional { .. } => LayerKind::SeparableConvolutional,
            LayerParams::Concat { .. } => LayerKind::Concat,
        }
    }

    /// The activation parameters, for every layer but InputData.
    pub fn activation(&self) -> Option<&Activation> {
        match self {
            LayerParams::InputData { .. } => None,
            LayerParams::InputConvolutional { activation, .. }
            | LayerParams::FullyConnected { activation, .. }
            | LayerParams::Convolutional { activation, .. }
            | LayerParams::SeparableConvolutional { activation, .. }
            | LayerParams::Concat { activation } => Some(activation),
        }
    }

    pub fn convolution(&self) -> Option<&Convolution> {
        match self {
            LayerParams::InputConvolutional { conv, .. }
            | LayerParams::Convolutional { conv, .. }
            | LayerParams::SeparableConvolutional { conv, .. } => Some(conv),
            _ => None,
        }
    }

    pub fn pooling(&self) -> Option<&Pooling> {
        match self {
            LayerParams::InputConvolutional { pooling, .. }
            | LayerParams::Convolutional { pooling, .. }
            | LayerParams::SeparableConvolutional { pooling, .. } => Some(pooling),
            _ => None,
        }
    }

    /// Number of neurons (output channels) when the layer type fixes it.
    pub fn num_neurons(&self) -> Option<usize> {
        match self {
            LayerParams::FullyConnected { num_neurons, .. } => Some(*num_neurons),
            _ => self.convolution().map(|c| c.num_neurons),
        }
    }

    pub fn weights_bits(&self) -> Option<u8> {
        match self {
            LayerParams::FullyConnected { weights_bits, .. } => Some(*weights_bits),
            _ => self.convolution().map(|c| c.weights_bits),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_ranges() {
        assert_eq!(weight_range(1), (0, 1));
        assert_eq!(weight_range(2), (-1, 1));
        assert_eq!(weight_range(4), (-7, 7));
        assert_eq!(weight_range(8), (-127, 127));
    }

    #[test]
    fn pooling_rules() {
        assert!(Pooling::new(PoolingType::NoPooling, 2, 2, -1, -1).is_err());
        assert!(Pooling::new(PoolingType::Max, 2, -1, -1, -1).is_err());
        assert!(Pooling::new(PoolingType::Max, -1, -1, -1, -1).is_ok());
        assert!(Pooling::new(PoolingType::Average, 0, 2, -1, -1).is_err());
    }

    #[test]
    fn activation_rules() {
        assert!(Activation::new(true, 0, 1.0, 3).is_err());
        assert!(Activation::new(true, 0, 0.0, 1).is_err());
        assert!(Activation::new(true, 0, f64::NAN, 1).is_err());
        assert!(Activation::new(true, 1 << 40, 1.0, 1).is_err());
        assert_eq!(Activation::new(true, -3, 0.5, 4).unwrap().max_value(), 15);
    }
}
