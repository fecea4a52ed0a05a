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
    /// Reading or writing a file failed: the kind, the OS error number when there is one, the
    /// message, and the path as the caller gave it (never a temporary file).
    Io { kind: std::io::ErrorKind, errno: Option<i32>, message: String, path: Option<std::path::PathBuf> },
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
            | Error::Io { message: m, .. }
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

/// Element types whose all-zero bit pattern is the value zero (or `false`), so that a zeroed
/// vector can come straight from the allocator's zeroed pages.
///
/// # Safety
/// Implementors must be plain data for which every byte being zero is a valid value.
pub unsafe trait ZeroBits: Copy {}
// SAFETY: integers, floats and bool are valid (0, 0.0, false) when all their bytes are zero.
unsafe impl ZeroBits for u8 {}
unsafe impl ZeroBits for i8 {}
unsafe impl ZeroBits for u16 {}
unsafe impl ZeroBits for i16 {}
unsafe impl ZeroBits for u32 {}
unsafe impl ZeroBits for i32 {}
unsafe impl ZeroBits for u64 {}
unsafe impl ZeroBits for i64 {}
unsafe impl ZeroBits for usize {}
unsafe impl ZeroBits for f32 {}
unsafe impl ZeroBits for f64 {}
unsafe impl ZeroBits for bool {}

fn out_of_memory(what: &str, count: usize) -> Error {
    Error::Memory(format!("cannot allocate {what} ({count} values): out of memory"))
}

/// A zero-filled vector of `count` elements, or [`Error::Memory`] naming `what` when the size
/// overflows or cannot be allocated (instead of aborting the process). The memory comes zeroed
/// from the allocator (`calloc`), so large vectors cost no resident memory until written.
pub fn zeroed_vec<T: ZeroBits>(count: Option<usize>, what: &str) -> Result<Vec<T>> {
    let Some(count) = count else {
        return Err(Error::Memory(format!("{what} is too large to address")));
    };
    let size = std::mem::size_of::<T>();
    if count == 0 || size == 0 {
        return Ok(Vec::new());
    }
    let layout = std::alloc::Layout::array::<T>(count)
        .map_err(|_| Error::Memory(format!("{what} is too large to address ({count} values)")))?;
    // SAFETY: the layout has a non-zero size; a non-null result points to `count` zeroed `T`s,
    // valid values by `ZeroBits`, allocated by the global allocator with `T`'s layout, which is
    // what `Vec::from_raw_parts` requires.
    unsafe {
        let pointer = std::alloc::alloc_zeroed(layout).cast::<T>();
        if pointer.is_null() {
            return Err(out_of_memory(what, count));
        }
        Ok(Vec::from_raw_parts(pointer, count, count))
    }
}

/// An empty vector with room for exactly `count` elements, or [`Error::Memory`] naming `what`.
pub fn reserved_vec<T>(count: usize, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(count).map_err(|_| out_of_memory(what, count))?;
    Ok(v)
}

/// `count` copies of `value`, or [`Error::Memory`] naming `what` (the fallible `vec![value; count]`).
pub fn filled_vec<T: Clone>(count: usize, value: T, what: &str) -> Result<Vec<T>> {
    let mut v = reserved_vec(count, what)?;
    v.resize(count, value);
    Ok(v)
}

/// A copy of `values`, or [`Error::Memory`] naming `what` (the fallible `to_vec`).
pub fn copied_vec<T: Clone>(values: &[T], what: &str) -> Result<Vec<T>> {
    let mut v = reserved_vec(values.len(), what)?;
    v.extend_from_slice(values);
    Ok(v)
}

/// The items of `iter` collected into a vector allocated once for its exact length, or
/// [`Error::Memory`] naming `what` (the fallible `collect`).
pub fn collected_vec<T>(iter: impl ExactSizeIterator<Item = T>, what: &str) -> Result<Vec<T>> {
    let mut v = reserved_vec(iter.len(), what)?;
    v.extend(iter);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_allocations_are_memory_errors() {
        assert!(matches!(zeroed_vec::<u8>(None, "x"), Err(Error::Memory(_))));
        assert!(matches!(zeroed_vec::<i32>(Some(usize::MAX / 2), "x"), Err(Error::Memory(_))));
        assert!(matches!(reserved_vec::<u8>(isize::MAX as usize, "x"), Err(Error::Memory(_))));
        assert!(matches!(filled_vec(usize::MAX / 4, 1u32, "x"), Err(Error::Memory(_))));
    }

    #[test]
    fn helpers_equal_their_infallible_twins() {
        assert_eq!(zeroed_vec::<f32>(Some(5), "x").unwrap(), vec![0.0f32; 5]);
        assert_eq!(zeroed_vec::<bool>(Some(0), "x").unwrap(), Vec::<bool>::new());
        assert_eq!(filled_vec(3, 7i8, "x").unwrap(), vec![7i8; 3]);
        assert_eq!(copied_vec(&[1, 2, 3], "x").unwrap(), vec![1, 2, 3]);
        assert_eq!(collected_vec((0..4).map(|i| i * 2), "x").unwrap(), vec![0, 2, 4, 6]);
    }
}
