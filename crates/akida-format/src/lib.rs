//! The akida model file format: `.fb` (a FlatBuffer of `schema/akida.fbs`) and `.fbz` (the same
//! bytes compressed with zlib behind a small header).
//!
//! Reading verifies an untrusted buffer once, with size caps, before anything is allocated from
//! it, then rebuilds the model through the engine's own validation, so a corrupt, truncated,
//! hostile or newer file is an error, never a panic or an unbounded allocation. Writing is
//! atomic: a temporary file in the target folder is renamed over the destination.

use std::borrow::Cow;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use flatbuffers::{FlatBufferBuilder, VerifierOptions, WIPOffset};

use akida_engine::learning::{Learning, LearningConfig, LearningState};
use akida_engine::params::Convolution;
use akida_engine::shape::PoolGeometry;
use akida_engine::{
    Activation, ConvolutionMode, Error, Layer, LayerParams, Model, Pooling, PoolingType, Result, VariableData,
    VariableValues,
};

#[allow(clippy::all, clippy::pedantic, unused_imports, dead_code, deprecated, non_camel_case_types)]
#[allow(unsafe_op_in_unsafe_fn, mismatched_lifetime_syntaxes)]
#[path = "generated/akida_generated.rs"]
#[rustfmt::skip]
mod generated;

use generated::akida::format as fb;

/// The format version this engine writes and the newest it reads. Version history in
/// `schema/akida.fbs`; version 2 changed what the stored shapes of Same-mode layers with pooling
/// mean (see [`check_version1_pooling`]).
pub const FORMAT_VERSION: u32 = 2;

/// Header of compressed (`.fbz`) files.
pub const COMPRESSED_MAGIC: &[u8; 4] = b"AKZ1";

/// Size caps applied when reading untrusted bytes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest (uncompressed) model buffer accepted; FlatBuffers cannot exceed 2 GiB anyway.
    pub max_bytes: usize,
    /// Largest number of tables the verifier will visit.
    pub max_tables: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bytes: (1 << 31) - 1, max_tables: 10_000_000 }
    }
}

fn format_error(message: impl Into<String>) -> Error {
    Error::Format(message.into())
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

fn activation<'a>(fbb: &mut FlatBufferBuilder<'a>, a: &Activation) -> WIPOffset<fb::Activation<'a>> {
    fb::Activation::create(
        fbb,
        &fb::ActivationArgs {
            enabled: a.enabled,
            threshold_fire: a.threshold_fire,
            threshold_fire_step: a.threshold_fire_step,
            threshold_fire_bits: a.threshold_fire_bits,
        },
    )
}

fn pooling<'a>(fbb: &mut FlatBufferBuilder<'a>, p: &Pooling) -> WIPOffset<fb::Pooling<'a>> {
    let pooling_type = match p.kind {
        PoolingType::NoPooling => fb::PoolingType::NoPooling,
        PoolingType::Max => fb::PoolingType::Max,
        PoolingType::Average => fb::PoolingType::Average,
    };
    fb::Pooling::create(
        fbb,
        &fb::PoolingArgs { pooling_type, width: p.width, height: p.height, stride_x: p.stride_x, stride_y: p.stride_y },
    )
}

fn convolution<'a>(fbb: &mut FlatBufferBuilder<'a>, c: &Convolution) -> WIPOffset<fb::Convolution<'a>> {
    let mode = match c.mode {
        ConvolutionMode::Valid => fb::ConvolutionMode::Valid,
        ConvolutionMode::Same => fb::ConvolutionMode::Same,
        ConvolutionMode::Full => fb::ConvolutionMode::Full,
    };
    fb::Convolution::create(
        fbb,
        &fb::ConvolutionArgs {
            kernel_width: c.kernel_width as u32,
            kernel_height: c.kernel_height as u32,
            num_neurons: c.num_neurons as u32,
            mode,
            stride_x: c.stride_x as u32,
            stride_y: c.stride_y as u32,
            weights_bits: c.weights_bits,
        },
    )
}

