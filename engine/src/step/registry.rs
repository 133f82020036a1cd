//! The step types a plan may use, by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::step::StepType;
use crate::step::schema::StepSchema;

/// Maps `type` names to step types. The CLI fills it with the built-in types; a library
/// user may add their own with [`StepRegistry::register`].
#[derive(Clone, Default)]
pub struct StepRegistry {
    types: BTreeMap<&'static str, Arc<dyn StepType>>,
}

impl StepRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a step type under its schema's name.
    pub fn register(&mut self, step: impl StepType + 'static) -> &mut Self {
        let step: Arc<dyn StepType> = Arc::new(step);
        self.types.insert(step.schema().name, step);
        self
    }

    /// The step type named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn StepType>> {
        self.types.get(name)
    }

    /// Every schema, sorted by name.
    pub fn schemas(&self) -> impl Iterator<Item = &StepSchema> {
        self.types.values().map(|t| t.schema())
    }

    /// Every step type, sorted by name.
    pub fn types(&self) -> impl Iterator<Item = &Arc<dyn StepType>> {
        self.types.values()
    }

    /// Every type name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.types.keys().copied()
    }
}

impl std::fmt::Debug for StepRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.types.keys()).finish()
    }
}
