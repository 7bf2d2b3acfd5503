//! The auditable registry kept in the store: device and CA certificates registered through the
//! API, status overrides for certificates read from directories, CRLs, IoT policies and their
//! versions and targets, thing principals and the account's logging settings.

use crate::StoreError;
use thingward_models::time::EpochMillis;

/// The most policy versions AWS keeps per policy.
pub const MAX_POLICY_VERSIONS: i64 = 5;

/// A certificate's status: the audit library's (AWS's `CertificateStatus` values).
pub use thingward_audit::CertStatus;

/// Whether a certificate is a device certificate or a CA certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    Device,
    Ca,
}

impl CertKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Device => "device",
            Self::Ca => "ca",
        }
    }
}

/// A certificate registered through the API.
#[derive(Debug, Clone, PartialEq)]
pub struct CertificateRecord {
    /// SHA-256 of the DER, lowercase hex (AWS `certificateId`).
    pub cert_id: String,
    pub kind: CertKind,
    /// The PEM as registered.
    pub pem: String,
    pub status: CertStatus,
    /// The CA certificate that issued it (device certificates registered with a CA).
    pub ca_cert_id: Option<String>,
    /// CA certificates: `ENABLE` / `DISABLE` (AWS `autoRegistrationStatus`).
    pub auto_registration: Option<String>,
    pub created_ms: EpochMillis,
    pub modified_ms: EpochMillis,
}

/// Where a status change landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusTarget {
    /// The certificate is registered in the store: its own status changed.
    Registered,
    /// Not registered (a directory certificate, or unknown): an override was recorded, applied
    /// whenever a certificate with this id is read from a directory.
    Override,
}

/// A CRL registered through `PUT /thingward/v1/crls/{name}`.
#[derive(Debug, Clone, PartialEq)]
pub struct CrlRecord {
    pub name: String,
    pub pem: String,
    pub created_ms: EpochMillis,
    pub modified_ms: EpochMillis,
}

/// An IoT policy (its default version's document is in [`PolicyVersionRecord`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRecord {
    pub name: String,
    pub default_version: i64,
    pub created_ms: EpochMillis,
    pub modified_ms: EpochMillis,
}

/// One version of a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyVersionRecord {
    pub name: String,
    pub version: i64,
    pub document: String,
    pub is_default: bool,
    pub created_ms: EpochMillis,
}

/// Why a policy version could not be created.
#[derive(Debug, thiserror::Error)]
pub enum PolicyVersionError {
    /// No such policy.
    #[error("policy not found")]
    NotFound,
    /// Already [`MAX_POLICY_VERSIONS`] versions.
    #[error("the policy already has {MAX_POLICY_VERSIONS} versions")]
    TooMany,
    /// Storage failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The account's IoT logging options (SetV2LoggingOptions).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggingOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// `DEBUG`, `INFO`, `ERROR`, `WARN` or `DISABLED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_log_level: Option<String>,
    #[serde(default)]
    pub disable_all_logs: bool,
}

