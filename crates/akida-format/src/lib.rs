//! The akida model file format: `.fb` (a FlatBuffer of `schema/akida.fbs`) and `.fbz` (the same
//! bytes compressed with zlib behind a small header).
//!
//! Reading verifies an untrusted buffer once, with size caps, before anything is allocated from
//! it, then rebuilds the model through the engine's own validation, so a corrupt, truncated,
//! hostile or newer file is an error, never a panic or an unbounded allocation. Every allocation
//! sized by the model or by file content is fallible ([`Error::Memory`]). Reading stops as soon as
//! the data is provably not a model (header, declared size, stream end) or exceeds a cap of
//! [`Limits`]; compressed data is inflated in small chunks, so an all-zero "bomb" costs no
//! resident memory. Pipes and devices are read with the same caps, without blocking for ever.
//! Writing is atomic: an unnamed temporary file in the target folder (Linux `O_TMPFILE`, else a
//! named one) is linked in and renamed over the destination; temporary files left by killed
//! processes are removed by the next save to the same path.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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

use akida_engine::error::{collected_vec, reserved_vec, zeroed_vec};

/// The format version this engine writes and the newest it reads. Version history in
/// `schema/akida.fbs`; version 2 changed what the stored shapes of Same-mode layers with pooling
/// mean (see [`check_version1_pooling`]).
pub const FORMAT_VERSION: u32 = 2;

/// Header of compressed (`.fbz`) files.
pub const COMPRESSED_MAGIC: &[u8; 4] = b"AKZ1";

/// The FlatBuffers limit: no model buffer exceeds 2 GiB - 1 bytes.
pub const MAX_MODEL_BYTES: usize = (1 << 31) - 1;

/// The default cap on the bytes that loading *produces* rather than finds: the inflated size of
/// compressed (`.fbz`) data and the bytes read from a pipe or device, whose size is only known
/// while reading. 192 MiB is far above any model the AKD1000 holds, and keeps an invalid file that is refused only
/// once inflated under the 256 MB peak the robustness acceptance allows; raise it through
/// [`Limits::with_max_size`] (`Model(..., max_size=...)` in Python) for bigger models.
pub const DEFAULT_MAX_PRODUCED_BYTES: usize = 192 << 20;

/// Size caps and time limits applied when reading untrusted bytes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest (uncompressed) model buffer accepted whose size is known before reading it (a
    /// regular `.fb` file, an uncompressed buffer); at most [`MAX_MODEL_BYTES`].
    pub max_bytes: usize,
    /// Largest model buffer produced by inflating compressed data or read from a file that is not
    /// a regular file (pipes, devices); default [`DEFAULT_MAX_PRODUCED_BYTES`].
    pub max_produced_bytes: usize,
    /// Largest number of tables the verifier will visit.
    pub max_tables: usize,
    /// How long reading a pipe or device may wait without receiving a byte.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: MAX_MODEL_BYTES,
            max_produced_bytes: DEFAULT_MAX_PRODUCED_BYTES,
            max_tables: 10_000_000,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl Limits {
    /// Limits with one cap of `max_size` bytes (clamped to [`MAX_MODEL_BYTES`]) for every model
    /// buffer, whether found, inflated or streamed.
    pub fn with_max_size(max_size: usize) -> Self {
        let cap = max_size.min(MAX_MODEL_BYTES);
        Limits { max_bytes: cap, max_produced_bytes: cap, ..Limits::default() }
    }
}

/// Called while loading, at least every few milliseconds of work or waiting: an error (such as a
/// pending Ctrl-C) stops the loading and is returned as it is.
pub type Check<'a> = &'a mut dyn FnMut() -> Result<()>;

/// Bytes of work (read, inflated) between two calls of the [`Check`].
const CHECK_EVERY_BYTES: usize = 8 << 20;

fn format_error(message: impl Into<String>) -> Error {
    Error::Format(message.into())
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

fn activation<'a>(fbb: &mut Builder<'a>, a: &Activation) -> WIPOffset<fb::Activation<'a>> {
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

fn pooling<'a>(fbb: &mut Builder<'a>, p: &Pooling) -> WIPOffset<fb::Pooling<'a>> {
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

fn convolution<'a>(fbb: &mut Builder<'a>, c: &Convolution) -> WIPOffset<fb::Convolution<'a>> {
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
    fbb: &mut Builder<'a>,
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

