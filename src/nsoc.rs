//! Python classes of the NSoC description and of a mapping: `akida.AKD1000()`, `akida.devices()`,
//! `Device`, `Mesh`, `NP`, `NpType`, `MapMode`, `BackendType`, and the mapped-NP records.

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use akida_nsoc::{Device, MapMode, NpIdent, NpShare, NpType};

/// The types of neural processing unit.
#[pyclass(name = "NpType", module = "akida", eq, eq_int, frozen, hash, from_py_object)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PyNpType {
    CNP1,
    CNP2,
    FNP2,
    FNP3,
}

impl From<NpType> for PyNpType {
    fn from(t: NpType) -> Self {
        match t {
            NpType::Cnp1 => PyNpType::CNP1,
            NpType::Cnp2 => PyNpType::CNP2,
            NpType::Fnp2 => PyNpType::FNP2,
            NpType::Fnp3 => PyNpType::FNP3,
        }
    }
}

/// How `Model.map` spreads layers over NPs.
#[pyclass(name = "MapMode", module = "akida", eq, eq_int, frozen, hash, from_py_object)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PyMapMode {
    /// As many NPs as the layer limits allow, for the fewest passes (the default).
    AllNps,
    /// The fewest NPs.
    Minimal,
}

impl From<PyMapMode> for MapMode {
    fn from(m: PyMapMode) -> Self {
        match m {
            PyMapMode::AllNps => MapMode::AllNps,
            PyMapMode::Minimal => MapMode::Minimal,
        }
    }
}

/// Where a sequence of layers runs.
#[pyclass(name = "BackendType", module = "akida", eq, eq_int, frozen, hash, from_py_object)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PyBackendType {
    Software,
    Hardware,
    Hybrid,
}

fn ident_tuple<'py>(py: Python<'py>, ident: NpIdent) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, [ident.col, ident.row, ident.id])
}

/// One neural processing unit of a device: its mesh ident `(col, row, id)` and the types it can
/// take.
#[pyclass(name = "NP", module = "akida", frozen)]
pub struct PyNp {
    ident: NpIdent,
    types: Vec<PyNpType>,
}

#[pymethods]
impl PyNp {
    /// Where the NP sits: ``(column, row, id)`` in the mesh (id 0-3 inside its node).
    #[getter]
    fn ident<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        ident_tuple(py, self.ident)
    }

    /// The ``NpType`` values this NP can be configured as (one at a time).
    #[getter]
    fn types(&self) -> Vec<PyNpType> {
        self.types.clone()
    }

    fn __repr__(&self) -> String {
        let types: Vec<&str> = self.types.iter().map(|t| type_name(*t)).collect();
        format!("NP(ident={}, types=[{}])", self.ident, types.join(", "))
    }
}

fn type_name(t: PyNpType) -> &'static str {
    match t {
        PyNpType::CNP1 => "CNP1",
        PyNpType::CNP2 => "CNP2",
        PyNpType::FNP2 => "FNP2",
        PyNpType::FNP3 => "FNP3",
    }
}

/// The mesh of a device: its NPs in mesh order.
#[pyclass(name = "Mesh", module = "akida", frozen)]
pub struct PyMesh {
    device: Device,
}

#[pymethods]
impl PyMesh {
    /// Every NP of the device, as ``NP`` objects in mesh order (column, row, id).
    #[getter]
    fn nps(&self) -> Vec<PyNp> {
        self.device
            .nps
            .iter()
            .map(|np| PyNp { ident: np.ident, types: np.types.iter().map(|t| (*t).into()).collect() })
            .collect()
    }

    fn __repr__(&self) -> String {
        format!("Mesh({} NPs)", self.device.nps.len())
    }
}

/// A virtual device: the description of an Akida chip that `Model.map` maps onto.
#[pyclass(name = "Device", module = "akida", frozen)]
pub struct PyDevice {
    pub(crate) device: Device,
}

#[pymethods]
impl PyDevice {
    /// The device and the version of its description.
    #[getter]
    fn version(&self) -> String {
        self.device.version.clone()
    }

    /// The device's mesh of NPs (``Mesh``).
    #[getter]
    fn mesh(&self) -> PyMesh {
        PyMesh { device: self.device.clone() }
    }

