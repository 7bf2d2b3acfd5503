//! `thingward audit --config F`: audits the files an audit config names, now, with a progress
//! bar on stderr, and prints a findings table and a per-check summary on stdout.
//!
//! Exit status: 0 when every check is compliant, 2 when any finding is reported, 1 on an
//! error (unreadable config, unknown check name). Unreadable certificate, CRL, policy or broker
//! files do not stop the audit: they are findings of `AUDIT_INPUT_UNREADABLE_CHECK` or
//! `BROKER_CONFIGURATION_INVALID_CHECK` naming the file.

use crate::audit::config::AuditConfig;
use crate::audit::snapshot;
use anyhow::Context;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use thingward_audit::{
    AuditSettings, CheckName, CheckReport, Finding, Progress, ResourceIdentifier,
};

/// Options of `thingward audit`.
#[derive(Debug, clap::Args)]
pub(crate) struct AuditArgs {
    /// The audit config file (TOML; see docs/specs/audit.md).
    #[arg(long)]
    config: PathBuf,
    /// Checks to run, comma-separated wire names (default: every check enabled by default).
    #[arg(long, value_delimiter = ',')]
    checks: Vec<String>,
    /// Account id named in account-settings findings.
    #[arg(long, default_value = "000000000000")]
    account_id: String,
}

/// The exit status when findings were reported.
pub(crate) const EXIT_FINDINGS: i32 = 2;

/// A short, human name for a resource.
pub(crate) fn resource_label(id: &ResourceIdentifier) -> String {
    if let Some(v) = &id.policy_version_identifier {
        return format!(
            "policy {}:{}",
            v.policy_name.as_deref().unwrap_or("?"),
            v.policy_version_id.as_deref().unwrap_or("?")
        );
    }
    let parts = [
        ("cert", &id.device_certificate_id),
        ("ca", &id.ca_certificate_id),
        ("client", &id.client_id),
        ("account", &id.account),
        ("broker", &id.broker_config_file),
        ("source", &id.source),
    ];
    let label: Vec<String> = parts
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
        .collect();
    if label.is_empty() {
        "-".into()
    } else {
        label.join(" ")
    }
}

/// The findings table and the per-check summary.
pub(crate) fn render(reports: &[CheckReport]) -> String {
    let mut rows: Vec<&Finding> = reports.iter().flat_map(|r| &r.findings).collect();
    rows.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then(a.check_name.as_str().cmp(b.check_name.as_str()))
    });
    let mut out = String::new();
    if rows.is_empty() {
        out.push_str("No findings.\n");
    } else {
        let _ = writeln!(
            out,
            "{:<9} {:<60} {:<40} REASON",
            "SEVERITY", "CHECK", "RESOURCE"
        );
        for f in rows {
            let _ = writeln!(
                out,
                "{:<9} {:<60} {:<40} {}",
                f.severity.as_str(),
                f.check_name.as_str(),
                resource_label(&f.non_compliant_resource.resource_identifier),
                f.reason_for_non_compliance
            );
        }
    }
    let _ = writeln!(out, "\n{:<60} {:<24} NON-COMPLIANT", "CHECK", "STATUS");
    for r in reports {
        let status = match (&r.failed, r.canceled, r.findings.is_empty()) {
            (Some(_), _, _) => "FAILED",
            (None, true, _) => "CANCELED",
            (None, false, true) => "COMPLETED_COMPLIANT",
            (None, false, false) => "COMPLETED_NON_COMPLIANT",
        };
        let detail = match &r.failed {
            Some(why) => format!("({why})"),
            None => format!("{} of {}", r.findings.len(), r.total_resources),
        };
        let _ = writeln!(out, "{:<60} {:<24} {detail}", r.check.as_str(), status);
    }
    out
}

/// Runs the audit and prints it; exits with [`EXIT_FINDINGS`] when anything was found.
///
/// # Errors
/// An unreadable or invalid config, an unknown check name.
pub(crate) fn run(args: AuditArgs) -> anyhow::Result<()> {
    let config = AuditConfig::load(&args.config)?;
    let checks: Vec<CheckName> = if args.checks.is_empty() {
        CheckName::all()
            .iter()
            .copied()
            .filter(|c| c.info().enabled_by_default)
            .collect()
    } else {
        args.checks
            .iter()
            .map(|c| CheckName::parse(c).with_context(|| format!("Unknown check '{c}'")))
            .collect::<anyhow::Result<_>>()?
    };
    let input = snapshot::build(Some(&config), None)?;
    let settings = AuditSettings {
        now_ms: chrono::Utc::now().timestamp_millis(),
        expiring_days: config.thresholds.cert_expiration_days,
        age_days: config.thresholds.cert_age_days,
        account: args.account_id,
        connections_since_ms: None,
    };
    let bar = indicatif::ProgressBar::new(checks.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let progress = |p: Progress| match p {
        Progress::CheckStarted(c) => bar.set_message(c.as_str()),
        Progress::CheckFinished(_) => bar.inc(1),
        Progress::Resources { .. } => {}
    };
    let reports = thingward_audit::run(
        &input,
        &settings,
        &checks,
        &progress,
        &AtomicBool::new(false),
    );
    bar.finish_and_clear();
    print!("{}", render(&reports));
    if reports.iter().any(|r| !r.findings.is_empty()) {
        std::process::exit(EXIT_FINDINGS);
    }
    Ok(())
}