fn layer_params<'a>(
    fbb: &mut FlatBufferBuilder<'a>,
    params: &LayerParams,
) -> (fb::LayerParams, WIPOffset<flatbuffers::UnionWIPOffset>) {
    match params {
        LayerParams::InputData { width, height, channels, input_bits } => {
            let args = fb::InputDataArgs {
                input_width: *width as u32,
                input_height: *height as u32,
                input_channels: *channels as u32,
                input_bits: *input_bits,
            };
            (fb::LayerParams::InputData, fb::InputData::create(fbb, &args).as_union_value())
        }
        LayerParams::InputConvolutional { width, height, channels, conv, pooling: p, activation: a, padding_value } => {
            let convolution = Some(convolution(fbb, conv));
            let pooling = Some(pooling(fbb, p));
            let activation = Some(activation(fbb, a));
            let args = fb::InputConvolutionalArgs {
                input_width: *width as u32,
                input_height: *height as u32,
                input_channels: *channels as u32,
                convolution,
                pooling,
                activation,
                padding_value: *padding_value,
            };
            (fb::LayerParams::InputConvolutional, fb::InputConvolutional::create(fbb, &args).as_union_value())
        }
        LayerParams::FullyConnected { num_neurons, weights_bits, activation: a } => {
            let activation = Some(activation(fbb, a));
            let args =
                fb::FullyConnectedArgs { num_neurons: *num_neurons as u32, weights_bits: *weights_bits, activation };
            (fb::LayerParams::FullyConnected, fb::FullyConnected::create(fbb, &args).as_union_value())
        }
        LayerParams::Convolutional { conv, pooling: p, activation: a } => {
            let args = fb::ConvolutionalArgs {
                convolution: Some(convolution(fbb, conv)),
                pooling: Some(pooling(fbb, p)),
                activation: Some(activation(fbb, a)),
            };
            (fb::LayerParams::Convolutional, fb::Convolutional::create(fbb, &args).as_union_value())
        }
        LayerParams::SeparableConvolutional { conv, pooling: p, activation: a } => {
            let args = fb::SeparableConvolutionalArgs {
                convolution: Some(convolution(fbb, conv)),
                pooling: Some(pooling(fbb, p)),
                activation: Some(activation(fbb, a)),
            };
            (fb::LayerParams::SeparableConvolutional, fb::SeparableConvolutional::create(fbb, &args).as_union_value())
        }
        LayerParams::Concat { activation: a } => {
            let args = fb::ConcatArgs { activation: Some(activation(fbb, a)) };
            (fb::LayerParams::Concat, fb::Concat::create(fbb, &args).as_union_value())
        }
    }
}

fn variables<'a>(fbb: &mut FlatBufferBuilder<'a>, layer: &Layer) -> Vec<WIPOffset<fb::Variable<'a>>> {
    let mut out = Vec::new();
    for (name, shape) in layer.variable_specs() {
        if name == "threshold_learning" {
            continue; // saved in the Learning table with the rest of the learning state
        }
        if name == "wta_groups" && layer.wta_groups().iter().enumerate().all(|(i, &g)| g == i as i32) {
            continue; // the default (no competition) is what a missing variable means
        }
        // Likewise for the output rescaling: all 1.0 scales and all +0.0 offsets (bit for bit, so
        // that a -0.0 survives) are what missing variables mean.
        let rescaling = match name {
            "output_scale" => Some((layer.output_scale(), 1.0f32)),
            "output_offset" => Some((layer.output_offset(), 0.0f32)),
            _ => None,
        };
        if let Some((values, default)) = rescaling {
            if values.iter().all(|v| v.to_bits() == default.to_bits()) {
                continue;
            }
        }
        let shape32: Vec<u32> = shape.iter().map(|&d| d as u32).collect();
        let (dtype, mut args) = (fb::DType::Int8, fb::VariableArgs::default());
        let dtype = match name {
            "weights" | "weights_pw" => {
                let data = if name == "weights" { layer.weights() } else { layer.weights_pw() };
                args.int8_data = Some(fbb.create_vector(data));
                dtype
            }
            "threshold_fire" | "wta_groups" => {
                let data = if name == "threshold_fire" { layer.threshold_fire() } else { layer.wta_groups() };
                args.int32_data = Some(fbb.create_vector(data));
                fb::DType::Int32
            }
            "output_scale" | "output_offset" => {
                let data = if name == "output_scale" { layer.output_scale() } else { layer.output_offset() };
                args.float32_data = Some(fbb.create_vector(data));
                fb::DType::Float32
            }
            _ => {
                args.float32_data = Some(fbb.create_vector(layer.threshold_fire_step()));
                fb::DType::Float32
            }
        };
        args.name = Some(fbb.create_string(name));
        args.shape = Some(fbb.create_vector(&shape32));
        args.dtype = dtype;
        out.push(fb::Variable::create(fbb, &args));
    }
    out
}

