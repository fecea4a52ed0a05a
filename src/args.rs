//! Argument extraction that names the argument: every public function and constructor takes its
//! arguments as [`Arg`] (or reads a raw object with [`FromArg`]), so a wrong type is a
//! `TypeError` such as "Convolutional() argument 'kernel_width' must be an int, got float 3.0"
//! and an integer outside the 64-bit range a `ParameterError` naming it, never pyo3's anonymous
//! "'float' object cannot be interpreted as an integer" or an `OverflowError`.
//!
//! Accepted, beyond the exact Python types: numpy integer scalars (anything with `__index__`,
//! but not bools) wherever an int is taken, `numpy.bool_` wherever a bool is, and any real
//! number (with `__float__`, numpy floats included) wherever a float is.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyList, PyString, PyTuple};

use akida_engine::Error;

use crate::errors::to_pyerr;
use crate::layers::{PyConvolutionMode, PyPoolingType};

/// An argument as the caller gave it, or its default when omitted: extraction into `T` is
/// deferred to [`Arg::get`], which knows the argument's name. Extracting an `Arg` never fails.
pub enum Arg<'py, T> {
    Given(Bound<'py, PyAny>),
    Default(T),
}

impl<'a, 'py, T> FromPyObject<'a, 'py> for Arg<'py, T> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(Arg::Given(obj.to_owned()))
    }
}

impl<'py, T: FromArg> Arg<'py, T> {
    /// The value of argument `name` of `function`: its default, or what the caller gave, checked.
    pub fn get(self, function: &str, name: &str) -> PyResult<T> {
        match self {
            Arg::Default(value) => Ok(value),
            Arg::Given(obj) => T::from_arg(&obj, &Where { function, name }),
        }
    }
}

/// The function and argument a value is extracted for, to name them in errors.
pub struct Where<'a> {
    pub function: &'a str,
    pub name: &'a str,
}

impl Where<'_> {
    /// `TypeError: <function>() argument '<name>' must be <expected>, got <type> <value>`.
    pub fn type_error(&self, expected: &str, obj: &Bound<'_, PyAny>) -> PyErr {
        PyTypeError::new_err(format!(
            "{}() argument '{}' must be {expected}, got {}",
            self.function,
            self.name,
            describe(obj)
        ))
    }
}

/// `<type name> <short repr>` of a Python object, for error messages.
pub fn describe(obj: &Bound<'_, PyAny>) -> String {
    let type_name = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "object".into());
    let repr = obj.repr().map(|r| r.to_string()).unwrap_or_else(|_| "<unprintable>".into());
    let repr =
        if repr.chars().count() > 60 { format!("{}...", repr.chars().take(57).collect::<String>()) } else { repr };
    format!("{type_name} {repr}")
}

/// A Rust value read from one Python argument, with errors naming it.
pub trait FromArg: Sized {
    fn from_arg(obj: &Bound<'_, PyAny>, at: &Where<'_>) -> PyResult<Self>;
}

impl FromArg for i64 {
    /// A Python int or any object with `__index__` (numpy integer scalars); bools (`True` is an
    /// int to Python, but `FullyConnected(True)` is a mistake), floats and strings are refused;
    /// integers beyond 64 bits are a `ParameterError`.
    fn from_arg(obj: &Bound<'_, PyAny>, at: &Where<'_>) -> PyResult<Self> {
        // `bool` is a subclass of `int`; a `numpy.bool_` is only reached on the `__index__` path
        // (numpy 2 gives it none), so plain ints never look numpy up.
        let index = if obj.is_instance_of::<PyBool>() {
            return Err(at.type_error("an int", obj));
        } else if obj.is_instance_of::<PyInt>() {
            obj.clone()
        } else if obj.is_instance_of::<PyFloat>()
            || obj.is_instance_of::<PyString>()
            || !obj.hasattr("__index__")?
            || is_bool(obj)?
        {
            return Err(at.type_error("an int", obj));
        } else {
            obj.py().import("operator")?.call_method1("index", (obj,)).map_err(|_| at.type_error("an int", obj))?
        };
        index.extract::<i64>().map_err(|_| {
            to_pyerr(Error::Parameter(format!(
                "{}() argument '{}' must fit in a signed 64-bit integer, got {}",
                at.function,
                at.name,
                index.repr().map(|r| r.to_string()).unwrap_or_default()
            )))
        })
    }
}

/// `True`, `False` or a `numpy.bool_`.
pub fn is_bool(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    if obj.is_instance_of::<PyBool>() {
        return Ok(true);
    }
    let numpy_bool = obj.py().import("numpy")?.getattr("bool_")?;
    obj.is_instance(&numpy_bool)
}

