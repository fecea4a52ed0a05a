//! `akida.Model` and `akida.LayerStatistics`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use numpy::{PyArray1, PyArray4, PyArrayDescrMethods, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyInt, PyList, PyNone, PyString, PyType};

use akida_engine::model::classify;
use akida_engine::{Error, EventBatch, Input, LayerStatistics, Output, OutputKind, Shape3};

use crate::errors::{raise, to_pyerr};
use crate::events::PyEvents;
use crate::layers::{layer_object, PyLayer};
use crate::nsoc::{PyDevice, PyMapMode, PySequence};
use crate::runtime::{cancellable, compute, guarded, interruptible, parallel_allowed};
use crate::state::{lock, new_layer_id, shared, LayerSlot, ModelState, SharedModel};
use akida_engine::error::zeroed_vec;

/// `obj` as a C-contiguous 4-D uint8 numpy array; checks the type, dtype, rank and (when given)
/// the sample shape.
pub fn dense_u8_input<'py>(obj: &Bound<'py, PyAny>, expected: Option<Shape3>) -> PyResult<Bound<'py, PyArray4<u8>>> {
    let array = checked_u8_array(obj, expected)?;
    let numpy = obj.py().import("numpy")?;
    Ok(numpy.call_method1("ascontiguousarray", (array,))?.cast_into::<PyArray4<u8>>()?)
}

/// `obj` as a 4-D uint8 numpy array, as given (maybe strided); checks the type, dtype, rank and
/// (when given) the sample shape.
fn checked_u8_array<'py>(obj: &Bound<'py, PyAny>, expected: Option<Shape3>) -> PyResult<Bound<'py, PyUntypedArray>> {
    let Ok(array) = obj.cast::<PyUntypedArray>() else {
        let type_name = obj.get_type().name()?;
        return raise(Error::DType(format!("inputs must be a numpy uint8 array or akida.Events, got {type_name}")));
    };
    let dtype = array.dtype();
    if !dtype.is_equiv_to(&numpy::dtype::<u8>(obj.py())) {
        return raise(Error::DType(format!("inputs must have dtype uint8, got {dtype}")));
    }
    let dims = array.shape();
    if dims.len() != 4 {
        return raise(Error::Input(format!(
            "inputs must be 4-D (samples, height, width, channels), got shape {dims:?}"
        )));
    }
    if let Some(s) = expected {
        if (dims[1], dims[2], dims[3]) != (s.height, s.width, s.channels) {
            return raise(Error::Input(format!(
                "inputs of shape {dims:?} do not match the model input shape ({}, {}, {})",
                s.height, s.width, s.channels
            )));
        }
    }
    Ok(array.clone())
}

enum Values {
    Activations(Vec<u8>),
    Potentials(Vec<i32>),
    /// Rescaled potentials (`evaluate`).
    Rescaled(Vec<f32>),
}

/// What a run computes besides the model output.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    /// `evaluate`: the last layer's potentials, rescaled.
    Evaluate,
}

impl Values {
    /// The values as a numpy array `(samples, H, W, C)` of their dtype.
    fn into_array<'py>(self, py: Python<'py>, shape: Shape3, samples: usize) -> PyResult<Bound<'py, PyAny>> {
        let dims = (samples, shape.height, shape.width, shape.channels);
        match self {
            Values::Activations(v) => PyArray1::from_vec(py, v).call_method1("reshape", (dims,)),
            Values::Potentials(v) => PyArray1::from_vec(py, v).call_method1("reshape", (dims,)),
            Values::Rescaled(v) => PyArray1::from_vec(py, v).call_method1("reshape", (dims,)),
        }
    }
}

/// What `Model.__reduce__` returns: the class and the arguments of its constructor.
type Reduced<'py> = (Bound<'py, PyType>, (Bound<'py, PyNone>, Option<Bound<'py, PyBytes>>));

/// A model of layers: one input layer first, then data-processing layers, each fed by the layer
/// added before it unless `inbound_layers` says otherwise.
#[pyclass(name = "Model", module = "akida", frozen)]
pub struct PyModel {
    state: SharedModel,
}

impl PyModel {
    fn add_layer(&self, layer: &Bound<'_, PyLayer>, inbound_layers: Option<Vec<Bound<'_, PyLayer>>>) -> PyResult<()> {
        // Read the inbound ids before locking the new layer: the same object may appear in both.
        let inbound_ids = match inbound_layers {
            None => None,
            Some(list) => Some(
                list.iter()
                    .map(|l| match &*lock(&l.get().slot) {
                        LayerSlot::Attached { model, id } if Arc::ptr_eq(model, &self.state) => Ok(*id),
                        _ => raise(Error::Architecture("an inbound layer is not part of this model".into())),
                    })
                    .collect::<PyResult<Vec<u64>>>()?,
            ),
        };
        guarded(|| {
            let mut slot = lock(&layer.get().slot);
            let detached = match &*slot {
                LayerSlot::Detached(detached) => detached,
                LayerSlot::Attached { model, id } => {
                    let popped = lock(model).index_of_id(*id).is_err();
                    return Err(Error::Architecture(if popped {
                        "this layer object refers to a layer removed by pop_layer(); build a new layer object".into()
                    } else {
                        "this layer already belongs to a model; build a new layer object".into()
                    }));
                }
            };
            let mut state = lock(&self.state);
            let inbound: Option<Vec<usize>> = match inbound_ids {
                None => None,
                Some(ids) => Some(
                    ids.iter()
                        .map(|id| {
                            state.ids.iter().position(|i| i == id).ok_or_else(|| {
                                Error::Architecture("an inbound layer was removed from this model".into())
                            })
                        })
                        .collect::<akida_engine::Result<_>>()?,
                ),
            };
            state.model_mut()?.add((**detached).clone(), inbound.as_deref())?;
            let id = new_layer_id();
            state.ids.push(id);
            *slot = LayerSlot::Attached { model: self.state.clone(), id };
            Ok(())
        })
    }

