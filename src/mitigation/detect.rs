//! Detect mitigation tasks: which violations a task acts on, and its planned executions.

use super::ActionDefinition;
use thingward_models::time::EpochMillis;
use thingward_store::{
    ExecState, ExecutionRecord, Store, StoreError, ViolationRef, ViolationSelector,
};

/// Which violations a StartDetectMitigationActionsTask request chose, and how.
#[derive(Debug, Clone)]
pub(crate) struct Selection {
    pub(crate) selector: ViolationSelector,
    /// `violationEventOccurrenceRange`: violations seen in [start, end].
    pub(crate) range: Option<(EpochMillis, EpochMillis)>,
    /// `includeOnlyActiveViolations`.
    pub(crate) only_active: bool,
    /// `includeSuppressedAlerts`.
    pub(crate) include_suppressed: bool,
}

/// Why a task could not be planned.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PlanError {
    /// A named violation (or the profile) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The violations `sel` names, filtered by its range and flags; ids that do not exist are a
/// [`PlanError::NotFound`].
///
/// # Errors
/// Unknown violation ids, storage failures.
pub(crate) fn violations(
    store: &dyn Store,
    sel: &Selection,
    now: EpochMillis,
) -> Result<Vec<ViolationRef>, PlanError> {
    let found = store.mitigation_violations(&sel.selector, now)?;
    if let ViolationSelector::Ids(ids) = &sel.selector {
        let missing: Vec<&str> = ids
            .iter()
            .filter(|id| !found.iter().any(|v| &v.violation_id == *id))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(PlanError::NotFound(format!(
                "No violation with id {}",
                missing.join(", ")
            )));
        }
    }
    Ok(found
        .into_iter()
        .filter(|v| !sel.only_active || v.active)
        .filter(|v| {
            sel.range
                .is_none_or(|(start, end)| v.first_ms <= end && v.last_ms >= start)
        })
        .collect())
}

/// One execution per (violation, action), in order; a suppressed violation's executions are
/// SKIPPED unless the request includes suppressed alerts.
pub(crate) fn plan(
    task_id: &str,
    violations: &[ViolationRef],
    actions: &[ActionDefinition],
    include_suppressed: bool,
    now: EpochMillis,
) -> Vec<ExecutionRecord> {
    let mut out = Vec::with_capacity(violations.len() * actions.len());
    for v in violations {
        for a in actions {
            let skip = v.suppressed && !include_suppressed;
            out.push(ExecutionRecord {
                task_id: task_id.to_owned(),
                seq: out.len() as i64,
                subject: v.violation_id.clone(),
                check_name: None,
                thing: Some(v.thing.clone()),
                action_name: a.name.clone(),
                action_id: a.id.clone(),
                state: if skip {
                    ExecState::Skipped
                } else {
                    ExecState::Pending
                },
                start_ms: skip.then_some(now),
                end_ms: skip.then_some(now),
                error_code: None,
                message: skip.then(|| {
                    "The violation's behavior suppresses alerts (includeSuppressedAlerts is false)"
                        .to_owned()
                }),
            });
        }
    }
    out
}

/// `DetectMitigationActionsTaskStatistics`: (actionsExecuted, actionsSkipped, actionsFailed).
/// Executed counts every action that ran (succeeded or failed); skipped counts skipped and
/// cancelled ones.
pub(crate) fn statistics(executions: &[ExecutionRecord]) -> (u64, u64, u64) {
    let count =
        |f: &dyn Fn(ExecState) -> bool| executions.iter().filter(|e| f(e.state)).count() as u64;
    (
        count(&|s| matches!(s, ExecState::Succeeded | ExecState::Failed)),
        count(&|s| matches!(s, ExecState::Skipped | ExecState::Canceled)),
        count(&|s| s == ExecState::Failed),
    )
}
