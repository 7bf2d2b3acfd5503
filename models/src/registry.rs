//! What the rest of thingward needs to know about an account's registry: the type of each custom
//! metric and the topic filters of each dimension. Behavior validation
//! ([`crate::behavior::validate_behaviors`]) and profile compilation (`thingward-scorer`) both
//! ask it; the service answers from one snapshot of its store.

use crate::metric::CustomMetricType;

/// Lookups of custom metrics and dimensions by name.
pub trait Registry {
    /// The type of the custom metric `name`, or None when no such custom metric exists.
    fn custom_metric_type(&self, name: &str) -> Option<CustomMetricType>;

    /// The topic filters (`stringValues`) of the `TOPIC_FILTER` dimension `name`, or None when
    /// no such dimension exists.
    fn dimension_filters(&self, name: &str) -> Option<Vec<String>>;

    /// Whether a dimension of this name exists.
    fn dimension_exists(&self, name: &str) -> bool {
        self.dimension_filters(name).is_some()
    }
}

/// A function from a custom metric's name to its type is a registry without dimensions: what
/// decoding a report or a batch needs, and the shape tests write their fixtures in.
impl<F> Registry for F
where
    F: Fn(&str) -> Option<CustomMetricType>,
{
    fn custom_metric_type(&self, name: &str) -> Option<CustomMetricType> {
        self(name)
    }

    fn dimension_filters(&self, _name: &str) -> Option<Vec<String>> {
        None
    }
}
