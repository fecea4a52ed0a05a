//! Integration tests of the engine: optimized kernels and the whole forward pass against the plain
//! reference implementation, on many random models, shapes and sparsities.

use akida_engine::shape::PoolGeometry;
use akida_engine::testing::{engine_evaluate, engine_forward, random_inputs, random_model, random_pooling, Rng};
use akida_engine::{
    kernels, reference, Activation, ConvolutionMode, EventBatch, ForcedKernels, Input, Layer, LayerKind, LayerParams,
    Method, Model, Output, OutputKind, PoolingType, Shape3, VariableValues,
};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn optimized_forward_matches_reference(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let model = random_model(&mut rng);
        let samples = rng.range(1, 4) as usize;
        let inputs = random_inputs(&model, &mut rng, samples);
        let dense = Input::Dense { data: &inputs, num_samples: samples };
        let got = engine_forward(&model, dense, true);
        let sequential = engine_forward(&model, dense, false);
        prop_assert_eq!(&got, &sequential);
        let mut wide = model.clone();
        wide.set_force_wide_accumulators(true);
        prop_assert_eq!(&engine_forward(&wide, dense, true), &got);
        let per_sample = got.len() / samples;
        let in_len = model.input_shape().unwrap().len();
        for s in 0..samples {
            let expected = reference::forward_sample(&model, &inputs[s * in_len..(s + 1) * in_len]);
            prop_assert_eq!(&got[s * per_sample..(s + 1) * per_sample], expected.as_slice(), "sample {}", s);
        }
        if model.layers()[0].kind() == LayerKind::InputData {
            let batch = EventBatch::from_dense(model.input_shape().unwrap(), samples, &inputs).unwrap();
            prop_assert_eq!(engine_forward(&model, Input::Events(&batch), true), got.clone());
        }
        // The rescaled output: per neuron, float32(float64(p) * scale + offset), written out here.
        if model.output_kind().unwrap() == OutputKind::Potentials {
            let last = model.layers().last().unwrap();
            let (scale, offset) = (last.output_scale(), last.output_offset());
            let n = scale.len();
            let expected: Vec<f32> = got
                .iter()
                .enumerate()
                .map(|(i, &p)| (p as f64 * scale[i % n] as f64 + offset[i % n] as f64) as f32)
                .collect();
            let rescaled = engine_evaluate(&model, dense, true);
            prop_assert_eq!(
                rescaled.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
            prop_assert_eq!(engine_evaluate(&model, dense, false), rescaled);
        }
    }

    /// The pooling kernel against the reference on random maps, modes and windows (odd sizes,
    /// windows larger than their stride and than the map, extreme potentials).
    #[test]
    fn pool_kernel_matches_reference(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        // Channel counts in whole groups of eight take the kernel's lane-group path.
        let channels = if rng.chance(0.5) { rng.range(1, 6) } else { rng.pick(&[8, 16, 24, 64]) };
        let shape = Shape3::new(rng.range(1, 11) as usize, rng.range(1, 11) as usize, channels as usize);
        let mode = rng.pick(&[ConvolutionMode::Valid, ConvolutionMode::Same, ConvolutionMode::Full]);
        let pooling = random_pooling(&mut rng);
        let Ok(Some(g)) = PoolGeometry::new(&pooling, shape.height, shape.width, mode, "'pool'") else {
            return Ok(());
        };
        let extremes = [i32::MIN, i32::MIN + 1, -1, 0, 1, i32::MAX - 1, i32::MAX];
        let input: Vec<i32> = (0..shape.len())
            .map(|_| if rng.chance(0.2) { rng.pick(&extremes) } else { rng.range(-40, 40) as i32 })
            .collect();
        let mut out = vec![0; g.y.output * g.x.output * shape.channels];
        kernels::pool(&input, &shape, &g, &mut out, &mut Vec::new());
        prop_assert_eq!(out, reference::pool(&input, &shape, &g));
    }
}

#[test]
fn same_pooling_ignores_the_padded_cells() {
    // One row 1..=5, window 2, stride 2, Same: windows [1 2] [3 4] [5 + pad].
    let pooling = |kind| akida_engine::Pooling::new(kind, 2, 1, -1, -1).unwrap();
    let shape = Shape3::new(1, 5, 1);
    let input = [1, 2, 3, 4, -5];
    for (kind, expected) in [(PoolingType::Max, [2, 4, -5]), (PoolingType::Average, [1, 3, -5])] {
        let g = PoolGeometry::new(&pooling(kind), 1, 5, ConvolutionMode::Same, "'p'").unwrap().unwrap();
        let mut out = vec![0; 3];
        kernels::pool(&input, &shape, &g, &mut out, &mut Vec::new());
        assert_eq!(out, expected);
        assert_eq!(reference::pool(&input, &shape, &g), expected);
        let err = PoolGeometry::new(&pooling(kind), 1, 1, ConvolutionMode::Valid, "'p'").unwrap_err();
        assert!(err.to_string().contains("pooling_width 2 is larger than the map (1) in Valid mode"), "{err}");
    }
}

