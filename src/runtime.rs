//! The one way bindings run engine work: with the GIL released, panics caught, errors mapped,
//! Ctrl-C heard, and safely in a process forked while other threads computed.
//!
//! Fork: rayon's global pool has no threads in a child created by `os.fork()` (multiprocessing's
//! "fork" start method), so the first parallel call there would wait forever. A fork handler
//! (`pthread_atfork`) marks the child; from then on every engine call of this module runs inside
//! a pool built for that process (`ThreadPool::install`), created on the first call in each
//! process, so a forked child computes in parallel as its parent does.
//!
//! Interrupts: model calls ([`compute`]) are cut into short chunks by their callers, which check
//! for signals between chunks. Calls that cannot be cut run on a worker thread while the calling
//! thread wakes every [`SIGNAL_POLL`] to run Python's signal handlers: [`cancellable`] (the work
//! sees a cancel flag and stops early). Loading a model runs its own check instead (the reader
//! calls back every 8 MiB, and every 0.1 s on pipes, to run the handlers: [`compute_checked`]).
//!
//! Cores: on Linux, when the pool has one worker per CPU the process may run on (and more than
//! one), worker i is pinned to the i-th of those CPUs (unless `AKIDA_PIN_THREADS=0`). Without
//! it, the scheduler often woke a worker on the core of the thread that woke it, so that two
//! workers of `fit` shared one core for milliseconds while the other idled (`perf sched` on a
//! 2-core machine; fit was about 20 % slower at the median). A pool of any other size is left to
//! the scheduler.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex, Once};
use std::time::Duration;

use pyo3::prelude::*;

use crate::errors::{internal_error, to_pyerr};

/// How often a thread waiting for engine work runs Python's signal handlers.
pub const SIGNAL_POLL: Duration = Duration::from_millis(50);

static FORKED: AtomicBool = AtomicBool::new(false);
/// Whether the last pool built (the global one, or a forked child's) pins its workers.
static PINNED: AtomicBool = AtomicBool::new(false);
static REGISTER_FORK_HANDLER: Once = Once::new();

/// The pool of a forked process: its process id and the pool (leaked: a child of this child
/// inherits it without its threads, so it must never be joined or dropped). Taken only with the
/// GIL held, so never locked when `os.fork()` runs.
static CHILD_POOL: Mutex<Option<(u32, &'static rayon::ThreadPool)>> = Mutex::new(None);

extern "C" fn mark_forked() {
    FORKED.store(true, Ordering::SeqCst);
}

/// Registers the fork handler once, and starts what must not be half-started when a fork
/// happens (rayon's global pool, the SIMD detection), with the GIL held.
pub fn install_fork_handler() {
    REGISTER_FORK_HANDLER.call_once(|| {
        // SAFETY: registering a handler that only stores to an atomic is async-signal-safe.
        unsafe {
            libc::pthread_atfork(None, None, Some(mark_forked));
        }
    });
    // (Fails only if the global pool already exists: it is then used as it is.)
    let (builder, pinned) = pool_builder(default_threads());
    if builder.build_global().is_ok() {
        PINNED.store(pinned, Ordering::Relaxed);
    }
    let _ = akida_engine::worker_threads();
    let _ = akida_engine::simd_level();
}

/// The worker threads of a pool: `RAYON_NUM_THREADS` when set to a positive number, else the
/// CPUs this process may use.
fn default_threads() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::env::var("RAYON_NUM_THREADS").ok().and_then(|v| v.parse().ok()).filter(|&n: &usize| n > 0).unwrap_or(cpus)
}

/// A pool of `threads` workers named `akida-worker-<i>`, pinned to a core each when
/// [`pinning_cpus`] allows (see the module documentation), and whether they will be.
fn pool_builder(threads: usize) -> (rayon::ThreadPoolBuilder, bool) {
    let cpus = pinning_cpus(threads);
    let pinned = cpus.is_some();
    let builder = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|index| format!("akida-worker-{index}"))
        .start_handler(move |index| {
            if let Some(cpu) = cpus.as_ref().and_then(|cpus| cpus.get(index)) {
                pin_to_cpu(*cpu);
            }
        });
    (builder, pinned)
}

/// The CPUs the calling thread may run on, if they are exactly `threads` and pinning is not
/// turned off (`AKIDA_PIN_THREADS=0`): worker i of a pool of `threads` goes to the i-th.
#[cfg(target_os = "linux")]
fn pinning_cpus(threads: usize) -> Option<Vec<usize>> {
    if std::env::var("AKIDA_PIN_THREADS").is_ok_and(|v| v.trim() == "0") {
        return None;
    }
    // SAFETY: cpu_set_t is plain data (zero is the empty set), and the call gets its size.
    let cpus: Vec<usize> = unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut allowed) != 0 {
            return None;
        }
        (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &allowed)).collect()
    };
    (cpus.len() == threads && threads > 1).then_some(cpus)
}

#[cfg(not(target_os = "linux"))]
fn pinning_cpus(_threads: usize) -> Option<Vec<usize>> {
    None
}

/// Pins the calling thread to `cpu` (a failure leaves it where it may run).
#[cfg(target_os = "linux")]
fn pin_to_cpu(cpu: usize) {
    // SAFETY: as in `pinning_cpus`.
    unsafe {
        let mut own: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut own);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &own);
    }
}

