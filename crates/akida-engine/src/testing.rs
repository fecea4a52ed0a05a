//! Deterministic random models and inputs, shared by the property tests of this crate and of the
//! format crate. Every value is in range, so the models are valid by construction.

use crate::params::{weight_range, Convolution};
use crate::{
    Activation, ConvolutionMode, Input, Layer, LayerParams, Model, Output, OutputKind, Pooling, PoolingType,
    VariableValues,
};

/// A small deterministic generator (SplitMix64) so one proptest seed describes a whole case.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        crate::learning::next_random(&mut self.0)
    }
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.next_u64() as usize % items.len()]
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
}

fn random_activation(rng: &mut Rng, allow_disabled: bool) -> Activation {
    let bits = rng.pick(&[1, 2, 4]);
    let step = rng.pick(&[0.25, 0.5, 1.0, 1.5, 2.0, 3.3, 7.0]);
    let enabled = !(allow_disabled && rng.chance(0.3));
    Activation::new(enabled, rng.range(-4, 6), step, bits).unwrap()
}

/// Random pooling: none, global, or windows of 1..5 cells (odd and even, often larger than the
/// small maps of the random models, which Same mode allows) with default or custom strides
/// (smaller or larger than the window).
pub fn random_pooling(rng: &mut Rng) -> Pooling {
    match rng.range(0, 4) {
        0 => Pooling::default(),
        1 => {
            let kind = rng.pick(&[PoolingType::Max, PoolingType::Average]);
            let stride = if rng.chance(0.3) { rng.range(1, 3) } else { -1 };
            Pooling::new(kind, -1, -1, stride, stride).unwrap()
        }
        _ => {
            let kind = rng.pick(&[PoolingType::Max, PoolingType::Average]);
            let stride = |rng: &mut Rng| if rng.chance(0.4) { -1 } else { rng.range(1, 4) };
            let (sx, sy) = (stride(rng), stride(rng));
            Pooling::new(kind, rng.range(1, 5), rng.range(1, 5), sx, sy).unwrap()
        }
    }
}

fn random_convolution(rng: &mut Rng, bits: &[u8]) -> Convolution {
    // Same (the default of the layers, and the only mode with padded pooling windows) half the time.
    let mode = rng.pick(&[ConvolutionMode::Valid, ConvolutionMode::Same, ConvolutionMode::Full, ConvolutionMode::Same]);
    Convolution::new(
        rng.range(1, 4),
        rng.range(1, 4),
        rng.pick(&[1, 2, 3, 5, 7, 8, 16, 33]),
        mode,
        rng.range(1, 3),
        rng.range(1, 3),
        i64::from(rng.pick(bits)),
        bits,
    )
    .unwrap()
}

/// Fills every variable of layer `index` with random in-range values, `density` of them non-zero.
fn randomize(model: &mut Model, index: usize, rng: &mut Rng) {
    let density = rng.pick(&[0.1, 0.5, 1.0]);
    let layer = model.layer_mut(index).unwrap();
    let bits = layer.params().weights_bits().unwrap_or(1);
    let (lo, hi) = weight_range(bits);
    for (name, shape) in layer.variable_specs() {
        let len: usize = shape.iter().product();
        let values = match name {
            "weights" | "weights_pw" => VariableValues::Int(
                (0..len).map(|_| if rng.chance(density) { rng.range(lo.into(), hi.into()) } else { 0 }).collect(),
            ),
            "threshold_fire" => VariableValues::Int((0..len).map(|_| rng.range(-3, 12)).collect()),
            "output_scale" => VariableValues::Float(
                (0..len).map(|_| rng.pick(&[1.0, 0.5, -2.0, 0.1, 1e-3, 3.75, -0.3, 1e6])).collect(),
            ),
            "output_offset" => {
                VariableValues::Float((0..len).map(|_| rng.pick(&[0.0, 0.25, -1.5, 100.0, -0.0, 1e-7])).collect())
            }
            "wta_groups" => {
                // Random runs of consecutive neurons.
                let mut group = 0;
                VariableValues::Int(
                    (0..len)
                        .map(|_| {
                            if rng.chance(0.4) {
                                group += 1;
                            }
                            group
                        })
                        .collect(),
                )
            }
            _ => VariableValues::Float((0..len).map(|_| rng.pick(&[0.25, 0.5, 1.0, 1.7, 2.0, 4.0])).collect()),
        };
        layer.set_variable(name, &shape, values).unwrap();
    }
}

