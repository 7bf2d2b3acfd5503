//! Audit state: the account audit configuration, scheduled audits, audit tasks with their
//! per-check details, findings (90-day retention) and suppressions.

use crate::StoreError;
use crate::outbox::{NewOutboxEvent, OutboxKind, OutboxRouting, Severity as OutboxSeverity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thingward_models::time::{EpochMillis, millis_to_seconds};

/// How long findings are kept (AWS keeps them 90 days).
pub const FINDING_RETENTION_MS: EpochMillis = 90 * 24 * 3600 * 1000;

/// One check's entry in the account audit configuration (AWS `AuditCheckConfiguration`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckConfig {
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configuration: BTreeMap<String, String>,
}

/// The account audit configuration as stored (only the checks ever configured are present).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditConfigRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// `auditNotificationTargetConfigurations`, kept verbatim.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub notification_targets: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub checks: BTreeMap<String, CheckConfig>,
}

/// A scheduled audit.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledAuditRecord {
    pub name: String,
    /// `DAILY`, `WEEKLY`, `BIWEEKLY` or `MONTHLY`.
    pub frequency: String,
    /// `1`..`31` or `LAST` (MONTHLY).
    pub day_of_month: Option<String>,
    /// `SUN`..`SAT` (WEEKLY, BIWEEKLY).
    pub day_of_week: Option<String>,
    pub checks: Vec<String>,
    pub created_ms: EpochMillis,
    /// When the scheduler last started it.
    pub last_run_ms: Option<EpochMillis>,
}

/// An audit task's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    InProgress,
    Completed,
    Failed,
    Canceled,
}

impl TaskStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "IN_PROGRESS",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Canceled => "CANCELED",
        }
    }

    /// Parses a wire name (exact).
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::InProgress,
            Self::Completed,
            Self::Failed,
            Self::Canceled,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// One check's outcome in a task (AWS `AuditCheckDetails`, the wire shape).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckDetails {
    /// `IN_PROGRESS`, `CANCELED`, `COMPLETED_COMPLIANT`, `COMPLETED_NON_COMPLIANT`, `FAILED`.
    pub check_run_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_compliant: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_resources_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub non_compliant_resources_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed_non_compliant_resources_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An audit task.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditTaskRecord {
    pub task_id: String,
    /// `ON_DEMAND_AUDIT_TASK` or `SCHEDULED_AUDIT_TASK`.
    pub task_type: String,
    pub status: TaskStatus,
    pub start_ms: EpochMillis,
    pub end_ms: Option<EpochMillis>,
    pub scheduled_audit_name: Option<String>,
    /// The checks requested, in request order.
    pub checks: Vec<String>,
    /// Check name → details.
    pub details: BTreeMap<String, CheckDetails>,
}

/// A stored finding.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingRecord {
    pub finding_id: String,
    pub task_id: String,
    pub check_name: String,
    pub task_start_ms: EpochMillis,
    pub finding_ms: EpochMillis,
    pub severity: String,
    /// The non-compliant resource's identifier as canonical JSON (the suppression key).
    pub resource_key: String,
    /// The library's `Finding`, as JSON.
    pub body: String,
    /// Whether a suppression in force covers it: judged at query time when read; on insert,
    /// as the task judged it (a suppressed finding is not announced on the feed).
    pub is_suppressed: bool,
}

impl FindingRecord {
    /// The finding in AWS's `AuditFinding` shape (aws-api.md §4.2): the library's finding plus
    /// the ids, times and suppression state the service keeps.
    ///
    /// # Errors
    /// A stored body that does not decode.
    pub fn aws_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        let mut v: serde_json::Value = serde_json::from_str(&self.body)?;
        if let Some(m) = v.as_object_mut() {
            m.insert("findingId".into(), self.finding_id.clone().into());
            m.insert("taskId".into(), self.task_id.clone().into());
            m.insert("checkName".into(), self.check_name.clone().into());
            m.insert("severity".into(), self.severity.clone().into());
            m.insert(
                "taskStartTime".into(),
                millis_to_seconds(self.task_start_ms).into(),
            );
            m.insert(
                "findingTime".into(),
                millis_to_seconds(self.finding_ms).into(),
            );
            m.insert("isSuppressed".into(), self.is_suppressed.into());
        }
        Ok(v)
    }

    /// The alarm-feed event announcing this finding (idempotency key: the finding id).
    ///
    /// # Errors
    /// A stored body that does not decode.
    pub fn outbox_event(&self) -> Result<NewOutboxEvent, serde_json::Error> {
        Ok(NewOutboxEvent {
            key: self.finding_id.clone(),
            kind: OutboxKind::AuditFinding,
            routing: OutboxRouting {
                check_name: Some(self.check_name.clone()),
                severity: OutboxSeverity::parse(&self.severity),
                ..OutboxRouting::default()
            },
            event_ms: self.finding_ms,
            body: self.aws_json()?,
        })
    }
}