    /// The bytes of the model's `.fb` file, or None when it has no layers.
    fn serialized<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let model = lock(&self.state).model.clone();
        let bytes = compute(py, move || {
            if model.layers().is_empty() {
                return Ok(None);
            }
            akida_format::serialize(&model).map(Some)
        })?;
        Ok(bytes.map(|b| PyBytes::new(py, &b)))
    }

    fn layer_handle(&self, py: Python<'_>, index: usize) -> PyResult<Py<PyAny>> {
        let (kind, id) = guarded(|| {
            let state = lock(&self.state);
            let layer = state.model.layer(index)?;
            Ok((layer.kind(), state.ids[index]))
        })?;
        layer_object(py, kind, LayerSlot::Attached { model: self.state.clone(), id })
    }

    /// Runs the model on `inputs` (see [`run_with`](Self::run_with)).
    fn run(
        &self,
        py: Python<'_>,
        inputs: &Bound<'_, PyAny>,
        batch_size: Option<i64>,
        progress: &Progress<'_>,
    ) -> PyResult<(Values, Shape3, usize)> {
        self.run_with(py, inputs, batch_size, None, Mode::Forward, progress)
    }

    /// The driver of every long model call: runs the model on `inputs`, learning from every
    /// sample when `labels` is `Some` (`Some(None)`: unlabeled learning), or rescaling the output
    /// potentials for `Mode::Evaluate`.
    ///
    /// - One version: the call computes on a snapshot of the model taken when it starts (see
    ///   `state.rs`); `fit` learns on a private copy, published when it returns, and fit calls on
    ///   one model run one after the other.
    /// - Chunks: the samples go to the engine in chunks of about [`CHUNK_TARGET`] of work (never
    ///   more than `batch_size` samples, nor more than [`MAX_CHUNK_COPY`] bytes of dense input,
    ///   which is copied chunk by chunk, never whole), with the GIL released. Between chunks
    ///   progress is reported and Python's signal handlers run: an exception there (Ctrl-C's
    ///   `KeyboardInterrupt`, or one raised by the progress callback) ends the call; an
    ///   interrupted `fit` still publishes what the samples before the interruption learned.
    fn run_with(
        &self,
        py: Python<'_>,
        inputs: &Bound<'_, PyAny>,
        batch_size: Option<i64>,
        labels: Option<Option<Vec<i64>>>,
        mode: Mode,
        progress: &Progress<'_>,
    ) -> PyResult<(Values, Shape3, usize)> {
        let learn = labels.is_some();
        let max_batch = match batch_size {
            None => usize::MAX,
            Some(b) if b >= 1 => b as usize,
            Some(b) => return raise(Error::Parameter(format!("batch_size must be >= 1, got {b}"))),
        };
        // The version this call computes on; `fit` also holds the model's fit token until it
        // has published its result.
        let (fit_token, snapshot, mapping) = if learn {
            let (token, snapshot) = FitToken::acquire(py, &self.state)?;
            (Some(token), snapshot, None)
        } else {
            let state = lock(&self.state);
            (None, state.model.clone(), state.mapping())
        };
        let model: &akida_engine::Model = &snapshot;
        let (input_shape, output_shape, kind) = guarded(|| {
            if mode == Mode::Evaluate {
                model.check_rescalable()?;
            }
            Ok((model.input_shape()?, model.output_shape()?, model.output_kind()?))
        })?;
        // Built here, with the GIL held, so that no plan is ever half-built when os.fork() runs
        // (a forked child would wait for it forever); every chunk shares it.
        let _ = model.plan();
        let events: Option<Arc<EventBatch>> = inputs.cast::<PyEvents>().ok().map(|e| e.get().batch.clone());
        // Dense inputs are read in place when C-contiguous; a strided array is made contiguous
        // chunk by chunk (when its values are in range: otherwise whole, for the error message).
        let numpy = py.import("numpy")?;
        let (dense, strided) = match events {
            Some(_) => (None, None),
            None => {
                let array = checked_u8_array(inputs, Some(input_shape))?;
                let in_range = || -> PyResult<bool> {
                    let max: u32 = match array.len() {
                        0 => 0,
                        _ => array.call_method0("max")?.extract()?,
                    };
                    Ok(max < input_value_limit(model))
                };
                if array.is_c_contiguous() || !in_range()? {
                    (Some(numpy.call_method1("ascontiguousarray", (&array,))?.cast_into::<PyArray4<u8>>()?), None)
                } else {
                    (None, Some(array))
                }
            }
        };
        let readonly = dense.as_ref().map(|d| d.readonly());
        let data: Option<&[u8]> = match &readonly {
            Some(r) => Some(r.as_slice()?),
            None => None,
        };
        let samples = match (&events, data, &strided) {
            (Some(b), _, _) => b.num_samples(),
            (None, Some(d), _) => d.len() / input_shape.len().max(1),
            (None, None, Some(a)) => a.shape()[0],
            _ => unreachable!("inputs are events or dense"),
        };
        if let Some(Some(l)) = &labels {
            if l.len() != 1 && l.len() != samples {
                return raise(Error::Input(format!(
                    "expected one label per sample ({samples}) or one for all, got {}",
                    l.len()
                )));
            }
        }
        if let Some(d) = data {
            // The whole input is checked once, in place, so that an error names the sample in
            // the caller's array (chunks are checked again on their copies).
            let n = samples;
            compute(py, move || model.check_input(&Input::Dense { data: d, num_samples: n }))?;
        }
        let out_len = output_shape.len();
        let total = samples.checked_mul(out_len);
        let mut values = guarded(|| {
            Ok(match (kind, mode) {
                (_, Mode::Evaluate) => Values::Rescaled(zeroed_vec(total, "the model output")?),
                (OutputKind::Activations { .. }, _) => Values::Activations(zeroed_vec(total, "the model output")?),
                (OutputKind::Potentials, _) => Values::Potentials(zeroed_vec(total, "the model output")?),
            })
        })?;
        // `fit` learns on its own copy (made without the GIL: it may be large).
        let mut working: Option<akida_engine::Model> = match learn {
            true => Some(compute(py, || Ok(model.clone()))?),
            false => None,
        };
        let sample_bytes = match &events {
            Some(b) => (b.len() / samples.max(1)).max(1) * std::mem::size_of::<akida_engine::Event>(),
            None => input_shape.len(),
        };
        let mut chunker = Chunker::new(max_batch, sample_bytes, crate::runtime::worker_threads());
        let reporter = progress.start(py, samples)?;
        let mut totals: Option<Vec<LayerStatistics>> = None;
        let mut emulation: Option<akida_nsoc::Emulation> = None;
        let parallel = parallel_allowed();
        let mut done = 0;
        let mut outcome: PyResult<()> = Ok(());
        while done < samples {
            let (start, end) = (done, (done + chunker.size()).min(samples));
            let chunk_events = events.as_ref().map(|b| b.slice(start, end));
            // A private copy of the chunk: the caller's array could change while the engine
            // computes without the GIL, after its values were checked.
            let chunk_data: Option<Vec<u8>> = match (data, &strided) {
                (Some(d), _) => Some(d[start * input_shape.len()..end * input_shape.len()].to_vec()),
                (None, Some(a)) => match contiguous_copy(&numpy, a, start, end) {
                    Ok(copy) => Some(copy),
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                },
                (None, None) => None,
            };
            let input = match (&chunk_events, &chunk_data) {
                (Some(b), _) => Input::Events(b),
                (None, Some(d)) => Input::Dense { data: d, num_samples: end - start },
                (None, None) => unreachable!(),
            };
            let output = match &mut values {
                Values::Activations(v) => Output::Activations(&mut v[start * out_len..end * out_len]),
                Values::Potentials(v) => Output::Potentials(&mut v[start * out_len..end * out_len]),
                Values::Rescaled(v) => Output::Rescaled(&mut v[start * out_len..end * out_len]),
            };
            let chunk_labels: Option<Option<&[i64]>> =
                labels.as_ref().map(|l| l.as_deref().map(|l| if l.len() == 1 { l } else { &l[start..end] }));
            let emulated = &mut emulation;
            let mapping = mapping.as_ref();
            let learner = working.as_mut();
            let began = Instant::now();
            // Samples slower than the chunk target: the chunk runs on a worker thread that stops
            // between layers on Ctrl-C (starting a thread per chunk would cost fast calls).
            let stats = if chunker.slow_samples() && learner.is_none() && mapping.is_none() {
                cancellable(py, move |cancel| model.forward_with(input, output, parallel, &CancelCheck(cancel)))
            } else {
                compute(py, move || match (learner, chunk_labels) {
                    (Some(learner), Some(l)) => learner.fit(input, l, output, parallel),
                    _ => match mapping {
                        Some(mapping) => {
                            let run = akida_nsoc::emulate_forward(model, mapping, input, output, parallel)?;
                            let stats = emulated_statistics(model, &run);
                            match emulated {
                                Some(e) => e.absorb(run),
                                None => *emulated = Some(run),
                            }
                            Ok(stats)
                        }
                        None => model.forward(input, output, parallel),
                    },
                })
            };
            let stats = match stats {
                Ok(stats) => stats,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            };
            chunker.record(end - start, began.elapsed());
            match &mut totals {
                None => totals = Some(stats),
                Some(t) => t.iter_mut().zip(&stats).for_each(|(a, b)| a.merge(b)),
            }
            done = end;
            if let Err(e) = reporter.update(done).and_then(|()| py.check_signals()) {
                outcome = Err(e);
                break;
            }
        }
        if outcome.is_ok() && totals.is_none() {
            // No samples: still validate, and record empty statistics.
            let empty_in = [0u8; 0];
            let input = match &events {
                Some(b) => Input::Events(b),
                None => Input::Dense { data: &empty_in, num_samples: 0 },
            };
            let output = match &mut values {
                Values::Activations(v) => Output::Activations(v),
                Values::Potentials(v) => Output::Potentials(v),
                Values::Rescaled(v) => Output::Rescaled(v),
            };
            let learner = working.as_mut();
            match compute(py, move || match learner {
                Some(learner) => learner.fit(input, None, output, parallel),
                None => model.forward(input, output, parallel),
            }) {
                Ok(stats) => totals = Some(stats),
                Err(e) => outcome = Err(e),
            }
        }
        let closed = reporter.close();
        let complete = outcome.is_ok();
        {
            let mut state = lock(&self.state);
            if let Some(learned) = working.filter(|_| done > 0) {
                // Published even when the call was cut short: the model keeps exactly what the
                // samples before the interruption learned.
                state.model = Arc::new(learned);
                state.statistics = if complete { totals } else { None };
            } else if complete && Arc::ptr_eq(&state.model, &snapshot) {
                // (Statistics of a version that was replaced meanwhile would describe no model.)
                state.statistics = totals;
                if !learn {
                    state.emulation = emulation;
                }
            }
        }
        drop(fit_token);
        if let Err(e) = outcome {
            if learn && done < samples {
                let note = format!("fit() stopped after learning the first {done} of {samples} samples");
                let _ = e.value(py).call_method1("add_note", (note,));
            }
            return Err(e);
        }
        closed?;
        Ok((values, output_shape, samples))
    }
}

