//! Criterion benches of the engine kernels and of a whole forward pass.
//!
//! `cargo bench -p akida-engine --bench kernels` (or `make bench-rust`).

use std::hint::black_box;

use akida_engine::activation::Thresholds;
use akida_engine::kernels;
use akida_engine::params::Convolution;
use akida_engine::shape::{AxisGeometry, ConvGeometry};
use akida_engine::{
    Activation, ConvolutionMode, Event, ForcedKernels, Input, Layer, LayerParams, Method, Model, Output, Pooling,
    Shape3, VariableValues,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Deterministic pseudo-random values (SplitMix64).
fn values(n: usize, seed: u64) -> impl Iterator<Item = u64> {
    let mut state = seed;
    (0..n).map(move |_| {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

fn binary_events(shape: &Shape3, density_percent: u64, seed: u64) -> Vec<Event> {
    let mut events = Vec::new();
    for (i, r) in values(shape.len(), seed).enumerate() {
        if r % 100 < density_percent {
            let (pixel, c) = (i / shape.channels, i % shape.channels);
            events.push(Event {
                y: (pixel / shape.width) as u32,
                x: (pixel % shape.width) as u32,
                c: c as u32,
                value: 1,
            });
        }
    }
    events
}

fn fully_connected(c: &mut Criterion) {
    // The MNIST-shaped workload's second layer: 24x24x8 binary inputs, 1000 neurons, 1-bit weights.
    let shape = Shape3::new(24, 24, 8);
    let neurons = 1000;
    let weights: Vec<i8> = values(shape.len() * neurons, 1).map(|r| (r % 9 < 1) as i8).collect();
    let events = binary_events(&shape, 20, 2);
    let mut group = c.benchmark_group("fully_connected_events");
    group.throughput(Throughput::Elements((events.len() * neurons) as u64));
    group.bench_function("i16", |b| {
        let mut out = vec![0i16; neurons];
        b.iter(|| {
            out.fill(0);
            kernels::fully_connected_events(black_box(&events), &shape, &weights, neurons, &mut out)
        })
    });
    group.bench_function("i32", |b| {
        let mut out = vec![0i32; neurons];
        b.iter(|| {
            out.fill(0);
            kernels::fully_connected_events(black_box(&events), &shape, &weights, neurons, &mut out)
        })
    });
    group.finish();
}

fn convolutions(c: &mut Criterion) {
    // The CIFAR-shaped workload's second layer: 16x16x32 events, 3x3 kernel, 64 neurons.
    let shape = Shape3::new(16, 16, 32);
    let g = ConvGeometry {
        y: AxisGeometry::new(16, 3, 1, ConvolutionMode::Same).unwrap(),
        x: AxisGeometry::new(16, 3, 1, ConvolutionMode::Same).unwrap(),
    };
    let neurons = 64;
    let weights: Vec<i8> = values(9 * 32 * neurons, 3).map(|r| (r % 3) as i8 - 1).collect();
    let events = binary_events(&shape, 15, 4);
    let mut group = c.benchmark_group("convolution");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("convolve_events_i16", |b| {
        let mut out = vec![0i16; 16 * 16 * neurons];
        b.iter(|| {
            out.fill(0);
            kernels::convolve_events(black_box(&events), &shape, &g, &weights, neurons, &mut out)
        })
    });
    // The CIFAR-shaped first layer: a 32x32 RGB image, 3x3 kernel, 32 neurons, 8-bit weights.
    let image_shape = Shape3::new(32, 32, 3);
    let image: Vec<u8> = values(image_shape.len(), 5).map(|r| r as u8).collect();
    let g32 = ConvGeometry {
        y: AxisGeometry::new(32, 3, 1, ConvolutionMode::Same).unwrap(),
        x: AxisGeometry::new(32, 3, 1, ConvolutionMode::Same).unwrap(),
    };
    let image_weights: Vec<i8> = values(27 * 32, 6).map(|r| (r % 255) as i8).map(|w| w.max(-127)).collect();
    group.bench_function("input_convolution_i32", |b| {
        let mut out = vec![0i32; 32 * 32 * 32];
        b.iter(|| {
            out.fill(0);
            kernels::input_convolution(black_box(&image), &image_shape, &g32, &image_weights, 32, 0, &mut out)
        })
    });
    group.finish();
}

fn activation(c: &mut Criterion) {
    let shape = Shape3::new(32, 32, 32);
    let potentials: Vec<i32> = values(shape.len(), 7).map(|r| (r % 2000) as i32 - 1000).collect();
    let mut group = c.benchmark_group("activate");
    group.throughput(Throughput::Elements(shape.len() as u64));
    for bits in [1u8, 4] {
        let thresholds = Thresholds::new(&[600; 32], &[50.0; 32], bits);
        group.bench_function(format!("{bits}-bit"), |b| {
            let (mut out, mut levels) = (Vec::with_capacity(shape.len()), Vec::new());
            b.iter(|| {
                out.clear();
                kernels::post::activate_dense(black_box(&potentials), &shape, &thresholds, &mut levels, &mut out);
                out.len()
            })
        });
        // The dense levels alone: what a layer whose consumers run fixed-work kernels does.
        group.bench_function(format!("{bits}-bit_levels_only"), |b| {
            let mut levels = vec![0u8; shape.len()];
            b.iter(|| {
                thresholds.levels(black_box(&potentials), &mut levels);
                kernels::post::count_nonzero(&levels)
            })
        });
        group.bench_function(format!("{bits}-bit_plain"), |b| {
            let mut out = Vec::with_capacity(shape.len());
            b.iter(|| {
                out.clear();
                kernels::post::plain_activate(black_box(&potentials), &shape, &thresholds, &mut out);
                out.len()
            })
        });
    }
    group.finish();
}

fn forward(c: &mut Criterion) {
    // The MNIST-shaped workload end to end, 256 images per iteration.
    let mut model = Model::new();
    let conv = Convolution::new(5, 5, 8, ConvolutionMode::Valid, 1, 1, 4, &[4]).unwrap();
    let act = Activation::new(true, 1500, 1.0, 1).unwrap();
    let input = LayerParams::input_convolutional(28, 28, 1, conv, Pooling::default(), act, 0).unwrap();
    model.add(Layer::new("", input).unwrap(), None).unwrap();
    let w: Vec<i64> = values(200, 8).map(|r| (r % 15) as i64 - 7).collect();
    model.layer_mut(0).unwrap().set_variable("weights", &[5, 5, 1, 8], VariableValues::Int(w)).unwrap();
    let fc = LayerParams::fully_connected(1000, 1, Activation::new(false, 0, 1.0, 1).unwrap()).unwrap();
    model.add(Layer::new("", fc).unwrap(), None).unwrap();
    let w: Vec<i64> = values(4608 * 1000, 9).map(|r| (r % 9 < 1) as i64).collect();
    model.layer_mut(1).unwrap().set_variable("weights", &[24, 24, 8, 1000], VariableValues::Int(w)).unwrap();
    let samples = 256;
    // Blob-like images: bright discs on a dark background.
    let mut images = vec![0u8; samples * 784];
    for (s, r) in values(samples, 10).enumerate() {
        let (cy, cx, radius) = (8 + (r % 12) as i64, 8 + ((r >> 8) % 12) as i64, 4 + ((r >> 16) % 5) as i64);
        for y in 0..28i64 {
            for x in 0..28i64 {
                if (y - cy).pow(2) + (x - cx).pow(2) <= radius * radius {
                    images[s * 784 + (y * 28 + x) as usize] = 255;
                }
            }
        }
    }
    let mut out = vec![0i32; samples * 1000];
    let mut group = c.benchmark_group("forward");
    group.throughput(Throughput::Elements(samples as u64));
    for parallel in [false, true] {
        group.bench_function(if parallel { "mnist_shaped_parallel" } else { "mnist_shaped_1_thread" }, |b| {
            b.iter(|| {
                model
                    .forward(
                        Input::Dense { data: black_box(&images), num_samples: samples },
                        Output::Potentials(&mut out),
                        parallel,
                    )
                    .unwrap()
            })
        });
    }
    // The same model, one thread, with the cost model's choice against every layer forced to the
    // event-driven kernels (the engine before the dense and bit-packed kernels), at the images'
    // own density and with the first layer firing for most outputs (threshold 0).
    for (threshold, label) in [(1500, "as_is"), (0, "dense_firing")] {
        let mut m = model.clone();
        let n = 8;
        m.layer_mut(0).unwrap().set_variable("threshold_fire", &[n], VariableValues::Int(vec![threshold; n])).unwrap();
        for (forced, name) in [(None, "chosen"), (Some(Method::Events), "events_only")] {
            let mut m = m.clone();
            m.set_forced_kernels(ForcedKernels { set: None, method: forced });
            group.bench_function(format!("mnist_shaped_1_thread_{label}_{name}"), |b| {
                b.iter(|| {
                    m.forward(
                        Input::Dense { data: black_box(&images), num_samples: samples },
                        Output::Potentials(&mut out),
                        false,
                    )
                    .unwrap()
                })
            });
        }
    }
    group.finish();
}

/// The dense and bit-packed kernels on the benchmark networks' layers, next to the event-driven
/// kernel at 15 % and 75 % input density, for every kernel set of this processor (the element
/// throughput is multiply-adds of the dense layer, so the figures compare directly).
fn fixed_work_kernels(c: &mut Criterion) {
    use kernels::bits::{self, BitWeights};
    use kernels::dot::{self, DotWeights, Windows};
    let same = |n: usize, k: usize| AxisGeometry::new(n, k, 1, ConvolutionMode::Same).unwrap();

    // CIFAR-shaped Convolutional: 16x16x32 binary inputs, 3x3, 64 neurons, 2-bit weights.
    let shape = Shape3::new(16, 16, 32);
    let g = ConvGeometry { y: same(16, 3), x: same(16, 3) };
    let neurons = 64;
    let weights: Vec<i8> = values(9 * 32 * neurons, 3).map(|r| (r % 3) as i8 - 1).collect();
    let packed = DotWeights::convolution(&weights, 3, 3, 32, neurons, true);
    let macs = (16 * 16 * 9 * 32 * neurons) as u64;
    let mut group = c.benchmark_group("cifar_convolution");
    group.throughput(Throughput::Elements(macs));
    for density in [15, 75] {
        let events = binary_events(&shape, density, 4);
        group.bench_function(format!("events_i16_{density}%"), |b| {
            let mut out = vec![0i16; 16 * 16 * neurons];
            b.iter(|| {
                out.fill(0);
                kernels::convolve_events(black_box(&events), &shape, &g, &weights, neurons, &mut out)
            })
        });
        for set in kernels::KernelSet::available() {
            group.bench_function(format!("dense_{}_{density}%", set.name()), |b| {
                let (mut map, mut out) = (Vec::new(), vec![0i32; 16 * 16 * neurons]);
                b.iter(|| {
                    dot::events_map(black_box(&events), &shape, &g, &mut map);
                    set.dot_product(&map, 1, &Windows::convolution(&g, 32), &packed, &mut out)
                })
            });
        }
    }
    group.finish();

    // Image layers: CIFAR-shaped 32x32x3, 3x3, 32 neurons, 8-bit; MNIST-shaped 28x28x1, 5x5, 8.
    for (name, h, c_in, k, n, mode) in [
        ("cifar_input_convolution", 32, 3, 3, 32, ConvolutionMode::Same),
        ("mnist_input_convolution", 28, 1, 5, 8, ConvolutionMode::Valid),
    ] {
        let image_shape = Shape3::new(h, h, c_in);
        let image: Vec<u8> = values(image_shape.len(), 5).map(|r| r as u8).collect();
        let axis = AxisGeometry::new(h, k, 1, mode).unwrap();
        let g = ConvGeometry { y: axis, x: axis };
        let w: Vec<i8> = values(k * k * c_in * n, 6).map(|r| (r % 255) as i8).map(|w| w.max(-127)).collect();
        let packed = DotWeights::convolution(&w, k, k, c_in, n, false);
        let positions = g.y.output * g.x.output;
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements((positions * k * k * c_in * n) as u64));
        group.bench_function("events_i32", |b| {
            let mut out = vec![0i32; positions * n];
            b.iter(|| {
                out.fill(0);
                kernels::input_convolution(black_box(&image), &image_shape, &g, &w, n, 0, &mut out)
            })
        });
        for set in kernels::KernelSet::available() {
            group.bench_function(format!("dense_{}", set.name()), |b| {
                let (mut map, mut out) = (Vec::new(), vec![0i32; positions * n]);
                b.iter(|| {
                    dot::image_map(black_box(&image), &image_shape, &g, 0, &mut map);
                    set.dot_product(&map, 255, &Windows::convolution(&g, c_in), &packed, &mut out)
                })
            });
        }
        group.finish();
    }

    // MNIST-shaped FullyConnected: 24x24x8 binary inputs, 1000 neurons, 1-bit weights.
    let shape = Shape3::new(24, 24, 8);
    let neurons = 1000;
    let weights: Vec<i8> = values(shape.len() * neurons, 1).map(|r| (r % 9 < 1) as i8).collect();
    let packed_bits = BitWeights::new(&weights, shape.len(), neurons, 1);
    let packed_dot = DotWeights::fully_connected(&weights, shape.len(), neurons);
    let mut group = c.benchmark_group("mnist_fully_connected");
    group.throughput(Throughput::Elements((shape.len() * neurons) as u64));
    for density in [15, 75] {
        let events = binary_events(&shape, density, 2);
        group.bench_function(format!("events_i16_{density}%"), |b| {
            let mut out = vec![0i16; neurons];
            b.iter(|| {
                out.fill(0);
                kernels::fully_connected_events(black_box(&events), &shape, &weights, neurons, &mut out)
            })
        });
        for set in kernels::KernelSet::available() {
            group.bench_function(format!("bit_packed_{}_{density}%", set.name()), |b| {
                let (mut planes, mut out) = (Vec::new(), vec![0i32; neurons]);
                b.iter(|| {
                    bits::input_planes(black_box(&events), &shape, 1, &mut planes);
                    set.fully_connected_bits(&planes, &packed_bits, &mut out)
                })
            });
        }
        let set = kernels::KernelSet::detected();
        group.bench_function(format!("dense_{}_{density}%", set.name()), |b| {
            let (mut map, mut out) = (Vec::new(), vec![0i32; neurons]);
            b.iter(|| {
                dot::vector_map(black_box(&events), &shape, &mut map);
                set.dot_product(&map, 1, &Windows::fully_connected(), &packed_dot, &mut out)
            })
        });
    }
    group.finish();
}

/// Events of a binary 28x28 image (about 19 % set, as the MNIST digits above 127): the eight-byte
/// scan against the plain one; and `fit` of the MNIST-shaped learning layer (784 binary inputs,
/// 500 neurons of 200 weights, 10 classes), whose potentials run bit-packed or event-driven.
fn learning(c: &mut Criterion) {
    let shape = Shape3::new(28, 28, 1);
    let samples = 1000;
    let images: Vec<u8> = values(samples * 784, 11).map(|r| u8::from(r % 100 < 19)).collect();
    let mut group = c.benchmark_group("events_from_levels");
    let mut events = Vec::new();
    group.bench_function("image_28x28", |b| {
        b.iter(|| {
            events.clear();
            kernels::post::events_from_levels(black_box(&images[..784]), &shape, &mut events);
        })
    });
    group.bench_function("image_28x28_plain", |b| {
        b.iter(|| {
            events.clear();
            akida_engine::events::events_from_dense(&shape, black_box(&images[..784]), &mut events);
        })
    });
    group.finish();
    let mut model = Model::new();
    model.add(Layer::new("in", LayerParams::input_data(28, 28, 1, 1).unwrap()).unwrap(), None).unwrap();
    let fc = LayerParams::fully_connected(500, 1, Activation::new(false, 0, 1.0, 1).unwrap()).unwrap();
    model.add(Layer::new("fc", fc).unwrap(), None).unwrap();
    model.compile(akida_engine::learning::LearningConfig::new(200, 10, 1.0, 0.1, 0.25, 0.0, 0).unwrap()).unwrap();
    let labels: Vec<i64> = values(samples, 12).map(|r| (r % 10) as i64).collect();
    let mut out = vec![0i32; samples * 500];
    let mut group = c.benchmark_group("fit");
    group.throughput(Throughput::Elements(samples as u64));
    group.sample_size(20);
    // Every kernel set this processor has (the learning step runs in the plan's build too), so
    // that one machine also measures the smaller instruction sets.
    let mut variants = vec![(ForcedKernels { set: None, method: None }, "chosen".to_owned())];
    variants.push((ForcedKernels { set: None, method: Some(Method::Events) }, "events_only".to_owned()));
    for set in kernels::KernelSet::available() {
        variants.push((ForcedKernels { set: Some(set), method: None }, format!("{}_chosen", set.name())));
    }
    for (forced, name) in variants {
        let mut m = model.clone();
        m.set_forced_kernels(forced);
        group.bench_function(format!("mnist_shaped_500x200_{name}"), |b| {
            b.iter_batched(
                || m.clone(),
                |mut m| {
                    m.fit(
                        Input::Dense { data: black_box(&images), num_samples: samples },
                        Some(&labels),
                        Output::Potentials(&mut out),
                        true,
                    )
                    .unwrap()
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, fully_connected, convolutions, activation, forward, fixed_work_kernels, learning);
criterion_main!(benches);