fn learning_table<'a>(fbb: &mut FlatBufferBuilder<'a>, learning: &Learning) -> WIPOffset<fb::Learning<'a>> {
    let c = &learning.config;
    let plasticity = Some(fbb.create_vector(&learning.state.plasticity));
    let threshold_learning = Some(fbb.create_vector(&learning.state.threshold_learning));
    // All zeros (nothing learned yet) is what a missing vector means: omitted, as files written
    // before input counts existed.
    let counts = &learning.state.input_counts;
    let input_counts = counts.iter().any(|&c| c != 0).then(|| fbb.create_vector(counts));
    fb::Learning::create(
        fbb,
        &fb::LearningArgs {
            num_weights: c.num_weights as u32,
            num_classes: c.num_classes as u32,
            initial_plasticity: c.initial_plasticity,
            min_plasticity: c.min_plasticity,
            plasticity_decay: c.plasticity_decay,
            learning_competition: c.learning_competition,
            seed: c.seed,
            plasticity,
            threshold_learning,
            rng_state: learning.state.rng,
            input_counts,
        },
    )
}

/// The learning table of a layer with `(connections, neurons)`; missing input counts (files
/// written before they existed) read as zeros.
fn learning_of(l: fb::Learning<'_>, (connections, neurons): (usize, usize)) -> Result<Learning> {
    let config = LearningConfig::new(
        l.num_weights().into(),
        l.num_classes().into(),
        l.initial_plasticity().into(),
        l.min_plasticity().into(),
        l.plasticity_decay().into(),
        l.learning_competition().into(),
        l.seed(),
    )?;
    Ok(Learning {
        config,
        state: LearningState {
            plasticity: l.plasticity().iter().collect(),
            threshold_learning: l.threshold_learning().iter().collect(),
            rng: l.rng_state(),
            input_counts: match l.input_counts() {
                Some(counts) => counts.bytes().to_vec(),
                None => akida_engine::error::zeroed_vec(connections.checked_mul(neurons), "the learning input counts")?,
            },
        },
    })
}

/// Largest model buffer written: FlatBuffers address at most 2 GiB; the rest is headroom for
/// tables, names and thresholds.
pub const MAX_WEIGHT_BYTES: usize = (1 << 31) - (64 << 20);

/// The model as a raw FlatBuffer (the content of a `.fb` file). Models whose weights exceed
/// [`MAX_WEIGHT_BYTES`] cannot be written.
pub fn serialize(model: &Model) -> Result<Vec<u8>> {
    serialize_with_version(model, FORMAT_VERSION)
}

