//! `akida.Events`: a batch of samples as sparse events.

use std::sync::Arc;

use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use akida_engine::{Error, EventBatch, Shape3};

use crate::arrays::integer_array;
use crate::errors::{raise, to_pyerr};

/// Events of a batch of samples of shape `(height, width, channels)`, in canonical order (by
/// sample, then y, x, channel). Values are 1..255; zeros are not events.
#[pyclass(name = "Events", module = "akida", frozen)]
pub struct PyEvents {
    pub batch: Arc<EventBatch>,
}

fn check_shape(shape: (i64, i64, i64)) -> PyResult<Shape3> {
    let (h, w, c) = shape;
    let limit = 1i64 << 20;
    if [h, w, c].iter().any(|&d| !(1..=limit).contains(&d)) {
        return raise(Error::Input(format!("events shape must have dimensions in 1..={limit}, got ({h}, {w}, {c})")));
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
    /// Events from parallel 1-D arrays of sample indices, coordinates and values.
    #[new]
    #[pyo3(signature = (shape, sample, x, y, channel, value, num_samples = None))]
    fn new(
        shape: (i64, i64, i64),
        sample: &Bound<'_, PyAny>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        channel: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        num_samples: Option<i64>,
    ) -> PyResult<Self> {
        let shape = check_shape(shape)?;
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

    /// Events of a dense uint8 array `(N, H, W, C)`.
    #[staticmethod]
    fn from_dense(array: &Bound<'_, PyAny>) -> PyResult<Self> {
        let dense = crate::model::dense_u8_input(array, None)?;
        let readonly = dense.readonly();
        let dims = readonly.shape();
        let shape = Shape3::new(dims[1], dims[2], dims[3]);
        let batch = EventBatch::from_dense(shape, dims[0], readonly.as_slice()?).map_err(to_pyerr)?;
        Ok(PyEvents { batch: Arc::new(batch) })
    }

    /// The events as a dense uint8 array `(num_samples, H, W, C)`.
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

    #[getter]
    fn x<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        column(py, &self.batch, |(_, e)| i64::from(e.x))
    }

    #[getter]
    fn y<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        column(py, &self.batch, |(_, e)| i64::from(e.y))
    }

    #[getter]
    fn channel<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        column(py, &self.batch, |(_, e)| i64::from(e.c))
    }

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
