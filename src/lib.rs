//! Python bindings of the akida engine (`akida._akida`). Thin wrappers over `akida-engine`: numpy
//! conversion, error mapping and GIL release live here, all computation in the core.

mod arrays;
mod errors;
mod events;
mod layers;
mod model;
mod runtime;

use pyo3::prelude::*;

#[pymodule]
fn _akida(m: &Bound<'_, PyModule>) -> PyResult<()> {
    runtime::install_fork_handler();
    m.add_class::<layers::PyConvolutionMode>()?;
    m.add_class::<layers::PyPoolingType>()?;
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
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