#[test]
fn statistics_count_events_and_operations() {
    let mut model = Model::new();
    model.add(Layer::new("in", LayerParams::input_data(3, 2, 1, 1).unwrap()).unwrap(), None).unwrap();
    let fc = LayerParams::fully_connected(4, 1, Activation::default()).unwrap();
    model.add(Layer::new("fc", fc).unwrap(), None).unwrap();
    model.layer_mut(1).unwrap().set_variable("weights", &[2, 3, 1, 4], VariableValues::Int(vec![1; 24])).unwrap();
    let data = [1u8, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    let mut out = vec![0u8; 8];
    let stats =
        model.forward(Input::Dense { data: &data, num_samples: 2 }, Output::Activations(&mut out), true).unwrap();
    assert_eq!(out, [1, 1, 1, 1, 0, 0, 0, 0]);
    assert_eq!(stats[1].synaptic_operations, 3 * 4);
    assert_eq!(stats[1].samples, 2);
    assert!((stats[1].input_sparsity() - 0.75).abs() < 1e-12);
    assert!((stats[1].output_sparsity() - 0.5).abs() < 1e-12);
}

#[test]
fn overflowing_layers_are_rejected() {
    let mut model = Model::new();
    model.add(Layer::new("in", LayerParams::input_data(4096, 4096, 16, 8).unwrap()).unwrap(), None).unwrap();
    let fc = LayerParams::fully_connected(2, 4, Activation::default()).unwrap();
    let err = model.add(Layer::new("fc", fc).unwrap(), None).unwrap_err();
    assert!(err.to_string().contains("int32"), "{err}");
    assert_eq!(model.layers().len(), 1);
}

#[test]
fn default_names_are_unique() {
    let mut model = Model::new();
    model.add(Layer::new("", LayerParams::input_data(2, 2, 1, 1).unwrap()).unwrap(), None).unwrap();
    for _ in 0..3 {
        let fc = LayerParams::fully_connected(2, 1, Activation::default()).unwrap();
        model.add(Layer::new("", fc).unwrap(), None).unwrap();
    }
    let names: Vec<&str> = model.layers().iter().map(|l| l.name()).collect();
    assert_eq!(names, ["input_data", "fully_connected", "fully_connected_1", "fully_connected_2"]);
}

fn compiled_fc(seed: u64) -> Model {
    let mut model = Model::new();
    model.add(Layer::new("", LayerParams::input_data(7, 5, 2, 1).unwrap()).unwrap(), None).unwrap();
    let fc = LayerParams::fully_connected(12, 1, Activation::new(false, 0, 1.0, 1).unwrap()).unwrap();
    model.add(Layer::new("", fc).unwrap(), None).unwrap();
    let config = akida_engine::learning::LearningConfig::new(9, 4, 1.0, 0.1, 0.25, 0.1, seed).unwrap();
    model.compile(config).unwrap();
    model
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Learning is sequential and deterministic: one call on a batch equals one call per sample,
    /// in parallel or not, and every neuron keeps exactly num_weights ones.
    #[test]
    fn fit_is_deterministic_and_keeps_the_weight_count(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let mut batch = compiled_fc(seed);
        let samples = 12;
        let inputs = random_inputs(&batch, &mut rng, samples);
        let labels: Vec<i64> = (0..samples).map(|_| rng.range(0, 5)).collect();
        let mut out = vec![0i32; samples * 12];
        batch.fit(Input::Dense { data: &inputs, num_samples: samples }, Some(&labels), Output::Potentials(&mut out), true).unwrap();
        let mut single = compiled_fc(seed);
        let per = inputs.len() / samples;
        let mut single_out = vec![0i32; samples * 12];
        for s in 0..samples {
            single.fit(
                Input::Dense { data: &inputs[s * per..(s + 1) * per], num_samples: 1 },
                Some(&labels[s..s + 1]),
                Output::Potentials(&mut single_out[s * 12..(s + 1) * 12]),
                false,
            ).unwrap();
        }
        prop_assert_eq!(&batch, &single);
        prop_assert_eq!(&out, &single_out);
        let weights = batch.layers()[1].weights();
        for n in 0..12 {
            prop_assert_eq!(weights.chunks_exact(12).filter(|row| row[n] == 1).count(), 9);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// The learning layer's potentials in `fit` through every kernel set and method give the same
    /// outputs, weights and learning state, and the plan cached after `fit` holds the bit-packed
    /// copy of the learned weights (packing them afresh gives the same words), also when the plan
    /// was shared with another holder during `fit` and after `add_classes` and a second `fit`.
    #[test]
    fn fit_through_every_kernel_learns_the_same(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let mut model = Model::new();
        let (h, w, c) = (rng.range(1, 9) as usize, rng.range(1, 9) as usize, rng.range(1, 3) as usize);
        model.add(Layer::new("", LayerParams::input_data(w as i64, h as i64, c as i64, 1).unwrap()).unwrap(), None).unwrap();
        let classes = rng.range(1, 4) as usize;
        let per_class = rng.range(1, 6) as usize;
        let neurons = classes * per_class;
        let fc = LayerParams::fully_connected(neurons as i64, 1, Activation::new(false, 0, 1.0, 1).unwrap()).unwrap();
        model.add(Layer::new("", fc).unwrap(), None).unwrap();
        let num_weights = rng.range(1, (h * w * c) as i64) as usize;
        let config =
            akida_engine::learning::LearningConfig::new(num_weights as i64, classes as i64, 1.0, 0.1, 0.25, 0.0, seed).unwrap();
        model.compile(config).unwrap();
        let samples = rng.range(1, 30) as usize;
        let inputs = random_inputs(&model, &mut rng, samples);
        let labels: Vec<i64> = (0..samples).map(|_| rng.range(0, classes as i64)).collect();
        let more_labels: Vec<i64> = (0..samples).map(|_| rng.range(0, classes as i64 + 1)).collect();
        let inputs_of = |s| Input::Dense { data: &inputs, num_samples: s };
        let packed_matches = |m: &Model, total: usize| {
            let fresh = akida_engine::kernels::bits::BitWeights::new(m.layers()[1].weights(), h * w * c, total, 1);
            m.plan().layers[1].bits.as_deref() == Some(&fresh)
        };
        let mut first: Option<(Vec<i32>, Model)> = None;
        for set in kernels::KernelSet::available() {
            for method in [None, Some(Method::Events), Some(Method::BitPacked)] {
                let mut m = model.clone();
                m.set_forced_kernels(ForcedKernels { set: Some(set), method });
                // Another holder of the plan while `fit` runs: its copy must not change.
                let shared = m.plan();
                let before = shared.layers[1].bits.as_deref().cloned();
                let mut out = vec![0i32; samples * neurons];
                let stats = m.fit(inputs_of(samples), Some(&labels), Output::Potentials(&mut out), true).unwrap();
                if method == Some(Method::BitPacked) {
                    prop_assert_eq!(stats[1].kernels[Method::BitPacked as usize], samples as u64);
                }
                prop_assert_eq!(shared.layers[1].bits.as_deref().cloned(), before, "the shared plan is left as it was");
                prop_assert!(packed_matches(&m, neurons), "the cached plan follows the learned weights");
                m.add_classes(1).unwrap();
                let total = neurons + per_class;
                let mut more = vec![0i32; samples * total];
                m.fit(inputs_of(samples), Some(&more_labels), Output::Potentials(&mut more), false).unwrap();
                prop_assert!(packed_matches(&m, total), "after add_classes and a second fit");
                out.extend(more);
                m.set_forced_kernels(ForcedKernels::default());
                match &first {
                    None => first = Some((out, m)),
                    Some((o, f)) => {
                        prop_assert_eq!(o, &out, "{} {:?}", set.name(), method);
                        prop_assert_eq!(f.layers(), m.layers(), "{} {:?}", set.name(), method);
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// What `fit` keeps between calls to learn fast changes nothing: fitting in one call, in
    /// chunks (the model keeping it between them) and in the same chunks with it freed before
    /// each call give the same outputs and model; and it follows a change of the weights between
    /// two calls. In parallel, the potentials are computed ahead (chunks of up to 64 samples):
    /// the same outputs, model and counters as one sample after the other.
    #[test]
    fn fit_in_chunks_learns_as_one_call(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let mut model = Model::new();
        let (h, w) = (rng.range(1, 7) as usize, rng.range(1, 7) as usize);
        model.add(Layer::new("", LayerParams::input_data(w as i64, h as i64, 1, 1).unwrap()).unwrap(), None).unwrap();
        let classes = rng.range(1, 4) as usize;
        let neurons = classes * rng.range(1, 5) as usize;
        let fc = LayerParams::fully_connected(neurons as i64, 1, Activation::new(false, 0, 1.0, 1).unwrap()).unwrap();
        model.add(Layer::new("", fc).unwrap(), None).unwrap();
        let num_weights = rng.range(1, (h * w) as i64) as usize;
        let config =
            akida_engine::learning::LearningConfig::new(num_weights as i64, classes as i64, 1.0, 0.1, 0.25, 0.0, seed).unwrap();
        model.compile(config).unwrap();
        let samples = rng.range(0, 200) as usize;
        let inputs = random_inputs(&model, &mut rng, samples);
        let labels: Vec<i64> = (0..samples).map(|_| rng.range(0, classes as i64 + 1)).collect();
        let per = h * w;
        let mut cuts = vec![0, samples];
        for _ in 0..rng.range(0, 5) {
            cuts.push(rng.range(0, samples as i64) as usize);
        }
        cuts.sort_unstable();
        let fit_chunks = |m: &mut Model, free: bool| {
            let mut out = vec![0i32; samples * neurons];
            for pair in cuts.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                if free {
                    m.release_learning_cache();
                }
                let input = Input::Dense { data: &inputs[a * per..b * per], num_samples: b - a };
                m.fit(input, Some(&labels[a..b]), Output::Potentials(&mut out[a * neurons..b * neurons]), true).unwrap();
            }
            out
        };
        let mut whole = model.clone();
        let mut whole_out = vec![0i32; samples * neurons];
        let input = Input::Dense { data: &inputs, num_samples: samples };
        let whole_stats = whole.fit(input, Some(&labels), Output::Potentials(&mut whole_out), false).unwrap();
        let mut ahead = model.clone();
        let mut ahead_out = vec![0i32; samples * neurons];
        let ahead_stats = ahead.fit(input, Some(&labels), Output::Potentials(&mut ahead_out), true).unwrap();
        prop_assert_eq!(&ahead_out, &whole_out);
        prop_assert_eq!(ahead.layers(), whole.layers());
        prop_assert_eq!(ahead_stats, whole_stats);
        let (mut kept, mut freed) = (model.clone(), model.clone());
        prop_assert_eq!(&fit_chunks(&mut kept, false), &whole_out);
        prop_assert_eq!(&fit_chunks(&mut freed, true), &whole_out);
        prop_assert_eq!(kept.layers(), whole.layers());
        prop_assert_eq!(freed.layers(), whole.layers());
        // New weights between two calls: the kept state must not be used.
        let new_weights: Vec<i64> = (0..per * neurons).map(|_| rng.range(0, 1)).collect();
        let shape = kept.layers()[1].variable_shape("weights").unwrap();
        for m in [&mut kept, &mut freed] {
            m.layer_mut(1).unwrap().set_variable("weights", &shape, VariableValues::Int(new_weights.clone())).unwrap();
        }
        freed.release_learning_cache();
        prop_assert_eq!(fit_chunks(&mut kept, false), fit_chunks(&mut freed, true));
        prop_assert_eq!(kept.layers(), freed.layers());
    }
}

/// The random models of the property tests do exercise the corners of Same-mode pooling.
#[test]
fn random_models_cover_same_pooling() {
    let (mut padded, mut larger_than_map, mut overlapping, mut odd, mut rescaled) = (0, 0, 0, 0, 0);
    for seed in 0..1500 {
        let model = random_model(&mut Rng(seed));
        for layer in model.layers() {
            let r = layer.resolved().unwrap();
            let (Some(g), Some(c)) = (r.pool, layer.params().convolution()) else { continue };
            if c.mode != ConvolutionMode::Same || layer.params().pooling().unwrap().width < 0 {
                continue;
            }
            for a in [g.y, g.x] {
                padded += usize::from(a.pad_before > 0 || (a.output - 1) * a.stride + a.window > a.input);
                larger_than_map += usize::from(a.window > a.input);
                overlapping += usize::from(a.window > a.stride);
                odd += usize::from(a.window % 2 == 1 && a.window > 1);
            }
        }
        rescaled += usize::from(model.output_kind().unwrap() == OutputKind::Potentials);
    }
    for (what, count) in [
        ("padded windows", padded),
        ("windows larger than the map", larger_than_map),
        ("windows larger than the stride", overlapping),
        ("odd windows", odd),
        ("models with rescaled potentials", rescaled),
    ] {
        assert!(count >= 100, "only {count} {what}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Every kernel set and every forced method (events, dense, bit-packed where a layer has it,
    /// and the cost model's own choice) give the reference output and the same statistics, apart
    /// from the count of samples per kernel.
    #[test]
    fn every_kernel_choice_matches_reference(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let model = random_model(&mut rng);
        let samples = rng.range(1, 4) as usize;
        let inputs = random_inputs(&model, &mut rng, samples);
        let dense = Input::Dense { data: &inputs, num_samples: samples };
        let in_len = model.input_shape().unwrap().len();
        let expected: Vec<i32> =
            (0..samples).flat_map(|s| reference::forward_sample(&model, &inputs[s * in_len..(s + 1) * in_len])).collect();
        let mut first_stats: Option<Vec<akida_engine::LayerStatistics>> = None;
        for set in kernels::KernelSet::available() {
            for method in [None, Some(Method::Events), Some(Method::Dense), Some(Method::BitPacked)] {
                let mut m = model.clone();
                m.set_forced_kernels(ForcedKernels { set: Some(set), method });
                prop_assert_eq!(&engine_forward(&m, dense, false), &expected, "{} {:?}", set.name(), method);
                let stats = forward_statistics(&m, dense);
                let counted: u64 = stats.iter().map(|s| s.kernels.iter().sum::<u64>()).sum();
                let weighted = m.layers().iter().zip(m.plan().layers.iter()).filter(|(_, p)| p.kernel != akida_engine::Kernel::PassThrough).count();
                prop_assert_eq!(counted, (weighted * samples) as u64, "one kernel per weighted layer and sample");
                let without_kernels: Vec<_> = stats.into_iter().map(|s| akida_engine::LayerStatistics { kernels: [0; 3], ..s }).collect();
                match &first_stats {
                    None => first_stats = Some(without_kernels),
                    Some(f) => prop_assert_eq!(f, &without_kernels, "{} {:?}", set.name(), method),
                }
            }
        }
    }
}

/// The statistics of a forward call of `model` on `input`.
fn forward_statistics(model: &Model, input: Input<'_>) -> Vec<akida_engine::LayerStatistics> {
    let len = model.output_shape().unwrap().len() * input.num_samples();
    match model.output_kind().unwrap() {
        OutputKind::Activations { .. } => model.forward(input, Output::Activations(&mut vec![0u8; len]), true),
        OutputKind::Potentials => model.forward(input, Output::Potentials(&mut vec![0i32; len]), true),
    }
    .unwrap()
}

/// The forced methods reach the layers that have them (a layer without the forced method is left to
/// the cost model), and dense inputs make the cost model leave the event-driven kernel.
#[test]
fn forced_and_chosen_methods_reach_the_layers() {
    let mut model = Model::new();
    model.add(Layer::new("in", LayerParams::input_data(6, 6, 4, 1).unwrap()).unwrap(), None).unwrap();
    let conv = LayerParams::Convolutional {
        conv: akida_engine::params::Convolution::new(3, 3, 32, ConvolutionMode::Same, 1, 1, 1, &[1, 2, 4]).unwrap(),
        pooling: akida_engine::Pooling::default(),
        activation: Activation::new(true, 0, 1.0, 1).unwrap(),
    };
    model.add(Layer::new("conv", conv).unwrap(), None).unwrap();
    let fc = LayerParams::fully_connected(300, 1, Activation::new(false, 0, 1.0, 1).unwrap()).unwrap();
    model.add(Layer::new("fc", fc).unwrap(), None).unwrap();
    let mut rng = Rng(3);
    for i in 1..3 {
        let layer = model.layer_mut(i).unwrap();
        let (name, shape) = layer.variable_specs()[0].clone();
        let len: usize = shape.iter().product();
        let values: Vec<i64> = (0..len).map(|_| rng.range(0, 1)).collect();
        layer.set_variable(name, &shape, VariableValues::Int(values)).unwrap();
    }
    let inputs = vec![1u8; 6 * 6 * 4 * 2];
    let input = Input::Dense { data: &inputs, num_samples: 2 };
    let runs = |m: &Model| forward_statistics(m, input).iter().map(|s| s.kernels).collect::<Vec<_>>();
    assert_eq!(runs(&model)[1][Method::Events as usize], 0, "all-ones inputs: the convolution runs dense");
    for (method, conv_runs, fc_runs) in [
        (Method::Events, Method::Events, Method::Events),
        (Method::Dense, Method::Dense, Method::BitPacked),
        // A method a layer lacks leaves it to the cost model (all-ones inputs: dense).
        (Method::BitPacked, Method::Dense, Method::BitPacked),
    ] {
        let mut m = model.clone();
        m.set_forced_kernels(ForcedKernels { set: None, method: Some(method) });
        let k = runs(&m);
        assert_eq!(k[1][conv_runs as usize], 2, "{method:?}: convolution");
        assert_eq!(k[2][fc_runs as usize], 2, "{method:?}: fully connected");
    }
}