/// Samples `start..end` of the strided array `array`, copied contiguously.
fn contiguous_copy(
    numpy: &Bound<'_, PyModule>,
    array: &Bound<'_, PyUntypedArray>,
    start: usize,
    end: usize,
) -> PyResult<Vec<u8>> {
    let part = array.get_item(pyo3::types::PySlice::new(array.py(), start as isize, end as isize, 1))?;
    let part = numpy.call_method1("ascontiguousarray", (part,))?.cast_into::<PyArray4<u8>>()?;
    let copy = part.readonly().as_slice()?.to_vec();
    Ok(copy)
}

/// The bound dense input values must stay below: `2**input_bits` for InputData, 256 otherwise.
fn input_value_limit(model: &akida_engine::Model) -> u32 {
    match model.layers().first().map(|l| l.params()) {
        Some(akida_engine::LayerParams::InputData { input_bits, .. }) => 1u32 << *input_bits,
        _ => 256,
    }
}

/// The observer of a chunk run by [`cancellable`]: stops it between layers once Ctrl-C is heard.
struct CancelCheck<'a>(&'a std::sync::atomic::AtomicBool);

impl akida_engine::executor::Observer for CancelCheck<'_> {
    fn observe(&self, _: &akida_engine::executor::LayerOutput<'_>) {}

    fn cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The work a chunk of a long call aims at: short enough to hear Ctrl-C (and report progress)
/// several times a second, long enough that the per-chunk cost (a GIL round trip, the parallel
/// split) stays negligible.
const CHUNK_TARGET: Duration = Duration::from_millis(50);

/// The most dense input bytes a chunk copies (a chunk holds at least one sample).
const MAX_CHUNK_COPY: usize = 16 << 20;

/// Chooses chunk sizes from the time the previous chunks took: starts with one sample per
/// worker thread, then aims at [`CHUNK_TARGET`], at most doubling from one chunk to the next (so
/// a chunk takes at most about twice the target when samples cost the same), and never goes
/// below one sample per worker thread (nor above `batch_size`). Chunks of samples slower than the
/// target run on a worker that stops between layers on Ctrl-C.
struct Chunker {
    next: usize,
    /// One sample per worker thread: fewer would leave workers idle.
    min: usize,
    max: usize,
    /// Whether the last chunk's samples each took longer than the target.
    slow: bool,
}

impl Chunker {
    fn new(max_batch: usize, sample_bytes: usize, threads: usize) -> Self {
        let max = max_batch.min((MAX_CHUNK_COPY / sample_bytes.max(1)).max(1)).max(1);
        let min = threads.clamp(1, max);
        Chunker { next: min, min, max, slow: false }
    }

    fn size(&self) -> usize {
        self.next
    }

    fn slow_samples(&self) -> bool {
        self.slow
    }

    fn record(&mut self, samples: usize, elapsed: Duration) {
        let per_sample = elapsed.as_secs_f64() / samples.max(1) as f64;
        self.slow = per_sample > CHUNK_TARGET.as_secs_f64();
        let wanted = if per_sample > 0.0 { (CHUNK_TARGET.as_secs_f64() / per_sample) as usize } else { usize::MAX };
        self.next = wanted.clamp(self.min, samples.saturating_mul(2).max(self.min)).min(self.max);
    }
}

/// The right to run `fit` on a model: one fit at a time per model, so that concurrent fit calls
/// run in some serial order. Released (with the GIL held) when dropped.
struct FitToken<'a> {
    state: &'a SharedModel,
}