fn variables<'a>(fbb: &mut Builder<'a>, layer: &Layer) -> Vec<WIPOffset<fb::Variable<'a>>> {
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

fn learning_table<'a>(fbb: &mut Builder<'a>, learning: &Learning) -> WIPOffset<fb::Learning<'a>> {
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
            plasticity: collected_vec(l.plasticity().iter(), "the learning plasticity")?,
            threshold_learning: collected_vec(l.threshold_learning().iter(), "the learning thresholds")?,
            rng: l.rng_state(),
            input_counts: match l.input_counts() {
                Some(counts) => sparse_copy(counts.bytes(), "the learning input counts")?,
                None => akida_engine::error::zeroed_vec(connections.checked_mul(neurons), "the learning input counts")?,
            },
        },
    })
}

/// Largest model buffer written: FlatBuffers address at most 2 GiB; the rest is headroom for
/// tables, names and thresholds.
pub const MAX_WEIGHT_BYTES: usize = (1 << 31) - (64 << 20);

/// The builder's buffer: allocated fallibly once for the estimated size, grown fallibly if the
/// estimate was short. A failed growth is recorded, then reported as [`Error::Memory`] by
/// [`serialize_buffer`] (the builder itself can only panic on it).
struct FallibleAllocator {
    buffer: Vec<u8>,
    failed: bool,
}

impl std::ops::Deref for FallibleAllocator {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buffer
    }
}

impl std::ops::DerefMut for FallibleAllocator {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buffer
    }
}

// SAFETY: `grow_downwards` doubles the buffer and moves the old contents to its end, zeroing the
// rest, as the trait requires; `len` is the buffer's length.
unsafe impl flatbuffers::Allocator for FallibleAllocator {
    type Error = Error;
    fn grow_downwards(&mut self) -> Result<()> {
        let old = self.buffer.len();
        let new = (old * 2).max(64);
        let Ok(mut grown) = zeroed_vec::<u8>(Some(new), "the model buffer") else {
            self.failed = true;
            return Err(Error::Memory(format!("cannot allocate a model buffer of {new} bytes: out of memory")));
        };
        grown[new - old..].copy_from_slice(&self.buffer);
        self.buffer = grown;
        Ok(())
    }
    fn len(&self) -> usize {
        self.buffer.len()
    }
}

/// The builder the writer uses: on a [`FallibleAllocator`].
type Builder<'a> = FlatBufferBuilder<'a, FallibleAllocator>;

/// A serialized model: the builder's buffer and where the FlatBuffer starts in it (the builder
/// writes from the end), so that the bytes are never copied just to drop the unused front.
pub struct Serialized {
    buffer: Vec<u8>,
    start: usize,
}

impl std::ops::Deref for Serialized {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buffer[self.start..]
    }
}

/// An upper bound of the serialized size of `model` (data, tables, names, alignment), so that
/// the builder's buffer is allocated once.
fn serialized_size_bound(model: &Model) -> usize {
    model
        .layers()
        .iter()
        .map(|l| {
            let per_neuron = l.threshold_fire().len().saturating_mul(6 * 4 + 8);
            let learning = l.learning().map_or(0, |l| l.state.input_counts.len() + 8 * l.state.plasticity.len());
            l.weights().len() + l.weights_pw().len() + per_neuron + learning + l.name().len() + 4096
        })
        .fold(4096usize, usize::saturating_add)
}

/// The model as a raw FlatBuffer (the content of a `.fb` file). Models whose weights exceed
/// [`MAX_WEIGHT_BYTES`] cannot be written.
pub fn serialize(model: &Model) -> Result<Vec<u8>> {
    let buffer = serialize_buffer(model, FORMAT_VERSION)?;
    akida_engine::error::copied_vec(&buffer, "the model buffer")
}

/// [`serialize`] with another format version number in the file, for compatibility tests (the
/// content is the current one: a version-1 file of a model with output rescaling is not what a
/// version-1 engine could write, and is refused on reading).
pub fn serialize_with_version(model: &Model, format_version: u32) -> Result<Vec<u8>> {
    let buffer = serialize_buffer(model, format_version)?;
    akida_engine::error::copied_vec(&buffer, "the model buffer")
}

