//! One audit task: snapshot the registry, run the library's checks, store the findings with
//! ids and times, and record per-check details (suppressed findings counted apart).

use super::{Audit, snapshot};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use thingward_audit::{CheckName, CheckReport, Finding};
use thingward_store::{
    AuditTaskRecord, CheckDetails, FINDING_RETENTION_MS, FindingRecord, StoreError, TaskStatus,
};

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
        let is_suppressed = suppressed.contains(&(name.to_owned(), key.clone()));
        suppressed_count += u64::from(is_suppressed);
        records.push(FindingRecord {
            finding_id: uuid::Uuid::new_v4().simple().to_string(),
            task_id: task.task_id.clone(),
            check_name: name.to_owned(),
            task_start_ms: task.start_ms,
            finding_ms: now_ms,
            severity: f.severity.as_str().to_owned(),
            resource_key: key,
            body: serde_json::to_string(f)?,
            // Judged now: a suppressed finding is stored but not announced on the feed.
            is_suppressed,
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
    let input = snapshot::build(audit.files(), Some(&**audit.store()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use thingward_audit::{Resource, ResourceIdentifier, ResourceType};
    use thingward_store::{SqliteStore, Store};

    fn task(checks: &[CheckName]) -> AuditTaskRecord {
        AuditTaskRecord {
            task_id: "t".into(),
            task_type: super::super::ON_DEMAND.into(),
            status: TaskStatus::InProgress,
            start_ms: 5,
            end_ms: None,
            scheduled_audit_name: None,
            checks: checks.iter().map(|c| c.as_str().to_owned()).collect(),
            details: BTreeMap::new(),
        }
    }

    #[test]
    fn a_canceled_task_ends_canceled_with_every_check_canceled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("thingward.db")).expect("store"));
        let audit = Audit::new(Arc::clone(&store), None, Arc::new(|| 1_000), "123456789012");
        let checks = [
            CheckName::LoggingDisabledCheck,
            CheckName::DeviceCertificateExpiringCheck,
        ];
        let t = task(&checks);
        store.audit_task_insert(&t).expect("insert");
        run_task(&audit, t, &checks, &AtomicBool::new(true)).expect("run");
        let done = store.audit_task_get("t").expect("get").expect("task");
        assert_eq!(done.status, TaskStatus::Canceled);
        assert_eq!(done.end_ms, Some(1_000));
        assert!(
            done.details
                .values()
                .all(|d| d.check_run_status == "CANCELED")
        );
        assert!(
            store
                .task_findings("t", 1_000)
                .expect("findings")
                .is_empty()
        );
    }

    #[test]
    fn suppressed_findings_are_counted_apart_and_do_not_make_a_check_non_compliant() {
        let id = |cert: &str| ResourceIdentifier {
            device_certificate_id: Some(cert.into()),
            ..ResourceIdentifier::default()
        };
        let finding = |cert: &str| {
            Finding::new(
                CheckName::DeviceCertificateExpiringCheck,
                Resource::new(ResourceType::DeviceCertificate, id(cert)),
                "CERTIFICATE_PAST_EXPIRATION",
                "expired",
            )
        };
        let report = CheckReport {
            check: CheckName::DeviceCertificateExpiringCheck,
            total_resources: 7,
            findings: vec![finding("a"), finding("b")],
            failed: None,
            canceled: false,
        };
        let key = resource_key(&id("a")).expect("key");
        let suppressed: HashSet<(String, String)> =
            [(report.check.as_str().to_owned(), key)].into();
        let (d, records) =
            check_outcome(&report, &task(&[report.check]), 9, &suppressed).expect("outcome");
        assert_eq!(d.check_run_status, "COMPLETED_NON_COMPLIANT");
        assert_eq!(
            (
                d.total_resources_count,
                d.non_compliant_resources_count,
                d.suppressed_non_compliant_resources_count
            ),
            (Some(7), Some(1), Some(1))
        );
        assert_eq!(records.len(), 2, "suppressed findings are still stored");
        assert!(
            records
                .iter()
                .all(|r| r.finding_ms == 9 && r.task_start_ms == 5)
        );
        let all: HashSet<(String, String)> = records
            .iter()
            .map(|r| (r.check_name.clone(), r.resource_key.clone()))
            .collect();
        let (d, _) = check_outcome(&report, &task(&[report.check]), 9, &all).expect("outcome");
        assert_eq!(d.check_run_status, "COMPLETED_COMPLIANT");
        assert_eq!(d.check_compliant, Some(true));
        let failed = CheckReport {
            failed: Some("no broker connection log configured".into()),
            findings: Vec::new(),
            ..report
        };
        let (d, records) = check_outcome(&failed, &task(&[]), 9, &all).expect("outcome");
        assert_eq!(d.check_run_status, "FAILED");
        assert_eq!(
            d.message.as_deref(),
            Some("no broker connection log configured")
        );
        assert!(records.is_empty());
    }
}
