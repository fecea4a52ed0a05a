//! The learning configuration and state of a compiled layer: plain data that layers hold and
//! model files save. A leaf module, so that layers do not depend on the learning code.

use crate::error::{bail, Result};

/// Parameters given to `Model::compile`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LearningConfig {
    /// Number of weights equal to 1 of every neuron, constant over time.
    pub num_weights: usize,
    /// Neurons form this many equal contiguous groups, one per class.
    pub num_classes: usize,
    pub initial_plasticity: f32,
    pub min_plasticity: f32,
    pub plasticity_decay: f32,
    pub learning_competition: f32,
    /// Seed of the random initial weights and of the choice of moved weights.
    pub seed: u64,
}

impl LearningConfig {
    /// Validates the ranges: `num_weights >= 1`, `num_classes >= 1`, the four floats in [0, 1].
    pub fn new(
        num_weights: i64,
        num_classes: i64,
        initial_plasticity: f64,
        min_plasticity: f64,
        plasticity_decay: f64,
        learning_competition: f64,
        seed: u64,
    ) -> Result<Self> {
        if num_weights < 1 {
            bail!(Parameter, "num_weights must be at least 1, got {num_weights}");
        }
        if num_classes < 1 {
            bail!(Parameter, "num_classes must be at least 1, got {num_classes}");
        }
        for (name, value) in [
            ("initial_plasticity", initial_plasticity),
            ("min_plasticity", min_plasticity),
            ("plasticity_decay", plasticity_decay),
            ("learning_competition", learning_competition),
        ] {
            if !(0.0..=1.0).contains(&value) {
                bail!(Parameter, "{name} must be in [0, 1], got {value}");
            }
        }
        Ok(LearningConfig {
            num_weights: num_weights as usize,
            num_classes: num_classes as usize,
            initial_plasticity: initial_plasticity as f32,
            min_plasticity: min_plasticity as f32,
            plasticity_decay: plasticity_decay as f32,
            learning_competition: learning_competition as f32,
            seed,
        })
    }
}

/// Everything `fit` depends on besides the weights; saved with the model.
#[derive(Debug, Clone, PartialEq)]
pub struct LearningState {
    /// Per neuron, between min(min_plasticity, initial_plasticity) and initial_plasticity.
    pub plasticity: Vec<f32>,
    /// Per neuron: 0 until it learns, then its potential right after its last learning step.
    pub threshold_learning: Vec<i32>,
    /// State of the SplitMix64 generator.
    pub rng: u64,
    /// Neuron-major `(neurons, connections)`: how many of the neuron's learning steps saw that
    /// connection's input spike (see [`MAX_INPUT_COUNT`] for saturation). A learning step scores
    /// every connection by these counts, compared with their sum over the layer's neurons, and
    /// moves the winner's weights toward the connections of highest score (`docs/learning.md`).
    pub input_counts: Vec<u8>,
}

/// Input counts saturate here: before a step would push a count of a neuron past it, all the
/// counts of that neuron are halved (rounding down), so the older steps weigh less.
pub const MAX_INPUT_COUNT: u8 = u8::MAX;

/// The learning configuration and state of a compiled layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Learning {
    pub config: LearningConfig,
    pub state: LearningState,
}
