//! The one way bindings run engine work: with the GIL released, panics caught, errors mapped.
//! Also makes the parallel engine fork-safe.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use pyo3::prelude::*;

use crate::errors::{internal_error, to_pyerr};

static FORKED: AtomicBool = AtomicBool::new(false);
static REGISTER_FORK_HANDLER: Once = Once::new();

extern "C" fn mark_forked() {
    FORKED.store(true, Ordering::SeqCst);
}

/// Registers the fork handler once. A child created by `os.fork()` (multiprocessing) inherits no
/// worker threads, so from then on it runs the engine single-threaded instead of deadlocking.
pub fn install_fork_handler() {
    REGISTER_FORK_HANDLER.call_once(|| {
        // SAFETY: registering a handler that only stores to an atomic is async-signal-safe.
        unsafe {
            libc::pthread_atfork(None, None, Some(mark_forked));
        }
    });
}

/// Whether samples may be processed on several threads.
pub fn parallel_allowed() -> bool {
    !FORKED.load(Ordering::SeqCst)
}

fn panic_to_pyerr(panic: Box<dyn std::any::Any + Send>) -> PyErr {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    internal_error(&message)
}

/// Runs short engine work with the GIL held: engine errors are mapped once `work` has returned
/// (after any lock it took is released) and a panic becomes an internal `AkidaError`.
pub fn guarded<T>(work: impl FnOnce() -> akida_engine::Result<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(result) => result.map_err(to_pyerr),
        Err(panic) => Err(panic_to_pyerr(panic)),
    }
}

/// Runs `work` with the GIL released. Engine errors become the matching Python exceptions and a
/// panic becomes `akida.AkidaError` (an internal error) instead of unwinding into Python.
///
/// `work` must not touch Python objects, and must release any lock it takes before returning,
/// so that no thread ever waits for the GIL while holding an engine lock.
pub fn compute<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: FnOnce() -> akida_engine::Result<T> + Send,
    T: Send,
{
    let outcome = py.detach(|| catch_unwind(AssertUnwindSafe(work)));
    match outcome {
        Ok(result) => result.map_err(to_pyerr),
        Err(panic) => Err(panic_to_pyerr(panic)),
    }
}
