//! The model graph: layers in topological order (one input layer first, Concat branches), the
//! validation of every addition, and the cached [`Plan`] of the current layers.

use std::sync::{Arc, OnceLock};

use crate::error::{bail, Error, Result};
use crate::layer::{Layer, OutputKind};
use crate::params::LayerKind;
use crate::plan::{ForcedKernels, Plan};
use crate::shape::Shape3;

/// A sequential (or branching, through Concat) network with exactly one input layer, first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    layers: Vec<Layer>,
    /// Indices of the inbound layers of each layer (all smaller than the layer's own index).
    inbound: Vec<Vec<usize>>,
    /// Accumulate every layer in `i32` (tests compare both accumulator widths).
    force_wide: bool,
    /// A test hook: the kernel set and method every layer runs with ([`Model::set_forced_kernels`]).
    forced: ForcedKernels,
    /// The plan of the current layers, built on first use; every `&mut` method that can change
    /// what the plan reads (layers, parameters, variables, `force_wide`) clears it, except `fit`,
    /// which takes it out, keeps its packed copy of the learned weights up to date and puts it
    /// back ([`Model::take_plan`]).
    plan: PlanCache,
    /// What `fit` derives from the learning layer's weights and state to learn fast, kept from
    /// one `fit` call to the next (a long fit runs in chunks) and dropped with the plan, by every
    /// change but `fit`'s own ([`Model::take_learning_cache`]).
    learning: LearningCache,
}

/// The derived learning state of [`Model::take_learning_cache`]. A clone starts empty, and two
/// models compare equal whatever their caches hold: it is a function of the rest of the model.
#[derive(Default)]
struct LearningCache(Option<Box<crate::learning::LearningScratch>>);

impl Clone for LearningCache {
    fn clone(&self) -> Self {
        LearningCache(None)
    }
}

impl PartialEq for LearningCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for LearningCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "LearningCache(built)" } else { "LearningCache(empty)" })
    }
}

/// A lazily built [`Plan`], shared by clones until either changes. Two models compare equal
/// whatever their caches hold, since a plan is a function of the rest of the model.
#[derive(Clone, Default)]
struct PlanCache(OnceLock<Arc<Plan>>);

impl PartialEq for PlanCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for PlanCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "PlanCache(built)" } else { "PlanCache(empty)" })
    }
}

impl Model {
    pub fn new() -> Self {
        Model::default()
    }

    /// Makes every layer accumulate in `i32`, disabling the `i16` fast path; results are the same.
    pub fn set_force_wide_accumulators(&mut self, force: bool) {
        self.plan_changed();
        self.force_wide = force;
    }

    /// Whether every layer accumulates in `i32` ([`Model::set_force_wide_accumulators`]).
    pub fn force_wide_accumulators(&self) -> bool {
        self.force_wide
    }

    /// Runs every layer with the given kernel set and, where a layer has it, method (a test hook:
    /// results are the same with any choice); the default chooses both.
    pub fn set_forced_kernels(&mut self, forced: ForcedKernels) {
        self.plan_changed();
        self.forced = forced;
    }

    /// The model of the first `end` layers (their inbound layers are among them), with its own
    /// plan and learning caches.
    pub(crate) fn prefix(&self, end: usize) -> Model {
        Model {
            layers: self.layers[..end].to_vec(),
            inbound: self.inbound[..end].to_vec(),
            force_wide: self.force_wide,
            forced: self.forced,
            plan: PlanCache::default(),
            learning: LearningCache::default(),
        }
    }

    /// The kernel set and method forced by [`Model::set_forced_kernels`] (default: none).
    pub fn forced_kernels(&self) -> ForcedKernels {
        self.forced
    }

    /// The plan of the model as it is, built on the first call after a change and shared until
    /// the next one.
    pub fn plan(&self) -> Arc<Plan> {
        Arc::clone(self.plan.0.get_or_init(|| Arc::new(Plan::new(&self.layers, self.force_wide, self.forced))))
    }

    /// Drops the cached plan; every `&mut` path that changes layers calls it first.
    fn plan_changed(&mut self) {
        self.plan = PlanCache::default();
        self.learning = LearningCache::default();
    }

    /// The learning cache, taken out of the model by `fit`, which gives it back with
    /// [`Model::restore_learning_cache`] when it agrees with the learning layer again.
    pub(crate) fn take_learning_cache(&mut self) -> Option<Box<crate::learning::LearningScratch>> {
        self.learning.0.take()
    }

    /// Caches `cache`, which the caller of [`Model::take_learning_cache`] kept equal to the layers.
    pub(crate) fn restore_learning_cache(&mut self, cache: Box<crate::learning::LearningScratch>) {
        self.learning = LearningCache(Some(cache));
    }

    /// Frees what `fit` keeps between calls to learn fast (about twice the learning layer's
    /// weights); the next `fit` derives it again. Results are the same either way.
    pub fn release_learning_cache(&mut self) {
        self.learning = LearningCache::default();
    }

