//! Plain reference implementation of every layer, written straight from `docs/semantics.md` on
//! dense tensors, without any of the optimizations of [`crate::kernels`]. Slow; used by tests to
//! check the optimized engine exactly.

use crate::activation::reference_response;
use crate::layer::Layer;
use crate::model::Model;
use crate::params::{LayerParams, PoolingType};
use crate::shape::{ConvGeometry, PoolGeometry, Shape3};

/// Potentials of a convolution over a dense input, before pooling. `flip` selects a true
/// convolution (kernel flipped), otherwise a cross-correlation. Padded cells hold `padding`.
#[allow(clippy::too_many_arguments)]
pub fn convolution(
    input: &[i32],
    shape: &Shape3,
    g: &ConvGeometry,
    weights: &[i8],
    neurons: usize,
    flip: bool,
    padding: i32,
) -> Vec<i32> {
    let (kh, kw, channels) = (g.y.kernel, g.x.kernel, shape.channels);
    let mut out = vec![0i32; g.y.output * g.x.output * neurons];
    for oy in 0..g.y.output {
        for ox in 0..g.x.output {
            for n in 0..neurons {
                let mut sum = 0i64;
                for ty in 0..kh {
                    for tx in 0..kw {
                        for c in 0..channels {
                            let value = match (g.y.input_cell(oy, ty), g.x.input_cell(ox, tx)) {
                                (Some(y), Some(x)) => input[shape.index(y, x, c)],
                                _ => padding,
                            };
                            let (wy, wx) = if flip { (kh - 1 - ty, kw - 1 - tx) } else { (ty, tx) };
                            let w = weights[((wy * kw + wx) * channels + c) * neurons + n];
                            sum += i64::from(value) * i64::from(w);
                        }
                    }
                }
                out[(oy * g.x.output + ox) * neurons + n] = sum as i32;
            }
        }
    }
    out
}

/// Separable convolution: depthwise true convolution per channel, then pointwise.
pub fn separable(
    input: &[i32],
    shape: &Shape3,
    g: &ConvGeometry,
    depthwise: &[i8],
    pointwise: &[i8],
    neurons: usize,
) -> Vec<i32> {
    let channels = shape.channels;
    let positions = g.y.output * g.x.output;
    let mut intermediate = vec![0i32; positions * channels];
    for c in 0..channels {
        // One channel at a time, as a one-neuron convolution of that channel alone.
        let single: Vec<i32> = (0..shape.height * shape.width).map(|p| input[p * channels + c]).collect();
        let kernel: Vec<i8> = (0..g.y.kernel * g.x.kernel).map(|t| depthwise[t * channels + c]).collect();
        let d = convolution(&single, &Shape3::new(shape.height, shape.width, 1), g, &kernel, 1, true, 0);
        for p in 0..positions {
            intermediate[p * channels + c] = d[p];
        }
    }
    let mut out = vec![0i32; positions * neurons];
    for p in 0..positions {
        for n in 0..neurons {
            let mut sum = 0i64;
            for c in 0..channels {
                sum += i64::from(intermediate[p * channels + c]) * i64::from(pointwise[c * neurons + n]);
            }
            out[p * neurons + n] = sum as i32;
        }
    }
    out
}

/// Fully connected potentials over a dense `(H, W, C)` input.
pub fn fully_connected(input: &[i32], weights: &[i8], neurons: usize) -> Vec<i32> {
    (0..neurons)
        .map(|n| {
            input.iter().enumerate().map(|(i, &v)| i64::from(v) * i64::from(weights[i * neurons + n])).sum::<i64>()
                as i32
        })
        .collect()
}

