//! [`crate::RegistryStore`] on SQLite.

use super::{SqliteStore, tags_json};
use crate::StoreError;
use crate::registry::*;
use rusqlite::{OptionalExtension, Row, params};
use std::collections::BTreeMap;
use thingward_models::CustomMetricType;
use thingward_models::time::EpochMillis;

fn custom_metric_row(r: &Row<'_>) -> rusqlite::Result<(CustomMetricRecord, String)> {
    let type_name: String = r.get("metric_type")?;
    Ok((
        CustomMetricRecord {
            name: r.get("name")?,
            metric_type: CustomMetricType::Number,
            display_name: r.get("display_name")?,
            client_request_token: r.get("client_request_token")?,
            creation_ms: r.get("creation_ms")?,
            modified_ms: r.get("modified_ms")?,
        },
        type_name,
    ))
}

fn with_type((mut rec, type_name): (CustomMetricRecord, String)) -> CustomMetricRecord {
    // Stored types were written from CustomMetricType::as_str, so they parse.
    rec.metric_type = CustomMetricType::parse(&type_name).unwrap_or(CustomMetricType::Number);
    rec
}

const CUSTOM_METRIC_COLUMNS: &str =
    "name, metric_type, display_name, client_request_token, creation_ms, modified_ms";

fn dimension_row(r: &Row<'_>) -> rusqlite::Result<(DimensionRecord, String)> {
    let values: String = r.get("string_values")?;
    Ok((
        DimensionRecord {
            name: r.get("name")?,
            string_values: Vec::new(),
            client_request_token: r.get("client_request_token")?,
            creation_ms: r.get("creation_ms")?,
            modified_ms: r.get("modified_ms")?,
        },
        values,
    ))
}

fn with_values(
    (mut rec, values): (DimensionRecord, String),
) -> Result<DimensionRecord, StoreError> {
    rec.string_values = serde_json::from_str(&values)?;
    Ok(rec)
}

const DIMENSION_COLUMNS: &str =
    "name, string_values, client_request_token, creation_ms, modified_ms";

fn thing_row(r: &Row<'_>) -> rusqlite::Result<(ThingRecord, String)> {
    Ok((
        ThingRecord {
            name: r.get("name")?,
            thing_id: r.get("thing_id")?,
            thing_type_name: r.get("thing_type_name")?,
            attributes: BTreeMap::new(),
            version: r.get("version")?,
        },
        r.get("attributes")?,
    ))
}

fn with_attributes((mut rec, attrs): (ThingRecord, String)) -> Result<ThingRecord, StoreError> {
    rec.attributes = serde_json::from_str(&attrs)?;
    Ok(rec)
}

const THING_COLUMNS: &str = "name, thing_id, thing_type_name, attributes, version";

fn group_row(r: &Row<'_>) -> rusqlite::Result<(ThingGroupRecord, String)> {
    Ok((
        ThingGroupRecord {
            name: r.get("name")?,
            group_id: r.get("group_id")?,
            parent: r.get("parent")?,
            description: r.get("description")?,
            attributes: BTreeMap::new(),
            creation_ms: r.get("creation_ms")?,
            version: r.get("version")?,
        },
        r.get("attributes")?,
    ))
}

fn group_with_attributes(
    (mut rec, attrs): (ThingGroupRecord, String),
) -> Result<ThingGroupRecord, StoreError> {
    rec.attributes = serde_json::from_str(&attrs)?;
    Ok(rec)
}

const GROUP_COLUMNS: &str = "name, group_id, parent, description, attributes, creation_ms, version";

