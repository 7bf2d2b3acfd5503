//! Audit mitigation tasks: which findings a task acts on, its planned executions and its
//! per-check statistics.

use super::ActionDefinition;
use super::detect::PlanError;
use std::collections::BTreeMap;
use thingward_models::time::EpochMillis;
use thingward_store::{ExecState, ExecutionRecord, FindingRecord, Store};

/// The findings a StartAuditMitigationActionsTask request targets.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// An audit task's findings, optionally only these reason codes per check.
    AuditTask {
        task_id: String,
        reason_codes: Option<BTreeMap<String, Vec<String>>>,
    },
    /// These findings.
    Findings(Vec<String>),
}

/// The findings of `target` (suppression judged at `now`); an unknown audit task or finding
/// is a [`PlanError::NotFound`].
///
/// # Errors
/// Unknown task or findings, storage failures.
pub(crate) fn findings(
    store: &dyn Store,
    target: &Target,
    now: EpochMillis,
) -> Result<Vec<FindingRecord>, PlanError> {
    match target {
        Target::AuditTask {
            task_id,
            reason_codes,
        } => {
            if store.audit_task_get(task_id)?.is_none() {
                return Err(PlanError::NotFound(format!(
                    "Audit task '{task_id}' does not exist"
                )));
            }
            Ok(store
                .task_findings(task_id, now)?
                .into_iter()
                .filter(|f| {
                    reason_codes.as_ref().is_none_or(|filter| {
                        filter.get(&f.check_name).is_some_and(|codes| {
                            codes
                                .iter()
                                .any(|c| Some(c.as_str()) == reason_code(f).as_deref())
                        })
                    })
                })
                .collect())
        }
        Target::Findings(ids) => {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                match store.finding_get(id, now)? {
                    Some(f) => out.push(f),
                    None => {
                        return Err(PlanError::NotFound(format!(
                            "Audit finding '{id}' does not exist"
                        )));
                    }
                }
            }
            Ok(out)
        }
    }
}

/// A stored finding's `reasonForNonComplianceCode`.
fn reason_code(f: &FindingRecord) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(&f.body)
        .ok()
        .and_then(|b| b["reasonForNonComplianceCode"].as_str().map(str::to_owned))
}

/// One execution per (finding, action of the finding's check), in finding order. Findings of
/// checks the mapping does not name are left out; suppressed findings are SKIPPED.
pub(crate) fn plan(
    task_id: &str,
    findings: &[FindingRecord],
    mapping: &BTreeMap<String, Vec<ActionDefinition>>,
    now: EpochMillis,
) -> Vec<ExecutionRecord> {
    let mut out = Vec::new();
    for f in findings {
        let Some(actions) = mapping.get(&f.check_name) else {
            continue;
        };
        for a in actions {
            let skip = f.is_suppressed;
            out.push(ExecutionRecord {
                task_id: task_id.to_owned(),
                seq: out.len() as i64,
                subject: f.finding_id.clone(),
                check_name: Some(f.check_name.clone()),
                thing: None,
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
                message: skip.then(|| "The finding is suppressed".to_owned()),
            });
        }
    }
    out
}

/// `TaskStatisticsForAuditCheck` counts, by finding: a finding failed when one of its actions
/// failed, was cancelled when one was cancelled (and none failed), skipped when all were
/// skipped, succeeded when all that ran succeeded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CheckStatistics {
    pub(crate) total: u64,
    pub(crate) failed: u64,
    pub(crate) succeeded: u64,
    pub(crate) skipped: u64,
    pub(crate) canceled: u64,
}

/// Per-check statistics of a task's executions; every check of `checks` is present.
pub(crate) fn statistics<'a>(
    checks: impl IntoIterator<Item = &'a String>,
    executions: &[ExecutionRecord],
) -> BTreeMap<String, CheckStatistics> {
    let mut by_finding: BTreeMap<(&str, &str), Vec<ExecState>> = BTreeMap::new();
    for e in executions {
        by_finding
            .entry((e.check_name.as_deref().unwrap_or(""), e.subject.as_str()))
            .or_default()
            .push(e.state);
    }
    let mut out: BTreeMap<String, CheckStatistics> = checks
        .into_iter()
        .map(|c| (c.clone(), CheckStatistics::default()))
        .collect();
    for ((check, _), states) in by_finding {
        let s = out.entry(check.to_owned()).or_default();
        s.total += 1;
        let any = |x: ExecState| states.contains(&x);
        if any(ExecState::Failed) {
            s.failed += 1;
        } else if any(ExecState::Canceled) {
            s.canceled += 1;
        } else if states.iter().all(|x| *x == ExecState::Skipped) {
            s.skipped += 1;
        } else if states
            .iter()
            .all(|x| matches!(x, ExecState::Succeeded | ExecState::Skipped))
        {
            s.succeeded += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(check: &str, finding: &str, state: ExecState) -> ExecutionRecord {
        ExecutionRecord {
            task_id: "t".into(),
            seq: 0,
            subject: finding.into(),
            check_name: Some(check.into()),
            thing: None,
            action_name: "a".into(),
            action_id: "i".into(),
            state,
            start_ms: None,
            end_ms: None,
            error_code: None,
            message: None,
        }
    }

    #[test]
    fn statistics_count_findings_not_executions() {
        let c = "DEVICE_CERTIFICATE_EXPIRING_CHECK".to_owned();
        let l = "LOGGING_DISABLED_CHECK".to_owned();
        let execs = [
            exec(&c, "f1", ExecState::Succeeded),
            exec(&c, "f1", ExecState::Succeeded),
            exec(&c, "f2", ExecState::Succeeded),
            exec(&c, "f2", ExecState::Failed),
            exec(&c, "f3", ExecState::Skipped),
            exec(&c, "f4", ExecState::Canceled),
        ];
        let s = statistics([&c, &l], &execs);
        assert_eq!(
            s[&c],
            CheckStatistics {
                total: 4,
                failed: 1,
                succeeded: 1,
                skipped: 1,
                canceled: 1
            }
        );
        assert_eq!(
            s[&l],
            CheckStatistics::default(),
            "a mapped check with no findings"
        );
    }
}