/// Pooling of dense potentials, one window at a time: window `o` of an axis covers the padded cells
/// `o * stride - pad_before .. o * stride - pad_before + window`; the cells outside the map are
/// left out (Max of the others, Average over their count).
pub fn pool(input: &[i32], shape: &Shape3, g: &PoolGeometry) -> Vec<i32> {
    let n = shape.channels;
    let inside = |o: usize, t: usize, a: &crate::shape::PoolAxis| {
        (o * a.stride + t).checked_sub(a.pad_before).filter(|&i| i < a.input)
    };
    let mut out = Vec::with_capacity(g.y.output * g.x.output * n);
    for py in 0..g.y.output {
        for px in 0..g.x.output {
            for c in 0..n {
                let mut values: Vec<i64> = Vec::new();
                for dy in 0..g.y.window {
                    for dx in 0..g.x.window {
                        if let (Some(y), Some(x)) = (inside(py, dy, &g.y), inside(px, dx, &g.x)) {
                            values.push(i64::from(input[shape.index(y, x, c)]));
                        }
                    }
                }
                assert!(!values.is_empty(), "a pooling window without map cells");
                let v = match g.kind {
                    PoolingType::Max => *values.iter().max().unwrap(),
                    PoolingType::Average => values.iter().sum::<i64>().div_euclid(values.len() as i64),
                    PoolingType::NoPooling => unreachable!(),
                };
                out.push(v as i32);
            }
        }
    }
    out
}

/// Output of `layer` for one sample, given the dense outputs of its inbound layers (or the input
/// sample for input layers). Activations and potentials are both returned as `i32`.
pub fn layer_output(layer: &Layer, inbound: &[Vec<i32>]) -> Vec<i32> {
    let r = layer.resolved().expect("reference layers are resolved");
    let input = &inbound[0];
    let potentials = match layer.params() {
        LayerParams::InputData { .. } => return input.clone(),
        LayerParams::Concat { .. } => {
            let positions = r.input_shape.height * r.input_shape.width;
            let mut out = Vec::with_capacity(r.input_shape.len());
            for p in 0..positions {
                for values in inbound {
                    let c = values.len() / positions;
                    out.extend_from_slice(&values[p * c..(p + 1) * c]);
                }
            }
            out
        }
        LayerParams::InputConvolutional { conv, padding_value, .. } => convolution(
            input,
            &r.input_shape,
            &r.conv.unwrap(),
            layer.weights(),
            conv.num_neurons,
            false,
            i32::from(*padding_value),
        ),
        LayerParams::Convolutional { conv, .. } => {
            convolution(input, &r.input_shape, &r.conv.unwrap(), layer.weights(), conv.num_neurons, true, 0)
        }
        LayerParams::SeparableConvolutional { conv, .. } => {
            separable(input, &r.input_shape, &r.conv.unwrap(), layer.weights(), layer.weights_pw(), conv.num_neurons)
        }
        LayerParams::FullyConnected { num_neurons, .. } => fully_connected(input, layer.weights(), *num_neurons),
    };
    let pooled = match &r.pool {
        Some(g) => pool(&potentials, &r.potentials_shape, g),
        None => potentials,
    };
    let activation = layer.params().activation().expect("every layer but InputData has an activation");
    if !activation.enabled {
        return pooled;
    }
    let n = r.output_shape.channels;
    let mut pooled = pooled;
    if let Some(groups) = layer.wta_ranges() {
        // Only the strongest neuron of each group (the lowest on ties) may fire at a position.
        for position in 0..pooled.len() / n {
            for g in &groups {
                let values: Vec<i32> = g.clone().map(|c| pooled[position * n + c]).collect();
                let max = *values.iter().max().unwrap();
                let winner = g.start + values.iter().position(|&v| v == max).unwrap();
                for c in g.clone() {
                    if c != winner {
                        pooled[position * n + c] = i32::MIN;
                    }
                }
            }
        }
    }
    pooled
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let c = i % n;
            i32::from(reference_response(
                p,
                layer.threshold_fire()[c],
                layer.threshold_fire_step()[c],
                activation.threshold_fire_bits,
            ))
        })
        .collect()
}

/// Reference forward pass of one dense sample through `model`; returns the last layer's output.
pub fn forward_sample(model: &Model, sample: &[u8]) -> Vec<i32> {
    let mut outputs: Vec<Vec<i32>> = Vec::with_capacity(model.layers().len());
    for (i, layer) in model.layers().iter().enumerate() {
        let inbound: Vec<Vec<i32>> = if i == 0 {
            vec![sample.iter().map(|&v| i32::from(v)).collect()]
        } else {
            model.inbound(i).iter().map(|&j| outputs[j].clone()).collect()
        };
        outputs.push(layer_output(layer, &inbound));
    }
    outputs.pop().unwrap_or_default()
}
