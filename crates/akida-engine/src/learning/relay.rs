//! A one-slot relay between the two workers of `fit`'s ahead path: the learning worker posts a
//! request (the next chunk and a copy of the weights), the other worker serves it while the
//! first learns, and the first collects the result.
//!
//! Why not a rayon task per chunk: a worker that finds no task soon goes to sleep, and the next
//! task wakes it from the learning worker's core. Linux then often places the woken thread on the
//! waker's core (wake-affine placement), where the two workers share one core until the load
//! balancer separates them a few milliseconds later. With chunks
//! of about a millisecond that happened on most chunks (measured with `perf sched` on a 2-core
//! machine: the serving worker waited up to 3.3 ms to run, with the other core idle). The
//! relay's worker stays for the whole call instead, checking the slot between short naps (see
//! [`wait_until`]), so that each worker keeps a core of its own.
//!
//! Contract: every posted request is either served by the other worker or taken back by
//! [`Relay::collect`] and computed by the caller, so a request never waits for a worker that
//! never started (rayon runs the serving closure inline, after the learning one, when no other
//! worker steals it). A panic while serving is handed to the collector, which resumes it, so it
//! reaches the caller as it was instead of leaving the collector waiting.

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// How long a waiter checks without leaving its core.
const SPIN_FOR: Duration = Duration::from_micros(200);
/// The nap between checks after [`SPIN_FOR`].
const NAP: Duration = Duration::from_micros(20);

/// Waits until `ready()` returns true: busy checks for [`SPIN_FOR`], then naps of [`NAP`] (in
/// practice longer, by the timer slack). Napping rather than yielding matters: a thread woken by
/// its timer is placed on an idle core if there is one, so a waiter that started on the other
/// worker's core moves away after one nap, where a yielding one would stay runnable there until
/// the load balancer's next tick (milliseconds).
pub(crate) fn wait_until(mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        if start.elapsed() < SPIN_FOR {
            std::hint::spin_loop();
        } else {
            std::thread::sleep(NAP);
        }
    }
}

/// The relay: one request slot and one result slot, each with a flag that the waiters poll
/// without taking the lock.
pub(crate) struct Relay<R, T> {
    /// The thread that posts and collects (the serving closure does nothing on it).
    collector: ThreadId,
    request: Mutex<Option<R>>,
    has_request: AtomicBool,
    /// The server's result, or the payload of its panic.
    result: Mutex<Option<Result<T, Box<dyn Any + Send>>>>,
    has_result: AtomicBool,
    /// No more requests will be posted: the server returns.
    closed: AtomicBool,
}