/// Filters of ListAuditFindings.
#[derive(Debug, Clone, Default)]
pub struct FindingFilter {
    pub task_id: Option<String>,
    pub check_name: Option<String>,
    pub resource_key: Option<String>,
    pub start_ms: Option<EpochMillis>,
    pub end_ms: Option<EpochMillis>,
    /// Include suppressed findings (else they are left out).
    pub include_suppressed: bool,
    /// The time at which suppressions are judged (expired ones no longer apply).
    pub now_ms: EpochMillis,
}

/// An audit suppression.
#[derive(Debug, Clone, PartialEq)]
pub struct SuppressionRecord {
    pub check_name: String,
    /// The resource identifier as canonical JSON.
    pub resource_key: String,
    pub expiration_ms: Option<EpochMillis>,
    pub indefinitely: bool,
    pub description: Option<String>,
    pub created_ms: EpochMillis,
}

/// The audit part of the store interface ([`crate::Store`]); [`crate::SqliteStore`] implements it.
pub trait AuditStore {
    /// The account audit configuration, if ever set.
    ///
    /// # Errors
    /// Storage failures, a stored value that does not decode.
    fn audit_config_get(&self) -> Result<Option<AuditConfigRecord>, StoreError>;

    /// Replaces the account audit configuration.
    ///
    /// # Errors
    /// Storage failures.
    fn audit_config_put(&self, config: &AuditConfigRecord) -> Result<(), StoreError>;

    /// Erases the account audit configuration (and, when `scheduled_too`, every scheduled
    /// audit); returns whether a configuration existed.
    ///
    /// # Errors
    /// Storage failures.
    fn audit_config_delete(&self, scheduled_too: bool) -> Result<bool, StoreError>;

    /// Inserts a scheduled audit unless the name exists; returns whether it was inserted.
    ///
    /// # Errors
    /// Storage failures.
    fn scheduled_audit_insert(
        &self,
        rec: &ScheduledAuditRecord,
        tags: Option<&serde_json::Value>,
    ) -> Result<bool, StoreError>;

    /// Replaces a scheduled audit's schedule and checks; returns whether it exists.
    ///
    /// # Errors
    /// Storage failures.
    fn scheduled_audit_update(&self, rec: &ScheduledAuditRecord) -> Result<bool, StoreError>;

    /// Records when the scheduler last started a scheduled audit.
    ///
    /// # Errors
    /// Storage failures.
    fn scheduled_audit_ran(&self, name: &str, at: EpochMillis) -> Result<(), StoreError>;

    /// The scheduled audit called `name`.
    ///
    /// # Errors
    /// Storage failures.
    fn scheduled_audit_get(&self, name: &str) -> Result<Option<ScheduledAuditRecord>, StoreError>;

    /// Every scheduled audit, by name.
    ///
    /// # Errors
    /// Storage failures.
    fn scheduled_audits_all(&self) -> Result<Vec<ScheduledAuditRecord>, StoreError>;

    /// Deletes a scheduled audit; returns whether it existed.
    ///
    /// # Errors
    /// Storage failures.
    fn scheduled_audit_delete(&self, name: &str) -> Result<bool, StoreError>;

    /// Inserts a new audit task.
    ///
    /// # Errors
    /// Storage failures (including a duplicate id).
    fn audit_task_insert(&self, rec: &AuditTaskRecord) -> Result<(), StoreError>;

    /// Replaces a task's status, end time and details.
    ///
    /// # Errors
    /// Storage failures.
    fn audit_task_update(&self, rec: &AuditTaskRecord) -> Result<(), StoreError>;

    /// The task `task_id`.
    ///
    /// # Errors
    /// Storage failures.
    fn audit_task_get(&self, task_id: &str) -> Result<Option<AuditTaskRecord>, StoreError>;

