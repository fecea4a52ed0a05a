//! The state a Python `Model` shares with the handles on its layers, its lock, and the one way a
//! layer handle reaches its layer.
//!
//! Locking rule (ARCHITECTURE.md): these locks are never held while waiting for the GIL. Short
//! work takes them under [`crate::runtime::guarded`] and releases them before returning; long work
//! takes them inside the GIL-released closure of [`crate::runtime::compute`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use akida_engine::{Error, Layer, LayerStatistics, Model};

/// The state of a Python model object: the engine model, a stable id per layer (so layer handles
/// survive insertions and notice removals), the statistics of the last forward call, and the
/// device it is mapped onto.
#[derive(Default)]
pub struct ModelState {
    pub model: Model,
    pub ids: Vec<u64>,
    pub statistics: Option<Vec<LayerStatistics>>,
    /// The device and mode of `Model.map`. The mapping itself is recomputed from them when asked
    /// for (it takes microseconds), so it always describes the model as it is now.
    pub mapped: Option<(akida_nsoc::Device, akida_nsoc::MapMode)>,
    /// What the emulator counted during the last forward call of a mapped model.
    pub emulation: Option<akida_nsoc::Emulation>,
}

impl ModelState {
    /// The mapping of the model onto its device, or None when it is not mapped.
    pub fn mapping(&self) -> Option<akida_nsoc::Mapping> {
        self.mapped.as_ref().map(|(device, mode)| akida_nsoc::map(&self.model, device, *mode))
    }
}

/// A model state shared by the `Model` object and every handle on one of its layers.
pub type SharedModel = Arc<Mutex<ModelState>>;

static NEXT_LAYER_ID: AtomicU64 = AtomicU64::new(1);

/// A layer id never given before in this process.
pub fn new_layer_id() -> u64 {
    NEXT_LAYER_ID.fetch_add(1, Ordering::Relaxed)
}

impl ModelState {
    /// The state of a model built elsewhere (loaded from a file), with a new id per layer.
    pub fn of_model(model: Model) -> Self {
        let ids = (0..model.layers().len()).map(|_| new_layer_id()).collect();
        ModelState { model, ids, statistics: None, mapped: None, emulation: None }
    }

    /// The index of the layer with `id`, or `LayerNotFound` once that layer was popped.
    pub fn index_of_id(&self, id: u64) -> akida_engine::Result<usize> {
        self.ids
            .iter()
            .position(|&i| i == id)
            .ok_or_else(|| Error::LayerNotFound("this layer was removed from its model by pop_layer()".into()))
    }
}

/// A new shared state holding `state`.
pub fn shared(state: ModelState) -> SharedModel {
    Arc::new(Mutex::new(state))
}

/// Locks a mutex, ignoring poisoning: engine state stays consistent because every mutation is
/// validated before it is applied.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A layer is either standalone or a handle on a layer inside a model.
pub enum LayerSlot {
    Detached(Box<Layer>),
    Attached { model: SharedModel, id: u64 },
}

impl LayerSlot {
    /// Runs `f` on the layer, under the model lock when attached.
    pub fn read<R>(&self, f: impl FnOnce(&Layer) -> akida_engine::Result<R>) -> akida_engine::Result<R> {
        match self {
            LayerSlot::Detached(layer) => f(layer),
            LayerSlot::Attached { model, id } => {
                let state = lock(model);
                let index = state.index_of_id(*id)?;
                f(&state.model.layers()[index])
            }
        }
    }

    /// Runs `f` on the layer to change it, under the model lock when attached; a change inside a
    /// model drops the statistics of its last forward call.
    pub fn write<R>(&mut self, f: impl FnOnce(&mut Layer) -> akida_engine::Result<R>) -> akida_engine::Result<R> {
        match self {
            LayerSlot::Detached(layer) => f(layer),
            LayerSlot::Attached { model, id } => {
                let mut state = lock(model);
                let index = state.index_of_id(*id)?;
                state.statistics = None;
                f(state.model.layer_mut(index)?)
            }
        }
    }
}