impl RegistryStore for SqliteStore {
    fn custom_metric_insert(
        &self,
        rec: &CustomMetricRecord,
        tags: Option<&serde_json::Value>,
    ) -> Result<(CustomMetricRecord, bool), StoreError> {
        self.with(|c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO custom_metrics (name, metric_type, display_name, client_request_token, creation_ms, modified_ms, tags) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![rec.name, rec.metric_type.as_str(), rec.display_name, rec.client_request_token, rec.creation_ms, rec.modified_ms, tags_json(tags)],
            )?;
            let stored = c.query_row(
                &format!("SELECT {CUSTOM_METRIC_COLUMNS} FROM custom_metrics WHERE name = ?1"),
                [&rec.name],
                custom_metric_row,
            )?;
            Ok((with_type(stored), n == 1))
        })
    }

    fn custom_metric_get(&self, name: &str) -> Result<Option<CustomMetricRecord>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                &format!("SELECT {CUSTOM_METRIC_COLUMNS} FROM custom_metrics WHERE name = ?1"),
                [name],
                custom_metric_row,
            )
            .optional()?
            .map(with_type))
        })
    }

    fn custom_metric_rename(
        &self,
        name: &str,
        display_name: &str,
        now: EpochMillis,
    ) -> Result<Option<CustomMetricRecord>, StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE custom_metrics SET display_name = ?2, modified_ms = ?3 WHERE name = ?1",
                params![name, display_name, now],
            )?;
            Ok(c.query_row(
                &format!("SELECT {CUSTOM_METRIC_COLUMNS} FROM custom_metrics WHERE name = ?1"),
                [name],
                custom_metric_row,
            )
            .optional()?
            .map(with_type))
        })
    }

    fn custom_metric_delete(&self, name: &str) -> Result<bool, StoreError> {
        self.with(|c| Ok(c.execute("DELETE FROM custom_metrics WHERE name = ?1", [name])? == 1))
    }

    fn custom_metrics_all(&self) -> Result<Vec<CustomMetricRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {CUSTOM_METRIC_COLUMNS} FROM custom_metrics ORDER BY name"
            ))?;
            let rows = stmt.query_map([], custom_metric_row)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(with_type(row?));
            }
            Ok(out)
        })
    }

    fn dimension_insert(
        &self,
        rec: &DimensionRecord,
        tags: Option<&serde_json::Value>,
    ) -> Result<(DimensionRecord, bool), StoreError> {
        self.with(|c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO dimensions (name, dimension_type, string_values, client_request_token, creation_ms, modified_ms, tags) VALUES (?1, 'TOPIC_FILTER', ?2, ?3, ?4, ?5, ?6)",
                params![rec.name, serde_json::to_string(&rec.string_values)?, rec.client_request_token, rec.creation_ms, rec.modified_ms, tags_json(tags)],
            )?;
            let stored = c.query_row(
                &format!("SELECT {DIMENSION_COLUMNS} FROM dimensions WHERE name = ?1"),
                [&rec.name],
                dimension_row,
            )?;
            Ok((with_values(stored)?, n == 1))
        })
    }

    fn dimension_get(&self, name: &str) -> Result<Option<DimensionRecord>, StoreError> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {DIMENSION_COLUMNS} FROM dimensions WHERE name = ?1"),
                [name],
                dimension_row,
            )
            .optional()?
            .map(with_values)
            .transpose()
        })
    }

    fn dimension_set_values(
        &self,
        name: &str,
        values: &[String],
        now: EpochMillis,
    ) -> Result<Option<DimensionRecord>, StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE dimensions SET string_values = ?2, modified_ms = ?3 WHERE name = ?1",
                params![name, serde_json::to_string(values)?, now],
            )?;
            c.query_row(
                &format!("SELECT {DIMENSION_COLUMNS} FROM dimensions WHERE name = ?1"),
                [name],
                dimension_row,
            )
            .optional()?
            .map(with_values)
            .transpose()
        })
    }

    fn dimension_delete(&self, name: &str) -> Result<bool, StoreError> {
        self.with(|c| Ok(c.execute("DELETE FROM dimensions WHERE name = ?1", [name])? == 1))
    }

    fn dimensions_all(&self) -> Result<Vec<DimensionRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {DIMENSION_COLUMNS} FROM dimensions ORDER BY name"
            ))?;
            let rows = stmt.query_map([], dimension_row)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(with_values(row?)?);
            }
            Ok(out)
        })
    }

    fn thing_insert(&self, rec: &ThingRecord) -> Result<(ThingRecord, bool), StoreError> {
        self.with(|c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO things (name, thing_id, thing_type_name, attributes, version) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![rec.name, rec.thing_id, rec.thing_type_name, serde_json::to_string(&rec.attributes)?, rec.version],
            )?;
            let stored = c.query_row(
                &format!("SELECT {THING_COLUMNS} FROM things WHERE name = ?1"),
                [&rec.name],
                thing_row,
            )?;
            Ok((with_attributes(stored)?, n == 1))
        })
    }

    fn thing_get(&self, name: &str) -> Result<Option<ThingRecord>, StoreError> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {THING_COLUMNS} FROM things WHERE name = ?1"),
                [name],
                thing_row,
            )
            .optional()?
            .map(with_attributes)
            .transpose()
        })
    }

    fn thing_delete(&self, name: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let n = tx.execute("DELETE FROM things WHERE name = ?1", [name])?;
            tx.execute(
                "DELETE FROM thing_group_members WHERE thing_name = ?1",
                [name],
            )?;
            tx.commit()?;
            Ok(n == 1)
        })
    }

    fn things_all(&self) -> Result<Vec<ThingRecord>, StoreError> {
        self.with(|c| {
            let mut stmt =
                c.prepare(&format!("SELECT {THING_COLUMNS} FROM things ORDER BY name"))?;
            let rows = stmt.query_map([], thing_row)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(with_attributes(row?)?);
            }
            Ok(out)
        })
    }

    fn group_insert(
        &self,
        rec: &ThingGroupRecord,
        tags: Option<&serde_json::Value>,
    ) -> Result<(ThingGroupRecord, bool), StoreError> {
        let _ = tags;
        self.with(|c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO thing_groups (name, group_id, parent, description, attributes, creation_ms, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![rec.name, rec.group_id, rec.parent, rec.description, serde_json::to_string(&rec.attributes)?, rec.creation_ms, rec.version],
            )?;
            let stored = c.query_row(
                &format!("SELECT {GROUP_COLUMNS} FROM thing_groups WHERE name = ?1"),
                [&rec.name],
                group_row,
            )?;
            Ok((group_with_attributes(stored)?, n == 1))
        })
    }

    fn group_get(&self, name: &str) -> Result<Option<ThingGroupRecord>, StoreError> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {GROUP_COLUMNS} FROM thing_groups WHERE name = ?1"),
                [name],
                group_row,
            )
            .optional()?
            .map(group_with_attributes)
            .transpose()
        })
    }

    fn groups_all(&self) -> Result<Vec<ThingGroupRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {GROUP_COLUMNS} FROM thing_groups ORDER BY name"
            ))?;
            let rows = stmt.query_map([], group_row)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(group_with_attributes(row?)?);
            }
            Ok(out)
        })
    }

    fn group_delete(&self, name: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let n = tx.execute("DELETE FROM thing_groups WHERE name = ?1", [name])?;
            tx.execute(
                "DELETE FROM thing_group_members WHERE group_name = ?1",
                [name],
            )?;
            // Profiles attached to the group lose that target; child groups become roots.
            tx.execute(
                "DELETE FROM profile_targets WHERE target = ?1",
                [format!("thinggroup/{name}")],
            )?;
            tx.execute(
                "UPDATE thing_groups SET parent = NULL WHERE parent = ?1",
                [name],
            )?;
            tx.commit()?;
            Ok(n == 1)
        })
    }

    fn group_membership(&self, group: &str, thing: &str, member: bool) -> Result<(), StoreError> {
        self.with(|c| {
            if member {
                c.execute(
                    "INSERT OR IGNORE INTO thing_group_members (group_name, thing_name) VALUES (?1, ?2)",
                    params![group, thing],
                )?;
            } else {
                c.execute(
                    "DELETE FROM thing_group_members WHERE group_name = ?1 AND thing_name = ?2",
                    params![group, thing],
                )?;
            }
            Ok(())
        })
    }

    fn memberships_all(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT group_name, thing_name FROM thing_group_members ORDER BY group_name, thing_name",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get("group_name")?, r.get("thing_name")?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }
}