impl<'a> FitToken<'a> {
    /// Waits (GIL released, Ctrl-C heard) until no other fit runs on the model, then takes the
    /// token and returns a snapshot of the model to learn from.
    fn acquire(py: Python<'_>, state: &'a SharedModel) -> PyResult<(Self, Arc<akida_engine::Model>)> {
        let me = (std::process::id(), std::thread::current().id());
        loop {
            {
                let mut s = lock(state);
                match s.fitting {
                    Some(owner) if owner == me => {
                        return raise(Error::Architecture(
                            "fit() was called on a model from its own fit() call (a progress callback)".into(),
                        ))
                    }
                    Some(_) if s.fit_running() => {}
                    _ => {
                        s.fitting = Some(me);
                        return Ok((FitToken { state }, s.model.clone()));
                    }
                }
            }
            py.detach(|| std::thread::sleep(Duration::from_millis(2)));
            py.check_signals()?;
        }
    }
}

impl Drop for FitToken<'_> {
    fn drop(&mut self) {
        let mut s = lock(self.state);
        if s.fit_running() {
            s.fitting = None;
        }
    }
}

/// How a long call reports progress: a progress bar (`verbose`, tqdm when installed) and/or a
/// callback `progress(done, total)`, both through `akida._progress.Reporter`.
pub struct Progress<'py> {
    what: &'static str,
    verbose: bool,
    callback: Option<Bound<'py, PyAny>>,
}

impl<'py> Progress<'py> {
    /// The progress arguments of a call named `what`; `verbose` is a bool or an int (0: quiet).
    fn new(
        what: &'static str,
        verbose: Option<&Bound<'py, PyAny>>,
        callback: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Self> {
        let verbose = match verbose {
            None => false,
            Some(v) if v.is_instance_of::<pyo3::types::PyBool>() || v.is_instance_of::<PyInt>() => v.is_truthy()?,
            Some(v) => {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "verbose must be a bool or an int, got {}",
                    v.get_type().name()?
                )))
            }
        };
        let callback = callback.filter(|c| !c.is_none());
        Ok(Progress { what, verbose, callback })
    }

    fn start(&self, py: Python<'py>, total: usize) -> PyResult<Reporter<'py>> {
        if !self.verbose && self.callback.is_none() {
            return Ok(Reporter(None));
        }
        let class = py.import("akida._progress")?.getattr("Reporter")?;
        Ok(Reporter(Some(class.call1((self.what, total, self.verbose, self.callback.clone()))?)))
    }
}

