//! The public face of the model: the graph ([`Model`]), the inputs and outputs of a forward call,
//! the statistics, and `classify`. The parts live in [`crate::graph`], [`crate::plan`],
//! [`crate::executor`] and [`crate::statistics`].

use crate::error::{bail, Result};

pub use crate::executor::{rescale, Input, Output};
pub use crate::graph::Model;
pub use crate::statistics::LayerStatistics;

/// The class of each sample from a model output of `samples` x `(H, W, channels)` values: the score
/// of a neuron is its largest value over positions, neurons form `num_classes` equal contiguous
/// groups, and a sample gets the group of its best neuron (lowest index on ties), or -1 when no
/// score is above 0.
pub fn classify<T: Copy + Into<i32>>(
    output: &[T],
    channels: usize,
    samples: usize,
    num_classes: usize,
) -> Result<Vec<i32>> {
    if num_classes == 0 || num_classes > channels || !channels.is_multiple_of(num_classes) {
        bail!(Parameter, "num_classes must divide the {channels} output neurons into equal groups, got {num_classes}");
    }
    let per_class = channels / num_classes;
    let sample_len = output.len().checked_div(samples).unwrap_or(0);
    let mut classes = crate::error::reserved_vec(samples, "the predicted classes")?;
    let mut scores = crate::error::filled_vec(channels, i32::MIN, "the class scores")?;
    for s in 0..samples {
        scores.fill(i32::MIN);
        for values in output[s * sample_len..(s + 1) * sample_len].chunks_exact(channels) {
            for (score, &v) in scores.iter_mut().zip(values) {
                *score = (*score).max(v.into());
            }
        }
        let mut best = 0;
        for (n, &score) in scores.iter().enumerate() {
            if score > scores[best] {
                best = n;
            }
        }
        classes.push(if scores[best] > 0 { (best / per_class) as i32 } else { -1 });
    }
    Ok(classes)
}
