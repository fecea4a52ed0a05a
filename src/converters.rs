//! Bindings of the heavy converters; `akida.converters` wraps them with validation and docs.

use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use akida_engine::packetize::{packetize_cancellable, Column, PacketSpec, PacketSplit};
use akida_engine::Error;

use crate::errors::{raise, to_pyerr};
use crate::runtime::{cancellable, parallel_allowed};

/// An int64 numpy array, contiguous or strided (a field of a structured array), read in place.
struct View<'a>(numpy::ndarray::ArrayView1<'a, i64>);

impl Column for View<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    #[inline]
    fn at(&self, i: usize) -> i64 {
        self.0[i]
    }
}

/// Accumulates events into dense uint8 packets `(packets, ceil(height/downsample),
/// ceil(width/downsample), polarity_channels)`; see `docs/converters.md`. `x`, `y`, `t`, `p` are
/// int64 arrays of one length (strided views are read in place); exactly one of `packet_size`
/// and `time_window` is given.
#[pyfunction]
#[pyo3(signature = (x, y, t, p, width, height, polarity_channels, packet_size, time_window, downsample, input_bits))]
#[allow(clippy::too_many_arguments)]
pub fn packetize<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, i64>,
    y: PyReadonlyArray1<'py, i64>,
    t: PyReadonlyArray1<'py, i64>,
    p: PyReadonlyArray1<'py, i64>,
    width: i64,
    height: i64,
    polarity_channels: i64,
    packet_size: Option<i64>,
    time_window: Option<i64>,
    downsample: i64,
    input_bits: i64,
) -> PyResult<Bound<'py, PyAny>> {
    let split = match (packet_size, time_window) {
        (Some(n), None) if n >= 1 => PacketSplit::Count(n as usize),
        (Some(n), None) => return raise(Error::Parameter(format!("packet_size must be >= 1, got {n}"))),
        (None, Some(w)) => PacketSplit::Time(w),
        _ => return raise(Error::Parameter("give exactly one of packet_size and time_window".into())),
    };
    let spec = PacketSpec::new(width, height, polarity_channels, downsample, input_bits, split).map_err(to_pyerr)?;
    let (xs, ys, ts, ps) = (View(x.as_array()), View(y.as_array()), View(t.as_array()), View(p.as_array()));
    let parallel = parallel_allowed();
    // On a worker thread, so that Ctrl-C stops it within a packet (see `runtime::cancellable`).
    let (packets, data) =
        cancellable(py, move |cancel| packetize_cancellable(&xs, &ys, &ts, &ps, &spec, parallel, cancel))?;
    let (h, w, c) = spec.packet_shape();
    PyArray1::from_vec(py, data).call_method1("reshape", ((packets, h, w, c),))
}