/// The certificate id in a principal: a certificate ARN (`arn:…:cert/<id>`) or a bare id.
pub fn principal_cert_id(principal: &str) -> Option<&str> {
    let id = principal
        .rsplit_once(":cert/")
        .map_or(principal, |(_, id)| id);
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// The certs part of the store interface ([`crate::Store`]); [`crate::SqliteStore`] implements it.
pub trait CertStore {
    /// Registers a certificate unless its id exists; returns whether it was inserted.
    ///
    /// # Errors
    /// Storage failures.
    fn cert_insert(&self, rec: &CertificateRecord) -> Result<bool, StoreError>;

    /// Registers many certificates in one transaction (imports, the audit bench); returns how
    /// many were new.
    ///
    /// # Errors
    /// Storage failures.
    fn certs_insert_many(&self, recs: &[CertificateRecord]) -> Result<usize, StoreError>;

    /// Creates many policies (name, document of version 1) and attaches each to its targets,
    /// in one transaction; existing names are left alone. Returns how many were new.
    ///
    /// # Errors
    /// Storage failures.
    fn policies_create_many(
        &self,
        policies: &[(String, String, Vec<String>)],
        now: EpochMillis,
    ) -> Result<usize, StoreError>;

    /// The registered certificate `cert_id` of `kind`.
    ///
    /// # Errors
    /// Storage failures.
    fn cert_get(
        &self,
        kind: CertKind,
        cert_id: &str,
    ) -> Result<Option<CertificateRecord>, StoreError>;

    /// Every registered certificate of `kind`, oldest first (ties by id).
    ///
    /// # Errors
    /// Storage failures.
    fn certs_all(&self, kind: CertKind) -> Result<Vec<CertificateRecord>, StoreError>;

    /// Sets a device or CA certificate's status: a registered certificate's own status, or else
    /// a status override for the directory certificate with this id.
    ///
    /// # Errors
    /// Storage failures.
    fn cert_status_set(
        &self,
        cert_id: &str,
        status: CertStatus,
        now: EpochMillis,
    ) -> Result<StatusTarget, StoreError>;

    /// Every status override (directory certificates), by certificate id.
    ///
    /// # Errors
    /// Storage failures.
    fn cert_status_overrides(
        &self,
    ) -> Result<std::collections::HashMap<String, CertStatus>, StoreError>;

    /// Sets a CA certificate's auto-registration flag (`ENABLE` / `DISABLE`).
    ///
    /// # Errors
    /// Storage failures.
    fn ca_auto_registration_set(
        &self,
        cert_id: &str,
        value: &str,
        now: EpochMillis,
    ) -> Result<bool, StoreError>;

    /// Deletes a registered certificate, its override, and the policy and thing attachments
    /// naming it; returns whether it existed.
    ///
    /// # Errors
    /// Storage failures.
    fn cert_delete(&self, kind: CertKind, cert_id: &str) -> Result<bool, StoreError>;

    /// Stores (creating or replacing) a CRL; returns whether it is new.
    ///
    /// # Errors
    /// Storage failures.
    fn crl_put(&self, name: &str, pem: &str, now: EpochMillis) -> Result<bool, StoreError>;

    /// The CRL called `name`.
    ///
    /// # Errors
    /// Storage failures.
    fn crl_get(&self, name: &str) -> Result<Option<CrlRecord>, StoreError>;

    /// Every CRL, by name.
    ///
    /// # Errors
    /// Storage failures.
    fn crls_all(&self) -> Result<Vec<CrlRecord>, StoreError>;

    /// Deletes a CRL; returns whether it existed.
    ///
    /// # Errors
    /// Storage failures.
    fn crl_delete(&self, name: &str) -> Result<bool, StoreError>;

    /// Creates a policy with `document` as version 1 (the default) unless the name exists;
    /// returns whether it was created.
    ///
    /// # Errors
    /// Storage failures.
    fn policy_create(
        &self,
        name: &str,
        document: &str,
        now: EpochMillis,
    ) -> Result<bool, StoreError>;

    /// The policy called `name`.
    ///
    /// # Errors
    /// Storage failures.
    fn policy_get(&self, name: &str) -> Result<Option<PolicyRecord>, StoreError>;

    /// Every policy, by name.
    ///
    /// # Errors
    /// Storage failures.
    fn policies_all(&self) -> Result<Vec<PolicyRecord>, StoreError>;

    /// Adds a version to a policy (made the default when `set_default`); returns it.
    ///
    /// # Errors
    /// [`PolicyVersionError::NotFound`], [`PolicyVersionError::TooMany`], storage failures.
    fn policy_version_create(
        &self,
        name: &str,
        document: &str,
        set_default: bool,
        now: EpochMillis,
    ) -> Result<PolicyVersionRecord, PolicyVersionError>;

    /// One version of a policy.
    ///
    /// # Errors
    /// Storage failures.
    fn policy_version_get(
        &self,
        name: &str,
        version: i64,
    ) -> Result<Option<PolicyVersionRecord>, StoreError>;

    /// Every version of a policy, newest first.
    ///
    /// # Errors
    /// Storage failures.
    fn policy_versions(&self, name: &str) -> Result<Vec<PolicyVersionRecord>, StoreError>;

    /// The default version of every policy, by name.
    ///
    /// # Errors
    /// Storage failures.
    fn policy_defaults_all(&self) -> Result<Vec<PolicyVersionRecord>, StoreError>;

    /// Makes `version` the policy's default; returns false when the policy or version does not
    /// exist.
    ///
    /// # Errors
    /// Storage failures.
    fn policy_default_set(
        &self,
        name: &str,
        version: i64,
        now: EpochMillis,
    ) -> Result<bool, StoreError>;

    /// Deletes a non-default policy version; returns whether it existed.
    ///
    /// # Errors
    /// Storage failures.
    fn policy_version_delete(&self, name: &str, version: i64) -> Result<bool, StoreError>;

    /// Deletes a policy, its versions and its targets; returns whether it existed.
    ///
    /// # Errors
    /// Storage failures.
    fn policy_delete(&self, name: &str) -> Result<bool, StoreError>;

    /// Attaches (`attached = true`) or detaches a policy to a target (a certificate ARN or id).
    /// The policy may be one read from the policy directory, so its existence is the caller's
    /// check.
    ///
    /// # Errors
    /// Storage failures.
    fn policy_target_set(&self, name: &str, target: &str, attached: bool)
    -> Result<(), StoreError>;

    /// Every (policy, target) attachment.
    ///
    /// # Errors
    /// Storage failures.
    fn policy_targets_all(&self) -> Result<Vec<(String, String)>, StoreError>;

    /// Attaches (`attached = true`) or detaches a principal (a certificate ARN) to a thing.
    ///
    /// # Errors
    /// Storage failures.
    fn thing_principal_set(
        &self,
        thing: &str,
        principal: &str,
        attached: bool,
    ) -> Result<(), StoreError>;

    /// The principals attached to `thing`, sorted.
    ///
    /// # Errors
    /// Storage failures.
    fn thing_principals(&self, thing: &str) -> Result<Vec<String>, StoreError>;

    /// The ids of the certificates attached to `thing` (principals that are certificate ARNs or
    /// ids), sorted.
    ///
    /// # Errors
    /// Storage failures.
    fn thing_certificates(&self, thing: &str) -> Result<Vec<String>, StoreError>;

    /// Every (thing, principal) attachment.
    ///
    /// # Errors
    /// Storage failures.
    fn thing_principals_all(&self) -> Result<Vec<(String, String)>, StoreError>;

    /// The account's logging options (defaults when never set).
    ///
    /// # Errors
    /// Storage failures, a stored value that does not decode.
    fn logging_get(&self) -> Result<Option<LoggingOptions>, StoreError>;

    /// Replaces the account's logging options.
    ///
    /// # Errors
    /// Storage failures.
    fn logging_set(&self, options: &LoggingOptions) -> Result<(), StoreError>;

    /// Sets only the account's default log level (keeping the role and the other options).
    ///
    /// # Errors
    /// Storage failures.
    fn logging_level_set(&self, level: &str) -> Result<(), StoreError>;
}
