//! Kernel by kernel: every build of every accumulating kernel ([`KernelSet::available`], `i16` and
//! `i32`) against its plain twin on random shapes, values and filter ranges, writing both dense
//! and strided output regions; and the plain twins against [`crate::reference`].

use std::ops::Range;

use proptest::prelude::*;

use super::{bits, dense, dot, events, Accumulator, KernelSet, OutputRegion, WeightsView};
use crate::events::Event;
use crate::params::ConvolutionMode;
use crate::reference;
use crate::shape::{AxisGeometry, ConvGeometry, Shape3};
use crate::testing::Rng;

fn random_shape(rng: &mut Rng) -> Shape3 {
    Shape3::new(rng.range(1, 8) as usize, rng.range(1, 8) as usize, rng.range(1, 5) as usize)
}

fn random_geometry(rng: &mut Rng, shape: &Shape3) -> Option<ConvGeometry> {
    let mode = rng.pick(&[ConvolutionMode::Valid, ConvolutionMode::Same, ConvolutionMode::Full]);
    let axis = |rng: &mut Rng, n| AxisGeometry::new(n, rng.range(1, 4) as usize, rng.range(1, 3) as usize, mode);
    Some(ConvGeometry { y: axis(rng, shape.height)?, x: axis(rng, shape.width)? })
}

fn random_weights(rng: &mut Rng, len: usize, max: i64) -> Vec<i8> {
    (0..len).map(|_| if rng.chance(0.3) { 0 } else { rng.range(-max, max) as i8 }).collect()
}

/// Events in canonical order, about `density` of the cells, values `1..=max`.
fn random_events(rng: &mut Rng, shape: &Shape3, density: f64, max: i64) -> Vec<Event> {
    let mut out = Vec::new();
    for y in 0..shape.height {
        for x in 0..shape.width {
            for c in 0..shape.channels {
                if rng.chance(density) {
                    out.push(Event { y: y as u32, x: x as u32, c: c as u32, value: rng.range(1, max) as i32 });
                }
            }
        }
    }
    out
}

fn dense_of(events: &[Event], shape: &Shape3) -> Vec<i32> {
    let mut d = vec![0; shape.len()];
    events.iter().for_each(|e| d[e.index(shape)] = e.value);
    d
}

/// A random non-empty range of `0..neurons`, the whole of it a third of the time.
fn random_filters(rng: &mut Rng, neurons: usize) -> Range<usize> {
    if rng.chance(0.33) {
        return 0..neurons;
    }
    let start = rng.range(0, neurons as i64 - 1) as usize;
    start..rng.range(start as i64 + 1, neurons as i64) as usize
}