/// Tries to append a random data-processing layer; geometry that does not fit is skipped.
fn try_add(model: &mut Model, rng: &mut Rng, last: bool) -> bool {
    let params = match rng.range(0, 2) {
        0 => LayerParams::fully_connected(
            rng.pick(&[1, 2, 5, 8, 9, 17, 40]),
            i64::from(rng.pick(&[1, 2, 4])),
            random_activation(rng, last),
        )
        .unwrap(),
        1 => LayerParams::Convolutional {
            conv: random_convolution(rng, &[1, 2, 4]),
            pooling: random_pooling(rng),
            activation: random_activation(rng, last),
        },
        _ => LayerParams::SeparableConvolutional {
            conv: random_convolution(rng, &[1, 2, 4]),
            pooling: random_pooling(rng),
            activation: random_activation(rng, last),
        },
    };
    if model.add(Layer::new("", params).unwrap(), None).is_err() {
        return false;
    }
    let i = model.layers().len() - 1;
    randomize(model, i, rng);
    true
}

pub fn random_model(rng: &mut Rng) -> Model {
    let mut model = Model::new();
    let input = if rng.chance(0.5) {
        LayerParams::input_data(rng.range(1, 9), rng.range(1, 9), rng.range(1, 4), rng.range(1, 4)).unwrap()
    } else {
        LayerParams::input_convolutional(
            rng.range(1, 10),
            rng.range(1, 10),
            rng.pick(&[1, 3]),
            random_convolution(rng, &[1, 2, 4, 8]),
            random_pooling(rng),
            Activation::new(true, rng.range(-50, 400), rng.pick(&[1.0, 30.0, 100.0]), rng.pick(&[1, 2, 4])).unwrap(),
            if rng.chance(0.3) { rng.range(1, 255) } else { 0 },
        )
        .and_then(|p| {
            Layer::new("", p)
                .map(|l| {
                    let _ = model.add(l, None);
                })
                .map(|_| LayerParams::Concat { activation: Activation::default() })
        })
        .unwrap_or(LayerParams::input_data(4, 4, 2, 2).unwrap())
    };
    if model.layers().is_empty() {
        let p = if matches!(input, LayerParams::Concat { .. }) {
            LayerParams::input_data(4, 4, 2, 2).unwrap()
        } else {
            input
        };
        model.add(Layer::new("", p).unwrap(), None).unwrap();
    }
    randomize(&mut model, 0, rng);
    let depth = rng.range(0, 3);
    for d in 0..depth {
        try_add(&mut model, rng, d + 1 == depth);
    }
    // Sometimes branch and join with a Concat.
    if rng.chance(0.25)
        && matches!(model.layers().last().unwrap().resolved().unwrap().output, OutputKind::Activations { .. })
    {
        let trunk = model.layers().len() - 1;
        let conv = |rng: &mut Rng| LayerParams::Convolutional {
            conv: Convolution::new(
                rng.range(1, 3),
                rng.range(1, 3),
                rng.range(1, 4),
                ConvolutionMode::Same,
                1,
                1,
                2,
                &[2],
            )
            .unwrap(),
            pooling: Pooling::default(),
            activation: random_activation(rng, false),
        };
        model.add(Layer::new("", conv(rng)).unwrap(), Some(&[trunk])).unwrap();
        randomize(&mut model, trunk + 1, rng);
        model.add(Layer::new("", conv(rng)).unwrap(), Some(&[trunk])).unwrap();
        randomize(&mut model, trunk + 2, rng);
        let act = random_activation(rng, true);
        model
            .add(Layer::new("", LayerParams::Concat { activation: act }).unwrap(), Some(&[trunk + 1, trunk + 2]))
            .unwrap();
        randomize(&mut model, trunk + 3, rng);
    }
    model
}

pub fn random_inputs(model: &Model, rng: &mut Rng, samples: usize) -> Vec<u8> {
    let shape = model.input_shape().unwrap();
    let max = match model.layers()[0].params() {
        LayerParams::InputData { input_bits, .. } => (1i64 << input_bits) - 1,
        _ => 255,
    };
    let density = rng.pick(&[0.05, 0.3, 0.8, 1.0]);
    (0..shape.len() * samples).map(|_| if rng.chance(density) { rng.range(1, max) as u8 } else { 0 }).collect()
}

/// Runs the optimized engine into an `Output::Rescaled` buffer (the last layer must emit
/// potentials).
pub fn engine_evaluate(model: &Model, input: Input<'_>, parallel: bool) -> Vec<f32> {
    let mut out = vec![0f32; model.output_shape().unwrap().len() * input.num_samples()];
    model.forward(input, Output::Rescaled(&mut out), parallel).unwrap();
    out
}

/// Runs the optimized engine and returns its output as i32 values.
pub fn engine_forward(model: &Model, input: Input<'_>, parallel: bool) -> Vec<i32> {
    let len = model.output_shape().unwrap().len() * input.num_samples();
    match model.output_kind().unwrap() {
        OutputKind::Activations { .. } => {
            let mut out = vec![0u8; len];
            model.forward(input, Output::Activations(&mut out), parallel).unwrap();
            out.into_iter().map(i32::from).collect()
        }
        OutputKind::Potentials => {
            let mut out = vec![0i32; len];
            model.forward(input, Output::Potentials(&mut out), parallel).unwrap();
            out
        }
    }
}
