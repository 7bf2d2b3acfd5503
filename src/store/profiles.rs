//! Security profiles and their target attachments.

use super::{Store, StoreError, tags_json};
use rusqlite::{OptionalExtension, params};
use thingward_models::profile::{SecurityProfile, Target};

impl Store {
    /// Inserts a new profile; returns false (and changes nothing) when the name is taken.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) fn profile_insert(
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

    /// The profile called `name`.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) fn profile_get(&self, name: &str) -> Result<Option<SecurityProfile>, StoreError> {
        self.with(|c| {
            let body: Option<String> = c
                .query_row(
                    "SELECT body FROM security_profiles WHERE name = ?1",
                    [name],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
        })
    }

    /// Read-modify-write of one profile under the store lock, so concurrent updates with
    /// `expectedVersion` cannot both win. `f` returns the new profile or refuses with its error.
    /// Returns None when there is no such profile.
    ///
    /// # Errors
    /// `f`'s error, or storage failures.
    pub(crate) fn profile_update<E: From<StoreError>>(
        &self,
        name: &str,
        f: impl FnOnce(SecurityProfile) -> Result<SecurityProfile, E>,
    ) -> Result<Option<SecurityProfile>, E> {
        self.with(|c| {
            let tx = c.transaction()?;
            let body: Option<String> = tx
                .query_row(
                    "SELECT body FROM security_profiles WHERE name = ?1",
                    [name],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(body) = body else {
                return Ok(Ok(None));
            };
            let current: SecurityProfile = serde_json::from_str(&body)?;
            let updated = match f(current) {
                Ok(p) => p,
                Err(e) => return Ok(Err(e)),
            };
            tx.execute(
                "UPDATE security_profiles SET body = ?2 WHERE name = ?1",
                params![name, serde_json::to_string(&updated)?],
            )?;
            tx.commit()?;
            Ok(Ok(Some(updated)))
        })
        .map_err(E::from)?
    }

    /// Deletes a profile and its attachments; returns the deleted profile.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) fn profile_delete(&self, name: &str) -> Result<Option<SecurityProfile>, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let body: Option<String> = tx
                .query_row(
                    "SELECT body FROM security_profiles WHERE name = ?1",
                    [name],
                    |r| r.get(0),
                )
                .optional()?;
            tx.execute("DELETE FROM security_profiles WHERE name = ?1", [name])?;
            tx.execute("DELETE FROM profile_targets WHERE profile = ?1", [name])?;
            tx.commit()?;
            Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
        })
    }

    /// Every profile, by name.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) fn profiles_all(&self) -> Result<Vec<SecurityProfile>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT body FROM security_profiles ORDER BY name")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for body in rows {
                out.push(serde_json::from_str(&body?)?);
            }
            Ok(out)
        })
    }

    /// Attaches a profile to a target; returns false when it was already attached.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) fn target_attach(&self, profile: &str, target: &Target) -> Result<bool, StoreError> {
        self.with(|c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO profile_targets (profile, target) VALUES (?1, ?2)",
                params![profile, target.resource()],
            )?;
            Ok(n == 1)
        })
    }

    /// Detaches; returns false when there was no such attachment.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) fn target_detach(&self, profile: &str, target: &Target) -> Result<bool, StoreError> {
        self.with(|c| {
            let n = c.execute(
                "DELETE FROM profile_targets WHERE profile = ?1 AND target = ?2",
                params![profile, target.resource()],
            )?;
            Ok(n == 1)
        })
    }

    /// Every (profile, target) attachment.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) fn attachments_all(&self) -> Result<Vec<(String, Target)>, StoreError> {
        self.with(|c| {
            let mut stmt =
                c.prepare("SELECT profile, target FROM profile_targets ORDER BY profile, target")?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
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
