//! `akida.Events`: a batch of samples as sparse events.

use std::sync::Arc;

use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use akida_engine::{Error, EventBatch, Shape3};

use crate::args::Arg;
use crate::arrays::integer_array;
use crate::errors::{raise, to_pyerr};

/// A batch of samples as sparse events, in canonical order (by sample, then y, x, channel).
///
/// Values are 1..255; zeros are not events. An ``Events`` batch feeds a model whose first layer
/// is :class:`InputData` directly, without a dense copy.
///
/// Parameters
/// ----------
/// shape : tuple of 3 ints
///     ``(height, width, channels)`` of one sample, each 1..2**20.
/// sample, x, y, channel, value : array_like of int
///     1-D arrays of one length: the sample index, coordinates and value of each event.
/// num_samples : int, optional
///     Samples in the batch (default: the largest sample index + 1); trailing samples may be
///     empty.
///
/// Raises
/// ------
/// InputError
///     Coordinates outside the shape, values outside 1..255, duplicate events, or columns of
///     different lengths.
/// TypeError
///     An argument of the wrong type (the message names it).
///
/// Examples
/// --------
/// >>> import akida
/// >>> events = akida.Events(shape=(4, 4, 1), sample=[0, 1], x=[1, 2], y=[0, 3], channel=[0, 0],
/// ...                       value=[1, 3])
/// >>> events.num_samples, len(events)
/// (2, 2)
/// >>> events.to_dense()[1, 3, 2, 0]
/// np.uint8(3)
#[pyclass(name = "Events", module = "akida", frozen)]
pub struct PyEvents {
    pub batch: Arc<EventBatch>,
}

fn check_shape(shape: (i64, i64, i64)) -> PyResult<Shape3> {
    let (h, w, c) = shape;
    let limit = 1i64 << 20;
    if [h, w, c].iter().any(|&d| !(1..=limit).contains(&d)) {
        return raise(Error::Input(format!("events shape must have dimensions in [1, {limit}], got ({h}, {w}, {c})")));
    }
    Ok(Shape3::new(h as usize, w as usize, c as usize))
}

/// One column of the events (in canonical order) as a new numpy array, allocated fallibly.
fn column<'py, T: numpy::Element>(
    py: Python<'py>,
    batch: &EventBatch,
    value: impl Fn((usize, &akida_engine::Event)) -> T,
) -> PyResult<Bound<'py, PyArray1<T>>> {
    let mut values = crate::runtime::guarded(|| akida_engine::error::reserved_vec(batch.len(), "an events column"))?;
    values.extend(batch.iter().map(value));
    Ok(PyArray1::from_vec(py, values))
}

#[pymethods]
impl PyEvents {
    #[new]
    #[pyo3(signature = (shape, sample, x, y, channel, value, num_samples = Arg::Default(None)),
        text_signature = "(shape, sample, x, y, channel, value, num_samples=None)")]
    #[allow(clippy::too_many_arguments)]
    fn new<'py>(
        shape: Arg<'py, (i64, i64, i64)>,
        sample: &Bound<'_, PyAny>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        channel: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        num_samples: Arg<'py, Option<i64>>,
    ) -> PyResult<Self> {
        let shape = check_shape(shape.get("Events", "shape")?)?;
        let num_samples = num_samples.get("Events", "num_samples")?;
        let mut columns = Vec::with_capacity(5);
        for (name, obj) in [("sample", sample), ("x", x), ("y", y), ("channel", channel), ("value", value)] {
            let (dims, values) = integer_array(obj, name)?;
            if dims.len() != 1 {
                return raise(Error::Input(format!("events '{name}' must be a 1-D array, got shape {dims:?}")));
            }
            columns.push(values);
        }
        let num_samples = match num_samples {
            Some(n) if n < 0 => return raise(Error::Input(format!("num_samples must be >= 0, got {n}"))),
            Some(n) => n as usize,
            None => columns[0].iter().max().map_or(0, |&m| m.max(-1).saturating_add(1) as usize),
        };
        let batch = crate::runtime::guarded(|| {
            EventBatch::from_coordinates(
                shape,
                num_samples,
                &columns[0],
                &columns[1],
                &columns[2],
                &columns[3],
                &columns[4],
            )
        })?;
        Ok(PyEvents { batch: Arc::new(batch) })
    }

    /// The events of a dense array.
    ///
    /// Parameters
    /// ----------
    /// array : numpy.ndarray
    ///     uint8 ``(N, H, W, C)``; every non-zero value becomes an event.
    ///
    /// Returns
    /// -------
    /// Events
    ///
    /// Raises
    /// ------
    /// DTypeError, InputError
    ///     Not a 4-D uint8 numpy array.
    #[staticmethod]
    #[pyo3(signature = (array), text_signature = "(array)")]
    fn from_dense(array: &Bound<'_, PyAny>) -> PyResult<Self> {
        let dense = crate::model::dense_u8_input(array, None)?;
        let readonly = dense.readonly();
        let dims = readonly.shape();
        // The shapes `Events(shape=...)` takes, so that every Events object could be rebuilt.
        let dim = |d: usize| i64::try_from(d).unwrap_or(i64::MAX);
        let shape = check_shape((dim(dims[1]), dim(dims[2]), dim(dims[3])))?;
        let batch = EventBatch::from_dense(shape, dims[0], readonly.as_slice()?).map_err(to_pyerr)?;
        Ok(PyEvents { batch: Arc::new(batch) })
    }

    /// The events as a dense array.
    ///
    /// Returns
    /// -------
    /// numpy.ndarray
    ///     uint8 ``(num_samples, H, W, C)``, zero where there is no event.
    fn to_dense<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = self.batch.shape();
        let batch = &self.batch;
        let dense = crate::runtime::compute(py, move || batch.to_dense())?;
        PyArray1::from_vec(py, dense)
            .call_method1("reshape", ((self.batch.num_samples(), s.height, s.width, s.channels),))
    }

    /// `(height, width, channels)` of one sample.
    #[getter]
    fn shape(&self) -> (usize, usize, usize) {
        let s = self.batch.shape();
        (s.height, s.width, s.channels)
    }

    /// Samples in the batch (some may have no events).
    #[getter]
    fn num_samples(&self) -> usize {
        self.batch.num_samples()
    }

    fn __len__(&self) -> usize {
        self.batch.len()
    }

    /// Sample index of each event.
    #[getter]
    fn sample<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        column(py, &self.batch, |(s, _)| s as i64)
    }

    /// Column of each event.
    #[getter]
    fn x<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        column(py, &self.batch, |(_, e)| i64::from(e.x))
    }

    /// Row of each event.
    #[getter]
    fn y<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        column(py, &self.batch, |(_, e)| i64::from(e.y))
    }

    /// Channel of each event.
    #[getter]
    fn channel<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        column(py, &self.batch, |(_, e)| i64::from(e.c))
    }

    /// Value of each event, 1..255.
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<u8>>> {
        column(py, &self.batch, |(_, e)| e.value as u8)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyEvents>().is_ok_and(|o| *o.get().batch == *self.batch)
    }

    fn __repr__(&self) -> String {
        let s = self.batch.shape();
        format!(
            "<akida.Events: {} events in {} samples of shape ({}, {}, {})>",
            self.batch.len(),
            self.batch.num_samples(),
            s.height,
            s.width,
            s.channels
        )
    }
}
