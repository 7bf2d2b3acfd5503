//! thingward Audit: checks over what a self-hosted fleet actually has — X.509 device and CA
//! certificates and CRLs, IoT policy documents, the MQTT broker's connection log and
//! configuration — reported as findings in AWS IoT Device Defender's shape.
//!
//! The crate is pure: `run` takes an [`AuditInput`] snapshot and returns one [`CheckReport`]
//! per requested check. Storage, scheduling, suppressions and mitigation live in the service.
//!
#![doc = include_str!("../README.md")]

mod broker;
mod certs;
pub mod check;
mod connections;
mod connlog;
mod context;
pub mod finding;
pub mod input;
mod input_problems;
mod logging;
mod parallel;
mod policy;
mod x509;

use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use context::{CheckResult, Context, Outcome, Stop};

pub use check::{ActionType, CheckInfo, CheckName, ResourceType, Severity, UnknownCheckName};
pub use finding::{
    Finding, IssuerCertificateIdentifier, PolicyVersionIdentifier, Resource, ResourceIdentifier,
};
pub use input::{
    AuditInput, CertRecord, CertStatus, CertSummary, CrlRecord, InputProblem, LoggingSettings,
    PemBundle, PolicyRecord, TextSource, cert_id, is_ca, load_dir, parse_pem_bundle, summarize,
};

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// How an audit runs: the clock, thresholds and the account to name in findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditSettings {
    /// "Now", epoch milliseconds.
    pub now_ms: i64,
    /// Expiring checks: window in days (`CERT_EXPIRATION_THRESHOLD_IN_DAYS`, default 30).
    pub expiring_days: u32,
    /// Age check: threshold in days (`CERT_AGE_THRESHOLD_IN_DAYS`, default 365).
    pub age_days: u32,
    /// Account id put in account-settings findings.
    pub account: String,
    /// Start of the connection-log look-back (conflicting ids, shared certificates), epoch ms;
    /// `None` = 31 days before `now_ms`.
    pub connections_since_ms: Option<i64>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            now_ms: chrono::Utc::now().timestamp_millis(),
            expiring_days: 30,
            age_days: 365,
            account: "000000000000".to_owned(),
            connections_since_ms: None,
        }
    }
}

impl AuditSettings {
    /// The effective look-back start for connection-log checks.
    pub fn connections_since(&self) -> i64 {
        self.connections_since_ms
            .unwrap_or_else(|| self.now_ms.saturating_sub(31 * DAY_MS))
    }
}

/// Progress events `run` reports while it works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A check started.
    CheckStarted(CheckName),
    /// Resources examined so far by a check.
    Resources {
        /// The check.
        check: CheckName,
        /// Examined so far.
        done: u64,
        /// Total to examine.
        total: u64,
    },
    /// A check finished (also when it failed or was canceled).
    CheckFinished(CheckName),
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// The check.
    pub check: CheckName,
    /// Resources the check examined.
    pub total_resources: u64,
    /// Non-compliant resources.
    pub findings: Vec<Finding>,
    /// Why the check could not run; `None` when it ran.
    pub failed: Option<String>,
    /// The audit was canceled before or while this check ran.
    pub canceled: bool,
}

/// Runs `checks` (in request order) over `input`; one report per requested check.
/// Cancellation is honoured between checks: once `cancel` is set, the remaining checks report
/// `canceled: true` without findings. Never panics on bad input: unusable input becomes
/// `AUDIT_INPUT_UNREADABLE_CHECK` / `BROKER_CONFIGURATION_INVALID_CHECK` findings.
pub fn run(
    input: &AuditInput,
    settings: &AuditSettings,
    checks: &[CheckName],
    progress: &(dyn Fn(Progress) + Sync),
    cancel: &AtomicBool,
) -> Vec<CheckReport> {
    let ctx = Context::new(input, settings, progress, cancel);
    checks
        .iter()
        .map(|&check| {
            let mut report = CheckReport {
                check,
                total_resources: 0,
                findings: Vec::new(),
                failed: None,
                canceled: false,
            };
            if ctx.canceled() {
                report.canceled = true;
                return report;
            }
            progress(Progress::CheckStarted(check));
            match run_one(&ctx, check) {
                Ok(o) => {
                    report.total_resources = o.total_resources;
                    report.findings = o.findings;
                }
                Err(Stop::Canceled) => report.canceled = true,
                Err(Stop::Failed(why)) => report.failed = Some(why),
            }
            progress(Progress::CheckFinished(check));
            report
        })
        .collect()
}

