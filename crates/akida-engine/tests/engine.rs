//! Integration tests of the engine: optimized kernels and the whole forward pass against the plain
//! reference implementation, on many random models, shapes and sparsities.

use akida_engine::testing::{engine_forward, random_inputs, random_model, Rng};
use akida_engine::{
    reference, Activation, EventBatch, Input, Layer, LayerKind, LayerParams, Model, Output, VariableValues,
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
            prop_assert_eq!(engine_forward(&model, Input::Events(&batch), true), got);
        }
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
