//! [`crate::CertStore`] on SQLite.

use super::SqliteStore;
use crate::StoreError;
use crate::certs::*;
use rusqlite::{OptionalExtension, Row, params};
use thingward_models::time::EpochMillis;

/// The tables of this module (applied at open; `IF NOT EXISTS`).
pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS certificates (
    cert_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    pem TEXT NOT NULL,
    status TEXT NOT NULL,
    ca_cert_id TEXT,
    auto_registration TEXT,
    created_ms INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS certificates_by_kind ON certificates (kind, created_ms);
CREATE TABLE IF NOT EXISTS cert_status_overrides (
    cert_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    modified_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS crls (
    name TEXT PRIMARY KEY,
    pem TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS policies (
    name TEXT PRIMARY KEY,
    default_version INTEGER NOT NULL,
    next_version INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS policy_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    document TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS policy_targets (
    name TEXT NOT NULL,
    target TEXT NOT NULL,
    PRIMARY KEY (name, target)
);
CREATE INDEX IF NOT EXISTS policy_targets_by_target ON policy_targets (target);
CREATE TABLE IF NOT EXISTS thing_principals (
    thing TEXT NOT NULL,
    principal TEXT NOT NULL,
    PRIMARY KEY (thing, principal)
);
CREATE INDEX IF NOT EXISTS thing_principals_by_principal ON thing_principals (principal);
CREATE TABLE IF NOT EXISTS account_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#;

const LOGGING_KEY: &str = "v2_logging_options";

const CERT_COLUMNS: &str =
    "cert_id, kind, pem, status, ca_cert_id, auto_registration, created_ms, modified_ms";

fn cert_row(r: &Row<'_>) -> rusqlite::Result<CertificateRecord> {
    let kind: String = r.get("kind")?;
    let status: String = r.get("status")?;
    Ok(CertificateRecord {
        cert_id: r.get("cert_id")?,
        kind: if kind == "ca" {
            CertKind::Ca
        } else {
            CertKind::Device
        },
        pem: r.get("pem")?,
        // Written from CertStatus::as_str, so it parses.
        status: CertStatus::parse(&status).unwrap_or(CertStatus::Inactive),
        ca_cert_id: r.get("ca_cert_id")?,
        auto_registration: r.get("auto_registration")?,
        created_ms: r.get("created_ms")?,
        modified_ms: r.get("modified_ms")?,
    })
}

fn crl_row(r: &Row<'_>) -> rusqlite::Result<CrlRecord> {
    Ok(CrlRecord {
        name: r.get("name")?,
        pem: r.get("pem")?,
        created_ms: r.get("created_ms")?,
        modified_ms: r.get("modified_ms")?,
    })
}

fn policy_row(r: &Row<'_>) -> rusqlite::Result<PolicyRecord> {
    Ok(PolicyRecord {
        name: r.get("name")?,
        default_version: r.get("default_version")?,
        created_ms: r.get("created_ms")?,
        modified_ms: r.get("modified_ms")?,
    })
}

fn version_row(r: &Row<'_>) -> rusqlite::Result<PolicyVersionRecord> {
    Ok(PolicyVersionRecord {
        name: r.get("name")?,
        version: r.get("version")?,
        document: r.get("document")?,
        is_default: r.get("is_default")?,
        created_ms: r.get("created_ms")?,
    })
}

const VERSION_SELECT: &str = "SELECT v.name AS name, v.version AS version, v.document AS document, v.version = p.default_version AS is_default, v.created_ms AS created_ms FROM policy_versions v JOIN policies p ON p.name = v.name";

impl CertStore for SqliteStore {
    fn cert_insert(&self, rec: &CertificateRecord) -> Result<bool, StoreError> {
        self.with(|c| {
            let n = c.execute(
                &format!("INSERT OR IGNORE INTO certificates ({CERT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                params![rec.cert_id, rec.kind.as_str(), rec.pem, rec.status.as_str(), rec.ca_cert_id, rec.auto_registration, rec.created_ms, rec.modified_ms],
            )?;
            Ok(n == 1)
        })
    }

    fn certs_insert_many(&self, recs: &[CertificateRecord]) -> Result<usize, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let mut n = 0;
            {
                let mut stmt = tx.prepare_cached(&format!(
                    "INSERT OR IGNORE INTO certificates ({CERT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ))?;
                for rec in recs {
                    n += stmt.execute(params![rec.cert_id, rec.kind.as_str(), rec.pem, rec.status.as_str(), rec.ca_cert_id, rec.auto_registration, rec.created_ms, rec.modified_ms])?;
                }
            }
            tx.commit()?;
            Ok(n)
        })
    }

    fn policies_create_many(
        &self,
        policies: &[(String, String, Vec<String>)],
        now: EpochMillis,
    ) -> Result<usize, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let mut created = 0;
            {
                let mut policy = tx.prepare_cached("INSERT OR IGNORE INTO policies (name, default_version, next_version, created_ms, modified_ms) VALUES (?1, 1, 2, ?2, ?2)")?;
                let mut version = tx.prepare_cached("INSERT INTO policy_versions (name, version, document, created_ms) VALUES (?1, 1, ?2, ?3)")?;
                let mut target = tx.prepare_cached("INSERT OR IGNORE INTO policy_targets (name, target) VALUES (?1, ?2)")?;
                for (name, doc, targets) in policies {
                    if policy.execute(params![name, now])? == 1 {
                        version.execute(params![name, doc, now])?;
                        created += 1;
                    }
                    for t in targets {
                        target.execute(params![name, t])?;
                    }
                }
            }
            tx.commit()?;
            Ok(created)
        })
    }

    fn cert_get(
        &self,
        kind: CertKind,
        cert_id: &str,
    ) -> Result<Option<CertificateRecord>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {CERT_COLUMNS} FROM certificates WHERE cert_id = ?1 AND kind = ?2"
                ),
                params![cert_id, kind.as_str()],
                cert_row,
            )
            .optional()?)
        })
    }

    fn certs_all(&self, kind: CertKind) -> Result<Vec<CertificateRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {CERT_COLUMNS} FROM certificates WHERE kind = ?1 ORDER BY created_ms, cert_id"
            ))?;
            let rows = stmt.query_map([kind.as_str()], cert_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn cert_status_set(
        &self,
        cert_id: &str,
        status: CertStatus,
        now: EpochMillis,
    ) -> Result<StatusTarget, StoreError> {
        self.with(|c| {
            let n = c.execute(
                "UPDATE certificates SET status = ?2, modified_ms = ?3 WHERE cert_id = ?1",
                params![cert_id, status.as_str(), now],
            )?;
            if n > 0 {
                return Ok(StatusTarget::Registered);
            }
            c.execute(
                "INSERT INTO cert_status_overrides (cert_id, status, modified_ms) VALUES (?1, ?2, ?3) ON CONFLICT (cert_id) DO UPDATE SET status = ?2, modified_ms = ?3",
                params![cert_id, status.as_str(), now],
            )?;
            Ok(StatusTarget::Override)
        })
    }

    fn cert_status_overrides(
        &self,
    ) -> Result<std::collections::HashMap<String, CertStatus>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached("SELECT cert_id, status FROM cert_status_overrides")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>("cert_id")?,
                    r.get::<_, String>("status")?,
                ))
            })?;
            let mut out = std::collections::HashMap::new();
            for row in rows {
                let (id, status) = row?;
                if let Some(s) = CertStatus::parse(&status) {
                    out.insert(id, s);
                }
            }
            Ok(out)
        })
    }

    fn ca_auto_registration_set(
        &self,
        cert_id: &str,
        value: &str,
        now: EpochMillis,
    ) -> Result<bool, StoreError> {
        self.with(|c| {
            Ok(c.execute(
                "UPDATE certificates SET auto_registration = ?2, modified_ms = ?3 WHERE cert_id = ?1 AND kind = 'ca'",
                params![cert_id, value, now],
            )? == 1)
        })
    }

    fn cert_delete(&self, kind: CertKind, cert_id: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let n = tx.execute(
                "DELETE FROM certificates WHERE cert_id = ?1 AND kind = ?2",
                params![cert_id, kind.as_str()],
            )?;
            tx.execute(
                "DELETE FROM cert_status_overrides WHERE cert_id = ?1",
                [cert_id],
            )?;
            let like = format!("%cert/{cert_id}");
            tx.execute(
                "DELETE FROM policy_targets WHERE target = ?1 OR target LIKE ?2",
                params![cert_id, like],
            )?;
            tx.execute(
                "DELETE FROM thing_principals WHERE principal = ?1 OR principal LIKE ?2",
                params![cert_id, like],
            )?;
            tx.commit()?;
            Ok(n == 1)
        })
    }

    fn crl_put(&self, name: &str, pem: &str, now: EpochMillis) -> Result<bool, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let existed = tx
                .query_row("SELECT 1 FROM crls WHERE name = ?1", [name], |_| Ok(()))
                .optional()?
                .is_some();
            tx.execute(
                "INSERT INTO crls (name, pem, created_ms, modified_ms) VALUES (?1, ?2, ?3, ?3) ON CONFLICT (name) DO UPDATE SET pem = ?2, modified_ms = ?3",
                params![name, pem, now],
            )?;
            tx.commit()?;
            Ok(!existed)
        })
    }

    fn crl_get(&self, name: &str) -> Result<Option<CrlRecord>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT name, pem, created_ms, modified_ms FROM crls WHERE name = ?1",
                [name],
                crl_row,
            )
            .optional()?)
        })
    }

    fn crls_all(&self) -> Result<Vec<CrlRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT name, pem, created_ms, modified_ms FROM crls ORDER BY name",
            )?;
            let rows = stmt.query_map([], crl_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn crl_delete(&self, name: &str) -> Result<bool, StoreError> {
        self.with(|c| Ok(c.execute("DELETE FROM crls WHERE name = ?1", [name])? == 1))
    }

    fn policy_create(
        &self,
        name: &str,
        document: &str,
        now: EpochMillis,
    ) -> Result<bool, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let n = tx.execute(
                "INSERT OR IGNORE INTO policies (name, default_version, next_version, created_ms, modified_ms) VALUES (?1, 1, 2, ?2, ?2)",
                params![name, now],
            )?;
            if n == 1 {
                tx.execute(
                    "INSERT INTO policy_versions (name, version, document, created_ms) VALUES (?1, 1, ?2, ?3)",
                    params![name, document, now],
                )?;
            }
            tx.commit()?;
            Ok(n == 1)
        })
    }

    fn policy_get(&self, name: &str) -> Result<Option<PolicyRecord>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT name, default_version, created_ms, modified_ms FROM policies WHERE name = ?1",
                [name],
                policy_row,
            )
            .optional()?)
        })
    }

    fn policies_all(&self) -> Result<Vec<PolicyRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT name, default_version, created_ms, modified_ms FROM policies ORDER BY name",
            )?;
            let rows = stmt.query_map([], policy_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn policy_version_create(
        &self,
        name: &str,
        document: &str,
        set_default: bool,
        now: EpochMillis,
    ) -> Result<PolicyVersionRecord, PolicyVersionError> {
        let version = self.with(|c| {
            let tx = c.transaction()?;
            let next: Option<i64> = tx
                .query_row(
                    "SELECT next_version FROM policies WHERE name = ?1",
                    [name],
                    |r| r.get("next_version"),
                )
                .optional()?;
            let Some(next) = next else {
                return Ok(Err(PolicyVersionError::NotFound));
            };
            let count: i64 = tx.query_row(
                "SELECT COUNT(*) AS n FROM policy_versions WHERE name = ?1",
                [name],
                |r| r.get("n"),
            )?;
            if count >= MAX_POLICY_VERSIONS {
                return Ok(Err(PolicyVersionError::TooMany));
            }
            tx.execute(
                "INSERT INTO policy_versions (name, version, document, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![name, next, document, now],
            )?;
            tx.execute(
                "UPDATE policies SET next_version = ?2 + 1, modified_ms = ?3 WHERE name = ?1",
                params![name, next, now],
            )?;
            if set_default {
                tx.execute(
                    "UPDATE policies SET default_version = ?2 WHERE name = ?1",
                    params![name, next],
                )?;
            }
            tx.commit()?;
            Ok(Ok(next))
        })??;
        self.policy_version_get(name, version)?
            .ok_or(PolicyVersionError::NotFound)
    }

    fn policy_version_get(
        &self,
        name: &str,
        version: i64,
    ) -> Result<Option<PolicyVersionRecord>, StoreError> {
        self.with(|c| {
            Ok(c.query_row(
                &format!("{VERSION_SELECT} WHERE v.name = ?1 AND v.version = ?2"),
                params![name, version],
                version_row,
            )
            .optional()?)
        })
    }

    fn policy_versions(&self, name: &str) -> Result<Vec<PolicyVersionRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "{VERSION_SELECT} WHERE v.name = ?1 ORDER BY v.version DESC"
            ))?;
            let rows = stmt.query_map([name], version_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn policy_defaults_all(&self) -> Result<Vec<PolicyVersionRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "{VERSION_SELECT} WHERE v.version = p.default_version ORDER BY v.name"
            ))?;
            let rows = stmt.query_map([], version_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn policy_default_set(
        &self,
        name: &str,
        version: i64,
        now: EpochMillis,
    ) -> Result<bool, StoreError> {
        self.with(|c| {
            Ok(c.execute(
                "UPDATE policies SET default_version = ?2, modified_ms = ?3 WHERE name = ?1 AND EXISTS (SELECT 1 FROM policy_versions WHERE name = ?1 AND version = ?2)",
                params![name, version, now],
            )? == 1)
        })
    }

    fn policy_version_delete(&self, name: &str, version: i64) -> Result<bool, StoreError> {
        self.with(|c| {
            Ok(c.execute(
                "DELETE FROM policy_versions WHERE name = ?1 AND version = ?2 AND version <> (SELECT default_version FROM policies WHERE name = ?1)",
                params![name, version],
            )? == 1)
        })
    }

    fn policy_delete(&self, name: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let n = tx.execute("DELETE FROM policies WHERE name = ?1", [name])?;
            tx.execute("DELETE FROM policy_versions WHERE name = ?1", [name])?;
            tx.execute("DELETE FROM policy_targets WHERE name = ?1", [name])?;
            tx.commit()?;
            Ok(n == 1)
        })
    }

    fn policy_target_set(
        &self,
        name: &str,
        target: &str,
        attached: bool,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            if attached {
                c.execute(
                    "INSERT OR IGNORE INTO policy_targets (name, target) VALUES (?1, ?2)",
                    params![name, target],
                )?;
            } else {
                c.execute(
                    "DELETE FROM policy_targets WHERE name = ?1 AND target = ?2",
                    params![name, target],
                )?;
            }
            Ok(())
        })
    }

    fn policy_targets_all(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|c| {
            let mut stmt =
                c.prepare_cached("SELECT name, target FROM policy_targets ORDER BY name, target")?;
            let rows = stmt.query_map([], |r| Ok((r.get("name")?, r.get("target")?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn thing_principal_set(
        &self,
        thing: &str,
        principal: &str,
        attached: bool,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            if attached {
                c.execute(
                    "INSERT OR IGNORE INTO thing_principals (thing, principal) VALUES (?1, ?2)",
                    params![thing, principal],
                )?;
            } else {
                c.execute(
                    "DELETE FROM thing_principals WHERE thing = ?1 AND principal = ?2",
                    params![thing, principal],
                )?;
            }
            Ok(())
        })
    }

    fn thing_principals(&self, thing: &str) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT principal FROM thing_principals WHERE thing = ?1 ORDER BY principal",
            )?;
            let rows = stmt.query_map([thing], |r| r.get("principal"))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn thing_certificates(&self, thing: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .thing_principals(thing)?
            .iter()
            .filter_map(|p| principal_cert_id(p).map(str::to_lowercase))
            .collect())
    }

    fn thing_principals_all(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT thing, principal FROM thing_principals ORDER BY thing, principal",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get("thing")?, r.get("principal")?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn logging_get(&self) -> Result<Option<LoggingOptions>, StoreError> {
        self.account_setting_get(LOGGING_KEY)
    }

    fn logging_set(&self, options: &LoggingOptions) -> Result<(), StoreError> {
        self.account_setting_put(LOGGING_KEY, options)
    }

    fn logging_level_set(&self, level: &str) -> Result<(), StoreError> {
        let mut options = self.logging_get()?.unwrap_or_default();
        options.default_log_level = Some(level.to_owned());
        if level != "DISABLED" {
            options.disable_all_logs = false;
        }
        self.logging_set(&options)
    }
}

