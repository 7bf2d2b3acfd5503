//! The registry as the audit library sees it: directory files (read now) merged with what the
//! API registered in SQLite, status overrides applied, things and policy targets attached.

use super::config::AuditConfig;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use thingward_audit as lib;
use thingward_audit::{AuditInput, InputProblem, TextSource};
use thingward_store::{CertKind, CertStatus, Store, StoreError, principal_cert_id};

/// The first certificate in a PEM text (DER), or why there is none.
pub(crate) fn pem_certificate(pem: &str, source: &str) -> Result<Vec<u8>, String> {
    let mut bundle = lib::parse_pem_bundle(pem, source);
    if let Some(p) = bundle.problems.first() {
        return Err(p.message.clone());
    }
    if bundle.certs.is_empty() {
        return Err("no PEM CERTIFICATE block found".into());
    }
    Ok(bundle.certs.swap_remove(0).0)
}

/// Reads every directory in `dirs`; an unreadable directory becomes a problem naming it.
fn load_dirs(dirs: &[std::path::PathBuf], problems: &mut Vec<InputProblem>) -> lib::PemBundle {
    let mut out = lib::PemBundle::default();
    for dir in dirs {
        match lib::load_dir(dir) {
            Ok(b) => {
                out.certs.extend(b.certs);
                out.crls.extend(b.crls);
                problems.extend(b.problems);
            }
            Err(e) => problems.push(InputProblem {
                source: dir.display().to_string(),
                message: format!("cannot read the directory: {e}"),
            }),
        }
    }
    out
}

/// The modification time of the file a `path:line` source names, epoch ms (0 when unknown).
fn source_mtime_ms(source: &str) -> i64 {
    let path = source.rsplit_once(':').map_or(source, |(p, _)| p);
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn read_text(path: &Path, problems: &mut Vec<InputProblem>) -> Option<TextSource> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(TextSource {
            path: path.display().to_string(),
            text,
        }),
        Err(e) => {
            problems.push(InputProblem {
                source: path.display().to_string(),
                message: format!("cannot read the file: {e}"),
            });
            None
        }
    }
}

/// Policies in `<name>.json` files of `dir` (version 1, the default), sorted by name.
pub(crate) fn dir_policies(dir: &Path, problems: &mut Vec<InputProblem>) -> Vec<lib::PolicyRecord> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(InputProblem {
                source: dir.display().to_string(),
                message: format!("cannot read the policy directory: {e}"),
            });
            return Vec::new();
        }
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
            continue;
        };
        if let Some(text) = read_text(&path, problems) {
            out.push(lib::PolicyRecord {
                name,
                version_id: "1".into(),
                document: text.text,
                is_default: true,
                source: text.path,
                targets: Vec::new(),
            });
        }
    }
    out
}