    /// The plan, taken out of the cache for a caller that changes weights the plan packs (the
    /// learning layer's, in `fit`) and keeps the plan's copy equal to them: it gives the plan
    /// back with [`Model::restore_plan`] when the weights and the copy agree again. Until then
    /// the model has no cached plan (a call to [`Model::plan`] packs the weights as they are).
    pub(crate) fn take_plan(&mut self) -> Arc<Plan> {
        match self.plan.0.take() {
            Some(plan) => plan,
            None => Arc::new(Plan::new(&self.layers, self.force_wide, self.forced)),
        }
    }

    /// Caches `plan`, which the caller of [`Model::take_plan`] kept equal to the layers.
    pub(crate) fn restore_plan(&mut self, plan: Arc<Plan>) {
        self.plan = PlanCache(OnceLock::from(plan));
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    pub fn layer(&self, index: usize) -> Result<&Layer> {
        self.layers.get(index).ok_or_else(|| self.index_error(index))
    }

    /// The layer at `index`, for changes (the cached plan is dropped).
    pub fn layer_mut(&mut self, index: usize) -> Result<&mut Layer> {
        self.plan_changed();
        let err = self.index_error(index);
        self.layers.get_mut(index).ok_or(err)
    }

    fn index_error(&self, index: usize) -> Error {
        Error::LayerNotFound(format!("no layer at index {index}: the model has {} layers", self.layers.len()))
    }

    /// The index of the layer called `name`.
    pub fn index_of(&self, name: &str) -> Result<usize> {
        self.layers.iter().position(|l| l.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.layers.iter().map(|l| l.name()).collect();
            Error::LayerNotFound(format!("no layer named '{name}'; the layers are {names:?}"))
        })
    }

    /// Indices of the layers feeding layer `index`.
    pub fn inbound(&self, index: usize) -> &[usize] {
        &self.inbound[index]
    }

    /// Shape of one input sample.
    pub fn input_shape(&self) -> Result<Shape3> {
        Ok(self.first()?.expect_resolved()?.input_shape)
    }

    /// Shape of one output sample.
    pub fn output_shape(&self) -> Result<Shape3> {
        Ok(self.last()?.expect_resolved()?.output_shape)
    }

    /// What the last layer emits.
    pub fn output_kind(&self) -> Result<OutputKind> {
        Ok(self.last()?.expect_resolved()?.output)
    }

    /// Checks that the model output can be rescaled (`Output::Rescaled`, `Model.evaluate`): the
    /// last layer must emit potentials.
    pub fn check_rescalable(&self) -> Result<()> {
        let last = self.last()?;
        if last.expect_resolved()?.output == OutputKind::Potentials {
            return Ok(());
        }
        let why = match last.kind() {
            LayerKind::InputData => " (InputData has no potentials)".to_owned(),
            LayerKind::Concat => {
                " (a Concat layer passes activations through even with activations_enabled=False)".to_owned()
            }
            _ => String::new(),
        };
        bail!(
            Architecture,
            "evaluate needs a last layer with activations_enabled=False, whose potentials it rescales; the last \
             layer '{}' ({}) outputs activations{why}: use forward to get its activations",
            last.name,
            last.kind().type_name()
        )
    }

    pub(crate) fn first(&self) -> Result<&Layer> {
        self.layers.first().ok_or_else(|| Error::Architecture("the model has no layers".into()))
    }

    pub(crate) fn last(&self) -> Result<&Layer> {
        self.layers.last().ok_or_else(|| Error::Architecture("the model has no layers".into()))
    }

    /// A default name for a layer of `kind`: the type's base name, or the first free `<base>_<k>`.
    pub fn free_name(&self, kind: LayerKind) -> String {
        let base = kind.default_name();
        let taken: std::collections::HashSet<&str> = self.layers.iter().map(|l| l.name.as_str()).collect();
        if !taken.contains(base) {
            return base.to_owned();
        }
        // At most `layers` names are taken, so a free suffix exists within that many tries.
        (1..=self.layers.len() + 1)
            .map(|k| format!("{base}_{k}"))
            .find(|n| !taken.contains(n.as_str()))
            .expect("one of layers + 1 suffixes is free")
    }

    /// Indices of the layers whose output no other layer reads (the last layer among them).
    pub fn open_ends(&self) -> Vec<usize> {
        let mut read = vec![false; self.layers.len()];
        for inbound in &self.inbound {
            for &j in inbound {
                read[j] = true;
            }
        }
        (0..self.layers.len()).filter(|&i| !read[i]).collect()
    }

