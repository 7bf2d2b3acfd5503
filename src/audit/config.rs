//! The audit config file (TOML): where the registry's files are and the default thresholds.
//! `thingward serve --audit-config F` and `thingward audit --config F` read it at start-up; the
//! directories it names are read again at every audit run.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The file as written (paths relative to the file's own directory).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditConfigParams {
    /// Directories of device certificates (`*.pem`, `*.crt`, `*.cer`).
    #[serde(default)]
    pub(crate) device_cert_dirs: Vec<PathBuf>,
    /// Directories of CA certificates.
    #[serde(default)]
    pub(crate) ca_cert_dirs: Vec<PathBuf>,
    /// Directories of CRLs (`*.crl`, `*.pem`).
    #[serde(default)]
    pub(crate) crl_dirs: Vec<PathBuf>,
    /// A directory of IoT policies, one `<name>.json` each (version 1, the default).
    pub(crate) policy_dir: Option<PathBuf>,
    /// The Mosquitto configuration file.
    pub(crate) broker_config: Option<PathBuf>,
    /// The Mosquitto log (connection events for the client-id checks).
    pub(crate) broker_log: Option<PathBuf>,
    /// Default thresholds (the account audit configuration overrides them).
    #[serde(default)]
    pub(crate) thresholds: Thresholds,
}

/// Certificate thresholds in days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Thresholds {
    /// DEVICE_CERTIFICATE_EXPIRING_CHECK / CA_CERTIFICATE_EXPIRING_CHECK window (default 30).
    #[serde(default = "default_expiring")]
    pub(crate) cert_expiration_days: u32,
    /// DEVICE_CERTIFICATE_AGE_CHECK threshold (default 365; 30..=3652).
    #[serde(default = "default_age")]
    pub(crate) cert_age_days: u32,
}

fn default_expiring() -> u32 {
    30
}

fn default_age() -> u32 {
    365
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            cert_expiration_days: default_expiring(),
            cert_age_days: default_age(),
        }
    }
}

/// A checked config: absolute paths, thresholds in range.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditConfig {
    pub(crate) device_cert_dirs: Vec<PathBuf>,
    pub(crate) ca_cert_dirs: Vec<PathBuf>,
    pub(crate) crl_dirs: Vec<PathBuf>,
    pub(crate) policy_dir: Option<PathBuf>,
    pub(crate) broker_config: Option<PathBuf>,
    pub(crate) broker_log: Option<PathBuf>,
    pub(crate) thresholds: Thresholds,
}

/// Why the config file was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuditConfigError {
    /// The file could not be read.
    #[error("cannot read the audit config {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML or unknown keys.
    #[error("audit config {path}: {source}")]
    Parse {
        path: String,
        #[source]
        source: toml::de::Error,
    },
    /// A threshold out of range.
    #[error("audit config: {0}")]
    Threshold(&'static str),
}

impl AuditConfigParams {
    /// Checks the thresholds and resolves relative paths against `base`.
    ///
    /// # Errors
    /// A threshold out of range.
    pub(crate) fn validate(self, base: &Path) -> Result<AuditConfig, AuditConfigError> {
        if !(30..=3652).contains(&self.thresholds.cert_age_days) {
            return Err(AuditConfigError::Threshold(
                "thresholds.cert_age_days must be in 30..=3652",
            ));
        }
        if !(1..=3652).contains(&self.thresholds.cert_expiration_days) {
            return Err(AuditConfigError::Threshold(
                "thresholds.cert_expiration_days must be in 1..=3652",
            ));
        }
        let abs = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let all = |v: Vec<PathBuf>| v.into_iter().map(abs).collect();
        Ok(AuditConfig {
            device_cert_dirs: all(self.device_cert_dirs),
            ca_cert_dirs: all(self.ca_cert_dirs),
            crl_dirs: all(self.crl_dirs),
            policy_dir: self.policy_dir.map(abs),
            broker_config: self.broker_config.map(abs),
            broker_log: self.broker_log.map(abs),
            thresholds: self.thresholds,
        })
    }
}

impl AuditConfig {
    /// Reads and checks the file at `path`.
    ///
    /// # Errors
    /// Unreadable file, bad TOML, unknown keys, thresholds out of range.
    pub(crate) fn load(path: &Path) -> Result<Self, AuditConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| AuditConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let params: AuditConfigParams =
            toml::from_str(&text).map_err(|source| AuditConfigError::Parse {
                path: shown,
                source,
            })?;
        params.validate(path.parent().unwrap_or(Path::new(".")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_resolve_against_the_file_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("audit.toml");
        std::fs::write(
            &file,
            "device_cert_dirs = [\"certs\"]\nbroker_config = \"/etc/m.conf\"\n[thresholds]\ncert_age_days = 90\n",
        )
        .expect("write");
        let c = AuditConfig::load(&file).expect("load");
        assert_eq!(c.device_cert_dirs, [dir.path().join("certs")]);
        assert_eq!(c.broker_config.as_deref(), Some(Path::new("/etc/m.conf")));
        assert_eq!(c.thresholds.cert_age_days, 90);
        assert_eq!(c.thresholds.cert_expiration_days, 30);
        std::fs::write(&file, "device_certs = []\n").expect("write");
        assert!(matches!(
            AuditConfig::load(&file),
            Err(AuditConfigError::Parse { .. })
        ));
        std::fs::write(&file, "[thresholds]\ncert_age_days = 5\n").expect("write");
        assert!(matches!(
            AuditConfig::load(&file),
            Err(AuditConfigError::Threshold(_))
        ));
    }
}