    /// Tasks started in `[start_ms, end_ms]`, optionally of one type and status, newest first;
    /// `offset`/`limit` page.
    ///
    /// # Errors
    /// Storage failures.
    fn audit_tasks_list(
        &self,
        start_ms: EpochMillis,
        end_ms: EpochMillis,
        task_type: Option<&str>,
        status: Option<TaskStatus>,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<AuditTaskRecord>, StoreError>;

    /// Marks every task still `IN_PROGRESS` as `FAILED` (at start-up: a restart interrupted
    /// them); their running checks get `FAILED` with `message`. Returns how many there were.
    ///
    /// # Errors
    /// Storage failures.
    fn audit_tasks_fail_interrupted(
        &self,
        now: EpochMillis,
        message: &str,
    ) -> Result<usize, StoreError>;

    /// Each check's details in its latest run that completed it (`COMPLETED_*`), by check name,
    /// looking back over the latest 200 completed or canceled tasks (`/metrics`).
    ///
    /// # Errors
    /// Storage failures, or stored details that do not decode.
    fn audit_latest_check_details(&self) -> Result<BTreeMap<String, CheckDetails>, StoreError>;

    /// Stores findings and, in the same transaction, appends every finding no suppression
    /// covers (`is_suppressed` as judged by the task) to the alarm feed's outbox, keyed by its
    /// finding id: a stored finding is never lost to the feed.
    ///
    /// # Errors
    /// Storage failures (nothing is stored then).
    fn findings_insert(&self, findings: &[FindingRecord]) -> Result<(), StoreError>;

    /// The finding `finding_id`, with its suppression state at `now_ms`.
    ///
    /// # Errors
    /// Storage failures.
    fn finding_get(
        &self,
        finding_id: &str,
        now_ms: EpochMillis,
    ) -> Result<Option<FindingRecord>, StoreError>;

    /// Findings matching `filter`, in finding time order (ties by id); `offset`/`limit` page.
    ///
    /// # Errors
    /// Storage failures.
    fn findings_list(
        &self,
        filter: &FindingFilter,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<FindingRecord>, StoreError>;

    /// Every finding of task `task_id` (suppressed ones included, marked), in finding order.
    ///
    /// # Errors
    /// Storage failures.
    fn task_findings(
        &self,
        task_id: &str,
        now_ms: EpochMillis,
    ) -> Result<Vec<FindingRecord>, StoreError>;

    /// Deletes findings older than `before_ms`; returns how many.
    ///
    /// # Errors
    /// Storage failures.
    fn findings_purge_before(&self, before_ms: EpochMillis) -> Result<usize, StoreError>;

    /// Inserts a suppression unless one exists for the check and resource; returns whether it
    /// was inserted.
    ///
    /// # Errors
    /// Storage failures.
    fn suppression_insert(&self, rec: &SuppressionRecord) -> Result<bool, StoreError>;

    /// Replaces a suppression's expiry and description; returns whether it exists.
    ///
    /// # Errors
    /// Storage failures.
    fn suppression_update(&self, rec: &SuppressionRecord) -> Result<bool, StoreError>;

    /// The suppression of `check_name` for the resource `resource_key`.
    ///
    /// # Errors
    /// Storage failures.
    fn suppression_get(
        &self,
        check_name: &str,
        resource_key: &str,
    ) -> Result<Option<SuppressionRecord>, StoreError>;

    /// Deletes a suppression; returns whether it existed.
    ///
    /// # Errors
    /// Storage failures.
    fn suppression_delete(&self, check_name: &str, resource_key: &str) -> Result<bool, StoreError>;

    /// Suppressions, optionally of one check and/or resource, by expiration date (indefinite
    /// ones last when ascending); `offset`/`limit` page.
    ///
    /// # Errors
    /// Storage failures.
    fn suppressions_list(
        &self,
        check_name: Option<&str>,
        resource_key: Option<&str>,
        ascending: bool,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<SuppressionRecord>, StoreError>;

    /// The suppressions in force at `now_ms`, as (check name, resource key).
    ///
    /// # Errors
    /// Storage failures.
    fn suppressions_active(
        &self,
        now_ms: EpochMillis,
    ) -> Result<std::collections::HashSet<(String, String)>, StoreError>;
}