    /// Appends `layer`, fed by `inbound` (default: the last layer). Resolves its geometry and checks
    /// every structural rule; on error the model is unchanged. When the default inbound layer
    /// fails in a model with several open branches, the error says so and names them.
    pub fn add(&mut self, layer: Layer, inbound: Option<&[usize]>) -> Result<()> {
        let open = self.open_ends();
        let last = self.layers.last().map(|l| l.name.clone());
        match (self.add_checked(layer, inbound), inbound, last) {
            (Err(Error::Architecture(message)), None, Some(last)) if open.len() > 1 => {
                let names: Vec<String> = open.iter().map(|&i| format!("'{}'", self.layers[i].name)).collect();
                Err(Error::Architecture(format!(
                    "{message}. add() without inbound_layers connects the new layer to the last layer added ('{last}'), \
                     but this model is branched with open ends {}: pass inbound_layers=[...] (a Concat of the \
                     branches takes them all)",
                    names.join(", ")
                )))
            }
            (result, _, _) => result,
        }
    }

    fn add_checked(&mut self, mut layer: Layer, inbound: Option<&[usize]>) -> Result<()> {
        self.plan_changed();
        if layer.name.is_empty() {
            layer.name = self.free_name(layer.kind());
        }
        let name = layer.name.clone();
        let type_name = layer.kind().type_name();
        if self.layers.iter().any(|l| l.name == name) {
            bail!(Architecture, "cannot add layer '{name}': the model already has a layer of that name");
        }
        if self.layers.is_empty() {
            if !layer.kind().is_input() {
                bail!(
                    Architecture,
                    "cannot add layer '{name}' ({type_name}) first: the first layer must be InputData or InputConvolutional"
                );
            }
            if inbound.is_some_and(|i| !i.is_empty()) {
                bail!(Architecture, "input layer '{name}' cannot have inbound layers");
            }
            self.layers.push(layer);
            self.inbound.push(Vec::new());
            return Ok(());
        }
        if layer.kind().is_input() {
            bail!(
                Architecture,
                "cannot add input layer '{name}' ({type_name}): a model has one input layer and it must be first"
            );
        }
        let inbound: Vec<usize> = match inbound {
            None => vec![self.layers.len() - 1],
            Some(i) => i.to_vec(),
        };
        for &i in &inbound {
            if i >= self.layers.len() {
                bail!(Architecture, "layer '{name}': inbound layer index {i} is not in the model");
            }
        }
        let mut unique = inbound.clone();
        unique.sort_unstable();
        unique.dedup();
        if unique.len() != inbound.len() {
            bail!(Architecture, "layer '{name}': an inbound layer is listed twice");
        }
        if layer.kind() == LayerKind::Concat {
            if inbound.len() < 2 {
                bail!(Architecture, "Concat layer '{name}' needs at least 2 inbound layers, got {}", inbound.len());
            }
        } else if inbound.len() != 1 {
            bail!(Architecture, "layer '{name}' ({type_name}) takes exactly one inbound layer, got {}", inbound.len());
        }
        let mut input_max = 0;
        let mut shape: Option<Shape3> = None;
        for &i in &inbound {
            let source = &self.layers[i];
            let r = source.expect_resolved()?;
            match r.output {
                OutputKind::Potentials => bail!(
                    Architecture,
                    "layer '{name}' cannot take the output of layer '{}': that layer has activations \
                     disabled, so it emits potentials and must be the last layer",
                    source.name
                ),
                OutputKind::Activations { max } => input_max = input_max.max(max),
            }
            let s = r.output_shape;
            shape = Some(match shape {
                None => s,
                Some(prev) if (prev.height, prev.width) == (s.height, s.width) => {
                    Shape3::new(s.height, s.width, prev.channels + s.channels)
                }
                Some(prev) => bail!(
                    Architecture,
                    "Concat layer '{name}': inbound layer '{}' has output {s}, which does not match \
                     the height and width of the previous inbound layers {prev}",
                    source.name
                ),
            });
        }
        layer.resolve(shape.expect("at least one inbound layer"), input_max)?;
        self.layers.push(layer);
        self.inbound.push(inbound);
        Ok(())
    }

    /// Removes and returns the last layer.
    pub fn pop_layer(&mut self) -> Result<Layer> {
        self.plan_changed();
        self.inbound.pop();
        self.layers.pop().ok_or_else(|| Error::Architecture("cannot pop a layer: the model has no layers".into()))
    }

    /// Indices of the layers the output of layer `target` depends on, in order (the order
    /// [`crate::executor::run_sample`] runs them in).
    pub fn needed_layers(&self, target: usize) -> Vec<usize> {
        let mut needed = vec![false; self.layers.len()];
        needed[target] = true;
        for i in (0..=target).rev() {
            if needed[i] {
                for &j in &self.inbound[i] {
                    needed[j] = true;
                }
            }
        }
        (0..self.layers.len()).filter(|&i| needed[i]).collect()
    }

    /// The layer at `index` for a learning step, which changes weights and learning state only;
    /// the plan is kept, so the caller (`fit`, which holds the plan out of the cache) keeps the
    /// plan's packed copy of those weights equal to them. Panics when `index` is out of range.
    pub(crate) fn layer_for_learning(&mut self, index: usize) -> &mut Layer {
        &mut self.layers[index]
    }
}
