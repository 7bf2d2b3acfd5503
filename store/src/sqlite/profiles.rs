//! [`crate::ProfileStore`] on SQLite.

use super::{SqliteStore, tags_json};
use crate::StoreError;
use crate::profiles::*;
use rusqlite::{OptionalExtension, params};
use thingward_models::profile::{SecurityProfile, Target};

impl ProfileStore for SqliteStore {
    fn profile_update_with(
        &self,
        name: &str,
        f: &mut dyn FnMut(SecurityProfile) -> Option<SecurityProfile>,
    ) -> Result<Option<SecurityProfile>, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let body: Option<String> = tx
                .query_row(
                    "SELECT body FROM security_profiles WHERE name = ?1",
                    [name],
                    |r| r.get("body"),
                )
                .optional()?;
            let Some(body) = body else {
                return Ok(None);
            };
            let current: SecurityProfile = serde_json::from_str(&body)?;
            let Some(updated) = f(current) else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE security_profiles SET body = ?2 WHERE name = ?1",
                params![name, serde_json::to_string(&updated)?],
            )?;
            tx.commit()?;
            Ok(Some(updated))
        })
    }

    fn profile_insert(
        &self,
        profile: &SecurityProfile,
        tags: Option<&serde_json::Value>,
    ) -> Result<bool, StoreError> {
        let body = serde_json::to_string(profile)?;
        self.with(|c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO security_profiles (name, body, tags) VALUES (?1, ?2, ?3)",
                params![profile.security_profile_name, body, tags_json(tags)],
            )?;
            Ok(n == 1)
        })
    }

    fn profile_get(&self, name: &str) -> Result<Option<SecurityProfile>, StoreError> {
        self.with(|c| {
            let body: Option<String> = c
                .query_row(
                    "SELECT body FROM security_profiles WHERE name = ?1",
                    [name],
                    |r| r.get("body"),
                )
                .optional()?;
            Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
        })
    }

    fn profile_delete(&self, name: &str) -> Result<Option<SecurityProfile>, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let body: Option<String> = tx
                .query_row(
                    "SELECT body FROM security_profiles WHERE name = ?1",
                    [name],
                    |r| r.get("body"),
                )
                .optional()?;
            tx.execute("DELETE FROM security_profiles WHERE name = ?1", [name])?;
            tx.execute("DELETE FROM profile_targets WHERE profile = ?1", [name])?;
            tx.commit()?;
            Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
        })
    }

    fn profiles_all(&self) -> Result<Vec<SecurityProfile>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT body FROM security_profiles ORDER BY name")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>("body"))?;
            let mut out = Vec::new();
            for body in rows {
                out.push(serde_json::from_str(&body?)?);
            }
            Ok(out)
        })
    }

    fn target_attach(&self, profile: &str, target: &Target) -> Result<bool, StoreError> {
        self.with(|c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO profile_targets (profile, target) VALUES (?1, ?2)",
                params![profile, target.resource()],
            )?;
            Ok(n == 1)
        })
    }

    fn target_detach(&self, profile: &str, target: &Target) -> Result<bool, StoreError> {
        self.with(|c| {
            let n = c.execute(
                "DELETE FROM profile_targets WHERE profile = ?1 AND target = ?2",
                params![profile, target.resource()],
            )?;
            Ok(n == 1)
        })
    }

    fn attachments_all(&self) -> Result<Vec<(String, Target)>, StoreError> {
        self.with(|c| {
            let mut stmt =
                c.prepare("SELECT profile, target FROM profile_targets ORDER BY profile, target")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>("profile")?,
                    r.get::<_, String>("target")?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (profile, resource) = row?;
                // Stored resources were produced by Target::resource, so they parse.
                if let Ok(t) = Target::parse_arn(&format!("arn:aws:iot:any:any:{resource}")) {
                    out.push((profile, t));
                }
            }
            Ok(out)
        })
    }
}
