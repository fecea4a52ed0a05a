//! `Model::forward_to`: the output of any layer equals the output of the model cut after it, and
//! only the layers that output needs are counted in the statistics.

use akida_engine::testing::{engine_forward, random_inputs, random_model, Rng};
use akida_engine::{Input, Output, OutputKind};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn forward_to_equals_the_cut_model(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let model = random_model(&mut rng);
        let samples = rng.range(1, 3) as usize;
        let inputs = random_inputs(&model, &mut rng, samples);
        let dense = Input::Dense { data: &inputs, num_samples: samples };
        for target in 0..model.layers().len() {
            let mut cut = model.clone();
            while cut.layers().len() > target + 1 {
                cut.pop_layer().unwrap();
            }
            let expected = engine_forward(&cut, dense, false);
            let r = model.layers()[target].resolved().unwrap();
            let len = r.output_shape.len() * samples;
            let (got, stats) = match r.output {
                OutputKind::Activations { .. } => {
                    let mut out = vec![0u8; len];
                    let stats = model.forward_to(target, dense, Output::Activations(&mut out), true).unwrap();
                    (out.into_iter().map(i32::from).collect::<Vec<_>>(), stats)
                }
                OutputKind::Potentials => {
                    let mut out = vec![0i32; len];
                    let stats = model.forward_to(target, dense, Output::Potentials(&mut out), true).unwrap();
                    (out, stats)
                }
            };
            prop_assert_eq!(&got, &expected, "layer {}", target);
            let needed = model.needed_layers(target);
            for (i, s) in stats.iter().enumerate() {
                let counted = if needed.contains(&i) { samples as u64 } else { 0 };
                prop_assert_eq!(s.samples, counted, "statistics of layer {} for target {}", i, target);
            }
        }
    }
}

#[test]
fn forward_to_refuses_a_mismatched_buffer() {
    let mut rng = Rng(7);
    let model = random_model(&mut rng);
    let inputs = random_inputs(&model, &mut rng, 1);
    let mut out = vec![0u8; 1];
    let err = model.forward_to(0, Input::Dense { data: &inputs, num_samples: 1 }, Output::Activations(&mut out), false);
    assert!(err.is_err());
    assert!(model
        .forward_to(99, Input::Dense { data: &inputs, num_samples: 1 }, Output::Activations(&mut out), false)
        .is_err());
}