    /// Every fact of the description, with its source.
    ///
    /// Returns
    /// -------
    /// list of (str, str, str)
    ///     ``(name, value, source)``; a source starting with "assumption" marks a number no
    ///     public document gives.
    fn facts(&self) -> Vec<(String, String, String)> {
        self.device.facts().into_iter().map(|(n, v, s)| (n.to_owned(), v, s.to_owned())).collect()
    }

    fn __repr__(&self) -> String {
        format!("Device({}, {} NPs)", self.device.version, self.device.nps.len())
    }
}

/// The virtual AKD1000: 80 NPs in 20 nodes (see docs/nsoc.md for every fact and its source).
///
/// Returns
/// -------
/// Device
///     A description to map models onto with ``Model.map``.
///
/// Examples
/// --------
/// >>> import akida
/// >>> device = akida.AKD1000()
/// >>> len(device.mesh.nps)
/// 80
#[pyfunction(name = "AKD1000")]
pub fn akd1000() -> PyDevice {
    PyDevice { device: Device::akd1000() }
}

/// The physical Akida devices attached to this machine.
///
/// Returns
/// -------
/// list of Device
///     Always empty: this engine runs models in software (and emulates the AKD1000 for mapped
///     models); it drives no hardware.
#[pyfunction]
pub fn devices() -> Vec<PyDevice> {
    Vec::new()
}

/// The share of a layer that one NP holds, in `layer.mapping.nps`.
#[pyclass(name = "MappedNP", module = "akida", frozen)]
pub struct PyMappedNp {
    share: NpShare,
}

impl PyMappedNp {
    pub fn new(share: NpShare) -> Self {
        PyMappedNp { share }
    }
}

#[pymethods]
impl PyMappedNp {
    /// The NP's ``(column, row, id)`` in the mesh.
    #[getter]
    fn ident<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        ident_tuple(py, self.share.ident)
    }

    /// The ``NpType`` the NP is configured as for this layer.
    #[getter]
    fn r#type(&self) -> PyNpType {
        self.share.np_type.into()
    }

    /// The filters (output channels) this NP computes, as `range(start, stop)`.
    #[getter]
    fn filters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let r = &self.share.filters;
        py.import("builtins")?.getattr("range")?.call1((r.start, r.end))
    }

    /// The input columns this NP receives, as `range(start, stop)`.
    #[getter]
    fn columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let r = &self.share.columns;
        py.import("builtins")?.getattr("range")?.call1((r.start, r.end))
    }

    /// Bytes of bit-packed weights and thresholds the NP holds.
    #[getter]
    fn memory_bytes(&self) -> usize {
        self.share.memory_bytes
    }

    fn __repr__(&self) -> String {
        let s = &self.share;
        format!(
            "MappedNP(ident={}, type={}, filters={}..{}, columns={}..{})",
            s.ident, s.np_type, s.filters.start, s.filters.end, s.columns.start, s.columns.end
        )
    }
}

/// Where a layer runs once its model is mapped: `layer.mapping`.
#[pyclass(name = "LayerMapping", module = "akida", frozen)]
pub struct PyLayerMapping {
    placement: akida_nsoc::Placement,
}

#[pymethods]
impl PyLayerMapping {
    /// "input" (InputData: events over DMA), "hrc" (the input conversion block), "nps" or
    /// "software".
    #[getter]
    fn placement(&self) -> &'static str {
        match &self.placement {
            akida_nsoc::Placement::Input => "input",
            akida_nsoc::Placement::Hrc => "hrc",
            akida_nsoc::Placement::Nps(_) => "nps",
            akida_nsoc::Placement::Software(_) => "software",
        }
    }

    /// The NPs holding the layer, each with the filters and input columns it computes.
    #[getter]
    fn nps(&self) -> Vec<PyMappedNp> {
        match &self.placement {
            akida_nsoc::Placement::Nps(shares) => shares.iter().cloned().map(PyMappedNp::new).collect(),
            _ => Vec::new(),
        }
    }

    /// Why the layer runs in software (the rule, the value, the limit, what would fit), or None.
    #[getter]
    fn reason(&self) -> Option<String> {
        match &self.placement {
            akida_nsoc::Placement::Software(r) => Some(r.to_string()),
            _ => None,
        }
    }

    fn __repr__(&self) -> String {
        match &self.placement {
            akida_nsoc::Placement::Nps(shares) => format!("LayerMapping(nps: {} NPs)", shares.len()),
            akida_nsoc::Placement::Software(r) => format!("LayerMapping(software: {r})"),
            _ => format!("LayerMapping({})", self.placement()),
        }
    }
}

