//! Python bindings of the akida engine (`akida._akida`). Thin wrappers over `akida-engine`: numpy
//! conversion, error mapping and GIL release live here, all computation in the core.

mod args;
mod arrays;
mod converters;
mod errors;
mod events;
mod layers;
mod model;
mod nsoc;
mod runtime;
mod state;

use pyo3::prelude::*;

/// How the engine runs here: worker threads (in a forked child, those of the pool it built for
/// itself), SIMD level (`"portable"`, `"avx2"`, `"avx512-vnni"`), the kernels a layer may run
/// (chosen per layer and sample; `LayerStatistics.kernels` says which ran), whether samples
/// run in parallel (more than one worker thread), and whether each worker is pinned to a CPU of
/// its own (`pinned_workers`: on Linux, when there is one worker per CPU the process may use,
/// unless `AKIDA_PIN_THREADS=0`).
///
/// Returns
/// -------
/// dict of str to object
///     The figures, by name.
#[pyfunction]
fn engine_info(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyDict>> {
    let info = pyo3::types::PyDict::new(py);
    info.set_item("worker_threads", runtime::worker_threads())?;
    info.set_item("simd", akida_engine::simd_level())?;
    let kernels: Vec<&str> = akida_engine::Method::ALL.iter().map(|m| m.name()).collect();
    info.set_item("kernels", kernels)?;
    info.set_item("parallel", runtime::worker_threads() > 1)?;
    info.set_item("pinned_workers", runtime::pinned_workers())?;
    Ok(info)
}

#[pymodule]
fn _akida(m: &Bound<'_, PyModule>) -> PyResult<()> {
    runtime::install_fork_handler();
    m.add_class::<layers::PyConvolutionMode>()?;
    m.add_class::<layers::PyPoolingType>()?;
    m.add_class::<layers::PyLearningType>()?;
    m.add_class::<layers::PyLayer>()?;
    m.add_class::<layers::LayerParameters>()?;
    m.add_class::<layers::PyInputData>()?;
    m.add_class::<layers::PyInputConvolutional>()?;
    m.add_class::<layers::PyFullyConnected>()?;
    m.add_class::<layers::PyConvolutional>()?;
    m.add_class::<layers::PySeparableConvolutional>()?;
    m.add_class::<layers::PyConcat>()?;
    m.add_class::<events::PyEvents>()?;
    m.add_class::<model::PyModel>()?;
    m.add_class::<model::PyLayerStatistics>()?;
    m.add_class::<nsoc::PyNpType>()?;
    m.add_class::<nsoc::PyMapMode>()?;
    m.add_class::<nsoc::PyBackendType>()?;
    m.add_class::<nsoc::PyNp>()?;
    m.add_class::<nsoc::PyMesh>()?;
    m.add_class::<nsoc::PyDevice>()?;
    m.add_class::<nsoc::PyMappedNp>()?;
    m.add_class::<nsoc::PyLayerMapping>()?;
    m.add_class::<nsoc::PyPass>()?;
    m.add_class::<nsoc::PySequence>()?;
    m.add_function(wrap_pyfunction!(nsoc::akd1000, m)?)?;
    m.add_function(wrap_pyfunction!(nsoc::devices, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(engine_info, m)?)?;
    m.add_function(wrap_pyfunction!(converters::packetize, m)?)?;
    Ok(())
}
