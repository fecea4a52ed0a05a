//! The one error type of the engine. Every fallible public function returns [`Result`].

use std::fmt;

/// What went wrong, by kind. The bindings map each kind to its own Python exception class, so the
/// variants are about *who must fix what*, not about where in the code the error arose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A layer or learning parameter is out of its documented range.
    Parameter(String),
    /// The model graph breaks a structural rule (first layer, inbound layers, shapes, bounds).
    Architecture(String),
    /// Inputs or events do not match the model (shape, values, coordinates).
    Input(String),
    /// An array has the wrong element type.
    DType(String),
    /// A variable name is unknown, or a value has the wrong shape or range.
    Variable(String),
    /// No layer has the requested name or index.
    LayerNotFound(String),
    /// A model file or buffer is corrupt, truncated, of another type or of a newer format.
    Format(String),
    /// Reading or writing a file failed.
    Io(std::io::ErrorKind, String),
    /// An allocation the request needs is too large for this machine.
    Memory(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Parameter(m)
            | Error::Architecture(m)
            | Error::Input(m)
            | Error::DType(m)
            | Error::Variable(m)
            | Error::LayerNotFound(m)
            | Error::Format(m)
            | Error::Io(_, m)
            | Error::Memory(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// Result alias used throughout the engine.
pub type Result<T> = std::result::Result<T, Error>;

macro_rules! bail {
    ($kind:ident, $($arg:tt)*) => {
        return Err($crate::error::Error::$kind(format!($($arg)*)))
    };
}
pub(crate) use bail;

/// A zero-filled vector of `count` elements, or [`Error::Memory`] naming `what` when the size
/// overflows or cannot be allocated (instead of aborting the process).
pub fn zeroed_vec<T: Clone + Default>(count: Option<usize>, what: &str) -> Result<Vec<T>> {
    let Some(count) = count else {
        return Err(Error::Memory(format!("{what} is too large to address")));
    };
    let mut v = Vec::new();
    v.try_reserve_exact(count).map_err(|_| Error::Memory(format!("cannot allocate {what} ({count} values)")))?;
    v.resize(count, T::default());
    Ok(v)
}