/// [`serialize`] without the final copy: one buffer of about the model's size, allocated
/// fallibly, is the only memory it needs besides the model.
pub fn serialize_buffer(model: &Model, format_version: u32) -> Result<Serialized> {
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
    let bound = serialized_size_bound(model).min(MAX_MODEL_BYTES);
    let allocator = FallibleAllocator { buffer: zeroed_vec(Some(bound), "the model buffer")?, failed: false };
    // The builder panics when its allocator fails (only if the bound above was short); that panic
    // is caught here and reported as the memory error it is.
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let mut fbb = FlatBufferBuilder::new_in(allocator);
        build_model(&mut fbb, model, format_version);
        fbb.collapse_in()
    }));
    match built {
        Ok((allocator, start)) => Ok(Serialized { buffer: allocator.buffer, start }),
        Err(panic) => {
            let message =
                panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
            match message {
                Some(m) if m.contains("allocation failure") => {
                    Err(Error::Memory("cannot allocate the model buffer: out of memory".into()))
                }
                _ => std::panic::resume_unwind(panic),
            }
        }
    }
}

fn build_model(fbb: &mut Builder<'_>, model: &Model, format_version: u32) {
    let mut layers = Vec::with_capacity(model.layers().len());
    for (i, layer) in model.layers().iter().enumerate() {
        let vars = variables(fbb, layer);
        let variables = Some(fbb.create_vector(&vars));
        let inbound: Vec<u32> = model.inbound(i).iter().map(|&j| j as u32).collect();
        let inbound = Some(fbb.create_vector(&inbound));
        let name = Some(fbb.create_string(layer.name()));
        let (params_type, params) = layer_params(fbb, layer.params());
        let learning = layer.learning().map(|l| learning_table(fbb, l));
        layers.push(fb::Layer::create(
            fbb,
            &fb::LayerArgs { name, params_type, params: Some(params), inbound, variables, learning },
        ));
    }
    let layers = Some(fbb.create_vector(&layers));
    let generator = Some(fbb.create_string(concat!("openakida ", env!("CARGO_PKG_VERSION"))));
    let root = fb::Model::create(fbb, &fb::ModelArgs { format_version, generator, layers });
    fb::finish_model_buffer(fbb, root);
}

/// The compression level of `.fbz` files.
const COMPRESSION_LEVEL: i32 = 3;

/// Compresses a raw model buffer into the `.fbz` layout: magic, uncompressed size, zlib stream.
pub fn compress(raw: &[u8]) -> Vec<u8> {
    let stream = miniz_oxide::deflate::compress_to_vec_zlib(raw, COMPRESSION_LEVEL as u8);
    let mut out = Vec::with_capacity(12 + stream.len());
    out.extend_from_slice(COMPRESSED_MAGIC);
    out.extend_from_slice(&(raw.len() as u64).to_le_bytes());
    out.extend_from_slice(&stream);
    out
}

/// Writes the `.fbz` encoding of `raw` (the bytes [`compress`] returns) to `out` in chunks of
/// 1 MiB, so that the compressed file is never held in memory whole.
fn write_compressed(raw: &[u8], out: &mut dyn Write) -> std::io::Result<()> {
    use miniz_oxide::deflate::core::{compress as deflate, create_comp_flags_from_zip_params, CompressorOxide};
    use miniz_oxide::deflate::core::{TDEFLFlush, TDEFLStatus};
    out.write_all(COMPRESSED_MAGIC)?;
    out.write_all(&(raw.len() as u64).to_le_bytes())?;
    let mut compressor = Box::new(CompressorOxide::new(create_comp_flags_from_zip_params(COMPRESSION_LEVEL, 1, 0)));
    let mut chunk = vec![0u8; 1 << 20];
    let mut input = raw;
    loop {
        let (status, consumed, produced) = deflate(&mut compressor, input, &mut chunk, TDEFLFlush::Finish);
        input = &input[consumed..];
        out.write_all(&chunk[..produced])?;
        match status {
            TDEFLStatus::Done => return Ok(()),
            TDEFLStatus::Okay => {}
            other => return Err(std::io::Error::other(format!("compression failed ({other:?})"))),
        }
    }
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

/// An [`Error::Io`] for `e` while doing `action` on `path` (the path as the user gave it, never a
/// temporary file): the OS error number and description when there are some.
fn io_error(action: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        kind: e.kind(),
        errno: e.raw_os_error(),
        message: format!("cannot {action} '{}': {}", path.display(), os_description(&e)),
        path: Some(path.to_path_buf()),
    }
}