/// A started progress report (nothing when the call is quiet).
struct Reporter<'py>(Option<Bound<'py, PyAny>>);

impl Reporter<'_> {
    fn update(&self, done: usize) -> PyResult<()> {
        match &self.0 {
            Some(r) => r.call_method1("update", (done,)).map(drop),
            None => Ok(()),
        }
    }

    fn close(&self) -> PyResult<()> {
        match &self.0 {
            Some(r) => r.call_method0("close").map(drop),
            None => Ok(()),
        }
    }
}

/// The per-layer statistics of an emulated forward, as `get_statistics` reports them.
fn emulated_statistics(model: &akida_engine::Model, run: &akida_nsoc::Emulation) -> Vec<LayerStatistics> {
    let layers = model.layers();
    (0..layers.len())
        .map(|i| {
            let r = layers[i].resolved();
            let inbound = model.inbound(i);
            let input_size = match inbound.is_empty() {
                true => r.map_or(0, |r| r.input_shape.len()),
                false => inbound.iter().map(|&j| layers[j].resolved().map_or(0, |r| r.output_shape.len())).sum(),
            };
            let input_nonzero = if inbound.is_empty() {
                run.layers[i].output_events
            } else {
                inbound.iter().map(|&j| run.layers[j].output_events).sum()
            };
            LayerStatistics {
                samples: run.samples,
                input_size: input_size as u64,
                output_size: r.map_or(0, |r| r.output_shape.len()) as u64,
                input_nonzero,
                output_nonzero: run.layers[i].output_events,
                synaptic_operations: run.layers[i].synaptic_ops,
            }
        })
        .collect()
}

#[pymethods]
impl PyModel {
    /// A model loaded from `filename` (str or path; `.fb` or `.fbz`), or from the bytes of a
    /// saved model (`serialized_buffer`), or built from `layers` added in order, or empty.
    /// A list as the first argument is taken as `layers`.
    #[new]
    #[pyo3(signature = (filename = None, serialized_buffer = None, layers = None))]
    fn new(
        py: Python<'_>,
        filename: Option<&Bound<'_, PyAny>>,
        serialized_buffer: Option<&Bound<'_, PyAny>>,
        layers: Option<Vec<Bound<'_, PyLayer>>>,
    ) -> PyResult<Self> {
        let mut layers = layers;
        let mut filename = filename;
        if let Some(first) = filename {
            if first.is_instance_of::<PyList>() || first.is_instance_of::<pyo3::types::PyTuple>() {
                if layers.is_some() {
                    return raise(Error::Parameter("give the layers once, as `layers`".into()));
                }
                layers = Some(first.extract()?);
                filename = None;
            }
        }
        let sources = [filename.is_some(), serialized_buffer.is_some(), layers.is_some()];
        if sources.iter().filter(|&&s| s).count() > 1 {
            return raise(Error::Parameter("give at most one of filename, serialized_buffer and layers".into()));
        }
        let loaded = if let Some(f) = filename {
            let path: std::path::PathBuf = py.import("os")?.call_method1("fspath", (f,))?.extract()?;
            // On a worker thread, so that Ctrl-C interrupts a long (or blocked) read at once.
            Some(interruptible(py, move || akida_format::load(&path, &akida_format::Limits::default()))?)
        } else if let Some(b) = serialized_buffer {
            let bytes = b.cast::<PyBytes>().map_err(|_| {
                to_pyerr(Error::DType(format!(
                    "serialized_buffer must be bytes, got {}",
                    b.get_type().name().map(|n| n.to_string()).unwrap_or_default()
                )))
            })?;
            let data = bytes.as_bytes();
            let (address, len) = (data.as_ptr() as usize, data.len());
            let owner = bytes.clone().unbind();
            Some(interruptible(py, move || {
                // SAFETY: `owner` keeps the bytes object, which is immutable, alive while the
                // worker reads it (and is released by pyo3's reference pool if no GIL is held).
                let data = unsafe { std::slice::from_raw_parts(address as *const u8, len) };
                let model = akida_format::deserialize(data, &akida_format::Limits::default());
                drop(owner);
                model
            })?)
        } else {
            None
        };
        let model = PyModel { state: shared(loaded.map(ModelState::of_model).unwrap_or_default()) };
        for layer in layers.unwrap_or_default() {
            model.add_layer(&layer, None)?;
        }
        Ok(model)
    }

    /// Saves the model to `path` (str or path): `.fb` for a FlatBuffer, `.fbz` for a compressed
    /// one. The file is replaced atomically.
    fn save(&self, py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<()> {
        let path: std::path::PathBuf = py.import("os")?.call_method1("fspath", (path,))?.extract()?;
        let model = lock(&self.state).model.clone();
        compute(py, move || {
            if model.layers().is_empty() {
                return Err(Error::Architecture("cannot save a model with no layers".into()));
            }
            akida_format::save(&model, &path)
        })
    }

    /// The model as bytes (the content of a `.fb` file), loadable with
    /// `Model(serialized_buffer=...)`.
    fn to_buffer<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        match self.serialized(py)? {
            Some(bytes) => Ok(bytes),
            None => raise(Error::Architecture("cannot serialize a model with no layers".into())),
        }
    }

    /// Pickling (and `copy.deepcopy`): the model is rebuilt from its file bytes by
    /// `Model(None, serialized_buffer)`, an empty model by `Model(None, None)`. The statistics of
    /// the last call are not kept.
    fn __reduce__<'py>(slf: &Bound<'py, Self>, py: Python<'py>) -> PyResult<Reduced<'py>> {
        Ok((slf.get_type(), (PyNone::get(py).to_owned(), slf.get().serialized(py)?)))
    }

    /// Appends `layer`, fed by `inbound_layers` (default: the last layer added).
    #[pyo3(signature = (layer, inbound_layers = None))]
    fn add(&self, layer: &Bound<'_, PyLayer>, inbound_layers: Option<Vec<Bound<'_, PyLayer>>>) -> PyResult<()> {
        self.add_layer(layer, inbound_layers)
    }