impl SqliteStore {
    /// The account setting `key` (a JSON value), if ever set.
    ///
    /// # Errors
    /// Storage failures, a stored value that does not decode.
    pub(super) fn account_setting_get<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        self.with(|c| {
            let v: Option<String> = c
                .query_row(
                    "SELECT value FROM account_settings WHERE key = ?1",
                    [key],
                    |r| r.get("value"),
                )
                .optional()?;
            Ok(v.map(|v| serde_json::from_str(&v)).transpose()?)
        })
    }

    /// Replaces the account setting `key`.
    ///
    /// # Errors
    /// Storage failures.
    pub(super) fn account_setting_put<T: serde::Serialize>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let v = serde_json::to_string(value)?;
        self.with(|c| {
            c.execute(
                "INSERT INTO account_settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
                params![key, v],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("thingward.db")).expect("store");
        (dir, store)
    }

    fn cert(id: &str, kind: CertKind) -> CertificateRecord {
        CertificateRecord {
            cert_id: id.into(),
            kind,
            pem: "-----BEGIN CERTIFICATE-----".into(),
            status: CertStatus::Active,
            ca_cert_id: None,
            auto_registration: None,
            created_ms: 1,
            modified_ms: 1,
        }
    }

    #[test]
    fn a_status_change_updates_a_registered_certificate_or_records_an_override() {
        let (_d, store) = store();
        let id = "a".repeat(64);
        assert!(
            store
                .cert_insert(&cert(&id, CertKind::Device))
                .expect("insert")
        );
        assert!(
            !store
                .cert_insert(&cert(&id, CertKind::Device))
                .expect("dup")
        );
        assert_eq!(
            store
                .cert_status_set(&id, CertStatus::Revoked, 5)
                .expect("set"),
            StatusTarget::Registered
        );
        let got = store
            .cert_get(CertKind::Device, &id)
            .expect("get")
            .expect("present");
        assert_eq!((got.status, got.modified_ms), (CertStatus::Revoked, 5));
        assert!(store.cert_get(CertKind::Ca, &id).expect("get").is_none());
        let dir_cert = "b".repeat(64);
        assert_eq!(
            store
                .cert_status_set(&dir_cert, CertStatus::Inactive, 6)
                .expect("set"),
            StatusTarget::Override
        );
        store
            .cert_status_set(&dir_cert, CertStatus::Active, 7)
            .expect("set");
        let overrides = store.cert_status_overrides().expect("overrides");
        assert_eq!(overrides.len(), 1);
        assert_eq!(overrides[&dir_cert], CertStatus::Active);
    }

    #[test]
    fn a_things_certificates_come_from_its_certificate_principals() {
        let (_d, store) = store();
        let id = "c".repeat(64);
        let arn = format!("arn:aws:iot:us-east-1:123456789012:cert/{id}");
        store
            .thing_principal_set("cam", &arn, true)
            .expect("attach");
        store
            .thing_principal_set("cam", "arn:aws:cognito:x", true)
            .expect("attach");
        store
            .thing_principal_set("other", &arn, true)
            .expect("attach");
        assert_eq!(
            store.thing_certificates("cam").expect("list"),
            vec![id.clone()]
        );
        assert_eq!(store.thing_principals("cam").expect("list").len(), 2);
        store
            .policy_target_set("p", &arn, true)
            .expect("attach policy");
        assert!(
            store
                .cert_insert(&cert(&id, CertKind::Device))
                .expect("insert")
        );
        assert!(store.cert_delete(CertKind::Device, &id).expect("delete"));
        assert!(store.thing_certificates("cam").expect("list").is_empty());
        assert!(store.policy_targets_all().expect("targets").is_empty());
    }

    #[test]
    fn policy_versions_number_up_switch_default_and_stop_at_five() {
        let (_d, store) = store();
        assert!(store.policy_create("p", "{\"v\":1}", 1).expect("create"));
        assert!(!store.policy_create("p", "{}", 1).expect("dup"));
        let v2 = store
            .policy_version_create("p", "{\"v\":2}", true, 2)
            .expect("v2");
        assert_eq!((v2.version, v2.is_default), (2, true));
        let v3 = store
            .policy_version_create("p", "{\"v\":3}", false, 3)
            .expect("v3");
        assert!(!v3.is_default);
        assert_eq!(
            store
                .policy_get("p")
                .expect("get")
                .expect("p")
                .default_version,
            2
        );
        assert!(store.policy_default_set("p", 3, 4).expect("set"));
        assert!(
            !store
                .policy_default_set("p", 9, 4)
                .expect("no such version")
        );
        let defaults = store.policy_defaults_all().expect("defaults");
        assert_eq!(defaults.len(), 1);
        assert_eq!(defaults[0].document, "{\"v\":3}");
        assert!(!store.policy_version_delete("p", 3).expect("default stays"));
        assert!(store.policy_version_delete("p", 1).expect("delete v1"));
        store
            .policy_version_create("p", "{}", false, 5)
            .expect("v4");
        store
            .policy_version_create("p", "{}", false, 5)
            .expect("v5");
        store
            .policy_version_create("p", "{}", false, 5)
            .expect("v6");
        assert!(matches!(
            store.policy_version_create("p", "{}", false, 6),
            Err(PolicyVersionError::TooMany)
        ));
        assert!(matches!(
            store.policy_version_create("nope", "{}", false, 6),
            Err(PolicyVersionError::NotFound)
        ));
        let versions: Vec<i64> = store
            .policy_versions("p")
            .expect("versions")
            .iter()
            .map(|v| v.version)
            .collect();
        assert_eq!(versions, [6, 5, 4, 3, 2]);
    }

    #[test]
    fn the_logging_level_is_kept_with_the_other_options() {
        let (_d, store) = store();
        assert_eq!(store.logging_get().expect("get"), None);
        store
            .logging_set(&LoggingOptions {
                role_arn: Some("arn:aws:iam::123456789012:role/log".into()),
                default_log_level: Some("DISABLED".into()),
                disable_all_logs: true,
            })
            .expect("set");
        store.logging_level_set("INFO").expect("level");
        let got = store.logging_get().expect("get").expect("set");
        assert_eq!(got.default_log_level.as_deref(), Some("INFO"));
        assert!(!got.disable_all_logs);
        assert!(got.role_arn.is_some());
    }

    #[test]
    fn crls_are_replaced_by_name() {
        let (_d, store) = store();
        assert!(store.crl_put("root", "pem1", 1).expect("put"));
        assert!(!store.crl_put("root", "pem2", 2).expect("replace"));
        let got = store.crl_get("root").expect("get").expect("present");
        assert_eq!(
            (got.pem.as_str(), got.created_ms, got.modified_ms),
            ("pem2", 1, 2)
        );
        assert_eq!(store.crls_all().expect("all").len(), 1);
        assert!(store.crl_delete("root").expect("delete"));
        assert!(!store.crl_delete("root").expect("gone"));
    }

    #[test]
    fn principal_cert_ids_are_64_hex() {
        let id = "d".repeat(64);
        assert_eq!(
            principal_cert_id(&format!("arn:aws:iot:r:1:cert/{id}")),
            Some(id.as_str())
        );
        assert_eq!(principal_cert_id(&id), Some(id.as_str()));
        assert_eq!(principal_cert_id("arn:aws:iot:r:1:cert/xyz"), None);
    }
}