impl PyLayerMapping {
    pub fn of(mapping: &akida_nsoc::Mapping, layer: usize) -> Option<Self> {
        mapping.layers().find(|l| l.layer == layer).map(|l| PyLayerMapping { placement: l.placement.clone() })
    }
}

/// Layers loaded on the device together.
#[pyclass(name = "Pass", module = "akida", frozen)]
pub struct PyPass {
    layers: Vec<Py<PyAny>>,
}

#[pymethods]
impl PyPass {
    /// The layers of the pass, as views of the model's layers, in model order.
    #[getter]
    fn layers(&self, py: Python<'_>) -> Vec<Py<PyAny>> {
        self.layers.iter().map(|l| l.clone_ref(py)).collect()
    }

    fn __repr__(&self) -> String {
        format!("Pass({} layers)", self.layers.len())
    }
}

/// Consecutive layers with one backend, in passes loaded one after another.
#[pyclass(name = "Sequence", module = "akida", frozen)]
pub struct PySequence {
    backend: PyBackendType,
    passes: Vec<Py<PyPass>>,
    program_size: usize,
}

#[pymethods]
impl PySequence {
    /// ``BackendType.Hardware`` (on the device's NPs and HRC) or ``BackendType.Software``.
    #[getter]
    fn backend(&self) -> PyBackendType {
        self.backend
    }

    /// The passes of the sequence (``Pass``), loaded one after another.
    #[getter]
    fn passes(&self, py: Python<'_>) -> Vec<Py<PyPass>> {
        self.passes.iter().map(|p| p.clone_ref(py)).collect()
    }

    /// Bytes of the program that loads a hardware sequence (every pass): each NP's and the
    /// HRC's weights and thresholds plus an assumed 64-byte configuration block per unit
    /// (docs/nsoc.md); 0 for a software sequence.
    #[getter]
    fn program_size(&self) -> usize {
        self.program_size
    }

    fn __repr__(&self) -> String {
        let backend = match self.backend {
            PyBackendType::Software => "Software",
            PyBackendType::Hardware => "Hardware",
            PyBackendType::Hybrid => "Hybrid",
        };
        format!("Sequence({backend}, {} passes)", self.passes.len())
    }
}

/// The Python sequences of a mapping; `layer` makes the view of the layer at an index.
pub fn sequences(
    py: Python<'_>,
    mapping: Option<&akida_nsoc::Mapping>,
    layer_count: usize,
    mut layer: impl FnMut(usize) -> PyResult<Py<PyAny>>,
) -> PyResult<Vec<PySequence>> {
    let Some(mapping) = mapping else {
        let layers = (0..layer_count).map(&mut layer).collect::<PyResult<_>>()?;
        let pass = Py::new(py, PyPass { layers })?;
        return Ok(vec![PySequence { backend: PyBackendType::Software, passes: vec![pass], program_size: 0 }]);
    };
    let mut out = Vec::new();
    for sequence in &mapping.sequences {
        let backend = match sequence.backend {
            akida_nsoc::Backend::Hardware => PyBackendType::Hardware,
            akida_nsoc::Backend::Software => PyBackendType::Software,
        };
        let mut passes = Vec::new();
        for pass in &sequence.passes {
            let layers = pass.layers.iter().map(|l| layer(l.layer)).collect::<PyResult<_>>()?;
            passes.push(Py::new(py, PyPass { layers })?);
        }
        out.push(PySequence { backend, passes, program_size: sequence.program_bytes });
    }
    Ok(out)
}

impl PyDevice {
    pub fn new(device: Device) -> Self {
        PyDevice { device }
    }
}