impl<R, T> Relay<R, T> {
    /// A relay whose requests are posted and collected on the calling thread.
    pub(crate) fn new() -> Self {
        Relay {
            collector: std::thread::current().id(),
            request: Mutex::new(None),
            has_request: AtomicBool::new(false),
            result: Mutex::new(None),
            has_result: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    /// Posts `request`. The previous one must have been collected.
    pub(crate) fn post(&self, request: R) {
        let mut slot = lock(&self.request);
        debug_assert!(slot.is_none() && !self.has_result.load(Ordering::Acquire), "one request at a time");
        *slot = Some(request);
        self.has_request.store(true, Ordering::Release);
    }

    /// The result of the posted request: taken back and computed here by `compute` if no server
    /// has claimed it, else the server's once it is ready.
    ///
    /// # Panics
    /// With the server's panic, if it panicked serving the request.
    pub(crate) fn collect(&self, compute: impl FnOnce(R) -> T) -> T {
        let unclaimed = {
            let mut slot = lock(&self.request);
            self.has_request.store(false, Ordering::Release);
            slot.take()
        };
        if let Some(request) = unclaimed {
            return compute(request);
        }
        wait_until(|| self.has_result.load(Ordering::Acquire));
        let result = lock(&self.result).take().expect("a result is stored before its flag is set");
        self.has_result.store(false, Ordering::Release);
        result.unwrap_or_else(|panic| resume_unwind(panic))
    }

    /// Ends [`Relay::serve`] once no request is pending.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Serves requests with `compute` until [`Relay::close`]; returns at once on the collector's
    /// thread (the collector computes its requests itself there).
    pub(crate) fn serve(&self, mut compute: impl FnMut(R) -> T) {
        if std::thread::current().id() == self.collector {
            return;
        }
        loop {
            wait_until(|| self.has_request.load(Ordering::Acquire) || self.closed.load(Ordering::Acquire));
            let claimed = {
                let mut slot = lock(&self.request);
                self.has_request.store(false, Ordering::Release);
                slot.take()
            };
            match claimed {
                Some(request) => {
                    let result = catch_unwind(AssertUnwindSafe(|| compute(request)));
                    let failed = result.is_err();
                    *lock(&self.result) = Some(result);
                    self.has_result.store(true, Ordering::Release);
                    if failed {
                        // (The collector resumes the panic; the closure's state may be broken.)
                        return;
                    }
                }
                None if self.closed.load(Ordering::Acquire) => return,
                // Taken back by the collector between the flag and the lock.
                None => {}
            }
        }
    }
}

/// Closes the relay when dropped, so that the server returns whichever way the collector leaves
/// (an error or a panic included).
pub(crate) struct CloseOnDrop<'a, R, T>(pub(crate) &'a Relay<R, T>);

impl<R, T> Drop for CloseOnDrop<'_, R, T> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Locks `m`, through a poisoning (the slots hold plain values, valid whatever panicked).
fn lock<V>(m: &Mutex<V>) -> std::sync::MutexGuard<'_, V> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every request gets its own result, whoever computes it, for any pool size and any mix
    /// of slow collectors and slow servers.
    #[test]
    fn every_request_gets_its_result_whoever_serves_it() {
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            for slow_server in [false, true] {
                let got = pool.install(|| {
                    let relay = Relay::<u64, u64>::new();
                    let mut got = Vec::new();
                    rayon::join(
                        || {
                            let _close = CloseOnDrop(&relay);
                            for i in 0..200u64 {
                                relay.post(i);
                                if !slow_server && i % 7 == 0 {
                                    std::thread::sleep(Duration::from_micros(200));
                                }
                                got.push(relay.collect(|r| r * r + 1));
                            }
                        },
                        || {
                            relay.serve(|r| {
                                if slow_server && r % 5 == 0 {
                                    std::thread::sleep(Duration::from_micros(300));
                                }
                                r * r + 1
                            })
                        },
                    );
                    got
                });
                assert_eq!(got, (0..200u64).map(|i| i * i + 1).collect::<Vec<_>>(), "{threads} threads");
            }
        }
    }

    /// A collector that leaves early (an error) releases the server.
    #[test]
    fn a_collector_that_stops_early_releases_the_server() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let outcome: Result<(), &str> = pool.install(|| {
            let relay = Relay::<u32, u32>::new();
            let (learned, ()) = rayon::join(
                || {
                    let _close = CloseOnDrop(&relay);
                    relay.post(1);
                    let _ = relay.collect(|r| r);
                    relay.post(2);
                    Err("stopped")
                },
                || relay.serve(|r| r),
            );
            learned
        });
        assert_eq!(outcome, Err("stopped"));
    }

    /// A server that panics makes the collector panic with its message instead of waiting
    /// forever.
    #[test]
    fn a_server_that_panics_does_not_leave_the_collector_waiting() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.install(|| {
                let relay = Relay::<u32, u32>::new();
                rayon::join(
                    || {
                        let _close = CloseOnDrop(&relay);
                        // Until the server claims a request (the collector takes back those it
                        // has not claimed yet), for at most 20 s.
                        let start = Instant::now();
                        for i in 0.. {
                            if start.elapsed() > Duration::from_secs(20) {
                                break;
                            }
                            relay.post(i);
                            std::thread::sleep(Duration::from_micros(100));
                            let _ = relay.collect(|r| r);
                        }
                    },
                    || relay.serve(|_| panic!("server failed")),
                )
            })
        }));
        let panic = outcome.expect_err("the server's panic reaches the caller");
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"server failed"));
    }
}