#[cfg(not(target_os = "linux"))]
fn pin_to_cpu(_cpu: usize) {}

/// Whether the workers of the pool engine work runs on are pinned to a core each.
pub fn pinned_workers() -> bool {
    PINNED.load(Ordering::Relaxed)
}

/// Whether samples may be processed on several threads (always: a forked child gets its own
/// pool; see the module documentation).
pub fn parallel_allowed() -> bool {
    true
}

/// Whether this process was forked from the one that loaded the engine.
pub fn forked() -> bool {
    FORKED.load(Ordering::SeqCst)
}

/// The pool engine work of this process runs in: None in the process that loaded the engine
/// (rayon's global pool), a pool of this process in a forked child. Call with the GIL held.
fn process_pool() -> Option<&'static rayon::ThreadPool> {
    if !forked() {
        return None;
    }
    let pid = std::process::id();
    let mut slot = CHILD_POOL.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((owner, pool)) = *slot {
        if owner == pid {
            return Some(pool);
        }
    }
    let (builder, pinned) = pool_builder(default_threads());
    let pool = builder.build().ok()?;
    PINNED.store(pinned, Ordering::Relaxed);
    let pool: &'static rayon::ThreadPool = Box::leak(Box::new(pool));
    *slot = Some((pid, pool));
    Some(pool)
}

/// Runs `work` in `pool` when there is one (a forked child), else on the calling thread.
fn in_pool<T: Send>(pool: Option<&'static rayon::ThreadPool>, work: impl FnOnce() -> T + Send) -> T {
    match pool {
        Some(pool) => pool.install(work),
        None => work(),
    }
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
/// `work` must not touch Python objects nor take the model lock (see `state.rs`): it computes on
/// a snapshot taken before. Signals are not checked here: callers cut long work into chunks.
pub fn compute<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: FnOnce() -> akida_engine::Result<T> + Send,
    T: Send,
{
    let pool = process_pool();
    let outcome = py.detach(|| catch_unwind(AssertUnwindSafe(|| in_pool(pool, work))));
    match outcome {
        Ok(result) => result.map_err(to_pyerr),
        Err(panic) => Err(panic_to_pyerr(panic)),
    }
}

/// Runs loading `work` with the GIL released, giving it a check that takes the GIL briefly to run
/// Python's signal handlers: a `KeyboardInterrupt` (or whatever a handler raises) stops the work
/// and is raised as it is.
pub fn compute_checked<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: FnOnce(akida_format::Check<'_>) -> akida_engine::Result<T> + Send,
    T: Send,
{
    let pending: std::sync::Mutex<Option<PyErr>> = std::sync::Mutex::new(None);
    let result = compute(py, || {
        let mut check = || -> akida_engine::Result<()> {
            Python::attach(|py| py.check_signals()).map_err(|e| {
                *pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                akida_engine::Error::Io {
                    kind: std::io::ErrorKind::Interrupted,
                    errno: None,
                    message: "loading was interrupted".into(),
                    path: None,
                }
            })
        };
        work(&mut check)
    });
    match pending.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => result,
    }
}

/// Waits up to [`SIGNAL_POLL`] for a message on `rx` with the GIL released (the receiver travels
/// with the wait: it cannot be shared between threads).
fn wait<M: Send>(py: Python<'_>, rx: mpsc::Receiver<M>) -> (Result<M, mpsc::RecvTimeoutError>, mpsc::Receiver<M>) {
    py.detach(move || (rx.recv_timeout(SIGNAL_POLL), rx))
}

/// Runs `work` on a worker thread with the GIL released while this thread runs Python's signal
/// handlers every [`SIGNAL_POLL`]. When one raises (Ctrl-C: `KeyboardInterrupt`), the cancel flag
/// given to `work` is set, `work` is awaited (it must return soon after the flag is set; its
/// result is dropped) and the handler's exception is returned.
pub fn cancellable<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: FnOnce(&AtomicBool) -> akida_engine::Result<T> + Send,
    T: Send,
{
    let pool = process_pool();
    let cancel = AtomicBool::new(false);
    let outcome = std::thread::scope(|scope| {
        let (tx, mut rx) = mpsc::channel();
        let cancel = &cancel;
        scope.spawn(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(|| in_pool(pool, || work(cancel)))));
        });
        loop {
            let received;
            (received, rx) = wait(py, rx);
            match received {
                Ok(outcome) => return Ok(outcome),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Err(interrupt) = py.check_signals() {
                        cancel.store(true, Ordering::SeqCst);
                        // The scope joins the worker, which stops at its next check.
                        py.detach(move || drop(rx.recv()));
                        return Err(interrupt);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Ok(Err(Box::new("the worker thread stopped") as _))
                }
            }
        }
    })?;
    match outcome {
        Ok(result) => result.map_err(to_pyerr),
        Err(panic) => Err(panic_to_pyerr(panic)),
    }
}

/// The worker threads engine work of this process runs on (see [`process_pool`]). Call with the
/// GIL held.
pub fn worker_threads() -> usize {
    process_pool().map_or_else(akida_engine::worker_threads, |pool| pool.current_num_threads())
}
