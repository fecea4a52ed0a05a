//! The state a Python `Model` shares with the handles on its layers, its lock, and the one way a
//! layer handle reaches its layer.
//!
//! Locking rule (ARCHITECTURE.md, docs/api.md "Threads, fork and interrupts"): the model lock is
//! taken only by a thread that holds the GIL, around pure-Rust work, and released before that
//! thread can give the GIL up. So no thread ever waits for it while another holds the GIL, and it
//! is never held when `os.fork()` runs (the forking thread holds the GIL): a forked child finds it
//! free whatever the parent's threads were doing. Long work (forward, fit, save) never runs under
//! it: it takes a snapshot of the engine model (`Arc<Model>`, see [`ModelState::model`]) under the
//! lock, releases the lock and the GIL, and computes on the snapshot. Changes copy the model when
//! a snapshot is alive (copy on write), so every call sees one version of the model.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use akida_engine::{Error, Layer, LayerStatistics, Model};

/// The state of a Python model object: the engine model, a stable id per layer (so layer handles
/// survive insertions and notice removals), the statistics of the last forward call, and the
/// device it is mapped onto.
#[derive(Default)]
pub struct ModelState {
    /// The current version of the engine model. Long calls clone the `Arc` (a snapshot) and
    /// compute on it without the lock; [`ModelState::model_mut`] is the one way to change it.
    pub model: Arc<Model>,
    pub ids: Vec<u64>,
    pub statistics: Option<Vec<LayerStatistics>>,
    /// The device and mode of `Model.map`. The mapping itself is recomputed from them when asked
    /// for (it takes microseconds), so it always describes the model as it is now.
    pub mapped: Option<(akida_nsoc::Device, akida_nsoc::MapMode)>,
    /// What the emulator counted during the last forward call of a mapped model.
    pub emulation: Option<akida_nsoc::Emulation>,
    /// The emulator prepared for `model` as mapped (see [`ModelState::emulator`]), with the model
    /// version it was prepared for; cleared by every change of the model or of `mapped`.
    pub emulator: Option<(Arc<Model>, Arc<akida_nsoc::Emulator>)>,
    /// The process and thread of a `fit` call in progress on this model (it learns on a private copy and
    /// publishes it when it returns); other changes are refused meanwhile and other `fit` calls
    /// wait. An id of another process (the parent of a forked child) is stale: that fit never
    /// publishes here.
    pub fitting: Option<(u32, std::thread::ThreadId)>,
    /// Names of the layers removed by `pop_layer`, by layer id, for the repr of stale handles.
    pub removed: HashMap<u64, String>,
}

impl ModelState {
    /// The mapping of the model onto its device, or None when it is not mapped.
    pub fn mapping(&self) -> Option<akida_nsoc::Mapping> {
        self.mapped.as_ref().map(|(device, mode)| akida_nsoc::map(&self.model, device, *mode))
    }

    /// The emulator of the mapped model as it is now (None when it is not mapped): prepared on
    /// the first mapped forward call and kept for the next ones, so that they do not prepare it
    /// (and the kernel plans of its HRC and software layers) again.
    pub fn emulator(&mut self) -> akida_engine::Result<Option<Arc<akida_nsoc::Emulator>>> {
        let Some(mapping) = self.mapping() else {
            self.emulator = None;
            return Ok(None);
        };
        if let Some((prepared_for, emulator)) = &self.emulator {
            if Arc::ptr_eq(prepared_for, &self.model) {
                return Ok(Some(Arc::clone(emulator)));
            }
        }
        let emulator = Arc::new(akida_nsoc::Emulator::new(&self.model, &mapping)?);
        self.emulator = Some((Arc::clone(&self.model), Arc::clone(&emulator)));
        Ok(Some(emulator))
    }

    /// Changes the device and mode the model is mapped onto (None: not mapped).
    pub fn set_mapped(&mut self, mapped: Option<(akida_nsoc::Device, akida_nsoc::MapMode)>) {
        self.emulator = None;
        self.mapped = mapped;
    }

    /// Whether a `fit` call of this process is learning on this model.
    pub fn fit_running(&self) -> bool {
        self.fitting.is_some_and(|(pid, _)| pid == std::process::id())
    }

    /// The model, to change it: copied first when a running call holds a snapshot of it (copy on
    /// write). Refused while `fit` runs on it in another thread, whose result would replace the
    /// change.
    pub fn model_mut(&mut self) -> akida_engine::Result<&mut Model> {
        if self.fit_running() {
            return Err(Error::Architecture(
                "fit() is running on this model in another thread; change the model after it returns".into(),
            ));
        }
        self.statistics = None;
        // Dropped before the copy on write, so that it does not force one.
        self.emulator = None;
        Ok(Arc::make_mut(&mut self.model))
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
        ModelState { model: Arc::new(model), ids, ..Default::default() }
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

/// Locks a mutex, ignoring poisoning (see the locking rule above: only with the GIL held): engine state stays consistent because every mutation is
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
                f(state.model_mut()?.layer_mut(index)?)
            }
        }
    }
}

/// The name of the layer a handle pointed to, when that layer was removed by `pop_layer()`.
pub fn removed_name(slot: &LayerSlot) -> Option<String> {
    match slot {
        LayerSlot::Attached { model, id } => lock(model).removed.get(id).cloned(),
        LayerSlot::Detached(_) => None,
    }
}
