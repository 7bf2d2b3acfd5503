//! The registry: custom metrics, dimensions, things and thing groups.

use crate::StoreError;
use std::collections::BTreeMap;
use thingward_models::CustomMetricType;
use thingward_models::time::EpochMillis;

/// A custom metric definition.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomMetricRecord {
    pub name: String,
    pub metric_type: CustomMetricType,
    pub display_name: Option<String>,
    pub client_request_token: Option<String>,
    pub creation_ms: EpochMillis,
    pub modified_ms: EpochMillis,
}

/// A `TOPIC_FILTER` dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct DimensionRecord {
    pub name: String,
    pub string_values: Vec<String>,
    pub client_request_token: Option<String>,
    pub creation_ms: EpochMillis,
    pub modified_ms: EpochMillis,
}

/// A registered thing.
#[derive(Debug, Clone, PartialEq)]
pub struct ThingRecord {
    pub name: String,
    pub thing_id: String,
    pub thing_type_name: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub version: i64,
}

/// A thing group.
#[derive(Debug, Clone, PartialEq)]
pub struct ThingGroupRecord {
    pub name: String,
    pub group_id: String,
    pub parent: Option<String>,
    pub description: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub creation_ms: EpochMillis,
    pub version: i64,
}

/// The registry part of the store interface ([`crate::Store`]); [`crate::SqliteStore`] implements it.
pub trait RegistryStore {
    /// Inserts a custom metric unless the name exists; returns the stored record either way and
    /// whether it was inserted now.
    ///
    /// # Errors
    /// Storage failures.
    fn custom_metric_insert(
        &self,
        rec: &CustomMetricRecord,
        tags: Option<&serde_json::Value>,
    ) -> Result<(CustomMetricRecord, bool), StoreError>;

    /// The custom metric called `name`.
    ///
    /// # Errors
    /// Storage failures.
    fn custom_metric_get(&self, name: &str) -> Result<Option<CustomMetricRecord>, StoreError>;

    /// Sets a custom metric's display name; returns the updated record.
    ///
    /// # Errors
    /// Storage failures.
    fn custom_metric_rename(
        &self,
        name: &str,
        display_name: &str,
        now: EpochMillis,
    ) -> Result<Option<CustomMetricRecord>, StoreError>;

    /// Deletes a custom metric; returns whether it existed.
    ///
    /// # Errors
    /// Storage failures.
    fn custom_metric_delete(&self, name: &str) -> Result<bool, StoreError>;

    /// Every custom metric, by name.
    ///
    /// # Errors
    /// Storage failures.
    fn custom_metrics_all(&self) -> Result<Vec<CustomMetricRecord>, StoreError>;

    /// Inserts a dimension unless the name exists; returns the stored record and whether it
    /// was inserted now.
    ///
    /// # Errors
    /// Storage failures.
    fn dimension_insert(
        &self,
        rec: &DimensionRecord,
        tags: Option<&serde_json::Value>,
    ) -> Result<(DimensionRecord, bool), StoreError>;

    /// The dimension called `name`.
    ///
    /// # Errors
    /// Storage failures.
    fn dimension_get(&self, name: &str) -> Result<Option<DimensionRecord>, StoreError>;

    /// Replaces a dimension's values; returns the updated record.
    ///
    /// # Errors
    /// Storage failures.
    fn dimension_set_values(
        &self,
        name: &str,
        values: &[String],
        now: EpochMillis,
    ) -> Result<Option<DimensionRecord>, StoreError>;

    /// Deletes a dimension; returns whether it existed.
    ///
    /// # Errors
    /// Storage failures.
    fn dimension_delete(&self, name: &str) -> Result<bool, StoreError>;

    /// Every dimension, by name.
    ///
    /// # Errors
    /// Storage failures.
    fn dimensions_all(&self) -> Result<Vec<DimensionRecord>, StoreError>;

    /// Inserts a thing unless the name exists; returns the stored record and whether it was
    /// inserted now.
    ///
    /// # Errors
    /// Storage failures.
    fn thing_insert(&self, rec: &ThingRecord) -> Result<(ThingRecord, bool), StoreError>;

    /// The thing called `name`.
    ///
    /// # Errors
    /// Storage failures.
    fn thing_get(&self, name: &str) -> Result<Option<ThingRecord>, StoreError>;

    /// Deletes a thing and its group memberships; returns whether it existed.
    ///
    /// # Errors
    /// Storage failures.
    fn thing_delete(&self, name: &str) -> Result<bool, StoreError>;

    /// Every thing, by name.
    ///
    /// # Errors
    /// Storage failures.
    fn things_all(&self) -> Result<Vec<ThingRecord>, StoreError>;

    /// Inserts a thing group unless the name exists; returns the stored record and whether it
    /// was inserted now.
    ///
    /// # Errors
    /// Storage failures.
    fn group_insert(
        &self,
        rec: &ThingGroupRecord,
        tags: Option<&serde_json::Value>,
    ) -> Result<(ThingGroupRecord, bool), StoreError>;

    /// The thing group called `name`.
    ///
    /// # Errors
    /// Storage failures.
    fn group_get(&self, name: &str) -> Result<Option<ThingGroupRecord>, StoreError>;

    /// Every thing group, by name.
    ///
    /// # Errors
    /// Storage failures.
    fn groups_all(&self) -> Result<Vec<ThingGroupRecord>, StoreError>;

    /// Deletes a thing group, its memberships and the profile attachments to it (its child
    /// groups become top-level groups); returns whether it existed.
    ///
    /// # Errors
    /// Storage failures.
    fn group_delete(&self, name: &str) -> Result<bool, StoreError>;

    /// Adds (`member = true`) or removes a thing from a group.
    ///
    /// # Errors
    /// Storage failures.
    fn group_membership(&self, group: &str, thing: &str, member: bool) -> Result<(), StoreError>;

    /// Every (group, thing) membership.
    ///
    /// # Errors
    /// Storage failures.
    fn memberships_all(&self) -> Result<Vec<(String, String)>, StoreError>;
}