/// [`serialize`] with another format version number in the file, for compatibility tests (the
/// content is the current one: a version-1 file of a model with output rescaling is not what a
/// version-1 engine could write, and is refused on reading).
pub fn serialize_with_version(model: &Model, format_version: u32) -> Result<Vec<u8>> {
    let weights: usize = model
        .layers()
        .iter()
        .map(|l| l.weights().len() + l.weights_pw().len() + l.learning().map_or(0, |l| l.state.input_counts.len()))
        .sum();
    let neurons: usize = model.layers().iter().map(|l| l.threshold_fire().len()).sum();
    if weights.saturating_add(neurons.saturating_mul(12)) > MAX_WEIGHT_BYTES {
        return Err(Error::Architecture(format!(
            "the model has {weights} weights: a model file holds at most {MAX_WEIGHT_BYTES} bytes of them"
        )));
    }
    let mut fbb = FlatBufferBuilder::with_capacity(weights + 4096);
    let mut layers = Vec::with_capacity(model.layers().len());
    for (i, layer) in model.layers().iter().enumerate() {
        let vars = variables(&mut fbb, layer);
        let variables = Some(fbb.create_vector(&vars));
        let inbound: Vec<u32> = model.inbound(i).iter().map(|&j| j as u32).collect();
        let inbound = Some(fbb.create_vector(&inbound));
        let name = Some(fbb.create_string(layer.name()));
        let (params_type, params) = layer_params(&mut fbb, layer.params());
        let learning = layer.learning().map(|l| learning_table(&mut fbb, l));
        layers.push(fb::Layer::create(
            &mut fbb,
            &fb::LayerArgs { name, params_type, params: Some(params), inbound, variables, learning },
        ));
    }
    let layers = Some(fbb.create_vector(&layers));
    let generator = Some(fbb.create_string(concat!("openakida ", env!("CARGO_PKG_VERSION"))));
    let root = fb::Model::create(&mut fbb, &fb::ModelArgs { format_version, generator, layers });
    fb::finish_model_buffer(&mut fbb, root);
    Ok(fbb.finished_data().to_vec())
}

/// Compresses a raw model buffer into the `.fbz` layout: magic, uncompressed size, zlib stream.
pub fn compress(raw: &[u8]) -> Vec<u8> {
    let stream = miniz_oxide::deflate::compress_to_vec_zlib(raw, 3);
    let mut out = Vec::with_capacity(12 + stream.len());
    out.extend_from_slice(COMPRESSED_MAGIC);
    out.extend_from_slice(&(raw.len() as u64).to_le_bytes());
    out.extend_from_slice(&stream);
    out
}

/// Which encoding a file name asks for.
fn compressed_by_extension(path: &Path) -> Result<bool> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("fb") => Ok(false),
        Some("fbz") => Ok(true),
        _ => Err(Error::Parameter(format!(
            "model files end in .fb (FlatBuffer) or .fbz (compressed FlatBuffer), got '{}'",
            path.display()
        ))),
    }
}