/// The description of an I/O error without the " (os error N)" suffix std appends.
fn os_description(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) if e.raw_os_error().is_some() => text[..i].to_owned(),
        _ => text,
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The prefix and suffix of the named temporary files of `file_name`: `.{name}.{pid}-{n}.tmp`.
fn temp_name(file_name: &std::ffi::OsStr) -> String {
    format!(
        ".{}.{}-{}.tmp",
        file_name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes the named temporary files of `file_name` in `folder` whose writing process is gone
/// (`kill -9` during a save). A file whose process id is alive is left alone: it may be a save
/// in progress. Process ids are those of this machine: a save to the same path running at the
/// same time on another machine sharing the folder (a network file system) may lose its
/// temporary file and fail (never damaging the destination).
fn remove_stale_temporaries(folder: &Path, file_name: &std::ffi::OsStr) {
    let prefix = format!(".{}.", file_name.to_string_lossy());
    let Ok(entries) = fs::read_dir(folder) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(middle) = name.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".tmp")) else { continue };
        let Some((pid, counter)) = middle.split_once('-') else { continue };
        let (Ok(pid), Ok(_)) = (pid.parse::<u32>(), counter.parse::<u64>()) else { continue };
        if pid != std::process::id() && !process_alive(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: signal 0 only checks that the process exists; no signal is sent.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    true
}

/// An unnamed file in `folder` (Linux `O_TMPFILE`): it vanishes with the process if the save is
/// killed. `None` when the file system does not support it, or when `/proc` (needed to link the
/// file in later) is not mounted.
#[cfg(target_os = "linux")]
fn unnamed_file(folder: &Path) -> Option<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    if !Path::new("/proc/self/fd").is_dir() {
        return None;
    }
    fs::OpenOptions::new().write(true).mode(0o666).custom_flags(libc::O_TMPFILE).open(folder).ok()
}

#[cfg(not(target_os = "linux"))]
fn unnamed_file(_folder: &Path) -> Option<fs::File> {
    None
}

