//! A snapshot of the custom metrics and dimensions, for validating behaviors and compiling rules.

use std::collections::HashMap;
use thingward_models::CustomMetricType;
use thingward_models::registry::Registry;
use thingward_store::{Store, StoreError};

/// Custom metric types and dimension filters by name.
#[derive(Debug, Clone, Default)]
pub(crate) struct RegistryView {
    custom: HashMap<String, CustomMetricType>,
    dimensions: HashMap<String, Vec<String>>,
}

impl RegistryView {
    /// Reads the registry.
    ///
    /// # Errors
    /// Store failures.
    pub(crate) fn load(store: &dyn Store) -> Result<Self, StoreError> {
        Ok(Self {
            custom: store
                .custom_metrics_all()?
                .into_iter()
                .map(|m| (m.name, m.metric_type))
                .collect(),
            dimensions: store
                .dimensions_all()?
                .into_iter()
                .map(|d| (d.name, d.string_values))
                .collect(),
        })
    }

    /// The type of a custom metric.
    pub(crate) fn custom_type(&self, name: &str) -> Option<CustomMetricType> {
        self.custom.get(name).copied()
    }
}

/// The one registry lookup of the service: behavior validation, profile compilation and the
/// decoding of reports and batches all read it.
impl Registry for RegistryView {
    fn custom_metric_type(&self, name: &str) -> Option<CustomMetricType> {
        self.custom_type(name)
    }

    fn dimension_filters(&self, name: &str) -> Option<Vec<String>> {
        self.dimensions.get(name).cloned()
    }

    fn dimension_exists(&self, name: &str) -> bool {
        self.dimensions.contains_key(name)
    }
}