fn run_one(ctx: &Context<'_>, check: CheckName) -> CheckResult {
    use CheckName as C;
    match check {
        // No Cognito identity pools or role aliases exist in a self-hosted deployment: these
        // run over zero resources.
        C::AuthenticatedCognitoRoleOverlyPermissiveCheck
        | C::UnauthenticatedCognitoRoleOverlyPermissiveCheck
        | C::IotRoleAliasOverlyPermissiveCheck
        | C::IotRoleAliasAllowsAccessToUnusedServicesCheck => Ok(Outcome::default()),
        C::DeviceCertificateExpiringCheck => certs::expiry::expiring(ctx, false),
        C::CaCertificateExpiringCheck => certs::expiry::expiring(ctx, true),
        C::DeviceCertificateAgeCheck => certs::expiry::age(ctx),
        C::DeviceCertificateKeyQualityCheck => certs::key_quality::check(ctx, false),
        C::CaCertificateKeyQualityCheck => certs::key_quality::check(ctx, true),
        C::RevokedDeviceCertificateStillActiveCheck => certs::revocation::still_active(ctx, false),
        C::RevokedCaCertificateStillActiveCheck => certs::revocation::still_active(ctx, true),
        C::IntermediateCaRevokedForActiveDeviceCertificatesCheck => {
            certs::revocation::intermediate(ctx)
        }
        C::DeviceCertificateSharedCheck => certs::shared::check(ctx),
        C::ConflictingClientIdsCheck => connections::conflicting_client_ids(ctx),
        C::IotPolicyOverlyPermissiveCheck | C::IotPolicyPotentialMisconfigurationCheck => {
            policy::checks::check(ctx, check)
        }
        C::LoggingDisabledCheck => logging::check(ctx),
        C::BrokerAnonymousAccessCheck => broker::checks::anonymous(ctx),
        C::BrokerListenerWithoutTlsCheck => broker::checks::without_tls(ctx),
        C::BrokerClientCertificateNotRequiredCheck => broker::checks::client_certificate(ctx),
        C::BrokerAclOverlyPermissiveCheck => broker::checks::acl(ctx),
        C::BrokerPlaintextPasswordsCheck => broker::checks::passwords(ctx),
        C::BrokerConnectionLimitsCheck => broker::checks::limits(ctx),
        C::BrokerConfigurationInvalidCheck => broker::checks::invalid(ctx),
        C::AuditInputUnreadableCheck => input_problems::check(ctx),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn public_types_are_send_and_sync() {
        assert_send_sync::<AuditInput>();
        assert_send_sync::<CheckReport>();
        assert_send_sync::<Finding>();
        assert_send_sync::<AuditSettings>();
    }

    #[test]
    fn run_reports_every_requested_check_in_order_and_honours_cancel() {
        let input = AuditInput::default();
        let settings = AuditSettings::default();
        let checks = [
            CheckName::IotRoleAliasOverlyPermissiveCheck,
            CheckName::LoggingDisabledCheck,
        ];
        let reports = run(&input, &settings, &checks, &|_| {}, &AtomicBool::new(false));
        assert_eq!(reports.iter().map(|r| r.check).collect::<Vec<_>>(), checks);
        assert_eq!(reports[0].failed, None);
        assert_eq!(reports[0].total_resources, 0);
        let canceled = run(&input, &settings, &checks, &|_| {}, &AtomicBool::new(true));
        assert!(canceled.iter().all(|r| r.canceled && r.findings.is_empty()));
    }
}