/// Gives the unnamed `file` the name `temp` (linkat through /proc/self/fd).
#[cfg(target_os = "linux")]
fn link_unnamed(file: &fs::File, temp: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::io::AsRawFd;
    let source = std::ffi::CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).expect("no NUL");
    let target = std::ffi::CString::new(temp.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path contains a NUL byte"))?;
    // SAFETY: both paths are NUL-terminated C strings that outlive the call.
    let result = unsafe {
        libc::linkat(libc::AT_FDCWD, source.as_ptr(), libc::AT_FDCWD, target.as_ptr(), libc::AT_SYMLINK_FOLLOW)
    };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn link_unnamed(_file: &fs::File, _temp: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// Writes `bytes` to `path` atomically; see [`write_atomically_with`].
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically_with(path, &mut |out| out.write_all(bytes))
}

/// Writes what `write` produces to `path` atomically: into an unnamed temporary file in the same
/// folder (Linux `O_TMPFILE`; elsewhere a named `.{name}.{pid}-{n}.tmp`), flushed to disk, given
/// a temporary name and renamed over `path`. An interrupted or failed write never damages an
/// existing file, and a killed one leaves nothing (with `O_TMPFILE`) or a named temporary file
/// that the next save to `path` removes. Errors name `path`, with the OS error number.
pub fn write_atomically_with(path: &Path, write: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let file_name =
        path.file_name().ok_or_else(|| Error::Parameter(format!("'{}' is not a file path", path.display())))?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    remove_stale_temporaries(&folder, file_name);
    let temp = folder.join(temp_name(file_name));
    let mut named = false;
    let result = (|| {
        let file = match unnamed_file(&folder) {
            Some(file) => file,
            None => {
                named = true;
                fs::File::create(&temp).map_err(|e| io_error("write", path, e))?
            }
        };
        let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
        write(&mut writer).map_err(|e| io_error("write", path, e))?;
        let file = writer.into_inner().map_err(|e| io_error("write", path, e.into_error()))?;
        file.sync_all().map_err(|e| io_error("write", path, e))?;
        if !named {
            link_unnamed(&file, &temp).map_err(|e| io_error("write", path, e))?;
            named = true;
        }
        fs::rename(&temp, path).map_err(|e| io_error("replace", path, e))
    })();
    if result.is_err() && named {
        let _ = fs::remove_file(&temp);
    } else if result.is_ok() {
        if let Ok(dir) = fs::File::open(&folder) {
            // Persist the rename itself; not all platforms allow syncing a folder.
            let _ = dir.sync_all();
        }
    }
    result
}

/// Saves `model` to `path`: `.fb` raw, `.fbz` compressed; any other extension is an error. The
/// only copy of the model it holds is one serialized buffer; compressed output is streamed.
pub fn save(model: &Model, path: &Path) -> Result<()> {
    let compressed = compressed_by_extension(path)?;
    let raw = serialize_buffer(model, FORMAT_VERSION)?;
    if compressed {
        write_atomically_with(path, &mut |out| write_compressed(&raw, out))
    } else {
        write_atomically(path, &raw)
    }
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// Bytes of zeros skipped when copying into zeroed memory, so that their pages stay untouched.
const SPARSE_BLOCK: usize = 4096;

/// Copies `src` into `dst` (zeroed memory of the same length) block by block, skipping blocks
/// that are all zeros: their pages are never written and cost no resident memory.
fn copy_nonzero_blocks(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.chunks_mut(SPARSE_BLOCK).zip(src.chunks(SPARSE_BLOCK)) {
        if s.iter().any(|&b| b != 0) {
            d.copy_from_slice(s);
        }
    }
}

/// The one-byte integer types a file's byte vectors are copied into.
trait Byte: akida_engine::error::ZeroBits {
    fn from_byte(b: u8) -> Self;
}

impl Byte for u8 {
    fn from_byte(b: u8) -> Self {
        b
    }
}

impl Byte for i8 {
    fn from_byte(b: u8) -> Self {
        b as i8
    }
}

/// A copy of `bytes`, allocated fallibly and zeroed by the allocator, with all-zero blocks left
/// unwritten (a model of zero weights costs little resident memory).
fn sparse_copy<T: Byte>(bytes: &[u8], what: &str) -> Result<Vec<T>> {
    let mut out = zeroed_vec::<T>(Some(bytes.len()), what)?;
    for (d, s) in out.chunks_mut(SPARSE_BLOCK).zip(bytes.chunks(SPARSE_BLOCK)) {
        if s.iter().any(|&b| b != 0) {
            d.iter_mut().zip(s).for_each(|(d, &s)| *d = T::from_byte(s));
        }
    }
    Ok(out)
}

/// How much of an inflating model is out when its head is checked.
const HEAD_BYTES: usize = 64 << 10;

/// Fails unless `head` (the first bytes of a model buffer of `size` bytes, at least 8) can start
/// an akida FlatBuffer: the file identifier, a root offset inside the buffer and, when `head`
/// holds them, a root table whose vtable lies inside the buffer with a plausible size.
fn check_flatbuffer_head(head: &[u8], size: usize) -> Result<()> {
    if head.len() < 8 || !fb::model_buffer_has_identifier(head) {
        return Err(format_error("not an akida model: the buffer lacks the 'AKDA' file identifier"));
    }
    let root = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
    if root < 8 || root >= size {
        return Err(format_error(format!(
            "corrupt model file: its root table offset {root} is outside the {size}-byte buffer"
        )));
    }
    let Some(soffset) = head.get(root..root + 4) else { return Ok(()) };
    let vtable = root as i64 - i64::from(i32::from_le_bytes(soffset.try_into().expect("4 bytes")));
    let vtable_ok = vtable >= 0 && (vtable as u64).saturating_add(4) <= size as u64;
    let sizes = vtable_ok.then(|| head.get(vtable as usize..vtable as usize + 4)).flatten();
    let plausible = match sizes {
        Some(s) => {
            let (vtable_size, table_size) = (u16::from_le_bytes([s[0], s[1]]), u16::from_le_bytes([s[2], s[3]]));
            vtable_size >= 4 && vtable_size % 2 == 0 && table_size >= 4
        }
        None => vtable_ok,
    };
    if !plausible {
        return Err(format_error("corrupt model file: its root table has no valid vtable"));
    }
    Ok(())
}

/// Fails unless the first bytes of a file or buffer (up to 12) can start a model: the `.fbz`
/// header, or the start of an akida FlatBuffer.
fn check_start(head: &[u8]) -> Result<()> {
    let n = head.len().min(4);
    if head[..n] == COMPRESSED_MAGIC[..n] {
        return Ok(());
    }
    if head.len() >= 8 && !fb::model_buffer_has_identifier(head) {
        return Err(format_error("not an akida model: the buffer lacks the 'AKDA' file identifier"));
    }
    Ok(())
}

/// The raw FlatBuffer inside `bytes`: decompressed when it has the `.fbz` header.
fn uncompressed<'a>(bytes: &'a [u8], limits: &Limits, check: Check<'_>) -> Result<std::borrow::Cow<'a, [u8]>> {
    if !bytes.starts_with(COMPRESSED_MAGIC) {
        if bytes.len() > limits.max_bytes {
            return Err(format_error(format!(
                "model buffer of {} bytes exceeds the limit of {} (max_size)",
                bytes.len(),
                limits.max_bytes
            )));
        }
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    let Some(size_bytes) = bytes.get(4..12) else {
        return Err(format_error("truncated compressed model: the header is incomplete"));
    };
    let declared = u64::from_le_bytes(size_bytes.try_into().expect("8 bytes"));
    let stream = &bytes[12..];
    // DEFLATE expands at most about 1032:1; a larger claim is corrupt, and is refused before any
    // allocation.
    let plausible = (stream.len() as u64).saturating_mul(1032).saturating_add(1024);
    if declared > plausible {
        return Err(format_error(format!(
            "corrupt compressed model: it claims {declared} bytes uncompressed from {} compressed bytes",
            stream.len(),
        )));
    }
    let cap = limits.max_produced_bytes.min(MAX_MODEL_BYTES);
    if declared > cap as u64 {
        return Err(format_error(format!(
            "the compressed model declares {declared} bytes uncompressed, over the cap of {cap} bytes; \
             pass a larger max_size to load bigger models (at most {MAX_MODEL_BYTES})"
        )));
    }
    inflate(stream, declared as usize, check).map(std::borrow::Cow::Owned)
}

/// Inflates the zlib `stream` that must produce exactly `declared` bytes, in chunks: the output
/// buffer is zeroed by the allocator and all-zero blocks are never written (a bomb of zeros costs
/// no resident memory), the FlatBuffer head is checked as soon as it is out, and inflation stops
/// at the first byte past `declared`.
fn inflate(stream: &[u8], declared: usize, check: Check<'_>) -> Result<Vec<u8>> {
    use miniz_oxide::inflate::stream::{inflate as inflate_chunk, InflateState};
    use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};
    let mut out = zeroed_vec::<u8>(Some(declared), "the decompressed model")?;
    let mut state = InflateState::new_boxed(DataFormat::Zlib);
    let mut chunk = reserved_vec::<u8>(1 << 16, "a decompression buffer")?;
    chunk.resize(1 << 16, 0);
    let (mut input, mut written, mut next_check) = (stream, 0usize, CHECK_EVERY_BYTES);
    loop {
        let result = inflate_chunk(&mut state, input, &mut chunk, MZFlush::None);
        input = &input[result.bytes_consumed..];
        let produced = &chunk[..result.bytes_written];
        if produced.len() > declared - written {
            return Err(format_error(format!(
                "corrupt compressed model: it inflates to more than the {declared} bytes it declares"
            )));
        }
        copy_nonzero_blocks(&mut out[written..written + produced.len()], produced);
        let head_was_incomplete = written < HEAD_BYTES.min(declared);
        written += produced.len();
        if head_was_incomplete && written >= HEAD_BYTES.min(declared) {
            check_flatbuffer_head(&out[..written], declared)?;
        }
        if written >= next_check {
            check()?;
            next_check = written + CHECK_EVERY_BYTES;
        }
        match result.status {
            Ok(MZStatus::StreamEnd) => break,
            Ok(_) if result.bytes_consumed > 0 || result.bytes_written > 0 => {}
            Ok(_) | Err(MZError::Buf) => {
                return Err(format_error(format!(
                    "truncated compressed model: the stream ends after {written} of {declared} bytes"
                )))
            }
            Err(e) => return Err(format_error(format!("corrupt compressed model: decompression failed ({e:?})"))),
        }
    }
    if written != declared {
        return Err(format_error(format!(
            "corrupt compressed model: {written} bytes decompressed, {declared} declared"
        )));
    }
    if !input.is_empty() {
        return Err(format_error(format!(
            "corrupt compressed model: {} bytes follow the end of the compressed stream",
            input.len()
        )));
    }
    Ok(out)
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
            let bytes = v.int8_data().ok_or_else(|| absent("int8"))?.bytes();
            VariableData::I8(sparse_copy(bytes, &format!("variable '{}'", v.name()))?)
        }
        fb::DType::Int32 => VariableData::I32(collected_vec(
            v.int32_data().ok_or_else(|| absent("int32"))?.iter(),
            &format!("variable '{}'", v.name()),
        )?),
        fb::DType::Float32 => VariableData::F32(collected_vec(
            v.float32_data().ok_or_else(|| absent("float32"))?.iter(),
            &format!("variable '{}'", v.name()),
        )?),
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
    deserialize_with(bytes, limits, &mut || Ok(()))
}

/// [`deserialize`], calling `check` during long work (see [`Check`]).
pub fn deserialize_with(bytes: &[u8], limits: &Limits, check: Check<'_>) -> Result<Model> {
    if bytes.len() >= 8 {
        check_start(bytes)?;
    }
    let raw = uncompressed(bytes, limits, check)?;
    if raw.len() < 8 || !fb::model_buffer_has_identifier(&raw) {
        return Err(format_error("not an akida model: the buffer lacks the 'AKDA' file identifier"));
    }
    let options = VerifierOptions {
        max_depth: 64,
        max_tables: limits.max_tables,
        max_apparent_size: MAX_MODEL_BYTES,
        ignore_missing_null_terminator: false,
    };
    let root = fb::root_as_model_with_opts(&options, &raw)
        .map_err(|e| format_error(format!("corrupt model file: {}", e.to_string().trim_end().replace('\n', "; "))))?;
    check()?;
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
        load_layer(&mut model, &layer, version).map_err(|e| match e {
            // Out of memory is not a defect of the file.
            Error::Memory(m) => Error::Memory(format!("loading layer {i} ('{}'): {m}", layer.name())),
            Error::Format(m) => format_error(format!("invalid model file: layer {i} ('{}'): {m}", layer.name())),
            other => format_error(format!("invalid model file: layer {i} ('{}'): {other}", layer.name())),
        })?;
        if version == 1 {
            let loaded = model.layers().last().expect("just loaded");
            check_version1_pooling(loaded)
                .map_err(|m| format_error(format!("cannot load the model file: layer {i} ('{}') {m}", layer.name())))?;
        }
        check()?;
    }
    if model.layers().is_empty() {
        return Err(format_error("invalid model file: it has no layers"));
    }
    Ok(model)
}

