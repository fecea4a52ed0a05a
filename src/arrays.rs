//! Conversions between numpy arrays and engine values, with dtype checks.

use numpy::{PyArray1, PyArrayDescrMethods, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;

use akida_engine::{Error, Variable, VariableData, VariableValues};

use crate::errors::raise;

/// `obj` as a numpy array (`numpy.asarray`), without copying arrays.
fn as_array<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyUntypedArray>> {
    let numpy = obj.py().import("numpy")?;
    Ok(numpy.call_method1("asarray", (obj,))?.cast_into::<PyUntypedArray>()?)
}

/// The numpy dtype kind character: 'b', 'i', 'u', 'f', ...
fn dtype_kind(array: &Bound<'_, PyUntypedArray>) -> PyResult<char> {
    array.dtype().getattr("kind")?.extract()
}

fn flat<'py, T: numpy::Element + Clone>(array: &Bound<'py, PyUntypedArray>, dtype: &str) -> PyResult<Vec<T>> {
    let kwargs = pyo3::types::PyDict::new(array.py());
    kwargs.set_item("copy", false)?;
    let converted = array.call_method("astype", (dtype,), Some(&kwargs))?.call_method0("ravel")?;
    // A contiguous but misaligned buffer (as unpickled arrays can be) is copied, not refused.
    let converted = array.py().import("numpy")?.call_method1("require", (converted, dtype, "CA"))?;
    let typed = converted.cast_into::<PyArray1<T>>()?;
    let values = typed.readonly();
    crate::runtime::guarded(|| {
        akida_engine::error::copied_vec(values.as_slice().unwrap_or_default(), "a copy of the array")
    })
}

/// Refuses unsigned 64-bit values that int64 cannot hold (they would wrap to negatives).
fn check_uint64(array: &Bound<'_, PyUntypedArray>, what: &str, variable: bool) -> PyResult<()> {
    if array.dtype().is_equiv_to(&numpy::dtype::<u64>(array.py())) && array.len() > 0 {
        let max: u64 = array.call_method0("max")?.extract()?;
        if max > i64::MAX as u64 {
            let message = format!("{what}: value {max} does not fit in a signed 64-bit integer");
            return raise(if variable { Error::Variable(message) } else { Error::Input(message) });
        }
    }
    Ok(())
}

/// An array of integers (any integer or boolean dtype) as `i64` values with its shape.
pub fn integer_array(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<(Vec<usize>, Vec<i64>)> {
    let array = as_array(obj)?;
    let kind = dtype_kind(&array)?;
    // An empty list becomes an empty float64 array in numpy; with no values, nothing is lost.
    if array.len() == 0 {
        return Ok((array.shape().to_vec(), Vec::new()));
    }
    if !matches!(kind, 'i' | 'u' | 'b') {
        return raise(Error::DType(format!("{what} must be an integer array, got dtype {}", array.dtype())));
    }
    check_uint64(&array, what, false)?;
    Ok((array.shape().to_vec(), flat::<i64>(&array, "int64")?))
}

/// Values for `set_variable`: integers stay integers, floats stay floats, anything else is a
/// dtype error.
pub fn variable_values(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<(Vec<usize>, VariableValues)> {
    let array = as_array(obj)?;
    let shape = array.shape().to_vec();
    // Arrays already in a variable's element type are taken as they are (no int64 copy).
    let py = obj.py();
    let dtype = array.dtype();
    if dtype.is_equiv_to(&numpy::dtype::<i8>(py)) && name.starts_with("weights") {
        return Ok((shape, VariableValues::Exact(VariableData::I8(flat::<i8>(&array, "int8")?))));
    }
    if dtype.is_equiv_to(&numpy::dtype::<i32>(py)) && name == "threshold_fire" {
        return Ok((shape, VariableValues::Exact(VariableData::I32(flat::<i32>(&array, "int32")?))));
    }
    if dtype.is_equiv_to(&numpy::dtype::<f32>(py))
        && matches!(name, "threshold_fire_step" | "output_scale" | "output_offset")
    {
        return Ok((shape, VariableValues::Exact(VariableData::F32(flat::<f32>(&array, "float32")?))));
    }
    match dtype_kind(&array)? {
        'i' | 'u' | 'b' => {
            check_uint64(&array, &format!("variable '{name}'"), true)?;
            Ok((shape, VariableValues::Int(flat::<i64>(&array, "int64")?)))
        }
        'f' => Ok((shape, VariableValues::Float(flat::<f64>(&array, "float64")?))),
        _ => raise(Error::DType(format!("variable '{name}' needs a numeric array, got dtype {}", array.dtype()))),
    }
}

/// A variable as a new numpy array of its dtype and shape.
pub fn variable_to_numpy<'py>(py: Python<'py>, variable: Variable) -> PyResult<Bound<'py, PyAny>> {
    let shape = variable.shape;
    let array = match variable.data {
        VariableData::I8(v) => PyArray1::from_vec(py, v).into_any(),
        VariableData::I32(v) => PyArray1::from_vec(py, v).into_any(),
        VariableData::F32(v) => PyArray1::from_vec(py, v).into_any(),
    };
    array.call_method1("reshape", (shape,))
}
