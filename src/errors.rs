//! Mapping of engine errors to the exception classes of `akida.errors`.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use akida_engine::Error;

static ERRORS_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn exception(py: Python<'_>, class: &str, message: String) -> PyErr {
    let module = ERRORS_MODULE.get_or_try_init(py, || py.import("akida.errors").map(Bound::unbind));
    let class = module.and_then(|m| m.bind(py).getattr(class)).and_then(|c| Ok(c.cast_into::<PyType>()?));
    match class {
        Ok(class) => PyErr::from_type(class, message),
        Err(e) => e,
    }
}

/// The Python exception for an engine error: one class per error kind.
pub fn to_pyerr(error: Error) -> PyErr {
    use pyo3::exceptions::{PyMemoryError, PyOSError};
    if let Error::Memory(message) = &error {
        return PyMemoryError::new_err(message.clone());
    }
    if let Error::Io { errno, message, path, .. } = &error {
        // OSError(errno, strerror, filename) picks the subclass of the error number itself
        // (FileNotFoundError, PermissionError, IsADirectoryError...) and sets the attributes.
        let strerror = match path {
            Some(p) => {
                let prefix = format!("'{}': ", p.display());
                message.find(&prefix).map_or(message.as_str(), |i| &message[i + prefix.len()..]).to_owned()
            }
            None => message.clone(),
        };
        return match (errno, path) {
            (Some(n), Some(p)) => PyOSError::new_err((*n, strerror, p.as_os_str().to_os_string())),
            (Some(n), None) => PyOSError::new_err((*n, strerror)),
            (None, _) => PyOSError::new_err(message.clone()),
        };
    }
    let class = match &error {
        Error::Parameter(_) => "ParameterError",
        Error::Architecture(_) => "ArchitectureError",
        Error::Input(_) => "InputError",
        Error::DType(_) => "DTypeError",
        Error::Variable(_) => "VariableError",
        Error::LayerNotFound(_) => "LayerNotFoundError",
        Error::Format(_) => "ModelFormatError",
        Error::Io { .. } | Error::Memory(_) => unreachable!("handled above"),
    };
    Python::attach(|py| exception(py, class, error.to_string()))
}

/// An `akida.AkidaError` for a bug in the engine (a caught panic).
pub fn internal_error(message: &str) -> PyErr {
    Python::attach(|py| {
        exception(py, "AkidaError", format!("internal error in the akida engine: {message}; please report it"))
    })
}

/// An `akida.MappingError`: a model does not fit a device with `hw_only=True`.
pub fn mapping_error(message: String) -> PyErr {
    Python::attach(|py| exception(py, "MappingError", message))
}

/// Shorthand for raising an engine error kind from the bindings.
pub fn raise<T>(error: Error) -> PyResult<T> {
    Err(to_pyerr(error))
}
