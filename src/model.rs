//! `akida.Model` and `akida.LayerStatistics`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use numpy::{PyArray1, PyArray4, PyArrayDescrMethods, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyInt, PyList, PyNone, PyString, PyType};

use akida_engine::model::classify;
use akida_engine::{Error, EventBatch, Input, LayerStatistics, Output, OutputKind, Shape3};

use crate::args::{buffer_bytes, describe, Arg, FromArg, Where};
use crate::errors::{raise, to_pyerr};
use crate::events::PyEvents;
use crate::layers::{layer_object, PyLayer};
use crate::nsoc::{PyDevice, PyMapMode, PySequence};
use crate::runtime::{cancellable, compute, compute_checked, guarded, parallel_allowed};
use crate::state::{lock, new_layer_id, shared, LayerSlot, ModelState, SharedModel};
use akida_engine::error::{copied_vec, zeroed_vec};

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

/// `obj` as a layer object, or a `TypeError` naming the argument.
fn layer_arg<'py>(obj: &Bound<'py, PyAny>, at: &Where<'_>) -> PyResult<Bound<'py, PyLayer>> {
    obj.cast::<PyLayer>().cloned().map_err(|_| at.type_error("an akida layer", obj))
}

/// `obj` as a list of layer objects: a list or tuple of layers (not a str, not one layer).
fn layer_list<'py>(obj: &Bound<'py, PyAny>, at: &Where<'_>) -> PyResult<Vec<Bound<'py, PyLayer>>> {
    let items: Vec<Bound<'py, PyAny>> = if let Ok(l) = obj.cast::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = obj.cast::<pyo3::types::PyTuple>() {
        t.iter().collect()
    } else {
        return Err(at.type_error("a list of akida layers", obj));
    };
    items
        .iter()
        .enumerate()
        .map(|(k, item)| {
            item.cast::<PyLayer>().cloned().map_err(|_| {
                pyo3::exceptions::PyTypeError::new_err(format!(
                    "{}() argument '{}' must be a list of akida layers, got {} at position {k}",
                    at.function,
                    at.name,
                    describe(item)
                ))
            })
        })
        .collect()
}