/// Loads a model file (`.fb` or `.fbz`; the content decides, not the extension).
pub fn load(path: &Path, limits: &Limits) -> Result<Model> {
    load_with(path, limits, &mut || Ok(()))
}

/// [`load`], calling `check` while reading, waiting and rebuilding (see [`Check`]).
///
/// A regular file is read up to its size (refused first when over `limits.max_bytes`); any other
/// file (a pipe, a device) is read without blocking, waiting for data in steps of 0.1 s with a
/// `check` after each, up to `limits.max_produced_bytes` and until end of file. A pipe nobody
/// writes to waits until `check` fails (Ctrl-C) or `limits.idle_timeout` passes without data
/// (`TimedOut`). The first bytes are checked as soon as they are read: a file that does not
/// start like a model is refused without reading on.
pub fn load_with(path: &Path, limits: &Limits, check: Check<'_>) -> Result<Model> {
    let bytes = read_model_file(path, limits, check)?;
    deserialize_with(&bytes, limits, check)
}

/// Opens `path` for reading without blocking on pipes (`O_NONBLOCK`).
fn open_for_reading(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

/// The bytes of the model file at `path`; see [`load_with`].
pub fn read_model_file(path: &Path, limits: &Limits, check: Check<'_>) -> Result<Vec<u8>> {
    let file = open_for_reading(path).map_err(|e| io_error("read", path, e))?;
    let metadata = file.metadata().map_err(|e| io_error("read", path, e))?;
    if metadata.is_dir() {
        return Err(Error::Io {
            kind: std::io::ErrorKind::IsADirectory,
            errno: Some(libc::EISDIR),
            message: format!("'{}' is a folder, not a model file", path.display()),
            path: Some(path.to_path_buf()),
        });
    }
    if metadata.is_file() {
        let cap = limits.max_bytes.min(MAX_MODEL_BYTES);
        if metadata.len() > cap as u64 {
            return Err(format_error(format!(
                "'{}' has {} bytes, over the limit of {cap} (max_size)",
                path.display(),
                metadata.len(),
            )));
        }
        read_regular(file, metadata.len() as usize, path, check)
    } else {
        read_stream(file, path, limits, check)
    }
}

fn read_regular(mut file: fs::File, size: usize, path: &Path, check: Check<'_>) -> Result<Vec<u8>> {
    let mut bytes = zeroed_vec::<u8>(Some(size), "the model file")?;
    let mut filled = 0;
    let head = HEAD_BYTES.min(size);
    while filled < size {
        // The head first, so that a file that is not a model is refused before the rest is read.
        let end = if filled < head { head } else { (filled + CHECK_EVERY_BYTES).min(size) };
        match file.read(&mut bytes[filled..end]) {
            Ok(0) => {
                bytes.truncate(filled); // the file shrank while being read
                break;
            }
            Ok(n) => {
                if filled < 12 && filled + n >= 12.min(size) {
                    check_start(&bytes[..(filled + n).min(12)])?;
                }
                if filled < head && filled + n >= head && !bytes.starts_with(COMPRESSED_MAGIC) && head >= 8 {
                    check_flatbuffer_head(&bytes[..head], size)?;
                }
                filled += n;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error("read", path, e)),
        }
        check()?;
    }
    Ok(bytes)
}

/// Waits up to 0.1 s for `file` to be readable (or at end); `Ok(false)` on timeout.
#[cfg(unix)]
fn wait_readable(file: &fs::File) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    let mut poll = libc::pollfd { fd: file.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut poll, 1, 100) };
    match n {
        0 => Ok(false),
        n if n > 0 => Ok(true),
        _ => {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

#[cfg(not(unix))]
fn wait_readable(_file: &fs::File) -> std::io::Result<bool> {
    Ok(true)
}

fn read_stream(mut file: fs::File, path: &Path, limits: &Limits, check: Check<'_>) -> Result<Vec<u8>> {
    let cap = limits.max_produced_bytes.min(MAX_MODEL_BYTES);
    let mut bytes: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    let mut last_data = Instant::now();
    let mut last_check = Instant::now();
    loop {
        // At least every 0.1 s, whether data trickles in or not.
        if last_check.elapsed() >= Duration::from_millis(100) {
            check()?;
            last_check = Instant::now();
        }
        if !wait_readable(&file).map_err(|e| io_error("read", path, e))? {
            check()?;
            last_check = Instant::now();
            if last_data.elapsed() > limits.idle_timeout {
                return Err(Error::Io {
                    kind: std::io::ErrorKind::TimedOut,
                    errno: Some(libc::ETIMEDOUT),
                    message: format!(
                        "cannot read '{}': no data for {} s (a pipe without a writer?)",
                        path.display(),
                        limits.idle_timeout.as_secs_f64()
                    ),
                    path: Some(path.to_path_buf()),
                });
            }
            continue;
        }
        let n = match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted) => {
                continue;
            }
            Err(e) => return Err(io_error("read", path, e)),
        };
        last_data = Instant::now();
        if bytes.len() + n > cap {
            return Err(format_error(format!(
                "'{}' holds more than {cap} bytes, the cap for files that are not regular files; \
                 pass a larger max_size to load bigger models",
                path.display()
            )));
        }
        bytes.try_reserve(n).map_err(|_| Error::Memory(format!("cannot read '{}': out of memory", path.display())))?;
        let had = bytes.len();
        bytes.extend_from_slice(&chunk[..n]);
        if had < 12 {
            check_start(&bytes[..bytes.len().min(12)])?;
        }
    }
    Ok(bytes)
}