    /// Removes the last layer.
    fn pop_layer(&self) -> PyResult<()> {
        guarded(|| {
            let mut state = lock(&self.state);
            let name = state.model.layers().last().map(|l| l.name().to_owned());
            state.model_mut()?.pop_layer()?;
            if let (Some(id), Some(name)) = (state.ids.pop(), name) {
                state.removed.insert(id, name);
            }
            Ok(())
        })
    }

    /// The layer called `key` (str) or at index `key` (int, negative counts from the end).
    fn get_layer(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let index = if let Ok(name) = key.cast::<PyString>() {
            let name = name.to_str()?;
            let found = lock(&self.state).model.index_of(name);
            found.map_err(to_pyerr)?
        } else if key.is_instance_of::<PyInt>() {
            let i: i64 = key.extract()?;
            let count = lock(&self.state).model.layers().len() as i64;
            let resolved = if i < 0 { i + count } else { i };
            if !(0..count).contains(&resolved) {
                return raise(Error::LayerNotFound(format!("no layer at index {i}: the model has {count} layers")));
            }
            resolved as usize
        } else {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "get_layer takes a layer name (str) or index (int), got {}",
                key.get_type().name()?
            )));
        };
        self.layer_handle(py, index)
    }

    /// The layers, in order.
    #[getter]
    fn layers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let count = self.get_layer_count();
        let handles = (0..count).map(|i| self.layer_handle(py, i)).collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, handles)
    }

    fn get_layer_count(&self) -> usize {
        lock(&self.state).model.layers().len()
    }

    /// `(height, width, channels)` of one input sample.
    #[getter]
    fn input_shape(&self) -> PyResult<(usize, usize, usize)> {
        let shape = lock(&self.state).model.input_shape();
        let s = shape.map_err(to_pyerr)?;
        Ok((s.height, s.width, s.channels))
    }

    /// `(height, width, channels)` of one output sample.
    #[getter]
    fn output_shape(&self) -> PyResult<(usize, usize, usize)> {
        let shape = lock(&self.state).model.output_shape();
        let s = shape.map_err(to_pyerr)?;
        Ok((s.height, s.width, s.channels))
    }

    /// Maps the model onto `device` (see docs/nsoc.md): each layer goes to the input
    /// conversion block, to NPs or to software. With `hw_only=True` a model that does not fit
    /// entirely raises `MappingError` naming every layer and rule, and stays unmapped.
    /// `map(None)` returns to plain software. The mapping is not saved with the model; it is
    /// recomputed from the device and mode whenever asked for.
    #[pyo3(signature = (device, hw_only = false, mode = PyMapMode::AllNps))]
    fn map(&self, device: Option<PyRef<'_, PyDevice>>, hw_only: bool, mode: PyMapMode) -> PyResult<()> {
        let Some(device) = device else {
            self.unmap();
            return Ok(());
        };
        let device = device.device.clone();
        let mode: akida_nsoc::MapMode = mode.into();
        let refusal = guarded(|| {
            let mut state = lock(&self.state);
            if state.model.layers().is_empty() {
                return Err(Error::Architecture("cannot map an empty model".into()));
            }
            let mapping = akida_nsoc::map(&state.model, &device, mode);
            let reasons: Vec<String> = mapping.software_reasons().iter().map(|r| format!("  - {r}")).collect();
            if hw_only && !reasons.is_empty() {
                return Ok(Some(format!(
                    "the model does not fit {} entirely (hw_only=True):\n{}",
                    device.version,
                    reasons.join("\n")
                )));
            }
            state.mapped = Some((device, mode));
            state.emulation = None;
            Ok(None)
        })?;
        match refusal {
            Some(message) => Err(crate::errors::mapping_error(message)),
            None => Ok(()),
        }
    }

    /// What the emulator counted in the last `forward`, `predict` or `evaluate` call of a mapped
    /// model, with the cost model's estimates; None before such a call. A dict: `samples`;
    /// `layers` (layer name -> counts), `nps` (NP ident -> counts), `hrc` and `totals` (counts:
    /// `input_events`, `output_events`, `synaptic_ops`, `packets`, `hops`); `estimates`
    /// (`cycles_per_frame`, `latency_s`, `frames_per_s`, `energy_per_frame_j`, `power_w`, and
    /// `note`, which says they are estimates of the fitted cost model, not measurements).
    #[getter(statistics)]
    fn emulated_run<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        // Copied under the lock, which is released before any Python object is built (see
        // state.rs: building them can run arbitrary Python code, through the garbage collector).
        let (run, mapping, device, names) = {
            let state = lock(&self.state);
            let (Some(run), Some(mapping), Some((device, _))) = (&state.emulation, state.mapping(), &state.mapped)
            else {
                return Ok(None);
            };
            let names: Vec<String> = state.model.layers().iter().map(|l| l.name().to_owned()).collect();
            (run.clone(), mapping, device.clone(), names)
        };
        let (run, device) = (&run, &device);
        let counts = |c: &akida_nsoc::Counts| -> PyResult<Bound<'py, PyDict>> {
            let d = PyDict::new(py);
            d.set_item("input_events", c.input_events)?;
            d.set_item("output_events", c.output_events)?;
            d.set_item("synaptic_ops", c.synaptic_ops)?;
            d.set_item("packets", c.packets)?;
            d.set_item("hops", c.hops)?;
            Ok(d)
        };
        let out = PyDict::new(py);
        out.set_item("samples", run.samples)?;
        let layers = PyDict::new(py);
        for (name, c) in names.iter().zip(&run.layers) {
            layers.set_item(name, counts(c)?)?;
        }
        out.set_item("layers", layers)?;
        let nps = PyDict::new(py);
        for (ident, c) in &run.nps {
            nps.set_item((ident.col, ident.row, ident.id), counts(c)?)?;
        }
        out.set_item("nps", nps)?;
        out.set_item("hrc", counts(&run.hrc)?)?;
        out.set_item("totals", counts(&run.totals())?)?;
        let e = run.estimate(&mapping, device, &akida_nsoc::CostModel::calibrated());
        let estimates = PyDict::new(py);
        estimates.set_item("cycles_per_frame", e.cycles_per_frame)?;
        estimates.set_item("latency_s", e.latency_s)?;
        estimates.set_item("frames_per_s", e.frames_per_s)?;
        estimates.set_item("energy_per_frame_j", e.energy_per_frame_j)?;
        estimates.set_item("power_w", e.power_w)?;
        estimates
            .set_item("note", "estimates of the cost model in docs/nsoc.md, not yet calibrated to board figures")?;
        out.set_item("estimates", estimates)?;
        Ok(Some(out))
    }

    /// Returns the model to plain software (as `map(None)`).
    fn unmap(&self) {
        let mut state = lock(&self.state);
        state.mapped = None;
        state.emulation = None;
    }

    /// The device the model is mapped onto, or None.
    #[getter]
    fn device(&self) -> Option<PyDevice> {
        lock(&self.state).mapped.as_ref().map(|(device, _)| PyDevice::new(device.clone()))
    }

    /// The model's sequences: runs of layers with one backend, in passes. An unmapped model is one
    /// software sequence of one pass.
    #[getter]
    fn sequences(&self, py: Python<'_>) -> PyResult<Vec<PySequence>> {
        let (mapping, count) = {
            let state = lock(&self.state);
            (state.mapping(), state.model.layers().len())
        };
        crate::nsoc::sequences(py, mapping.as_ref(), count, |index| self.layer_handle(py, index))
    }

    /// A text report of the mapping on `device` (default: the mapped device, else the AKD1000) in
    /// both modes: NPs used, sequences, passes, each layer's placement and NP memory.
    #[pyo3(signature = (device = None))]
    fn map_report(&self, device: Option<PyRef<'_, PyDevice>>) -> String {
        let state = lock(&self.state);
        let device = match (device, &state.mapped) {
            (Some(d), _) => d.device.clone(),
            (None, Some((d, _))) => d.clone(),
            (None, None) => akida_nsoc::Device::akd1000(),
        };
        [akida_nsoc::MapMode::AllNps, akida_nsoc::MapMode::Minimal]
            .into_iter()
            .map(|mode| akida_nsoc::report(&akida_nsoc::map(&state.model, &device, mode), &device))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Prints one row per layer: name and type, shapes, kernel shape and main parameters; for a
    /// mapped model, then its sequences, passes and the NPs of each layer.
    fn summary(&self, py: Python<'_>) -> PyResult<()> {
        let text = {
            let state = lock(&self.state);
            if state.model.layers().is_empty() {
                "The model has no layers.\n".to_owned()
            } else {
                let mut text = akida_engine::summary::summary(&state.model);
                if let (Some(mapping), Some((device, _))) = (state.mapping(), &state.mapped) {
                    text.push('\n');
                    text.push_str(&akida_nsoc::report(&mapping, device));
                }
                text
            }
        };
        py.import("builtins")?.getattr("print")?.call1((text.trim_end(),))?;
        Ok(())
    }

    /// Output of the last layer for `inputs` (uint8 `(N, H, W, C)` array or `akida.Events`):
    /// uint8 activations, or int32 potentials when the last layer has activations disabled.
    /// `verbose` shows a progress bar, `progress(done, total)` is called as samples complete
    /// (see docs/api.md, "Progress"); Ctrl-C interrupts the call within about 0.2 s.
    #[pyo3(signature = (inputs, batch_size = None, verbose = None, progress = None))]
    fn forward<'py>(
        &self,
        py: Python<'py>,
        inputs: &Bound<'py, PyAny>,
        batch_size: Option<i64>,
        verbose: Option<&Bound<'py, PyAny>>,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let progress = Progress::new("forward", verbose, progress)?;
        let (values, shape, samples) = self.run(py, inputs, batch_size, &progress)?;
        values.into_array(py, shape, samples)
    }

    /// The last layer's potentials rescaled per neuron, as float32 `(N, H, W, C)`:
    /// `float32(float64(potential) * float64(output_scale[c]) + float64(output_offset[c]))`.
    /// The last layer must have activations disabled (`forward` gives the activations).
    /// `verbose` and `progress` as in `forward`.
    #[pyo3(signature = (inputs, batch_size = None, verbose = None, progress = None))]
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        inputs: &Bound<'py, PyAny>,
        batch_size: Option<i64>,
        verbose: Option<&Bound<'py, PyAny>>,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let progress = Progress::new("evaluate", verbose, progress)?;
        let (values, shape, samples) = self.run_with(py, inputs, batch_size, None, Mode::Evaluate, &progress)?;
        values.into_array(py, shape, samples)
    }

    /// The class of each sample (int32), -1 when no neuron responds. Neurons form `num_classes`
    /// equal contiguous groups (default: one class per neuron).
    /// `verbose` and `progress` as in `forward`.
    #[pyo3(signature = (inputs, num_classes = None, batch_size = None, verbose = None, progress = None))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        inputs: &Bound<'py, PyAny>,
        num_classes: Option<i64>,
        batch_size: Option<i64>,
        verbose: Option<&Bound<'py, PyAny>>,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArray1<i32>>> {
        let progress = Progress::new("predict", verbose, progress)?;
        let (channels, learned_classes) = guarded(|| {
            let state = lock(&self.state);
            let channels = state.model.output_shape()?.channels;
            let learned = state.model.layers().last().and_then(|l| l.learning()).map(|l| l.config.num_classes);
            Ok((channels, learned))
        })?;
        let num_classes = match num_classes {
            None => learned_classes.unwrap_or(channels),
            Some(n) if n >= 1 => n as usize,
            Some(n) => return raise(Error::Parameter(format!("num_classes must be >= 1, got {n}"))),
        };
        if channels % num_classes != 0 || num_classes > channels {
            return raise(Error::Parameter(format!(
                "num_classes must divide the {channels} output neurons into equal groups, got {num_classes}"
            )));
        }
        let (values, _, samples) = self.run(py, inputs, batch_size, &progress)?;
        let classes = match &values {
            Values::Activations(v) => classify(v, channels, samples, num_classes),
            Values::Potentials(v) => classify(v, channels, samples, num_classes),
            // `run` never rescales.
            Values::Rescaled(_) => Err(Error::Architecture("predict classifies activations or potentials".into())),
        }
        .map_err(to_pyerr)?;
        Ok(PyArray1::from_vec(py, classes))
    }

    /// Prepares the last layer for Akida unsupervised learning (see docs/learning.md).
    #[pyo3(signature = (num_weights, num_classes = 1, initial_plasticity = 1.0, min_plasticity = 0.1,
        plasticity_decay = 0.25, learning_competition = 0.0, seed = 0))]
    #[allow(clippy::too_many_arguments)]
    fn compile(
        &self,
        num_weights: i64,
        num_classes: i64,
        initial_plasticity: f64,
        min_plasticity: f64,
        plasticity_decay: f64,
        learning_competition: f64,
        seed: i128,
    ) -> PyResult<()> {
        let Ok(seed) = u64::try_from(seed) else {
            return raise(Error::Parameter(format!("seed must be in [0, 2**64), got {seed}")));
        };
        let config = akida_engine::learning::LearningConfig::new(
            num_weights,
            num_classes,
            initial_plasticity,
            min_plasticity,
            plasticity_decay,
            learning_competition,
            seed,
        )
        .map_err(to_pyerr)?;
        guarded(|| lock(&self.state).model_mut()?.compile(config))
    }

    /// Learns from `inputs` sample by sample and returns the last layer's outputs as `forward`
    /// would. `input_labels`: None, one int for all samples, or one per sample; a label
    /// `>= num_classes` means the sample is not learned.
    /// `verbose` and `progress` as in `forward`. Interrupted (Ctrl-C, or an exception from the
    /// progress callback), the model keeps what the samples before the interruption learned.
    #[pyo3(signature = (inputs, input_labels = None, batch_size = None, verbose = None, progress = None))]
    fn fit<'py>(
        &self,
        py: Python<'py>,
        inputs: &Bound<'py, PyAny>,
        input_labels: Option<&Bound<'py, PyAny>>,
        batch_size: Option<i64>,
        verbose: Option<&Bound<'py, PyAny>>,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let progress = Progress::new("fit", verbose, progress)?;
        let labels = match input_labels {
            None => None,
            Some(l) => Some(crate::arrays::integer_array(l, "input_labels")?.1),
        };
        let (values, shape, samples) = self.run_with(py, inputs, batch_size, Some(labels), Mode::Forward, &progress)?;
        values.into_array(py, shape, samples)
    }

    /// Adds `num_classes` classes (groups of new neurons) to the compiled last layer.
    fn add_classes(&self, num_classes: i64) -> PyResult<()> {
        if num_classes < 1 {
            return raise(Error::Parameter(format!("num_classes must be >= 1, got {num_classes}")));
        }
        guarded(|| lock(&self.state).model_mut()?.add_classes(num_classes as usize))
    }

    /// Statistics of the last `forward` or `predict` call: layer name -> `LayerStatistics`.
    fn get_statistics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        // Copy under the lock, build Python objects after releasing it.
        let entries: Vec<(String, LayerStatistics)> = {
            let state = lock(&self.state);
            match &state.statistics {
                Some(stats) => state.model.layers().iter().zip(stats).map(|(l, s)| (l.name().to_owned(), *s)).collect(),
                None => Vec::new(),
            }
        };
        let dict = PyDict::new(py);
        for (name, stats) in entries {
            dict.set_item(name.clone(), PyLayerStatistics { stats, name })?;
        }
        Ok(dict)
    }

    fn __len__(&self) -> usize {
        self.get_layer_count()
    }

    fn __repr__(&self) -> String {
        let state = lock(&self.state);
        let names: Vec<&str> = state.model.layers().iter().map(|l| l.name()).collect();
        format!("<akida.Model: {}>", if names.is_empty() { "no layers".to_owned() } else { names.join(" -> ") })
    }
}

/// Counters of one layer over the last `forward` or `predict` call.
#[pyclass(name = "LayerStatistics", module = "akida", frozen)]
pub struct PyLayerStatistics {
    stats: LayerStatistics,
    name: String,
}

#[pymethods]
impl PyLayerStatistics {
    /// Number of samples counted.
    #[getter]
    fn samples(&self) -> u64 {
        self.stats.samples
    }

    /// Fraction of zero input values.
    #[getter]
    fn input_sparsity(&self) -> f64 {
        self.stats.input_sparsity()
    }

    /// Fraction of zero output values.
    #[getter]
    fn output_sparsity(&self) -> f64 {
        self.stats.output_sparsity()
    }

    /// Multiply-accumulates of non-zero inputs with the weights they feed.
    #[getter]
    fn synaptic_operations(&self) -> u64 {
        self.stats.synaptic_operations
    }

    fn __repr__(&self) -> String {
        format!(
            "<LayerStatistics '{}': samples={}, input_sparsity={:.4}, output_sparsity={:.4}, synaptic_operations={}>",
            self.name,
            self.stats.samples,
            self.stats.input_sparsity(),
            self.stats.output_sparsity(),
            self.stats.synaptic_operations
        )
    }
}