/// A file path argument: str, bytes or os.PathLike (through `os.fspath`).
fn path_arg(obj: &Bound<'_, PyAny>, at: &Where<'_>) -> PyResult<std::path::PathBuf> {
    let expected = "a path (str, bytes or os.PathLike)";
    // `os.fsdecode` turns bytes into the str the file system encoding maps back to them.
    let decoded = obj.py().import("os")?.call_method1("fsdecode", (obj,)).map_err(|_| at.type_error(expected, obj))?;
    decoded.extract::<std::path::PathBuf>().map_err(|_| at.type_error(expected, obj))
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
/// added before it unless ``inbound_layers`` says otherwise.
///
/// Parameters
/// ----------
/// filename : str, bytes or os.PathLike, optional
///     A ``.fb`` or ``.fbz`` model file (the content decides which). A list or tuple of layers
///     here is taken as ``layers``; a bytes-like object that cannot be a path (a ``bytearray``,
///     a ``memoryview``, or ``bytes`` holding a NUL byte, as every saved model does) as
///     ``serialized_buffer``.
/// serialized_buffer : bytes-like, optional
///     The bytes of a saved model (``bytes``, ``bytearray``, ``memoryview`` or any buffer).
/// layers : list of Layer, optional
///     Layers added in order, each fed by the one before.
/// max_size : int, optional, keyword only
///     Bytes. By default, loading caps what it produces rather than finds at 192 MiB: the
///     inflated size of a compressed model and the bytes read from a pipe or device. Given, it
///     caps every model buffer, regular files included (at most 2 GiB - 1, the format's limit);
///     raise it for genuinely huge models (docs/api.md, "Files and memory").
///
/// Raises
/// ------
/// FileNotFoundError, OSError
///     The file cannot be read (``errno``, ``strerror`` and ``filename`` are set).
/// MemoryError
///     The model does not fit in memory.
/// TimeoutError
///     A pipe or device gave no data for 60 s.
/// ModelFormatError
///     The file or buffer is not a valid model.
/// ParameterError
///     More than one source given.
/// TypeError
///     An argument of the wrong type (the message names it).
///
/// Examples
/// --------
/// >>> import akida
/// >>> model = akida.Model([akida.InputData(input_shape=(4, 4, 1), input_bits=1),
/// ...                      akida.FullyConnected(3)])
/// >>> copy = akida.Model(serialized_buffer=bytearray(model.to_buffer()))
/// >>> [layer.name for layer in copy.layers]
/// ['input_data', 'fully_connected']
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

    /// The bytes of the model's `.fb` file, or None when it has no layers. The serialized buffer is
    /// copied once, into the bytes object (allocated by Python: MemoryError when it cannot be).
    fn serialized<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let model = lock(&self.state).model.clone();
        let buffer = compute(py, move || {
            if model.layers().is_empty() {
                return Ok(None);
            }
            akida_format::serialize_buffer(&model, akida_format::FORMAT_VERSION).map(Some)
        })?;
        let Some(buffer) = buffer else { return Ok(None) };
        let bytes = PyBytes::new_with(py, buffer.len(), |dst| {
            dst.copy_from_slice(&buffer);
            Ok(())
        })
        .map_err(|e| match e.is_instance_of::<pyo3::exceptions::PyMemoryError>(py) {
            true => to_pyerr(Error::Memory(format!(
                "cannot allocate the model bytes ({} bytes): out of memory",
                buffer.len()
            ))),
            false => e,
        })?;
        Ok(Some(bytes))
    }

    fn layer_handle(&self, py: Python<'_>, index: usize) -> PyResult<Py<PyAny>> {
        let (kind, id) = guarded(|| {
            let state = lock(&self.state);
            let layer = state.model.layer(index)?;
            Ok((layer.kind(), state.ids[index]))
        })?;
        layer_object(py, kind, LayerSlot::Attached { model: self.state.clone(), id })
    }

    /// The index of the layer `key` names: a name (str) or an index (int or numpy integer,
    /// negative counts from the end).
    fn layer_index(&self, key: &Bound<'_, PyAny>, at: &Where<'_>) -> PyResult<usize> {
        if let Ok(name) = key.cast::<PyString>() {
            let name = name.to_str()?;
            let found = lock(&self.state).model.index_of(name);
            return found.map_err(to_pyerr);
        }
        let is_index = key.is_instance_of::<PyInt>() || (key.hasattr("__index__")? && !key.is_instance_of::<PyFloat>());
        if is_index && !crate::args::is_bool(key)? {
            let i = i64::from_arg(key, at)?;
            let count = lock(&self.state).model.layers().len() as i64;
            let resolved = if i < 0 { i + count } else { i };
            if !(0..count).contains(&resolved) {
                return raise(Error::LayerNotFound(format!("no layer at index {i}: the model has {count} layers")));
            }
            return Ok(resolved as usize);
        }
        Err(at.type_error("a layer name (str) or index (int)", key))
    }

    /// Runs the model on `inputs` (see [`run_with`](Self::run_with)).
    fn run(
        &self,
        py: Python<'_>,
        inputs: &Bound<'_, PyAny>,
        batch_size: Option<i64>,
        progress: &Progress<'_>,
    ) -> PyResult<(Values, Shape3, usize)> {
        self.run_with(py, inputs, batch_size, None, Mode::Forward, None, progress)
    }

    /// The driver of every long model call: runs the model on `inputs`, learning from every
    /// sample when `labels` is `Some` (`Some(None)`: unlabeled learning), or rescaling the output
    /// potentials for `Mode::Evaluate`. `output_layer` (forward only) returns the output of that
    /// layer instead of the last one's: only the layers it needs run, in software even in a mapped
    /// model.
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
    #[allow(clippy::too_many_arguments)]
    fn run_with(
        &self,
        py: Python<'_>,
        inputs: &Bound<'_, PyAny>,
        batch_size: Option<i64>,
        labels: Option<Option<Vec<i64>>>,
        mode: Mode,
        output_layer: Option<usize>,
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
        let (fit_token, snapshot, emulator) = if learn {
            let (token, snapshot) = FitToken::acquire(py, &self.state)?;
            (Some(token), snapshot, None)
        } else {
            let mut state = lock(&self.state);
            let emulator = state.emulator().map_err(to_pyerr)?;
            (None, state.model.clone(), emulator)
        };
        let model: &akida_engine::Model = &snapshot;
        // An intermediate output layer: checked against this snapshot, run in software.
        let target = output_layer.filter(|&t| t + 1 != model.layers().len());
        let emulator = if target.is_some() { None } else { emulator };
        let (input_shape, output_shape, kind) = guarded(|| {
            if mode == Mode::Evaluate {
                model.check_rescalable()?;
            }
            match target {
                Some(t) => {
                    let r = model
                        .layer(t)?
                        .resolved()
                        .ok_or_else(|| Error::Architecture("the layer is not part of a model".into()))?;
                    Ok((model.input_shape()?, r.output_shape, r.output))
                }
                None => Ok((model.input_shape()?, model.output_shape()?, model.output_kind()?)),
            }
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
                    "input_labels: expected one label per sample ({samples}) or one for all, got {} labels",
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
        let heavy_samples = dense_multiply_adds_per_sample(model) >= HEAVY_SAMPLE_MULTIPLY_ADDS;
        let reporter = progress.start(py, samples)?;
        let mut totals: Option<Vec<LayerStatistics>> = None;
        let mut emulation: Option<akida_nsoc::Emulation> = None;
        let parallel = parallel_allowed();
        let mut done = 0;
        let mut outcome: PyResult<()> = Ok(());
        while done < samples {
            let (start, end) = (done, (done + chunker.size()).min(samples));
            let chunk_events = match events.as_ref().map(|b| b.slice(start, end)).transpose() {
                Ok(chunk) => chunk,
                Err(e) => {
                    outcome = Err(to_pyerr(e));
                    break;
                }
            };
            // A private copy of the chunk: the caller's array could change while the engine
            // computes without the GIL, after its values were checked.
            let chunk_data: Option<Vec<u8>> = match (data, &strided) {
                (Some(d), _) => {
                    match copied_vec(&d[start * input_shape.len()..end * input_shape.len()], "a copy of the inputs") {
                        Ok(copy) => Some(copy),
                        Err(e) => {
                            outcome = Err(to_pyerr(e));
                            break;
                        }
                    }
                }
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
            let emulator = emulator.as_ref();
            let learner = working.as_mut();
            let began = Instant::now();
            // Samples slower than the chunk target: the chunk runs on a worker thread that stops
            // between layers on Ctrl-C (starting a thread per chunk would cost fast calls).
            // So does the first chunk of a model whose samples may be slow (before any sample was
            // timed): a thread start costs microseconds against the milliseconds of such a sample.
            let slow = chunker.slow_samples() || (done == 0 && heavy_samples);
            let stats = if slow && learner.is_none() && emulator.is_none() {
                cancellable(py, move |cancel| match target {
                    Some(t) => model.forward_to_with(t, input, output, parallel, &CancelCheck(cancel)),
                    None => model.forward_with(input, output, parallel, &CancelCheck(cancel)),
                })
            } else {
                compute(py, move || match (learner, chunk_labels) {
                    (Some(learner), Some(l)) => learner.fit(input, l, output, parallel),
                    _ => match emulator {
                        Some(emulator) => {
                            let run = akida_nsoc::emulate_forward_with(emulator, model, input, output, parallel)?;
                            let stats = emulated_statistics(model, &run);
                            match emulated {
                                Some(e) => e.absorb(run),
                                None => *emulated = Some(run),
                            }
                            Ok(stats)
                        }
                        None => match target {
                            Some(t) => model.forward_to(t, input, output, parallel),
                            None => model.forward(input, output, parallel),
                        },
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
            match compute(py, move || match (learner, target) {
                (Some(learner), _) => learner.fit(input, None, output, parallel),
                (None, Some(t)) => model.forward_to(t, input, output, parallel),
                (None, None) => model.forward(input, output, parallel),
            }) {
                Ok(stats) => totals = Some(stats),
                Err(e) => outcome = Err(e),
            }
        }
        let closed = reporter.close();
        let complete = outcome.is_ok();
        {
            let mut state = lock(&self.state);
            if let Some(mut learned) = working.filter(|_| done > 0) {
                // Published even when the call was cut short: the model keeps exactly what the
                // samples before the interruption learned. What fit kept between its chunks to
                // learn fast is freed (the next fit derives it again).
                learned.release_learning_cache();
                state.model = Arc::new(learned);
                state.emulator = None;
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
    copied_vec(part.readonly().as_slice()?, "a copy of the inputs").map_err(to_pyerr)
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

    fn sees_values(&self) -> bool {
        false
    }
}

/// The work a chunk of a long call aims at: short enough to hear Ctrl-C (and report progress)
/// several times a second, long enough that the per-chunk cost (a GIL round trip, the parallel
/// split) stays negligible.
const CHUNK_TARGET: Duration = Duration::from_millis(50);

/// Multiply-adds per sample (counting every input, as a dense kernel does) from which a sample
/// may take longer than the chunk target even on the portable kernels (about 1 G/s): the first
/// chunk of such a model runs on the cancellable worker, as chunks of timed slow samples do.
const HEAVY_SAMPLE_MULTIPLY_ADDS: u64 = 32 << 20;

/// An upper bound of the multiply-adds of one sample: every layer's potentials times the inputs
/// each neuron connects to.
fn dense_multiply_adds_per_sample(model: &akida_engine::Model) -> u64 {
    model
        .layers()
        .iter()
        .filter_map(|l| l.resolved().map(|r| r.potentials_shape.len() as u64 * l.connections() as u64))
        .fold(0u64, u64::saturating_add)
}

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
/// `callback(done, total)`, both through `akida.progress.Reporter`.
pub struct Progress<'py> {
    what: &'static str,
    verbose: bool,
    callback: Option<Bound<'py, PyAny>>,
}

impl<'py> Progress<'py> {
    /// The progress arguments of a call named `what`; `verbose` is a bool or an int (0: quiet),
    /// numpy scalars included, as everywhere (`docs/api.md`).
    fn new(
        what: &'static str,
        verbose: Option<&Bound<'py, PyAny>>,
        callback: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Self> {
        let at = Where { function: what, name: "verbose" };
        let verbose = match verbose {
            None => false,
            Some(v) if v.is_none() => false,
            Some(v) => match bool::from_arg(v, &at) {
                Ok(flag) => flag,
                Err(_) => i64::from_arg(v, &at).map_err(|_| at.type_error("a bool or an int", v))? != 0,
            },
        };
        let callback = callback.filter(|c| !c.is_none());
        if let Some(c) = callback.as_ref().filter(|c| !c.is_callable()) {
            return Err(Where { function: what, name: "callback" }.type_error("a callable callback(done, total)", c));
        }
        Ok(Progress { what, verbose, callback })
    }

    fn start(&self, py: Python<'py>, total: usize) -> PyResult<Reporter<'py>> {
        if !self.verbose && self.callback.is_none() {
            return Ok(Reporter(None));
        }
        let class = py.import("akida.progress")?.getattr("Reporter")?;
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
                ..LayerStatistics::default()
            }
        })
        .collect()
}

#[pymethods]
impl PyModel {
    #[new]
    #[pyo3(signature = (filename = None, serialized_buffer = None, layers = None, *, max_size = Arg::Default(None)),
        text_signature = "(filename=None, serialized_buffer=None, layers=None, *, max_size=None)")]
    fn new(
        py: Python<'_>,
        filename: Option<&Bound<'_, PyAny>>,
        serialized_buffer: Option<&Bound<'_, PyAny>>,
        layers: Option<&Bound<'_, PyAny>>,
        max_size: Arg<'_, Option<i64>>,
    ) -> PyResult<Self> {
        let limits = match max_size.get("Model", "max_size")? {
            None => akida_format::Limits::default(),
            Some(n) if n >= 1 => akida_format::Limits::with_max_size(usize::try_from(n).unwrap_or(usize::MAX)),
            Some(n) => {
                return raise(Error::Parameter(format!("Model() argument 'max_size' must be >= 1 (bytes), got {n}")))
            }
        };
        let mut layers = match layers {
            Some(l) => Some(layer_list(l, &Where { function: "Model", name: "layers" })?),
            None => None,
        };
        let mut filename = filename;
        if let Some(first) = filename {
            if first.is_instance_of::<PyList>() || first.is_instance_of::<pyo3::types::PyTuple>() {
                if layers.is_some() {
                    return raise(Error::Parameter("give the layers once, as `layers`".into()));
                }
                layers = Some(layer_list(first, &Where { function: "Model", name: "layers" })?);
                filename = None;
            }
        }
        // `Model(model.to_buffer())`: a positional bytes-like object that cannot be a path (a
        // bytearray or memoryview, or bytes holding a NUL byte, which no path holds) is a buffer.
        let mut serialized_buffer = serialized_buffer;
        if let Some(first) = filename {
            let is_buffer = first.is_instance_of::<pyo3::types::PyByteArray>()
                || first.is_instance_of::<pyo3::types::PyMemoryView>()
                || first.cast::<pyo3::types::PyBytes>().is_ok_and(|b| b.as_bytes().contains(&0));
            if is_buffer && serialized_buffer.is_none() {
                serialized_buffer = Some(first);
                filename = None;
            }
        }
        let sources = [filename.is_some(), serialized_buffer.is_some(), layers.is_some()];
        if sources.iter().filter(|&&s| s).count() > 1 {
            return raise(Error::Parameter("give at most one of filename, serialized_buffer and layers".into()));
        }
        let loaded = if let Some(f) = filename {
            let path = path_arg(f, &Where { function: "Model", name: "filename" })?;
            Some(compute_checked(py, move |check| akida_format::load_with(&path, &limits, check))?)
        } else if let Some(b) = serialized_buffer {
            let bytes = buffer_bytes(b, &Where { function: "Model", name: "serialized_buffer" })?;
            let data = bytes.as_bytes();
            Some(compute_checked(py, move |check| akida_format::deserialize_with(data, &limits, check))?)
        } else {
            None
        };
        let model = PyModel { state: shared(loaded.map(ModelState::of_model).unwrap_or_default()) };
        let layers = layers.unwrap_or_default();
        for (added, layer) in layers.iter().enumerate() {
            if let Err(e) = model.add_layer(layer, None) {
                // The model is not made: the layers it took are new layer objects again, so that
                // the caller can build a model from them.
                let copies: Vec<akida_engine::Layer> = lock(&model.state).model.layers()[..added].to_vec();
                for (earlier, copy) in layers[..added].iter().zip(copies) {
                    *lock(&earlier.get().slot) = LayerSlot::Detached(Box::new(copy));
                }
                return Err(e);
            }
        }
        Ok(model)
    }

    /// Saves the model to a file, replacing it atomically.
    ///
    /// Parameters
    /// ----------
    /// path : str, bytes or os.PathLike
    ///     ``.fb`` for a FlatBuffer, ``.fbz`` for a compressed one.
    ///
    /// Raises
    /// ------
    /// ParameterError
    ///     Another extension.
    /// ArchitectureError
    ///     The model has no layers.
    /// OSError
    ///     The file cannot be written.
    #[pyo3(signature = (path), text_signature = "(self, path)")]
    fn save(&self, py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<()> {
        let path = path_arg(path, &Where { function: "save", name: "path" })?;
        let model = lock(&self.state).model.clone();
        compute(py, move || {
            if model.layers().is_empty() {
                return Err(Error::Architecture("cannot save a model with no layers".into()));
            }
            akida_format::save(&model, &path)
        })
    }

    /// The model as bytes: the content of a ``.fb`` file, loadable with
    /// ``Model(serialized_buffer=...)``.
    ///
    /// Raises
    /// ------
    /// ArchitectureError
    ///     The model has no layers.
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

    /// Appends a layer.
    ///
    /// Parameters
    /// ----------
    /// layer : Layer
    ///     A new layer object (not in any model yet). The first layer must be an input layer.
    /// inbound_layers : list of Layer, optional
    ///     The layers of this model feeding it; default (None or an empty list, the 1.x default):
    ///     the last layer added. A Concat needs at least two, every other layer exactly one.
    ///
    /// Raises
    /// ------
    /// ArchitectureError
    ///     The layer breaks a structural rule; the model is unchanged. In a branched model the
    ///     message says where the default inbound layer would lead.
    /// TypeError
    ///     An argument of the wrong type (the message names it).
    ///
    /// Examples
    /// --------
    /// >>> import akida
    /// >>> model = akida.Model()
    /// >>> model.add(akida.InputData(input_shape=(8, 8, 1), input_bits=1))
    /// >>> model.add(akida.Convolutional(3, 3, 4))
    /// >>> model.get_layer(1).inbound_layers
    /// [<akida.InputData 'input_data'>]
    #[pyo3(signature = (layer, inbound_layers = None), text_signature = "(self, layer, inbound_layers=None)")]
    fn add(&self, layer: &Bound<'_, PyAny>, inbound_layers: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let layer = layer_arg(layer, &Where { function: "add", name: "layer" })?;
        let inbound = match inbound_layers {
            Some(l) if !l.is_none() => Some(layer_list(l, &Where { function: "add", name: "inbound_layers" })?),
            _ => None,
        };
        // The 1.x signature's default is `inbound_layers=[]`: an empty list is the default too.
        let inbound = inbound.filter(|list| !list.is_empty());
        self.add_layer(&layer, inbound)
    }

    /// Removes the last layer.
    ///
    /// Views of the removed layer raise ``LayerNotFoundError`` afterwards. When the removal
    /// leaves layers that the new last layer does not depend on (popping the Concat that joined
    /// two branches leaves one of them dangling: ``forward`` would silently compute only the
    /// other), a ``UserWarning`` names them; :meth:`summary` marks them too.
    ///
    /// Raises
    /// ------
    /// ArchitectureError
    ///     The model has no layers.
    fn pop_layer(&self, py: Python<'_>) -> PyResult<()> {
        let newly_dangling: Vec<String> = guarded(|| {
            let mut state = lock(&self.state);
            let before: Vec<u64> =
                akida_engine::summary::dangling_layers(&state.model).into_iter().map(|i| state.ids[i]).collect();
            let name = state.model.layers().last().map(|l| l.name().to_owned());
            state.model_mut()?.pop_layer()?;
            if let (Some(id), Some(name)) = (state.ids.pop(), name) {
                state.removed.insert(id, name);
            }
            let after = akida_engine::summary::dangling_layers(&state.model);
            Ok(after
                .into_iter()
                .filter(|&i| !before.contains(&state.ids[i]))
                .map(|i| state.model.layers()[i].name().to_owned())
                .collect())
        })?;
        if !newly_dangling.is_empty() {
            let last = lock(&self.state).model.layers().last().map(|l| l.name().to_owned()).unwrap_or_default();
            let (layers, lead, them) =
                if newly_dangling.len() == 1 { ("layer", "leads", "it") } else { ("layers", "lead", "them") };
            let message = format!(
                "after pop_layer() the {layers} {} no longer {lead} to the output layer '{last}': forward computes \
                 only the path to '{last}'; pop {them} too, or add a layer joining them (see summary())",
                newly_dangling.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
            );
            let warnings = py.import("warnings")?;
            let category = py.import("builtins")?.getattr("UserWarning")?;
            warnings.call_method1("warn", (message, category, 2))?;
        }
        Ok(())
    }

    /// A layer of the model, by name or index.
    ///
    /// Parameters
    /// ----------
    /// key : str or int
    ///     The layer name, or its index (negative counts from the end; numpy integers work).
    ///
    /// Returns
    /// -------
    /// Layer
    ///     A view of the layer: changes through it change the model.
    ///
    /// Raises
    /// ------
    /// LayerNotFoundError
    ///     No layer of that name or index (a ``KeyError`` and an ``IndexError``).
    /// TypeError
    ///     ``key`` is neither a str nor an int.
    #[pyo3(signature = (key), text_signature = "(self, key)")]
    fn get_layer(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let index = self.layer_index(key, &Where { function: "get_layer", name: "key" })?;
        self.layer_handle(py, index)
    }

    /// The layers, in order.
    #[getter]
    fn layers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let count = self.get_layer_count();
        let handles = (0..count).map(|i| self.layer_handle(py, i)).collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, handles)
    }

    /// The number of layers (also ``len(model)``).
    ///
    /// Returns
    /// -------
    /// int
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
    ///
    /// Parameters
    /// ----------
    /// device : Device or None
    ///     The device (``akida.AKD1000()``), or None to unmap.
    /// hw_only : bool, default False
    ///     Refuse a mapping that leaves layers in software.
    /// mode : MapMode, optional
    ///     ``MapMode.AllNps`` (used when None) spreads layers over every NP, ``MapMode.Minimal``
    ///     uses as few as possible.
    ///
    /// Raises
    /// ------
    /// MappingError
    ///     ``hw_only=True`` and the model does not fit.
    #[pyo3(signature = (device, hw_only = Arg::Default(false), mode = None),
        text_signature = "(self, device, hw_only=False, mode=None)")]
    fn map<'py>(
        &self,
        device: &Bound<'py, PyAny>,
        hw_only: Arg<'py, bool>,
        mode: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<()> {
        let hw_only = hw_only.get("map", "hw_only")?;
        let mode = match mode {
            Some(m) if !m.is_none() => m.extract::<PyMapMode>().map_err(|_| {
                Where { function: "map", name: "mode" }.type_error("an akida.MapMode (AllNps or Minimal) or None", m)
            })?,
            _ => PyMapMode::AllNps,
        };
        let device: Option<PyRef<'_, PyDevice>> = if device.is_none() {
            None
        } else {
            Some(device.extract().map_err(|_| {
                Where { function: "map", name: "device" }
                    .type_error("an akida.Device (akida.AKD1000()) or None", device)
            })?)
        };
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
            state.set_mapped(Some((device, mode)));
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
        estimates.set_item(
            "note",
            "estimates of the cost model in docs/nsoc.md (fitted to two public board figures), not measurements",
        )?;
        out.set_item("estimates", estimates)?;
        Ok(Some(out))
    }

    /// Returns the model to plain software, as ``map(None)`` does.
    ///
    /// Later forward calls run in software without emulation, :attr:`device` and
    /// :attr:`statistics` are None, and layers have no ``mapping``.
    fn unmap(&self) {
        let mut state = lock(&self.state);
        state.set_mapped(None);
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
    ///
    /// Parameters
    /// ----------
    /// device : Device, optional
    ///     The device to report on.
    ///
    /// Returns
    /// -------
    /// str
    ///     The report.
    #[pyo3(signature = (device = None), text_signature = "(self, device=None)")]
    fn map_report(&self, device: Option<&Bound<'_, PyAny>>) -> PyResult<String> {
        let device: Option<PyRef<'_, PyDevice>> = match device {
            Some(d) if !d.is_none() => Some(d.extract().map_err(|_| {
                Where { function: "map_report", name: "device" }.type_error("an akida.Device or None", d)
            })?),
            _ => None,
        };
        let state = lock(&self.state);
        let device = match (device, &state.mapped) {
            (Some(d), _) => d.device.clone(),
            (None, Some((d, _))) => d.clone(),
            (None, None) => akida_nsoc::Device::akd1000(),
        };
        Ok([akida_nsoc::MapMode::AllNps, akida_nsoc::MapMode::Minimal]
            .into_iter()
            .map(|mode| akida_nsoc::report(&akida_nsoc::map(&state.model, &device, mode), &device))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// Shows the model as a table: one row per layer with its name and type, shapes, kernel
    /// shape and main parameters; a "Connected to" column for a branched model; a "Dangling"
    /// note naming the layers the output does not depend on; for a mapped model, then its
    /// sequences, passes and the NPs of each layer.
    ///
    /// Parameters
    /// ----------
    /// print_fn : callable, optional
    ///     Called with the table (one str) instead of ``print``.
    /// return_string : bool, default False
    ///     Return the table instead of printing it.
    ///
    /// Returns
    /// -------
    /// str or None
    ///     The table when ``return_string=True``.
    ///
    /// Examples
    /// --------
    /// >>> import akida
    /// >>> model = akida.Model([akida.InputData(input_shape=(4, 4, 1), input_bits=1),
    /// ...                      akida.FullyConnected(3, activations_enabled=False)])
    /// >>> print(model.summary(return_string=True))
    /// Layer (type)                      Input shape  Output shape  Kernel shape  Parameters
    /// =====================================================================================================
    /// input_data (InputData)            [4, 4, 1]    [4, 4, 1]     -             input_bits=1
    /// fully_connected (FullyConnected)  [4, 4, 1]    [1, 1, 3]     (4, 4, 1, 3)  weights_bits=1, potentials
    /// =====================================================================================================
    #[pyo3(signature = (print_fn = None, return_string = Arg::Default(false)),
        text_signature = "(self, print_fn=None, return_string=False)")]
    fn summary<'py>(
        &self,
        py: Python<'py>,
        print_fn: Option<&Bound<'py, PyAny>>,
        return_string: Arg<'py, bool>,
    ) -> PyResult<Option<String>> {
        let return_string = return_string.get("summary", "return_string")?;
        if let Some(f) = print_fn {
            if !f.is_none() && !f.is_callable() {
                return Err(Where { function: "summary", name: "print_fn" }.type_error("a callable or None", f));
            }
        }
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
        let text = text.trim_end().to_owned();
        if return_string {
            return Ok(Some(text));
        }
        match print_fn {
            Some(f) if !f.is_none() => f.call1((text,))?,
            _ => py.import("builtins")?.getattr("print")?.call1((text,))?,
        };
        Ok(None)
    }

    /// Runs the model and returns the output of its last layer, or of any layer.
    ///
    /// Parameters
    /// ----------
    /// inputs : numpy.ndarray or Events
    ///     uint8 ``(N, H, W, C)`` matching :attr:`input_shape`, or an :class:`Events` batch
    ///     (InputData models).
    /// batch_size : int, optional
    ///     Most samples per chunk run with the GIL released (default: no limit; chunks are then
    ///     sized to about 50 ms of work, see docs/api.md).
    /// verbose : bool or int, optional
    ///     True (or a non-zero int) shows a progress bar on stderr (tqdm when installed).
    /// callback : callable, optional
    ///     ``callback(done, total)``, called as samples complete (docs/api.md, "Progress").
    /// output_layer : str or int, optional
    ///     The layer whose output to return (name or index, negative counts from the end):
    ///     only the layers it needs run, and :meth:`get_statistics` marks the others as not
    ///     computed. Default: the last layer. An intermediate layer always runs in software,
    ///     also in a mapped model.
    ///
    /// Returns
    /// -------
    /// numpy.ndarray
    ///     ``(N, H, W, C)``: uint8 activations, or int32 potentials of a layer with activations
    ///     disabled.
    ///
    /// Raises
    /// ------
    /// DTypeError, InputError
    ///     Inputs of the wrong type, dtype, shape or value range.
    /// LayerNotFoundError
    ///     No layer ``output_layer``.
    /// KeyboardInterrupt
    ///     Ctrl-C: heard within about 0.2 s of work (docs/api.md, "Threads, fork and interrupts").
    ///
    /// Examples
    /// --------
    /// >>> import numpy as np, akida
    /// >>> model = akida.Model([akida.InputData(input_shape=(2, 2, 1), input_bits=1),
    /// ...                      akida.FullyConnected(2, threshold_fire=1),
    /// ...                      akida.FullyConnected(1, activations_enabled=False)])
    /// >>> model.get_layer(1).set_variable("weights", np.ones((2, 2, 1, 2), np.int8))
    /// >>> model.get_layer(2).set_variable("weights", np.ones((1, 1, 2, 1), np.int8))
    /// >>> x = np.array([[[[1], [1]], [[1], [0]]]], np.uint8)
    /// >>> model.forward(x)[0, 0, 0]
    /// array([2], dtype=int32)
    /// >>> model.forward(x, output_layer=1)[0, 0, 0]
    /// array([1, 1], dtype=uint8)
    #[pyo3(signature = (inputs, batch_size = Arg::Default(None), output_layer = None, verbose = None, callback = None),
        text_signature = "(self, inputs, batch_size=None, output_layer=None, verbose=None, callback=None)")]
    fn forward<'py>(
        &self,
        py: Python<'py>,
        inputs: &Bound<'py, PyAny>,
        batch_size: Arg<'py, Option<i64>>,
        output_layer: Option<&Bound<'py, PyAny>>,
        verbose: Option<&Bound<'py, PyAny>>,
        callback: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let batch_size = batch_size.get("forward", "batch_size")?;
        let progress = Progress::new("forward", verbose, callback)?;
        let target = match output_layer.filter(|k| !k.is_none()) {
            Some(key) => Some(self.layer_index(key, &Where { function: "forward", name: "output_layer" })?),
            None => None,
        };
        let (values, shape, samples) = self.run_with(py, inputs, batch_size, None, Mode::Forward, target, &progress)?;
        values.into_array(py, shape, samples)
    }

    /// The last layer's potentials rescaled per neuron.
    ///
    /// Each value is ``float32(float64(potential) * float64(output_scale[c]) +
    /// float64(output_offset[c]))``.
    ///
    /// Parameters
    /// ----------
    /// inputs : numpy.ndarray or Events
    ///     As for :meth:`forward`.
    /// batch_size : int, optional
    ///     Most samples per chunk run with the GIL released (default: no limit; chunks are then
    ///     sized to about 50 ms of work, see docs/api.md).
    /// verbose : bool or int, optional
    ///     A progress bar, as for :meth:`forward`.
    /// callback : callable, optional
    ///     ``callback(done, total)``, as for :meth:`forward`.
    ///
    /// Returns
    /// -------
    /// numpy.ndarray
    ///     float32 ``(N, H, W, C)``.
    ///
    /// Raises
    /// ------
    /// ArchitectureError
    ///     The last layer has activations enabled (use :meth:`forward`).
    #[pyo3(signature = (inputs, batch_size = Arg::Default(None), verbose = None, callback = None),
        text_signature = "(self, inputs, batch_size=None, verbose=None, callback=None)")]
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        inputs: &Bound<'py, PyAny>,
        batch_size: Arg<'py, Option<i64>>,
        verbose: Option<&Bound<'py, PyAny>>,
        callback: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let batch_size = batch_size.get("evaluate", "batch_size")?;
        let progress = Progress::new("evaluate", verbose, callback)?;
        let (values, shape, samples) = self.run_with(py, inputs, batch_size, None, Mode::Evaluate, None, &progress)?;
        values.into_array(py, shape, samples)
    }

    /// The class of each sample.
    ///
    /// The output neurons form ``num_classes`` equal contiguous groups; a sample's class is the
    /// group of its strongest response.
    ///
    /// Parameters
    /// ----------
    /// inputs : numpy.ndarray or Events
    ///     As for :meth:`forward`.
    /// num_classes : int, optional
    ///     Default: the compiled class count, else one class per output neuron.
    /// batch_size : int, optional
    ///     Most samples per chunk run with the GIL released (default: no limit; chunks are then
    ///     sized to about 50 ms of work, see docs/api.md).
    /// verbose : bool or int, optional
    ///     A progress bar, as for :meth:`forward`.
    /// callback : callable, optional
    ///     ``callback(done, total)``, as for :meth:`forward`.
    ///
    /// Returns
    /// -------
    /// numpy.ndarray
    ///     int32 ``(N,)``, -1 where no neuron responds.
    ///
    /// Raises
    /// ------
    /// ParameterError
    ///     ``num_classes`` does not divide the output neurons.
    #[pyo3(signature = (inputs, num_classes = Arg::Default(None), batch_size = Arg::Default(None), verbose = None, callback = None),
        text_signature = "(self, inputs, num_classes=None, batch_size=None, verbose=None, callback=None)")]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        inputs: &Bound<'py, PyAny>,
        num_classes: Arg<'py, Option<i64>>,
        batch_size: Arg<'py, Option<i64>>,
        verbose: Option<&Bound<'py, PyAny>>,
        callback: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArray1<i32>>> {
        let num_classes = num_classes.get("predict", "num_classes")?;
        let batch_size = batch_size.get("predict", "batch_size")?;
        let progress = Progress::new("predict", verbose, callback)?;
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

    /// Prepares the last layer for Akida unsupervised learning (the rule: ``docs/learning.md``).
    ///
    /// The layer gets ``num_weights`` random binary weights per neuron (from ``seed``), a
    /// learning threshold and a plasticity per neuron; :meth:`fit` then learns.
    ///
    /// Parameters
    /// ----------
    /// num_weights : int
    ///     Non-zero weights per neuron, 1..the layer's connections per neuron.
    /// num_classes : int, default 1
    ///     The neurons form this many equal groups, one per class (1: unsupervised).
    /// initial_plasticity : float, default 1.0
    ///     Starting plasticity of every neuron, in [0, 1] (0: nothing is ever learned).
    /// learning_competition : float, default 0.0
    ///     How readily a trained neuron claims a sample close to what it learned (instead of an
    ///     untrained neuron learning it), in [0, 1]; see ``docs/learning.md``.
    /// min_plasticity : float, default 0.1
    ///     Lowest plasticity, in [0, 1]; the floor is ``min(min_plasticity, initial_plasticity)``.
    /// plasticity_decay : float, default 0.25
    ///     Decay per learning step, relative to ``initial_plasticity``: after ``n`` steps a
    ///     neuron's plasticity is ``initial_plasticity / (1 + plasticity_decay * n)``, never below
    ///     that floor; in [0, 1].
    /// seed : int, default 0
    ///     Seed of the initial weights, in [0, 2**64).
    ///
    /// Raises
    /// ------
    /// ArchitectureError
    ///     The last layer cannot learn (FullyConnected or Convolutional, 1-bit weights, binary
    ///     inputs).
    /// ParameterError
    ///     A value out of range.
    ///
    /// Examples
    /// --------
    /// >>> import numpy as np, akida
    /// >>> model = akida.Model([akida.InputData(input_shape=(4, 4, 1), input_bits=1),
    /// ...                      akida.FullyConnected(4, activations_enabled=False)])
    /// >>> model.compile(num_weights=6, num_classes=2)
    /// >>> model.get_layer(1).learning.num_classes
    /// 2
    #[pyo3(signature = (num_weights, num_classes = Arg::Default(1), initial_plasticity = Arg::Default(1.0),
        learning_competition = Arg::Default(0.0), min_plasticity = Arg::Default(0.1),
        plasticity_decay = Arg::Default(0.25), seed = None),
        text_signature = "(self, num_weights, num_classes=1, initial_plasticity=1.0, learning_competition=0.0, min_plasticity=0.1, plasticity_decay=0.25, seed=0)")]
    #[allow(clippy::too_many_arguments)]
    fn compile<'py>(
        &self,
        num_weights: Arg<'py, i64>,
        num_classes: Arg<'py, i64>,
        initial_plasticity: Arg<'py, f64>,
        learning_competition: Arg<'py, f64>,
        min_plasticity: Arg<'py, f64>,
        plasticity_decay: Arg<'py, f64>,
        seed: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<()> {
        let f = "compile";
        let num_weights = num_weights.get(f, "num_weights")?;
        let num_classes = num_classes.get(f, "num_classes")?;
        let initial_plasticity = initial_plasticity.get(f, "initial_plasticity")?;
        let min_plasticity = min_plasticity.get(f, "min_plasticity")?;
        let plasticity_decay = plasticity_decay.get(f, "plasticity_decay")?;
        let learning_competition = learning_competition.get(f, "learning_competition")?;
        let seed = match seed {
            None => 0,
            Some(obj) => seed_arg(obj, &Where { function: f, name: "seed" })?,
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

    /// Learns from the inputs, sample by sample (Akida unsupervised learning, see
    /// ``docs/learning.md``), after :meth:`compile`.
    ///
    /// Parameters
    /// ----------
    /// inputs : numpy.ndarray or Events
    ///     As for :meth:`forward`.
    /// input_labels : int or array_like of int, optional
    ///     None (unlabeled); one int, or a 1-D sequence of one, for all samples (as numpy
    ///     broadcasts); or a 1-D sequence with one label per sample. A label ``>= num_classes``
    ///     means the sample is not learned.
    /// batch_size : int, optional
    ///     Most samples per chunk run with the GIL released (default: no limit; chunks are then
    ///     sized to about 50 ms of work, see docs/api.md).
    /// verbose : bool or int, optional
    ///     A progress bar, as for :meth:`forward`.
    /// callback : callable, optional
    ///     ``callback(done, total)``, as for :meth:`forward`.
    ///
    /// Returns
    /// -------
    /// numpy.ndarray
    ///     The last layer's outputs, as :meth:`forward` gives them, each computed before the
    ///     sample's learning step.
    ///
    /// Raises
    /// ------
    /// ArchitectureError
    ///     The model is not compiled.
    /// InputError
    ///     Negative labels or a wrong label count.
    /// KeyboardInterrupt
    ///     Ctrl-C (or an exception raised by ``callback``): the model keeps exactly what the
    ///     samples before the interruption learned; the exception's note says how many.
    #[pyo3(signature = (inputs, input_labels = None, batch_size = Arg::Default(None), verbose = None, callback = None),
        text_signature = "(self, inputs, input_labels=None, batch_size=None, verbose=None, callback=None)")]
    fn fit<'py>(
        &self,
        py: Python<'py>,
        inputs: &Bound<'py, PyAny>,
        input_labels: Option<&Bound<'py, PyAny>>,
        batch_size: Arg<'py, Option<i64>>,
        verbose: Option<&Bound<'py, PyAny>>,
        callback: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let batch_size = batch_size.get("fit", "batch_size")?;
        let progress = Progress::new("fit", verbose, callback)?;
        let labels = match input_labels {
            None => None,
            Some(l) => {
                let (shape, values) = crate::arrays::integer_array(l, "input_labels")?;
                if shape.len() > 1 {
                    return raise(Error::Input(format!(
                        "input_labels must be an int or a 1-D sequence of ints, got shape {shape:?}"
                    )));
                }
                Some(values)
            }
        };
        let (values, shape, samples) =
            self.run_with(py, inputs, batch_size, Some(labels), Mode::Forward, None, &progress)?;
        values.into_array(py, shape, samples)
    }

    /// Adds classes to the compiled last layer: each is a group of new neurons, as many as each
    /// existing class has, with fresh random weights.
    ///
    /// Parameters
    /// ----------
    /// num_classes : int
    ///     Classes to add, >= 1.
    ///
    /// Raises
    /// ------
    /// ArchitectureError
    ///     The model is not compiled.
    #[pyo3(signature = (num_classes), text_signature = "(self, num_classes)")]
    fn add_classes<'py>(&self, num_classes: Arg<'py, i64>) -> PyResult<()> {
        let num_classes = num_classes.get("add_classes", "num_classes")?;
        if num_classes < 1 {
            return raise(Error::Parameter(format!("num_classes must be >= 1, got {num_classes}")));
        }
        guarded(|| lock(&self.state).model_mut()?.add_classes(num_classes as usize))
    }

    /// Statistics of the last ``forward``, ``predict``, ``evaluate`` or ``fit`` call.
    ///
    /// Returns
    /// -------
    /// dict of str to LayerStatistics
    ///     One entry per layer, in order (empty before any call and after a change). A layer
    ///     the call did not run (not on the path to the output layer) has
    ///     ``computed == False`` and None sparsities.
    fn get_statistics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        // Copy under the lock, build Python objects after releasing it.
        let entries: Vec<(String, LayerStatistics, bool)> = {
            let state = lock(&self.state);
            match &state.statistics {
                Some(stats) => {
                    let computed = computed_layers(&state.model, stats);
                    state
                        .model
                        .layers()
                        .iter()
                        .zip(stats)
                        .zip(computed)
                        .map(|((l, s), c)| (l.name().to_owned(), *s, c))
                        .collect()
                }
                None => Vec::new(),
            }
        };
        let dict = PyDict::new(py);
        for (name, stats, computed) in entries {
            dict.set_item(name.clone(), PyLayerStatistics { stats, name, computed })?;
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

/// Which layers a call ran: those with counted samples, or, after a call of no samples, those
/// the last layer's output needs. A layer with no samples while others have some was not on the
/// path to the call's output layer.
fn computed_layers(model: &akida_engine::Model, stats: &[LayerStatistics]) -> Vec<bool> {
    if stats.iter().any(|s| s.samples > 0) {
        return stats.iter().map(|s| s.samples > 0).collect();
    }
    let needed = model.layers().len().checked_sub(1).map(|last| model.needed_layers(last)).unwrap_or_default();
    (0..stats.len()).map(|i| needed.contains(&i)).collect()
}

/// `seed` of `compile`: an int in [0, 2**64).
fn seed_arg(obj: &Bound<'_, PyAny>, at: &Where<'_>) -> PyResult<u64> {
    if obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyString>() || !obj.hasattr("__index__")? {
        return Err(at.type_error("an int", obj));
    }
    let index = obj.py().import("operator")?.call_method1("index", (obj,)).map_err(|_| at.type_error("an int", obj))?;
    index.extract::<u64>().map_err(|_| {
        to_pyerr(Error::Parameter(format!(
            "{}() argument '{}' must be in [0, 2**64), got {}",
            at.function,
            at.name,
            index.repr().map(|r| r.to_string()).unwrap_or_default()
        )))
    })
}

/// Counters of one layer over the last ``forward``, ``predict``, ``evaluate`` or ``fit`` call.
///
/// A layer the call did not run (not on the path to its output layer, for example a dangling
/// branch or the layers after ``forward(..., output_layer=...)``) is marked: ``computed`` is
/// False and the sparsities are None.
#[pyclass(name = "LayerStatistics", module = "akida", frozen)]
pub struct PyLayerStatistics {
    stats: LayerStatistics,
    name: String,
    computed: bool,
}

#[pymethods]
impl PyLayerStatistics {
    /// Whether the call ran this layer.
    #[getter]
    fn computed(&self) -> bool {
        self.computed
    }

    /// Number of samples counted.
    #[getter]
    fn samples(&self) -> u64 {
        self.stats.samples
    }

    /// Fraction of zero input values, or None when the layer was not computed.
    #[getter]
    fn input_sparsity(&self) -> Option<f64> {
        self.computed.then(|| self.stats.input_sparsity())
    }

    /// Fraction of zero output values, or None when the layer was not computed.
    #[getter]
    fn output_sparsity(&self) -> Option<f64> {
        self.computed.then(|| self.stats.output_sparsity())
    }

    /// Multiply-accumulates of non-zero inputs with the weights they feed.
    #[getter]
    fn synaptic_operations(&self) -> u64 {
        self.stats.synaptic_operations
    }

    /// Samples whose potentials each kernel computed (`"events"`, `"dense"`, `"bit-packed"`);
    /// only the kernels that ran, empty for layers without weights.
    #[getter]
    fn kernels<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let dict = pyo3::types::PyDict::new(py);
        for m in akida_engine::plan::Method::ALL {
            let samples = self.stats.kernels[m as usize];
            if samples > 0 {
                dict.set_item(m.name(), samples)?;
            }
        }
        Ok(dict)
    }

    fn __repr__(&self) -> String {
        if !self.computed {
            return format!(
                "<LayerStatistics '{}': not computed (not on the path to the output layer of the last call)>",
                self.name
            );
        }
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