impl FromArg for bool {
    /// `True` / `False` or a `numpy.bool_`; ints and other objects are refused (0 and 1 are
    /// ambiguous with counts in these APIs).
    fn from_arg(obj: &Bound<'_, PyAny>, at: &Where<'_>) -> PyResult<Self> {
        if is_bool(obj)? {
            return obj.is_truthy();
        }
        Err(at.type_error("a bool", obj))
    }
}

impl FromArg for f64 {
    /// A float, int or any real number with `__float__` (numpy scalars); strings are refused.
    fn from_arg(obj: &Bound<'_, PyAny>, at: &Where<'_>) -> PyResult<Self> {
        if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
            return Err(at.type_error("a real number", obj));
        }
        if !obj.is_instance_of::<PyInt>() && !obj.is_instance_of::<PyFloat>() && !obj.hasattr("__float__")? {
            return Err(at.type_error("a real number", obj));
        }
        obj.extract::<f64>().map_err(|_| at.type_error("a real number", obj))
    }
}

impl FromArg for String {
    /// A str (numpy.str_ included).
    fn from_arg(obj: &Bound<'_, PyAny>, at: &Where<'_>) -> PyResult<Self> {
        match obj.cast::<PyString>() {
            Ok(s) => Ok(s.to_str()?.to_owned()),
            Err(_) => Err(at.type_error("a str", obj)),
        }
    }
}

impl<T: FromArg> FromArg for Option<T> {
    /// None, or a `T`.
    fn from_arg(obj: &Bound<'_, PyAny>, at: &Where<'_>) -> PyResult<Self> {
        if obj.is_none() {
            Ok(None)
        } else {
            T::from_arg(obj, at).map(Some).map_err(|e| {
                if e.is_instance_of::<PyTypeError>(obj.py()) {
                    let message = e.value(obj.py()).to_string().replacen(" must be ", " must be None or ", 1);
                    PyTypeError::new_err(message)
                } else {
                    e
                }
            })
        }
    }
}

impl FromArg for PyConvolutionMode {
    fn from_arg(obj: &Bound<'_, PyAny>, at: &Where<'_>) -> PyResult<Self> {
        obj.extract::<PyConvolutionMode>()
            .map_err(|_| at.type_error("an akida.ConvolutionMode (Valid, Same or Full)", obj))
    }
}

impl FromArg for PyPoolingType {
    fn from_arg(obj: &Bound<'_, PyAny>, at: &Where<'_>) -> PyResult<Self> {
        obj.extract::<PyPoolingType>()
            .map_err(|_| at.type_error("an akida.PoolingType (NoPooling, Max or Average)", obj))
    }
}

/// `(a, b, c)` of ints: a tuple or list of exactly three ints.
impl FromArg for (i64, i64, i64) {
    fn from_arg(obj: &Bound<'_, PyAny>, at: &Where<'_>) -> PyResult<Self> {
        let items: Vec<Bound<'_, PyAny>> = if let Ok(t) = obj.cast::<PyTuple>() {
            t.iter().collect()
        } else if let Ok(l) = obj.cast::<PyList>() {
            l.iter().collect()
        } else {
            return Err(at.type_error("a tuple of 3 ints", obj));
        };
        if items.len() != 3 {
            return Err(at.type_error("a tuple of 3 ints", obj));
        }
        let mut values = [0i64; 3];
        for (v, item) in values.iter_mut().zip(&items) {
            *v = i64::from_arg(item, at).map_err(|e| {
                if e.is_instance_of::<PyTypeError>(obj.py()) {
                    at.type_error("a tuple of 3 ints", obj)
                } else {
                    e
                }
            })?;
        }
        Ok((values[0], values[1], values[2]))
    }
}

/// The bytes of a buffer argument: `bytes` as they are, or a copy of any other object with the
/// buffer protocol (bytearray, memoryview, a uint8 numpy array); the copy keeps a mutable buffer
/// from changing while the engine reads it without the GIL.
pub fn buffer_bytes<'py>(obj: &Bound<'py, PyAny>, at: &Where<'_>) -> PyResult<Bound<'py, PyBytes>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.clone());
    }
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyInt>() {
        return Err(at.type_error("bytes, bytearray or another buffer", obj));
    }
    let builtins = obj.py().import("builtins")?;
    let view = builtins
        .getattr("memoryview")?
        .call1((obj,))
        .map_err(|_| at.type_error("bytes, bytearray or another buffer", obj))?;
    Ok(view.call_method0("tobytes")?.cast_into::<PyBytes>()?)
}
