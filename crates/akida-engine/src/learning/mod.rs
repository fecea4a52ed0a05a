//! Akida unsupervised ("edge") learning of the last layer. The rule, every tie and rounding, is
//! documented in `docs/learning.md`; [`rule`] follows it step by step.
//!
//! - [`state`]: the configuration and state a compiled layer holds (a leaf: layers depend on it);
//! - [`rule`]: the learning rule on plain slices;
//! - [`fit`]: the model-level API, which runs layers through [`crate::executor`];
//! - `relay`: the hand-over between `fit`'s two workers (private).

pub mod fit;
mod relay;
pub mod rule;
pub mod state;

pub use state::{Learning, LearningConfig, LearningState, MAX_INPUT_COUNT};

pub(crate) use fit::LearningScratch;
pub(crate) use rule::next_random;
