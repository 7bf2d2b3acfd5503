//! One audit task: snapshot the registry, run the library's checks, store the findings with
//! ids and times, and record per-check details (suppressed findings counted apart).

use super::{Audit, snapshot};
use crate::store::{
    AuditTaskRecord, CheckDetails, FINDING_RETENTION_MS, FindingRecord, StoreError, TaskStatus,
};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use thingward_audit::{CheckName, CheckReport, Finding};

/// Why a task could not record its results.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A finding did not serialize.
    #[error("finding json: {0}")]
    Json(#[from] serde_json::Error),
}

/// The suppression key of a finding: its resource identifier as canonical JSON.
///
/// # Errors
/// Serialization failure (none in practice).
pub(crate) fn resource_key(
    id: &thingward_audit::ResourceIdentifier,
) -> Result<String, serde_json::Error> {
    serde_json::to_string(id)
}

/// Turns one check's report into its details and storable findings.
pub(crate) fn check_outcome(
    report: &CheckReport,
    task: &AuditTaskRecord,
    now_ms: i64,
    suppressed: &HashSet<(String, String)>,
) -> Result<(CheckDetails, Vec<FindingRecord>), serde_json::Error> {
    let name = report.check.as_str();
    if report.canceled {
        return Ok((
            CheckDetails {
                check_run_status: "CANCELED".into(),
                ..CheckDetails::default()
            },
            Vec::new(),
        ));
    }
    if let Some(why) = &report.failed {
        return Ok((
            CheckDetails {
                check_run_status: "FAILED".into(),
                error_code: Some("CHECK_FAILED".into()),
                message: Some(why.clone()),
                ..CheckDetails::default()
            },
            Vec::new(),
        ));
    }
    let mut records = Vec::with_capacity(report.findings.len());
    let mut suppressed_count = 0u64;
    for f in &report.findings {
        let key = resource_key(&f.non_compliant_resource.resource_identifier)?;
        if suppressed.contains(&(name.to_owned(), key.clone())) {
            suppressed_count += 1;
        }
        records.push(FindingRecord {
            finding_id: uuid::Uuid::new_v4().simple().to_string(),
            task_id: task.task_id.clone(),
            check_name: name.to_owned(),
            task_start_ms: task.start_ms,
            finding_ms: now_ms,
            severity: f.severity.as_str().to_owned(),
            resource_key: key,
            body: serde_json::to_string(f)?,
            is_suppressed: false,
        });
    }
    let non_compliant = report.findings.len() as u64 - suppressed_count;
    Ok((
        CheckDetails {
            check_run_status: if non_compliant == 0 {
                "COMPLETED_COMPLIANT"
            } else {
                "COMPLETED_NON_COMPLIANT"
            }
            .into(),
            check_compliant: Some(non_compliant == 0),
            total_resources_count: Some(report.total_resources),
            non_compliant_resources_count: Some(non_compliant),
            suppressed_non_compliant_resources_count: Some(suppressed_count),
            error_code: None,
            message: None,
        },
        records,
    ))
}

/// Runs `task` to the end and records it.
///
/// # Errors
/// Storage failures while recording.
pub(crate) fn run_task(
    audit: &Audit,
    mut task: AuditTaskRecord,
    checks: &[CheckName],
    cancel: &AtomicBool,
) -> Result<(), RunError> {
    let input = snapshot::build(audit.files(), Some(audit.store()));
    let settings = audit.settings();
    let (input, settings) = match (input, settings) {
        (Ok(i), Ok(s)) => (i, s),
        (Err(e), _) | (_, Err(e)) => {
            for d in task.details.values_mut() {
                d.check_run_status = "FAILED".into();
                d.message = Some("The registry could not be read".into());
            }
            task.status = TaskStatus::Failed;
            task.end_ms = Some(audit.now_ms());
            audit.store().audit_task_update(&task)?;
            return Err(e.into());
        }
    };
    let reports = thingward_audit::run(&input, &settings, checks, &|_| {}, cancel);
    let now = audit.now_ms();
    let suppressed = audit.store().suppressions_active(now)?;
    let mut findings = Vec::new();
    for report in &reports {
        let (details, records) = check_outcome(report, &task, now, &suppressed)?;
        task.details
            .insert(report.check.as_str().to_owned(), details);
        findings.extend(records);
    }
    audit.store().findings_insert(&findings)?;
    task.status = if cancel.load(Ordering::SeqCst) {
        TaskStatus::Canceled
    } else {
        TaskStatus::Completed
    };
    task.end_ms = Some(now);
    audit.store().audit_task_update(&task)?;
    let purged = audit
        .store()
        .findings_purge_before(now - FINDING_RETENTION_MS)?;
    tracing::info!(task_id = %task.task_id, findings = findings.len(), purged, status = task.status.as_str(), "Audit task finished");
    Ok(())
}

/// The library finding stored in a record.
///
/// # Errors
/// A stored body that does not decode.
pub(crate) fn stored_finding(rec: &FindingRecord) -> Result<Finding, serde_json::Error> {
    serde_json::from_str(&rec.body)
}
