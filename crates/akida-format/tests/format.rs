//! Round trips of random models through both encodings, and robustness of the reader against
//! truncated, flipped and spliced bytes.

use akida_engine::learning::LearningConfig;
use akida_engine::params::{Convolution, Pooling};
use akida_engine::testing::{engine_forward, random_inputs, random_model, Rng};
use akida_engine::{Activation, ConvolutionMode, Error, Input, Layer, LayerParams, Model, Output};
use akida_format::{compress, deserialize, serialize, serialize_with_version, Limits, FORMAT_VERSION};
use proptest::prelude::*;

fn same_outputs(a: &Model, b: &Model, rng: &mut Rng) -> bool {
    let inputs = random_inputs(a, rng, 2);
    let input = Input::Dense { data: &inputs, num_samples: 2 };
    engine_forward(a, input, false) == engine_forward(b, input, false)
}

/// Loading arbitrary bytes returns a model or an error; a model that loads can run.
fn load_never_panics(bytes: &[u8], rng: &mut Rng) {
    if let Ok(model) = deserialize(bytes, &Limits::default()) {
        // A damaged dimension can make a valid model with a huge input (a convolution's weights
        // do not depend on the input size): loading it is right, feeding it is out of reach.
        if model.input_shape().unwrap().len() > 1 << 22 {
            return;
        }
        let inputs = random_inputs(&model, rng, 1);
        let _ = engine_forward(&model, Input::Dense { data: &inputs, num_samples: 1 }, false);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn round_trip_preserves_everything(seed in any::<u64>()) {
        let mut rng = Rng(seed);
        let model = random_model(&mut rng);
        let raw = serialize(&model).unwrap();
        let loaded = deserialize(&raw, &Limits::default()).unwrap();
        prop_assert_eq!(&loaded, &model);
        let unpacked = deserialize(&compress(&raw), &Limits::default()).unwrap();
        prop_assert_eq!(&unpacked, &model);
        prop_assert!(same_outputs(&model, &loaded, &mut rng));
        prop_assert_eq!(serialize(&loaded).unwrap(), raw);
    }
}

/// Cases of the damaged-buffer test: 3000 in CI; set `AKIDA_FUZZ_CASES` for longer runs, e.g.
/// `AKIDA_FUZZ_CASES=1000000 cargo test --release -p akida-format damaged`.
fn fuzz_cases() -> u32 {
    std::env::var("AKIDA_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(fuzz_cases()))]

    #[test]
    fn damaged_buffers_never_panic(seed in any::<u64>(), compressed in any::<bool>(), kind in 0u8..4) {
        let mut rng = Rng(seed);
        // One model in four has a learning layer that learned (a Learning table with input counts).
        let model = if rng.range(0, 3) == 0 {
            let mut model = learning_model(rng.range(0, 1) == 1, seed);
            fit(&mut model, &mut rng, 4);
            model
        } else {
            random_model(&mut rng)
        };
        let raw = serialize(&model).unwrap();
        let mut bytes = if compressed { compress(&raw) } else { raw };
        let len = bytes.len();
        match kind {
            0 => bytes.truncate(rng.range(0, len as i64 - 1) as usize),
            1 => {
                for _ in 0..rng.range(1, 8) {
                    let i = rng.range(0, len as i64 - 1) as usize;
                    bytes[i] ^= 1 << rng.range(0, 7);
                }
            }
            2 => {
                let (a, b) = (rng.range(0, len as i64 - 1) as usize, rng.range(0, len as i64 - 1) as usize);
                let n = rng.range(1, 16).min((len - a.max(b)) as i64) as usize;
                bytes.copy_within(a..a + n, b);
            }
            _ => {
                let other = serialize(&random_model(&mut rng)).unwrap();
                let cut = rng.range(0, len.min(other.len()) as i64 - 1) as usize;
                bytes[cut..].copy_from_slice(&other[cut..len.min(other.len())].iter().chain(std::iter::repeat(&0u8)).take(len - cut).copied().collect::<Vec<_>>());
            }
        }
        load_never_panics(&bytes, &mut rng);
    }
}

#[test]
fn newer_versions_are_refused_with_both_numbers() {
    let model = random_model(&mut Rng(7));
    let bytes = serialize_with_version(&model, FORMAT_VERSION + 1).unwrap();
    let Err(Error::Format(message)) = deserialize(&bytes, &Limits::default()) else { panic!("a newer file loaded") };
    assert!(message.contains(&format!("version {}", FORMAT_VERSION + 1)), "{message}");
    assert!(message.contains(&format!("version {FORMAT_VERSION}")), "{message}");
}

#[test]
fn implausible_compressed_sizes_are_refused_before_allocating() {
    let raw = serialize(&random_model(&mut Rng(3))).unwrap();
    let mut bytes = compress(&raw);
    bytes[4..12].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(deserialize(&bytes, &Limits::default()), Err(Error::Format(_))));
    let small = Limits::with_max_size(raw.len() - 1);
    assert!(matches!(deserialize(&compress(&raw), &small), Err(Error::Format(_))));
    assert!(matches!(deserialize(&raw, &small), Err(Error::Format(_))));
}

#[test]
fn other_buffers_are_not_models() {
    for bytes in [&b""[..], b"AKZ1", b"hello world, this is not a model", &[0u8; 64]] {
        assert!(matches!(deserialize(bytes, &Limits::default()), Err(Error::Format(_))), "{bytes:?}");
    }
}

#[test]
fn saving_is_atomic_and_extensions_are_checked() {
    let dir = std::env::temp_dir().join(format!("akida-format-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = random_model(&mut Rng(11));
    for name in ["m.fb", "m.fbz"] {
        let path = dir.join(name);
        akida_format::save(&model, &path).unwrap();
        assert_eq!(akida_format::load(&path, &Limits::default()).unwrap(), model);
    }
    assert!(matches!(akida_format::save(&model, &dir.join("m.txt")), Err(Error::Parameter(_))));
    assert!(matches!(
        akida_format::load(&dir.join("absent.fb"), &Limits::default()),
        Err(Error::Io { kind: std::io::ErrorKind::NotFound, .. })
    ));
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A compiled model: binary InputData then a FullyConnected or Convolutional learning layer.
fn learning_model(convolutional: bool, seed: u64) -> Model {
    let mut model = Model::new();
    model.add(Layer::new("", LayerParams::input_data(6, 5, 2, 1).unwrap()).unwrap(), None).unwrap();
    let act = Activation::new(false, 0, 1.0, 1).unwrap();
    let params = if convolutional {
        let conv = Convolution::new(3, 3, 6, ConvolutionMode::Same, 1, 1, 1, &[1]).unwrap();
        LayerParams::Convolutional { conv, pooling: Pooling::default(), activation: act }
    } else {
        LayerParams::fully_connected(12, 1, act).unwrap()
    };
    model.add(Layer::new("", params).unwrap(), None).unwrap();
    let classes = if convolutional { 2 } else { 3 };
    model.compile(LearningConfig::new(5, classes, 1.0, 0.1, 0.25, 0.2, seed).unwrap()).unwrap();
    model
}

fn fit(model: &mut Model, rng: &mut Rng, samples: usize) {
    let inputs = random_inputs(model, rng, samples);
    let labels: Vec<i64> = (0..samples).map(|_| rng.range(0, 3)).collect();
    let len = model.output_shape().unwrap().len() * samples;
    let mut out = vec![0i32; len];
    model
        .fit(Input::Dense { data: &inputs, num_samples: samples }, Some(&labels), Output::Potentials(&mut out), true)
        .unwrap();
}

#[test]
fn learning_resumes_after_a_reload() {
    for convolutional in [false, true] {
        for seed in 0..20 {
            let mut straight = learning_model(convolutional, seed);
            let mut reloaded = straight.clone();
            fit(&mut straight, &mut Rng(seed), 8);
            fit(&mut straight, &mut Rng(seed + 1000), 8);
            fit(&mut reloaded, &mut Rng(seed), 8);
            for compressed in [false, true] {
                let raw = serialize(&reloaded).unwrap();
                let bytes = if compressed { compress(&raw) } else { raw };
                let mut copy = deserialize(&bytes, &Limits::default()).unwrap();
                assert_eq!(copy, reloaded);
                fit(&mut copy, &mut Rng(seed + 1000), 8);
                assert_eq!(copy, straight, "seed {seed}, convolutional {convolutional}");
            }
        }
    }
}

#[test]
fn learning_state_with_wrong_input_counts_is_refused() {
    let mut model = learning_model(false, 4);
    fit(&mut model, &mut Rng(4), 6);
    let last = model.layers().len() - 1;
    let learning = model.layers()[last].learning().unwrap().clone();
    assert!(learning.state.input_counts.iter().any(|&c| c > 0));
    for len in [0, learning.state.input_counts.len() - 1, learning.state.input_counts.len() + 1] {
        let mut bad = learning.clone();
        bad.state.input_counts.resize(len, 0);
        let err = model.clone().restore_learning(last, bad).unwrap_err();
        assert!(matches!(err, Error::Variable(_)) && err.to_string().contains("input counts"), "{err}");
    }
    let mut copy = model.clone();
    copy.restore_learning(last, learning).unwrap();
    assert_eq!(copy, model);
}

#[test]
fn a_compiled_layer_followed_by_another_keeps_its_state() {
    let mut model = Model::new();
    model.add(Layer::new("", LayerParams::input_data(6, 5, 2, 1).unwrap()).unwrap(), None).unwrap();
    let fc = LayerParams::fully_connected(8, 1, Activation::new(true, 2, 1.0, 1).unwrap()).unwrap();
    model.add(Layer::new("", fc).unwrap(), None).unwrap();
    model.compile(LearningConfig::new(5, 2, 1.0, 0.1, 0.25, 0.0, 9).unwrap()).unwrap();
    let inputs = random_inputs(&model, &mut Rng(1), 6);
    let mut out = vec![0u8; 6 * 8];
    model.fit(Input::Dense { data: &inputs, num_samples: 6 }, None, Output::Activations(&mut out), false).unwrap();
    let learned = model.clone();
    let head = LayerParams::fully_connected(3, 1, Activation::default()).unwrap();
    model.add(Layer::new("", head).unwrap(), None).unwrap();
    let mut loaded = deserialize(&serialize(&model).unwrap(), &Limits::default()).unwrap();
    assert_eq!(loaded, model);
    loaded.pop_layer().unwrap();
    assert_eq!(loaded, learned);
}

/// InputData (h x w) then a Same-mode Convolutional with a `pool` window (stride = window).
fn same_pooling_model(h: usize, w: usize, pool: (i64, i64)) -> Model {
    let mut model = Model::new();
    model.add(Layer::new("in", LayerParams::input_data(w as i64, h as i64, 1, 1).unwrap()).unwrap(), None).unwrap();
    let conv = Convolution::new(3, 3, 2, ConvolutionMode::Same, 1, 1, 1, &[1]).unwrap();
    let pooling = Pooling::new(akida_engine::PoolingType::Max, pool.1, pool.0, -1, -1).unwrap();
    let params = LayerParams::Convolutional { conv, pooling, activation: Activation::default() };
    model.add(Layer::new("pooled", params).unwrap(), None).unwrap();
    model
}

#[test]
fn version1_same_pooling_loads_where_the_geometry_is_unchanged() {
    // 4x6 map, 2x3 windows: 2x2 windows under both rules, no padding.
    let model = same_pooling_model(4, 6, (2, 3));
    assert_eq!(model.output_shape().unwrap(), akida_engine::Shape3::new(2, 2, 2));
    let v1 = serialize_with_version(&model, 1).unwrap();
    assert_eq!(deserialize(&v1, &Limits::default()).unwrap(), model);
    assert_eq!(deserialize(&compress(&v1), &Limits::default()).unwrap(), model);
    // Global pooling and Valid or Full pooling never changed.
    let mut global = Model::new();
    global.add(Layer::new("in", LayerParams::input_data(5, 3, 1, 1).unwrap()).unwrap(), None).unwrap();
    for (mode, pooling) in [
        (ConvolutionMode::Same, Pooling::new(akida_engine::PoolingType::Average, -1, -1, 2, 2).unwrap()),
        (ConvolutionMode::Valid, Pooling::new(akida_engine::PoolingType::Max, 2, 1, -1, -1).unwrap()),
        (ConvolutionMode::Full, Pooling::new(akida_engine::PoolingType::Max, 2, 2, 1, 1).unwrap()),
    ] {
        let conv = Convolution::new(1, 1, 2, mode, 1, 1, 1, &[1]).unwrap();
        let params = LayerParams::Convolutional { conv, pooling, activation: Activation::default() };
        global.add(Layer::new("", params).unwrap(), Some(&[0])).unwrap();
    }
    let v1 = serialize_with_version(&global, 1).unwrap();
    assert_eq!(deserialize(&v1, &Limits::default()).unwrap(), global);
}

#[test]
fn version1_same_pooling_with_another_geometry_is_refused() {
    // 5x5 map, 2x2 windows: 2x2 windows inside the map in version 1, 3x3 padded ones now.
    let model = same_pooling_model(5, 5, (2, 2));
    assert_eq!(model.output_shape().unwrap(), akida_engine::Shape3::new(3, 3, 2));
    let v1 = serialize_with_version(&model, 1).unwrap();
    let Err(Error::Format(message)) = deserialize(&v1, &Limits::default()) else { panic!("loaded") };
    for part in
        ["layer 1 ('pooled')", "(2, 2, 2)", "(3, 3, 2)", "older engine", "Same pooling kept windows inside the map"]
    {
        assert!(message.contains(part), "{part}: {message}");
    }
    // The current version of the same model loads.
    assert_eq!(deserialize(&serialize(&model).unwrap(), &Limits::default()).unwrap(), model);
    // A window larger than the map had no version-1 geometry at all.
    let model = same_pooling_model(2, 3, (3, 3));
    assert_eq!(model.output_shape().unwrap(), akida_engine::Shape3::new(1, 1, 2));
    let Err(Error::Format(message)) = deserialize(&serialize_with_version(&model, 1).unwrap(), &Limits::default())
    else {
        panic!("loaded")
    };
    assert!(message.contains("larger than the map") && message.contains("(1, 1, 2)"), "{message}");
}

#[test]
fn output_rescaling_is_saved_only_when_set() {
    let mut model = same_pooling_model(4, 4, (2, 2));
    let default = serialize(&model).unwrap();
    let contains = |bytes: &[u8], name: &[u8]| bytes.windows(name.len()).any(|w| w == name);
    assert!(!contains(&default, b"output_scale") && !contains(&default, b"output_offset"));
    let scale = akida_engine::VariableValues::Float(vec![0.5, -3.0]);
    model.layer_mut(1).unwrap().set_variable("output_scale", &[2], scale).unwrap();
    let scaled = serialize(&model).unwrap();
    assert!(contains(&scaled, b"output_scale") && !contains(&scaled, b"output_offset"));
    let loaded = deserialize(&scaled, &Limits::default()).unwrap();
    assert_eq!(loaded.layers()[1].output_scale(), [0.5, -3.0]);
    assert_eq!(loaded.layers()[1].output_offset(), [0.0, 0.0]);
    // A negative zero offset is not the default: it is kept bit for bit.
    let offset = akida_engine::VariableValues::Float(vec![-0.0, 0.0]);
    model.layer_mut(1).unwrap().set_variable("output_offset", &[2], offset).unwrap();
    let loaded = deserialize(&serialize(&model).unwrap(), &Limits::default()).unwrap();
    assert_eq!(loaded.layers()[1].output_offset()[0].to_bits(), (-0.0f32).to_bits());
    assert_eq!(loaded, model);
    // Version 1 had no such variables.
    let Err(Error::Format(message)) = deserialize(&serialize_with_version(&model, 1).unwrap(), &Limits::default())
    else {
        panic!("loaded")
    };
    assert!(message.contains("'output_scale' does not exist in format version 1"), "{message}");
}

/// A `.fbz` buffer declaring `declared` bytes whose zlib stream inflates `content`.
fn fbz_of(content: &[u8], declared: u64) -> Vec<u8> {
    let mut out = b"AKZ1".to_vec();
    out.extend_from_slice(&declared.to_le_bytes());
    out.extend_from_slice(&miniz_oxide::deflate::compress_to_vec_zlib(content, 6));
    out
}

#[test]
fn compressed_data_is_refused_as_soon_as_it_is_invalid() {
    let raw = serialize(&random_model(&mut Rng(5))).unwrap();
    let limits = Limits::default();
    let refused = |bytes: &[u8], needle: &str| match deserialize(bytes, &limits) {
        Err(Error::Format(m)) => assert!(m.contains(needle), "{m}"),
        other => panic!("expected a format error with '{needle}', got {other:?}"),
    };
    // zeros: refused at the head, whatever follows
    refused(&fbz_of(&vec![0u8; 1 << 20], 1 << 20), "'AKDA' file identifier");
    // a valid head but a root offset outside the declared size
    let mut bad_root = raw.clone();
    bad_root[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    refused(&fbz_of(&bad_root, raw.len() as u64), "root table offset");
    // more or fewer bytes than declared
    refused(&fbz_of(&raw, raw.len() as u64 - 1), "more than");
    refused(&fbz_of(&raw, raw.len() as u64 + 1), "decompressed");
    // truncated stream, trailing bytes, damaged checksum
    let good = fbz_of(&raw, raw.len() as u64);
    assert_eq!(deserialize(&good, &limits).unwrap(), deserialize(&raw, &limits).unwrap());
    refused(&good[..good.len() - 5], "truncated");
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"junk");
    refused(&trailing, "follow the end");
    let mut checksum = good.clone();
    *checksum.last_mut().unwrap() ^= 1;
    refused(&checksum, "decompression failed");
    // over the cap: refused before inflating, and accepted once the cap is raised
    let capped = Limits { max_produced_bytes: raw.len() - 1, ..Limits::default() };
    assert!(matches!(deserialize(&good, &capped), Err(Error::Format(m)) if m.contains("max_size")));
}

#[test]
fn streamed_compression_writes_what_compress_returns() {
    let dir = std::env::temp_dir().join(format!("akida-format-stream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = random_model(&mut Rng(17));
    let path = dir.join("m.fbz");
    akida_format::save(&model, &path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), compress(&serialize(&model).unwrap()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn loading_calls_the_check_and_stops_on_its_error() {
    let dir = std::env::temp_dir().join(format!("akida-format-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = random_model(&mut Rng(19));
    let path = dir.join("m.fb");
    akida_format::save(&model, &path).unwrap();
    let mut calls = 0;
    let loaded = akida_format::load_with(&path, &Limits::default(), &mut || {
        calls += 1;
        Ok(())
    });
    assert_eq!(loaded.unwrap(), model);
    assert!(calls > 0);
    let stopped = akida_format::load_with(&path, &Limits::default(), &mut || Err(Error::Input("stop".into())));
    assert_eq!(stopped, Err(Error::Input("stop".into())));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn devices_and_pipes_are_read_with_caps_and_time_limits() {
    // /dev/zero: refused at its first bytes instead of read up to the cap
    let started = std::time::Instant::now();
    let zero = akida_format::load(std::path::Path::new("/dev/zero"), &Limits::default());
    assert!(matches!(zero, Err(Error::Format(m)) if m.contains("AKDA")));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // a pipe without a writer: the check runs while waiting, and the idle timeout ends the wait
    let dir = std::env::temp_dir().join(format!("akida-format-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("pipe.fb");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let limits = Limits { idle_timeout: std::time::Duration::from_millis(300), ..Limits::default() };
    let mut checks = 0;
    let waited = akida_format::load_with(&fifo, &limits, &mut || {
        checks += 1;
        Ok(())
    });
    assert!(matches!(waited, Err(Error::Io { kind: std::io::ErrorKind::TimedOut, .. })), "{waited:?}");
    assert!(checks >= 2, "{checks}");
    // a pipe with a writer delivers its model
    let model = random_model(&mut Rng(23));
    let raw = serialize(&model).unwrap();
    let writer_path = fifo.clone();
    let writer = std::thread::spawn(move || std::fs::write(writer_path, raw).unwrap());
    assert_eq!(akida_format::load(&fifo, &Limits::default()).unwrap(), model);
    writer.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