/// Builds the snapshot of the files `config` names (when given) and the SQLite registry (when
/// given). Directory items come first; an API item with the same id (certificates) or name
/// (policies) replaces the directory one.
///
/// # Errors
/// Storage failures only; unreadable files become [`InputProblem`]s.
pub(crate) fn build(
    config: Option<&AuditConfig>,
    store: Option<&dyn Store>,
) -> Result<AuditInput, StoreError> {
    let mut problems = Vec::new();
    let empty = AuditConfig::default();
    let config = config.unwrap_or(&empty);
    let device = load_dirs(&config.device_cert_dirs, &mut problems);
    let ca = load_dirs(&config.ca_cert_dirs, &mut problems);
    let crl = load_dirs(&config.crl_dirs, &mut problems);

    let overrides = store
        .map(|s| s.cert_status_overrides())
        .transpose()?
        .unwrap_or_default();
    let mut things_of: HashMap<String, Vec<String>> = HashMap::new();
    let mut policy_targets: HashMap<String, Vec<String>> = HashMap::new();
    if let Some(store) = store {
        for (thing, principal) in store.thing_principals_all()? {
            if let Some(id) = principal_cert_id(&principal) {
                things_of.entry(id.to_lowercase()).or_default().push(thing);
            }
        }
        for (policy, target) in store.policy_targets_all()? {
            if let Some(id) = principal_cert_id(&target) {
                policy_targets
                    .entry(policy)
                    .or_default()
                    .push(id.to_lowercase());
            }
        }
    }

    let from_dir = |bundle: lib::PemBundle| -> BTreeMap<String, lib::CertRecord> {
        let mut out = BTreeMap::new();
        for (der, source) in bundle.certs {
            let id = lib::cert_id(&der);
            let status = overrides.get(&id).copied().unwrap_or(CertStatus::Active);
            out.entry(id.clone()).or_insert_with(|| lib::CertRecord {
                things: things_of.get(&id).cloned().unwrap_or_default(),
                status,
                created_ms: source_mtime_ms(&source),
                id,
                der,
                source,
            });
        }
        out
    };
    // CA directories may hold CRLs too (certificates in CRL directories are not audited).
    let mut crls: Vec<lib::CrlRecord> = crl
        .crls
        .into_iter()
        .chain(ca.crls.iter().cloned())
        .map(|(der, source)| lib::CrlRecord { der, source })
        .collect();
    let mut device_certs = from_dir(device);
    let mut ca_certs = from_dir(ca);
    let mut policies: BTreeMap<String, Vec<lib::PolicyRecord>> = BTreeMap::new();
    if let Some(dir) = &config.policy_dir {
        for p in dir_policies(dir, &mut problems) {
            policies.entry(p.name.clone()).or_default().push(p);
        }
    }
    let mut logging = lib::LoggingSettings::default();

    if let Some(store) = store {
        for (kind, target) in [
            (CertKind::Device, &mut device_certs),
            (CertKind::Ca, &mut ca_certs),
        ] {
            for rec in store.certs_all(kind)? {
                let source = format!("api:{}", rec.cert_id);
                match pem_certificate(&rec.pem, &source) {
                    Ok(der) => {
                        target.insert(
                            rec.cert_id.clone(),
                            lib::CertRecord {
                                things: things_of.get(&rec.cert_id).cloned().unwrap_or_default(),
                                status: rec.status,
                                created_ms: rec.created_ms,
                                id: rec.cert_id,
                                der,
                                source: "api".into(),
                            },
                        );
                    }
                    Err(message) => problems.push(InputProblem { source, message }),
                }
            }
        }
        for rec in store.crls_all()? {
            let source = format!("api:crl/{}", rec.name);
            let bundle = lib::parse_pem_bundle(&rec.pem, &source);
            problems.extend(bundle.problems);
            crls.extend(
                bundle
                    .crls
                    .into_iter()
                    .map(|(der, source)| lib::CrlRecord { der, source }),
            );
        }
        for p in store.policies_all()? {
            let versions = store
                .policy_versions(&p.name)?
                .into_iter()
                .map(|v| lib::PolicyRecord {
                    source: format!("api:policy/{}/{}", v.name, v.version),
                    name: v.name,
                    version_id: v.version.to_string(),
                    document: v.document,
                    is_default: v.is_default,
                    targets: Vec::new(),
                })
                .collect();
            policies.insert(p.name, versions);
        }
        if let Some(options) = store.logging_get()? {
            logging.thingward_log_level = if options.disable_all_logs {
                Some("DISABLED".into())
            } else {
                options.default_log_level
            };
        }
    }
    let policies = policies
        .into_iter()
        .flat_map(|(name, versions)| {
            let targets = policy_targets.get(&name).cloned().unwrap_or_default();
            versions.into_iter().map(move |mut v| {
                v.targets.clone_from(&targets);
                v
            })
        })
        .collect();
    let broker_config = config
        .broker_config
        .as_deref()
        .and_then(|p| read_text(p, &mut problems));
    let connection_log = config
        .broker_log
        .as_deref()
        .and_then(|p| read_text(p, &mut problems));
    Ok(AuditInput {
        device_certs: device_certs.into_values().collect(),
        ca_certs: ca_certs.into_values().collect(),
        crls,
        policies,
        broker_config,
        connection_log,
        logging,
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair};
    use thingward_store::prelude::*;
    use thingward_store::{CertificateRecord, SqliteStore};

    fn self_signed(cn: &str) -> rcgen::Certificate {
        let mut p = CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.self_signed(&KeyPair::generate().expect("key"))
            .expect("cert")
    }

    #[test]
    fn directories_and_the_registry_merge_with_overrides_things_and_problems_applied() {
        let dir = tempfile::tempdir().expect("tempdir");
        let devices = dir.path().join("devices");
        let policies = dir.path().join("policies");
        std::fs::create_dir_all(&devices).expect("mkdir");
        std::fs::create_dir_all(&policies).expect("mkdir");
        let on_disk = self_signed("disk");
        let both = self_signed("both");
        std::fs::write(
            devices.join("a.pem"),
            format!("{}{}", on_disk.pem(), both.pem()),
        )
        .expect("write");
        std::fs::write(
            devices.join("bad.pem"),
            "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        std::fs::write(policies.join("p.json"), "{\"Statement\":[]}").expect("write");
        let store = SqliteStore::open(&dir.path().join("thingward.db")).expect("store");
        let disk_id = lib::cert_id(on_disk.der());
        let both_id = lib::cert_id(both.der());
        store
            .cert_status_set(&disk_id, CertStatus::Revoked, 1)
            .expect("override");
        store
            .cert_insert(&CertificateRecord {
                cert_id: both_id.clone(),
                kind: CertKind::Device,
                pem: both.pem(),
                status: CertStatus::Inactive,
                ca_cert_id: None,
                auto_registration: None,
                created_ms: 7,
                modified_ms: 7,
            })
            .expect("insert");
        store
            .thing_principal_set("cam", &format!("arn:aws:iot:r:1:cert/{disk_id}"), true)
            .expect("principal");
        store
            .policy_target_set("p", &format!("arn:aws:iot:r:1:cert/{disk_id}"), true)
            .expect("target");
        let config = AuditConfig {
            device_cert_dirs: vec![devices, dir.path().join("missing")],
            policy_dir: Some(policies),
            broker_config: Some(dir.path().join("no-such.conf")),
            ..AuditConfig::default()
        };
        let input = build(Some(&config), Some(&store)).expect("snapshot");
        assert_eq!(input.device_certs.len(), 2, "one record per certificate id");
        let disk = input
            .device_certs
            .iter()
            .find(|c| c.id == disk_id)
            .expect("disk");
        assert_eq!(disk.status, lib::CertStatus::Revoked);
        assert_eq!(disk.things, ["cam"]);
        assert!(disk.source.ends_with("a.pem:1"), "{}", disk.source);
        let api = input
            .device_certs
            .iter()
            .find(|c| c.id == both_id)
            .expect("both");
        assert_eq!((api.status, api.created_ms), (lib::CertStatus::Inactive, 7));
        assert_eq!(input.policies.len(), 1);
        assert_eq!(input.policies[0].targets, vec![disk_id.clone()]);
        let sources: Vec<&str> = input.problems.iter().map(|p| p.source.as_str()).collect();
        assert!(sources.iter().any(|s| s.contains("bad.pem")), "{sources:?}");
        assert!(
            sources.iter().any(|s| s.ends_with("missing")),
            "{sources:?}"
        );
        assert!(
            sources.iter().any(|s| s.ends_with("no-such.conf")),
            "{sources:?}"
        );
        // Edits on disk take effect at the next snapshot.
        std::fs::remove_file(dir.path().join("devices/a.pem")).expect("rm");
        let input = build(Some(&config), Some(&store)).expect("snapshot");
        assert_eq!(input.device_certs.len(), 1);
    }
}