/// Runs `kernel` with accumulator `A` into a dense region and into the filters' share of a strided
/// `(positions, neurons)` tensor; checks both against `expected` (`(positions, filters)`) and
/// that nothing outside the share is written. Returns the operations counted.
fn check_regions<A: Accumulator>(
    positions: usize,
    neurons: usize,
    filters: &Range<usize>,
    expected: &[i32],
    kernel: impl Fn(OutputRegion<'_, A>) -> u64,
) -> Result<u64, TestCaseError> {
    let width = filters.len();
    let mut dense = vec![A::default(); positions * width];
    let ops = kernel(OutputRegion::dense(&mut dense, width));
    prop_assert_eq!(dense.iter().map(|v| v.widen()).collect::<Vec<_>>(), expected);
    let mut full = vec![A::default(); positions * neurons];
    let strided_ops = kernel(OutputRegion { data: &mut full[filters.start..], stride: neurons });
    prop_assert_eq!(strided_ops, ops);
    for p in 0..positions {
        for n in 0..neurons {
            let want = if filters.contains(&n) { expected[p * width + n - filters.start] } else { 0 };
            prop_assert_eq!(full[p * neurons + n].widen(), want, "position {} neuron {}", p, n);
        }
    }
    Ok(ops)
}

/// Whether potentials bounded by `bound` fit the `i16` accumulator.
fn fits_i16(bound: i64) -> bool {
    bound <= i64::from(i16::MAX)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn convolve_events_builds_match_the_plain_twin(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let shape = random_shape(&mut rng);
        let Some(g) = random_geometry(&mut rng, &shape) else { return Ok(()) };
        let neurons = rng.range(1, 40) as usize;
        let max_w = rng.pick(&[1, 7]);
        let max_v = rng.pick(&[1, 15]);
        let weights = random_weights(&mut rng, g.y.kernel * g.x.kernel * shape.channels * neurons, max_w);
        let density = rng.pick(&[0.05, 0.3, 1.0]);
        let events = random_events(&mut rng, &shape, density, max_v);
        let filters = random_filters(&mut rng, neurons);
        let view = || WeightsView { data: &weights, row_stride: neurons, filters: filters.clone() };
        let positions = g.y.output * g.x.output;
        let mut expected = vec![0; positions * filters.len()];
        let plain_ops = events::plain_convolve(&events, &shape, &g, view(), OutputRegion::dense(&mut expected, filters.len()));
        let narrow = fits_i16((g.y.kernel * g.x.kernel * shape.channels) as i64 * max_w * max_v);
        for set in KernelSet::available() {
            let ops = check_regions::<i32>(positions, neurons, &filters, &expected, |out| set.convolve_events(&events, &shape, &g, view(), out))?;
            prop_assert_eq!(ops, plain_ops, "{}", set.name());
            if narrow {
                check_regions::<i16>(positions, neurons, &filters, &expected, |out| set.convolve_events(&events, &shape, &g, view(), out))?;
            }
        }
        if filters == (0..neurons) {
            let reference = reference::convolution(&dense_of(&events, &shape), &shape, &g, &weights, neurons, true, 0);
            prop_assert_eq!(expected, reference);
        }
    }

    #[test]
    fn fully_connected_builds_match_the_plain_twin(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let shape = random_shape(&mut rng);
        let neurons = rng.range(1, 70) as usize;
        let max_v = rng.pick(&[1, 15]);
        let weights = random_weights(&mut rng, shape.len() * neurons, 7);
        let density = rng.pick(&[0.05, 0.3, 1.0]);
        let events = random_events(&mut rng, &shape, density, max_v);
        let filters = random_filters(&mut rng, neurons);
        let view = || WeightsView { data: &weights, row_stride: neurons, filters: filters.clone() };
        let mut expected = vec![0; filters.len()];
        let plain_ops = events::plain_fully_connected(&events, &shape, view(), OutputRegion::dense(&mut expected, filters.len()));
        let narrow = fits_i16(shape.len() as i64 * 7 * max_v);
        for set in KernelSet::available() {
            let ops = check_regions::<i32>(1, neurons, &filters, &expected, |out| set.fully_connected_events(&events, &shape, view(), out))?;
            prop_assert_eq!(ops, plain_ops, "{}", set.name());
            if narrow {
                check_regions::<i16>(1, neurons, &filters, &expected, |out| set.fully_connected_events(&events, &shape, view(), out))?;
            }
        }
        if filters == (0..neurons) {
            prop_assert_eq!(expected, reference::fully_connected(&dense_of(&events, &shape), &weights, neurons));
        }
    }

    #[test]
    fn separable_builds_match_the_plain_twins(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let shape = random_shape(&mut rng);
        let Some(g) = random_geometry(&mut rng, &shape) else { return Ok(()) };
        let neurons = rng.range(1, 40) as usize;
        let channels = shape.channels;
        let dw = random_weights(&mut rng, g.y.kernel * g.x.kernel * channels, 7);
        let pw = random_weights(&mut rng, channels * neurons, 7);
        let density = rng.pick(&[0.05, 0.3, 1.0]);
        let events = random_events(&mut rng, &shape, density, 15);
        let positions = g.y.output * g.x.output;
        let mut depthwise = vec![0; positions * channels];
        let plain_dw_ops = events::plain_depthwise(&events, &shape, &g, &dw, &mut depthwise);
        for set in KernelSet::available() {
            let mut got = vec![0; positions * channels];
            prop_assert_eq!(set.depthwise_events(&events, &shape, &g, &dw, &mut got), plain_dw_ops);
            prop_assert_eq!(&got, &depthwise);
        }
        let filters = random_filters(&mut rng, neurons);
        let view = || WeightsView { data: &pw, row_stride: neurons, filters: filters.clone() };
        let mut expected = vec![0; positions * filters.len()];
        let plain_ops = events::plain_pointwise(&depthwise, channels, view(), OutputRegion::dense(&mut expected, filters.len()));
        let narrow = fits_i16((g.y.kernel * g.x.kernel * channels * channels) as i64 * 7 * 7 * 15);
        for set in KernelSet::available() {
            let ops = check_regions::<i32>(positions, neurons, &filters, &expected, |out| set.pointwise(&depthwise, channels, view(), out))?;
            prop_assert_eq!(ops, plain_ops, "{}", set.name());
            if narrow {
                check_regions::<i16>(positions, neurons, &filters, &expected, |out| set.pointwise(&depthwise, channels, view(), out))?;
            }
        }
        if filters == (0..neurons) {
            let reference = reference::separable(&dense_of(&events, &shape), &shape, &g, &dw, &pw, neurons);
            prop_assert_eq!(expected, reference);
        }
    }

    #[test]
    fn input_convolution_builds_match_the_plain_twin(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let shape = random_shape(&mut rng);
        let Some(g) = random_geometry(&mut rng, &shape) else { return Ok(()) };
        let neurons = rng.range(1, 40) as usize;
        let max_w = rng.pick(&[1, 7, 127]);
        let max_v = rng.pick(&[1, 15, 255]);
        let weights = random_weights(&mut rng, g.y.kernel * g.x.kernel * shape.channels * neurons, max_w);
        let image: Vec<u8> = (0..shape.len()).map(|_| if rng.chance(0.3) { 0 } else { rng.range(0, max_v) as u8 }).collect();
        let padding = if rng.chance(0.5) { 0 } else { rng.range(0, max_v) as u8 };
        let filters = random_filters(&mut rng, neurons);
        let view = || WeightsView { data: &weights, row_stride: neurons, filters: filters.clone() };
        let positions = g.y.output * g.x.output;
        let mut expected = vec![0; positions * filters.len()];
        let plain_ops = dense::plain_input_convolution(&image, &shape, &g, padding, view(), OutputRegion::dense(&mut expected, filters.len()));
        let narrow = fits_i16((g.y.kernel * g.x.kernel * shape.channels) as i64 * max_w * max_v);
        for set in KernelSet::available() {
            let ops = check_regions::<i32>(positions, neurons, &filters, &expected, |out| set.input_convolution(&image, &shape, &g, padding, view(), out))?;
            prop_assert_eq!(ops, plain_ops, "{}", set.name());
            if narrow {
                check_regions::<i16>(positions, neurons, &filters, &expected, |out| set.input_convolution(&image, &shape, &g, padding, view(), out))?;
            }
        }
        if filters == (0..neurons) {
            let input: Vec<i32> = image.iter().map(|&v| i32::from(v)).collect();
            let reference = reference::convolution(&input, &shape, &g, &weights, neurons, false, i32::from(padding));
            prop_assert_eq!(expected, reference);
        }
    }
}

#[test]
fn the_detected_set_is_available_and_stable() {
    let available = KernelSet::available();
    assert_eq!(available[0], KernelSet::portable());
    assert!(available.contains(&KernelSet::detected()));
    assert_eq!(KernelSet::detected(), KernelSet::detected());
    assert_eq!(crate::simd_level(), KernelSet::detected().name());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// The vectorized thresholding and event extraction against their plain twins, at firing
    /// densities from 0 % to 100 % (thresholds spread around the potentials).
    #[test]
    fn fast_activation_matches_its_plain_twin(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let channels = rng.pick(&[1usize, 3, 7, 8, 9, 16, 31, 33, 70]);
        let shape = Shape3::new(rng.range(1, 6) as usize, rng.range(1, 6) as usize, channels);
        let n = shape.channels;
        let bits = rng.pick(&[1u8, 2, 4]);
        let centre = rng.range(-60, 80);
        let threshold: Vec<i32> = (0..n).map(|_| (centre + rng.range(-10, 10)) as i32).collect();
        let step: Vec<f32> = (0..n).map(|_| rng.pick(&[0.25f32, 1.0, 1.5, 3.3])).collect();
        let potentials: Vec<i32> = (0..shape.len()).map(|_| rng.range(-40, 60) as i32).collect();
        let t = crate::activation::Thresholds::new(&threshold, &step, bits);
        let (mut fast, mut plain, mut levels) = (Vec::new(), Vec::new(), Vec::new());
        super::post::activate_dense(&potentials, &shape, &t, &mut levels, &mut fast);
        super::post::plain_activate(&potentials, &shape, &t, &mut plain);
        prop_assert_eq!(&fast, &plain);
        let dense: Vec<u8> = dense_of(&plain, &shape).iter().map(|&v| v as u8).collect();
        prop_assert_eq!(&levels, &dense);
        let (mut from_levels, mut from_dense) = (Vec::new(), Vec::new());
        super::post::events_from_levels(&dense, &shape, &mut from_levels);
        crate::events::events_from_dense(&shape, &dense, &mut from_dense);
        prop_assert_eq!(from_levels, from_dense);
    }

    /// Event extraction from dense levels against its plain twin on images and maps of every
    /// channel count around the eight-byte words, densities 0 % to 100 %.
    #[test]
    fn events_from_levels_matches_its_plain_twin(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let channels = rng.range(1, 12) as usize;
        let shape = Shape3::new(rng.range(1, 40) as usize, rng.range(1, 40) as usize, channels);
        let density = rng.range(0, 100);
        let levels: Vec<u8> =
            (0..shape.len()).map(|_| if rng.range(0, 99) < density { rng.range(1, 255) as u8 } else { 0 }).collect();
        let (mut fast, mut plain) = (Vec::new(), Vec::new());
        super::post::events_from_levels(&levels, &shape, &mut fast);
        crate::events::events_from_dense(&shape, &levels, &mut plain);
        prop_assert_eq!(fast, plain);
    }

    /// Thresholding against the formula of `docs/semantics.md`, neuron by neuron, and
    /// winner-take-all against its definition.
    #[test]
    fn activate_and_winner_take_all_match_their_definitions(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let shape = random_shape(&mut rng);
        let n = shape.channels;
        let bits = rng.pick(&[1u8, 2, 4]);
        let threshold: Vec<i32> = (0..n).map(|_| rng.range(-20, 20) as i32).collect();
        let step: Vec<f32> = (0..n).map(|_| rng.pick(&[0.25f32, 1.0, 1.5, 3.3])).collect();
        let potentials: Vec<i32> = (0..shape.len()).map(|_| rng.range(-40, 60) as i32).collect();
        let mut events = Vec::new();
        super::activate(&potentials, &shape, &crate::activation::Thresholds::new(&threshold, &step, bits), &mut events);
        let expected: Vec<i32> = potentials
            .iter()
            .enumerate()
            .map(|(i, &p)| i32::from(crate::activation::reference_response(p, threshold[i % n], step[i % n], bits)))
            .collect();
        prop_assert_eq!(dense_of(&events, &shape), expected);
        let mut sorted = events.clone();
        sorted.sort();
        prop_assert_eq!(sorted, events, "canonical order");

        let mut groups = Vec::new();
        let mut start = 0;
        while start < n {
            let end = rng.range(start as i64 + 1, n as i64) as usize;
            groups.push(start..end);
            start = end;
        }
        let mut values = potentials.clone();
        super::winner_take_all(&mut values, n, &groups);
        for (pixel, (got, before)) in values.chunks(n).zip(potentials.chunks(n)).enumerate() {
            for g in &groups {
                let best = g.clone().max_by_key(|&j| (before[j], std::cmp::Reverse(j))).unwrap();
                for j in g.clone() {
                    let want = if j == best || g.len() == 1 { before[j] } else { i32::MIN };
                    prop_assert_eq!(got[j], want, "pixel {} neuron {}", pixel, j);
                }
            }
        }
    }
}

/// A random convolution geometry with larger kernels and strides than [`random_geometry`], for
/// the dot-product kernel's row spans and tails.
fn random_wide_geometry(rng: &mut Rng, shape: &Shape3) -> Option<ConvGeometry> {
    let mode = rng.pick(&[ConvolutionMode::Valid, ConvolutionMode::Same, ConvolutionMode::Full]);
    let axis = |rng: &mut Rng, n| AxisGeometry::new(n, rng.range(1, 6) as usize, rng.range(1, 4) as usize, mode);
    Some(ConvGeometry { y: axis(rng, shape.height)?, x: axis(rng, shape.width)? })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// The dense path of a Convolutional layer (events map, packed flipped weights, every build of
    /// the dot product) against the event kernel's plain twin, with its operation count; densities
    /// from 0 to 100 %, neuron counts that leave partial blocks of 16.
    #[test]
    fn dot_convolution_matches_the_plain_twin(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let shape = Shape3::new(rng.range(1, 12) as usize, rng.range(1, 12) as usize, rng.range(1, 40) as usize);
        let Some(g) = random_wide_geometry(&mut rng, &shape) else { return Ok(()) };
        let neurons = rng.range(1, 70) as usize;
        let max_w = rng.pick(&[1, 7, 127]);
        let max_v = rng.pick(&[1, 3, 15, 255]);
        let weights = random_weights(&mut rng, g.y.kernel * g.x.kernel * shape.channels * neurons, max_w);
        let density = rng.pick(&[0.0, 0.05, 0.3, 0.75, 1.0]);
        let events = random_events(&mut rng, &shape, density, max_v);
        let positions = g.y.output * g.x.output;
        let mut expected = vec![0; positions * neurons];
        let view = WeightsView::full(&weights, neurons);
        let plain_ops = events::plain_convolve(&events, &shape, &g, view, OutputRegion::dense(&mut expected, neurons));
        let packed = dot::DotWeights::convolution(&weights, g.y.kernel, g.x.kernel, shape.channels, neurons, true);
        let mut map = Vec::new();
        dot::events_map(&events, &shape, &g, &mut map);
        prop_assert_eq!(dot::convolution_operations(&map, &g, shape.channels, neurons), plain_ops);
        prop_assert_eq!(dot::plain_convolution_operations(&map, &g, shape.channels, neurons), plain_ops);
        // The map of the same input given densely (the executor's path after a thresholded layer).
        let dense: Vec<u8> = dense_of(&events, &shape).iter().map(|&v| v as u8).collect();
        let mut from_dense = vec![9u8; 3];
        dot::image_map(&dense, &shape, &g, 0, &mut from_dense);
        prop_assert_eq!(&from_dense, &map);
        for set in KernelSet::available() {
            let mut got = vec![i32::MIN; positions * neurons];
            set.dot_product(&map, max_v as u8, &dot::Windows::convolution(&g, shape.channels), &packed, &mut got);
            prop_assert_eq!(&got, &expected, "{}", set.name());
        }
    }

    /// The dense path of an InputConvolutional layer (image map with its padding value,
    /// cross-correlation weights) against the image kernel's plain twin.
    #[test]
    fn dot_input_convolution_matches_the_plain_twin(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let shape = Shape3::new(rng.range(1, 12) as usize, rng.range(1, 12) as usize, rng.pick(&[1, 2, 3, 5]) as usize);
        let Some(g) = random_wide_geometry(&mut rng, &shape) else { return Ok(()) };
        let neurons = rng.range(1, 70) as usize;
        let max_w = rng.pick(&[1, 7, 127]);
        let weights = random_weights(&mut rng, g.y.kernel * g.x.kernel * shape.channels * neurons, max_w);
        let density = rng.pick(&[0.0, 0.2, 0.75, 1.0]);
        let image: Vec<u8> = (0..shape.len()).map(|_| if rng.chance(density) { rng.range(1, 255) as u8 } else { 0 }).collect();
        let padding = if rng.chance(0.5) { 0 } else { rng.range(1, 255) as u8 };
        let positions = g.y.output * g.x.output;
        let mut expected = vec![0; positions * neurons];
        let view = WeightsView::full(&weights, neurons);
        let plain_ops = dense::plain_input_convolution(&image, &shape, &g, padding, view, OutputRegion::dense(&mut expected, neurons));
        let packed = dot::DotWeights::convolution(&weights, g.y.kernel, g.x.kernel, shape.channels, neurons, false);
        let mut map = Vec::new();
        dot::image_map(&image, &shape, &g, padding, &mut map);
        prop_assert_eq!(dot::convolution_operations(&map, &g, shape.channels, neurons), plain_ops);
        for set in KernelSet::available() {
            let mut got = vec![i32::MIN; positions * neurons];
            set.dot_product(&map, 255, &dot::Windows::convolution(&g, shape.channels), &packed, &mut got);
            prop_assert_eq!(&got, &expected, "{}", set.name());
        }
    }

    /// The dense and bit-packed paths of a FullyConnected layer against the event kernel's plain
    /// twin: every input bit width up to 8 and weight bit width of the engine, densities 0-100 %,
    /// input sizes that leave partial words and groups.
    #[test]
    fn dot_and_bit_fully_connected_match_the_plain_twin(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let shape = Shape3::new(rng.range(1, 9) as usize, rng.range(1, 9) as usize, rng.range(1, 20) as usize);
        let neurons = rng.range(1, 70) as usize;
        let bits = rng.pick(&[1u8, 2, 4, 8]);
        let (lo, hi) = crate::params::weight_range(bits);
        let weights: Vec<i8> = (0..shape.len() * neurons).map(|_| rng.range(i64::from(lo), i64::from(hi)) as i8).collect();
        let input_bits = rng.pick(&[1usize, 2, 4, 8]);
        let density = rng.pick(&[0.0, 0.05, 0.3, 0.75, 1.0]);
        let events = random_events(&mut rng, &shape, density, (1 << input_bits) - 1);
        let mut expected = vec![0; neurons];
        let view = WeightsView::full(&weights, neurons);
        events::plain_fully_connected(&events, &shape, view, OutputRegion::dense(&mut expected, neurons));
        let packed = dot::DotWeights::fully_connected(&weights, shape.len(), neurons);
        let mut map = Vec::new();
        dot::vector_map(&events, &shape, &mut map);
        let planes_w = bits::BitWeights::new(&weights, shape.len(), neurons, bits);
        prop_assert_eq!(&planes_w, &bits::BitWeights::plain_new(&weights, shape.len(), neurons, bits));
        let mut planes = Vec::new();
        bits::input_planes(&events, &shape, input_bits, &mut planes);
        // The same inputs given densely (the executor's path after a thresholded layer).
        let dense: Vec<u8> = dense_of(&events, &shape).iter().map(|&v| v as u8).collect();
        let mut dense_planes = vec![7u64; 2];
        bits::input_planes_dense(&dense, input_bits, &mut dense_planes);
        prop_assert_eq!(&dense_planes, &planes);
        bits::plain_input_planes_dense(&dense, input_bits, &mut dense_planes);
        prop_assert_eq!(&dense_planes, &planes);
        let mut dense_map = vec![7u8; 2];
        dot::dense_vector_map(&dense, &mut dense_map);
        prop_assert_eq!(&dense_map, &map);
        for set in KernelSet::available() {
            let mut got = vec![i32::MIN; neurons];
            set.dot_product(&map, ((1u32 << input_bits) - 1) as u8, &dot::Windows::fully_connected(), &packed, &mut got);
            prop_assert_eq!(&got, &expected, "dense {}", set.name());
            let mut got = vec![i32::MIN; neurons];
            set.fully_connected_bits(&planes, &planes_w, &mut got);
            prop_assert_eq!(&got, &expected, "bit-packed {}", set.name());
            let mut some = vec![i32::MIN; neurons];
            let chosen: Vec<usize> = (0..neurons).filter(|_| rng.range(0, 2) > 0).collect();
            set.fully_connected_bits_of(&planes, &planes_w, &chosen, &mut some);
            for n in 0..neurons {
                let want = if chosen.contains(&n) { expected[n] } else { i32::MIN };
                prop_assert_eq!(some[n], want, "bit-packed, some neurons {}", set.name());
            }
        }
    }

    /// Every build of AND + popcount against its plain twin, lengths with every tail.
    #[test]
    fn and_popcount_builds_match_the_plain_twin(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let len = rng.range(0, 40) as usize;
        let word = |rng: &mut Rng| rng.next_u64();
        let a: Vec<u64> = (0..len).map(|_| word(&mut rng)).collect();
        let b: Vec<u64> = (0..len).map(|_| word(&mut rng)).collect();
        for set in KernelSet::available() {
            prop_assert_eq!(set.and_popcount(&a, &b), bits::plain_and_popcount(&a, &b), "{}", set.name());
        }
    }
}

/// On a processor with AVX-512 VNNI the property tests above run three builds of each new kernel;
/// this makes a machine without it visible in the test output instead of silently testing less.
#[test]
fn the_builds_under_test_are_reported() {
    let names: Vec<&str> = KernelSet::available().iter().map(|s| s.name()).collect();
    eprintln!("kernel sets under test: {names:?}");
    assert_eq!(names[0], "portable");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Every build of the dense depthwise step against the event kernel's plain twin.
    #[test]
    fn depthwise_dense_builds_match_the_plain_twin(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let shape = Shape3::new(rng.range(1, 12) as usize, rng.range(1, 12) as usize, rng.range(1, 70) as usize);
        let Some(g) = random_wide_geometry(&mut rng, &shape) else { return Ok(()) };
        let weights = random_weights(&mut rng, g.y.kernel * g.x.kernel * shape.channels, 7);
        let density = rng.pick(&[0.0, 0.05, 0.3, 0.75, 1.0]);
        let max_v = rng.pick(&[1, 15, 255]);
        let events = random_events(&mut rng, &shape, density, max_v);
        let outputs = g.y.output * g.x.output * shape.channels;
        let mut expected = vec![0; outputs];
        let plain_ops = events::plain_depthwise(&events, &shape, &g, &weights, &mut expected);
        let mut map = Vec::new();
        dot::events_map(&events, &shape, &g, &mut map);
        prop_assert_eq!(dot::convolution_operations(&map, &g, shape.channels, 1), plain_ops);
        for set in KernelSet::available() {
            let mut got = vec![i32::MIN; outputs];
            set.depthwise_dense(&map, &g, shape.channels, &weights, &mut got);
            prop_assert_eq!(&got, &expected, "{}", set.name());
        }
    }
}