fn io_error(action: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Io(e.kind(), format!("cannot {action} '{}': {e}", path.display()))
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed to disk,
/// then renamed over `path`. An interrupted write never damages an existing file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let file_name =
        path.file_name().ok_or_else(|| Error::Parameter(format!("'{}' is not a file path", path.display())))?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let temp = folder.join(format!(
        ".{}.{}-{}.tmp",
        file_name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = fs::File::create(&temp).map_err(|e| io_error("create", &temp, e))?;
        file.write_all(bytes).map_err(|e| io_error("write", &temp, e))?;
        file.sync_all().map_err(|e| io_error("flush", &temp, e))?;
        fs::rename(&temp, path).map_err(|e| io_error("replace", path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    } else if let Ok(dir) = fs::File::open(&folder) {
        // Persist the rename itself; not all platforms allow syncing a folder.
        let _ = dir.sync_all();
    }
    result
}

/// Saves `model` to `path`: `.fb` raw, `.fbz` compressed; any other extension is an error.
pub fn save(model: &Model, path: &Path) -> Result<()> {
    let compressed = compressed_by_extension(path)?;
    let raw = serialize(model)?;
    let bytes = if compressed { compress(&raw) } else { raw };
    write_atomically(path, &bytes)
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// The raw FlatBuffer inside `bytes`: decompressed when it has the `.fbz` header.
fn uncompressed<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Cow<'a, [u8]>> {
    if !bytes.starts_with(COMPRESSED_MAGIC) {
        if bytes.len() > limits.max_bytes {
            return Err(format_error(format!(
                "model buffer of {} bytes exceeds the limit of {}",
                bytes.len(),
                limits.max_bytes
            )));
        }
        return Ok(Cow::Borrowed(bytes));
    }
    let Some(size_bytes) = bytes.get(4..12) else {
        return Err(format_error("truncated compressed model: the header is incomplete"));
    };
    let declared = u64::from_le_bytes(size_bytes.try_into().expect("8 bytes"));
    let stream = &bytes[12..];
    // DEFLATE expands at most about 1032:1; a larger claim is corrupt, and is refused before any
    // allocation.
    let plausible = (stream.len() as u64).saturating_mul(1032).saturating_add(1024);
    if declared > limits.max_bytes as u64 || declared > plausible {
        return Err(format_error(format!(
            "corrupt compressed model: it claims {declared} bytes uncompressed from {} compressed bytes (limit {})",
            stream.len(),
            limits.max_bytes
        )));
    }
    let mut out = vec![0u8; declared as usize];
    match miniz_oxide::inflate::decompress_slice_iter_to_slice(&mut out, std::iter::once(stream), true, false) {
        Ok(n) if n as u64 == declared => Ok(Cow::Owned(out)),
        Ok(n) => Err(format_error(format!("corrupt compressed model: {n} bytes decompressed, {declared} declared"))),
        Err(status) => Err(format_error(format!("corrupt compressed model: decompression failed ({status:?})"))),
    }
}

fn convolution_params(c: fb::Convolution<'_>, allowed_bits: &[u8]) -> Result<Convolution> {
    let mode = match c.mode() {
        fb::ConvolutionMode::Valid => ConvolutionMode::Valid,
        fb::ConvolutionMode::Same => ConvolutionMode::Same,
        fb::ConvolutionMode::Full => ConvolutionMode::Full,
        other => return Err(format_error(format!("unknown convolution mode {}", other.0))),
    };
    Convolution::new(
        i64::from(c.kernel_width()),
        i64::from(c.kernel_height()),
        i64::from(c.num_neurons()),
        mode,
        i64::from(c.stride_x()),
        i64::from(c.stride_y()),
        i64::from(c.weights_bits()),
        allowed_bits,
    )
}

fn pooling_params(p: fb::Pooling<'_>) -> Result<Pooling> {
    let kind = match p.pooling_type() {
        fb::PoolingType::NoPooling => PoolingType::NoPooling,
        fb::PoolingType::Max => PoolingType::Max,
        fb::PoolingType::Average => PoolingType::Average,
        other => return Err(format_error(format!("unknown pooling type {}", other.0))),
    };
    Pooling::new(kind, p.width().into(), p.height().into(), p.stride_x().into(), p.stride_y().into())
}

fn activation_params(a: fb::Activation<'_>) -> Result<Activation> {
    Activation::new(
        a.enabled(),
        a.threshold_fire().into(),
        a.threshold_fire_step().into(),
        a.threshold_fire_bits().into(),
    )
}

fn params_of(layer: &fb::Layer<'_>) -> Result<LayerParams> {
    use akida_engine::params::{INPUT_CONV_WEIGHT_BITS, WEIGHT_BITS};
    let missing = || format_error("the layer parameters do not match their declared type");
    match layer.params_type() {
        fb::LayerParams::InputData => {
            let p = layer.params_as_input_data().ok_or_else(missing)?;
            LayerParams::input_data(
                p.input_width().into(),
                p.input_height().into(),
                p.input_channels().into(),
                p.input_bits().into(),
            )
        }
        fb::LayerParams::InputConvolutional => {
            let p = layer.params_as_input_convolutional().ok_or_else(missing)?;
            LayerParams::input_convolutional(
                p.input_width().into(),
                p.input_height().into(),
                p.input_channels().into(),
                convolution_params(p.convolution(), INPUT_CONV_WEIGHT_BITS)?,
                pooling_params(p.pooling())?,
                activation_params(p.activation())?,
                p.padding_value().into(),
            )
        }
        fb::LayerParams::FullyConnected => {
            let p = layer.params_as_fully_connected().ok_or_else(missing)?;
            LayerParams::fully_connected(
                p.num_neurons().into(),
                p.weights_bits().into(),
                activation_params(p.activation())?,
            )
        }
        fb::LayerParams::Convolutional => {
            let p = layer.params_as_convolutional().ok_or_else(missing)?;
            Ok(LayerParams::Convolutional {
                conv: convolution_params(p.convolution(), WEIGHT_BITS)?,
                pooling: pooling_params(p.pooling())?,
                activation: activation_params(p.activation())?,
            })
        }
        fb::LayerParams::SeparableConvolutional => {
            let p = layer.params_as_separable_convolutional().ok_or_else(missing)?;
            Ok(LayerParams::SeparableConvolutional {
                conv: convolution_params(p.convolution(), WEIGHT_BITS)?,
                pooling: pooling_params(p.pooling())?,
                activation: activation_params(p.activation())?,
            })
        }
        fb::LayerParams::Concat => {
            let p = layer.params_as_concat().ok_or_else(missing)?;
            Ok(LayerParams::Concat { activation: activation_params(p.activation())? })
        }
        other => Err(format_error(format!("unknown layer type {}", other.0))),
    }
}

fn variable_data(v: &fb::Variable<'_>) -> Result<VariableData> {
    let absent = |what: &str| format_error(format!("variable '{}' has dtype {what} but no {what} data", v.name()));
    Ok(match v.dtype() {
        fb::DType::Int8 => {
            VariableData::I8(v.int8_data().ok_or_else(|| absent("int8"))?.bytes().iter().map(|&b| b as i8).collect())
        }
        fb::DType::Int32 => VariableData::I32(v.int32_data().ok_or_else(|| absent("int32"))?.iter().collect()),
        fb::DType::Float32 => VariableData::F32(v.float32_data().ok_or_else(|| absent("float32"))?.iter().collect()),
        other => return Err(format_error(format!("variable '{}' has an unknown dtype {}", v.name(), other.0))),
    })
}

/// Variables a file may omit, with what their absence means (see `Layer::allocate_variables`):
/// `wta_groups` (every neuron its own group), `output_scale` (1.0) and `output_offset` (0.0).
const OPTIONAL_VARIABLES: [&str; 3] = ["wta_groups", "output_scale", "output_offset"];

/// Variables that appeared in format version 2.
const VERSION2_VARIABLES: [&str; 2] = ["output_scale", "output_offset"];

fn load_layer(model: &mut Model, layer: &fb::Layer<'_>, version: u32) -> Result<()> {
    let params = params_of(layer)?;
    let inbound: Vec<usize> = layer.inbound().map(|v| v.iter().map(|i| i as usize).collect()).unwrap_or_default();
    model.add(Layer::new(layer.name(), params)?, Some(&inbound))?;
    let index = model.layers().len() - 1;
    let target = model.layer_mut(index)?;
    let mut expected: Vec<&'static str> = target.variable_names();
    for v in layer.variables().iter().flatten() {
        let Some(position) = expected.iter().position(|&n| n == v.name()) else {
            return Err(format_error(format!("unexpected or repeated variable '{}'", v.name())));
        };
        if version < 2 && VERSION2_VARIABLES.contains(&v.name()) {
            return Err(format_error(format!(
                "variable '{}' does not exist in format version {version} (it appeared in version 2)",
                v.name()
            )));
        }
        expected.swap_remove(position);
        let shape: Vec<usize> = v.shape().iter().map(|d| d as usize).collect();
        target.set_variable(v.name(), &shape, VariableValues::Exact(variable_data(&v)?))?;
    }
    expected.retain(|name| !OPTIONAL_VARIABLES.contains(name));
    if let Some(name) = expected.first() {
        return Err(format_error(format!("variable '{name}' is missing")));
    }
    if let Some(l) = layer.learning() {
        let connections_and_neurons = (target.connections(), target.threshold_fire().len());
        model.restore_learning(index, learning_of(l, connections_and_neurons)?)?;
    }
    Ok(())
}

/// Format version 1 pooled Same-mode layers with windows kept inside the map (the rule Valid and
/// Full still follow); version 2 pools them like TensorFlow's 'same' pooling. A version-1 layer
/// where the two rules give the same pooled shape has the same windows under both (equal window
/// counts mean no padding), so it loads unchanged; any other is refused rather than computed
/// differently from what its author saw; the error message completes "layer 'name' ...".
pub fn check_version1_pooling(layer: &Layer) -> std::result::Result<(), String> {
    let (Some(conv), Some(pooling), Some(r)) =
        (layer.params().convolution(), layer.params().pooling(), layer.resolved())
    else {
        return Ok(());
    };
    if conv.mode != ConvolutionMode::Same || pooling.kind == PoolingType::NoPooling {
        return Ok(());
    }
    let p = r.potentials_shape;
    let old = PoolGeometry::new(pooling, p.height, p.width, ConvolutionMode::Valid, &layer.label())
        .ok()
        .flatten()
        .map(|g| akida_engine::Shape3::new(g.y.output, g.x.output, p.channels));
    if old == Some(r.output_shape) {
        return Ok(());
    }
    let old = match old {
        Some(shape) => format!("pooled output shape {shape}"),
        None => "no valid pooled output (its window is larger than the map, which version 1 refused)".to_owned(),
    };
    Err(format!(
        "pools in Same mode and the file has format version 1: it had {old} when the file was \
         written, and would have pooled output shape {} now. The file was written by an older engine whose \
         Same pooling kept windows inside the map; this engine pools Same-mode layers like TensorFlow's \
         'same' pooling (ceil(n / stride) windows, padded cells ignored), so it refuses the file rather than \
         compute different outputs. Rebuild the model with this engine.",
        r.output_shape
    ))
}

/// Rebuilds a model from `.fb` or `.fbz` bytes, verifying everything.
pub fn deserialize(bytes: &[u8], limits: &Limits) -> Result<Model> {
    let raw = uncompressed(bytes, limits)?;
    if raw.len() < 8 || !fb::model_buffer_has_identifier(&raw) {
        return Err(format_error("not an akida model: the buffer lacks the 'AKDA' file identifier"));
    }
    let options = VerifierOptions {
        max_depth: 64,
        max_tables: limits.max_tables,
        max_apparent_size: limits.max_bytes,
        ignore_missing_null_terminator: false,
    };
    let root = fb::root_as_model_with_opts(&options, &raw)
        .map_err(|e| format_error(format!("corrupt model file: {}", e.to_string().trim_end().replace('\n', "; "))))?;
    let version = root.format_version();
    if version > FORMAT_VERSION {
        return Err(format_error(format!(
            "the model file has format version {version}, newer than version {FORMAT_VERSION} that this engine reads; \
             upgrade openakida to load it"
        )));
    }
    if version == 0 {
        return Err(format_error("corrupt model file: format version 0"));
    }
    let mut model = Model::new();
    for (i, layer) in root.layers().iter().enumerate() {
        load_layer(&mut model, &layer, version).map_err(|e| {
            let detail = match e {
                Error::Format(m) => m,
                other => other.to_string(),
            };
            format_error(format!("invalid model file: layer {i} ('{}'): {detail}", layer.name()))
        })?;
        if version == 1 {
            let loaded = model.layers().last().expect("just loaded");
            check_version1_pooling(loaded)
                .map_err(|m| format_error(format!("cannot load the model file: layer {i} ('{}') {m}", layer.name())))?;
        }
    }
    if model.layers().is_empty() {
        return Err(format_error("invalid model file: it has no layers"));
    }
    Ok(model)
}

/// Loads a model file (`.fb` or `.fbz`; the content decides, not the extension).
pub fn load(path: &Path, limits: &Limits) -> Result<Model> {
    let metadata = fs::metadata(path).map_err(|e| io_error("read", path, e))?;
    if metadata.is_dir() {
        return Err(Error::Io(
            std::io::ErrorKind::IsADirectory,
            format!("'{}' is a folder, not a model file", path.display()),
        ));
    }
    if metadata.len() > limits.max_bytes as u64 {
        return Err(format_error(format!(
            "'{}' has {} bytes, over the limit of {}",
            path.display(),
            metadata.len(),
            limits.max_bytes
        )));
    }
    let bytes = fs::read(path).map_err(|e| io_error("read", path, e))?;
    deserialize(&bytes, limits)
}
