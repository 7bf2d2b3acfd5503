//! Audit mitigation-action tasks (`/audit/mitigationactions/…`): their [`TaskFamily`] pieces.
//! A task applies actions to the findings of an audit task (optionally filtered by reason
//! code) or to named findings, with the actions chosen per check.

use super::tasks::{
    Planned, TaskFamily, check_action_count, definitions_json, task_executions, without_nulls,
};
use super::{check_id, check_task_id, definitions, invalid};
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::api::extract::QueryMap;
use crate::mitigation::ActionDefinition;
use crate::mitigation::audit::{self, Target as AuditTarget};
use axum::routing::MethodFilter;
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};
use std::collections::BTreeMap;
use thingward_audit::check::CheckName;
use thingward_models::time::{EpochMillis, millis_to_seconds};
use thingward_store::{
    ExecState, ExecutionFilter, ExecutionRecord, TaskKind, TaskRecord, TaskState,
};

/// Audit mitigation-action tasks.
#[derive(Debug)]
pub(super) struct AuditTasks;

fn task_status(s: TaskState) -> &'static str {
    match s {
        TaskState::InProgress => "IN_PROGRESS",
        TaskState::Done => "COMPLETED",
        TaskState::Failed => "FAILED",
        TaskState::Canceled => "CANCELED",
    }
}

fn exec_status(s: ExecState) -> &'static str {
    match s {
        ExecState::Pending => "PENDING",
        ExecState::InProgress => "IN_PROGRESS",
        ExecState::Succeeded => "COMPLETED",
        ExecState::Failed => "FAILED",
        ExecState::Skipped => "SKIPPED",
        ExecState::Canceled => "CANCELED",
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditTargetBody {
    audit_task_id: Option<String>,
    finding_ids: Option<Vec<String>>,
    audit_check_to_reason_code_filter: Option<BTreeMap<String, Vec<String>>>,
}

/// StartAuditMitigationActionsTask's body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AuditStartBody {
    target: Option<AuditTargetBody>,
    audit_check_to_actions_mapping: Option<BTreeMap<String, Vec<String>>>,
    client_request_token: Option<String>,
}

fn check_name(name: &str) -> Result<CheckName, ApiError> {
    CheckName::parse(name).ok_or_else(|| invalid(format!("Unknown audit check '{name}'")))
}

fn audit_target(t: AuditTargetBody) -> Result<AuditTarget, ApiError> {
    match (t.audit_task_id, t.finding_ids) {
        (Some(task_id), None) => {
            check_id("target.auditTaskId", &task_id, 40, false)?;
            if let Some(filter) = &t.audit_check_to_reason_code_filter {
                for (check, codes) in filter {
                    check_name(check)?;
                    if codes.is_empty() || codes.len() > 25 {
                        return Err(invalid(format!(
                            "auditCheckToReasonCodeFilter.{check} must hold 1..25 reason codes; got {}",
                            codes.len()
                        )));
                    }
                }
            }
            Ok(AuditTarget::AuditTask {
                task_id,
                reason_codes: t.audit_check_to_reason_code_filter,
            })
        }
        (None, Some(ids)) => {
            if t.audit_check_to_reason_code_filter.is_some() {
                return Err(invalid(
                    "target.auditCheckToReasonCodeFilter goes with auditTaskId, not findingIds"
                        .into(),
                ));
            }
            if ids.is_empty() || ids.len() > 25 {
                return Err(invalid(format!(
                    "target.findingIds must hold 1..25 ids; got {}",
                    ids.len()
                )));
            }
            for id in &ids {
                check_id("findingId", id, 128, true)?;
            }
            Ok(AuditTarget::Findings(ids))
        }
        _ => Err(invalid(
            "target must set exactly one of auditTaskId (with an optional auditCheckToReasonCodeFilter) and findingIds".into(),
        )),
    }
}

impl TaskFamily for AuditTasks {
    const KIND: TaskKind = TaskKind::Audit;
    const PREFIX: &'static str = "/audit/mitigationactions";
    const START: MethodFilter = MethodFilter::POST;
    type Start = AuditStartBody;

    fn client_request_token(body: &AuditStartBody) -> Option<String> {
        body.client_request_token.clone()
    }

    fn plan(
        state: &AppState,
        task_id: &str,
        body: AuditStartBody,
        now: EpochMillis,
    ) -> Result<Planned, ApiError> {
        let target_body = body
            .target
            .ok_or_else(|| invalid("target is required".into()))?;
        let target_json = json!({
            "auditTaskId": target_body.audit_task_id,
            "findingIds": target_body.finding_ids,
            "auditCheckToReasonCodeFilter": target_body.audit_check_to_reason_code_filter,
        });
        let target = audit_target(target_body)?;
        let mapping_names = body
            .audit_check_to_actions_mapping
            .ok_or_else(|| invalid("auditCheckToActionsMapping is required".into()))?;
        if mapping_names.is_empty() {
            return Err(invalid(
                "auditCheckToActionsMapping must map at least one check".into(),
            ));
        }
        let mut mapping: BTreeMap<String, Vec<ActionDefinition>> = BTreeMap::new();
        let mut all: Vec<ActionDefinition> = Vec::new();
        for (check, names) in &mapping_names {
            let info = check_name(check)?.info();
            check_action_count(names)?;
            let defs = definitions(state, names, |ty| {
                let allowed = thingward_audit::check::ActionType::parse(ty.as_str())
                    .is_some_and(|t| info.allowed_actions.contains(&t));
                if allowed {
                    Ok(())
                } else {
                    Err(format!(
                        "{} actions are not allowed for {check}; it allows {}",
                        ty.as_str(),
                        info.allowed_actions
                            .iter()
                            .map(|t| t.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }
            })?;
            for d in &defs {
                if !all.iter().any(|a| a.name == d.name) {
                    all.push(d.clone());
                }
            }
            mapping.insert(check.clone(), defs);
        }
        let findings = audit::findings(&*state.store, &target, now)?;
        Ok(Planned {
            executions: audit::plan(task_id, &findings, &mapping, now),
            request: json!({
                "target": target_json,
                "auditCheckToActionsMapping": mapping_names,
            }),
            actions: all,
        })
    }

    fn describe(state: &AppState, t: &TaskRecord) -> Result<JsonValue, ApiError> {
        let mapping: BTreeMap<String, Vec<String>> =
            serde_json::from_value(t.request["auditCheckToActionsMapping"].clone())
                .unwrap_or_default();
        let stats = audit::statistics(
            mapping.keys(),
            &task_executions(state, TaskKind::Audit, &t.task_id)?,
        );
        let stats: serde_json::Map<String, JsonValue> = stats
            .into_iter()
            .map(|(check, s)| {
                (
                    check,
                    json!({
                        "totalFindingsCount": s.total,
                        "failedFindingsCount": s.failed,
                        "succeededFindingsCount": s.succeeded,
                        "skippedFindingsCount": s.skipped,
                        "canceledFindingsCount": s.canceled,
                    }),
                )
            })
            .collect();
        Ok(json!({
            "taskStatus": task_status(t.state),
            "startTime": millis_to_seconds(t.start_ms),
            "endTime": t.end_ms.map(millis_to_seconds),
            "taskStatistics": stats,
            "target": without_nulls(&t.request["target"]),
            "auditCheckToActionsMapping": mapping,
            "actionsDefinition": definitions_json(&t.actions),
        }))
    }

    /// `taskStatus`, `auditTaskId` and `findingId` (a task with an execution on it).
    fn select(
        state: &AppState,
        q: &QueryMap,
        tasks: Vec<TaskRecord>,
    ) -> Result<Vec<TaskRecord>, ApiError> {
        let status = q
            .str("taskStatus")
            .map(|s| match s {
                "IN_PROGRESS" => Ok(TaskState::InProgress),
                "COMPLETED" => Ok(TaskState::Done),
                "FAILED" => Ok(TaskState::Failed),
                "CANCELED" => Ok(TaskState::Canceled),
                other => Err(invalid(format!(
                    "taskStatus must be IN_PROGRESS, COMPLETED, FAILED or CANCELED; got '{other}'"
                ))),
            })
            .transpose()?;
        let audit_task = q.str("auditTaskId");
        let finding = q.str("findingId");
        let mut selected = Vec::new();
        for t in tasks {
            if status.is_some_and(|s| s != t.state)
                || audit_task.is_some_and(|a| t.request["target"]["auditTaskId"] != a)
            {
                continue;
            }
            if let Some(f) = finding {
                let filter = ExecutionFilter {
                    task_id: Some(t.task_id.clone()),
                    subject: Some(f.to_owned()),
                    ..ExecutionFilter::default()
                };
                if state
                    .store
                    .mitigation_executions(TaskKind::Audit, &filter, 0, 1)?
                    .is_empty()
                {
                    continue;
                }
            }
            selected.push(t);
        }
        Ok(selected)
    }

    fn summary(_: &AppState, t: &TaskRecord) -> Result<JsonValue, ApiError> {
        Ok(json!({
            "taskId": t.task_id,
            "startTime": millis_to_seconds(t.start_ms),
            "taskStatus": task_status(t.state),
        }))
    }

    fn execution_filter(q: &QueryMap) -> Result<ExecutionFilter, ApiError> {
        let task_id = q.required("taskId")?.to_owned();
        check_task_id(&task_id)?;
        if let Some(f) = q.str("findingId") {
            check_id("findingId", f, 128, true)?;
        }
        let status = q
            .str("actionStatus")
            .map(|s| {
                [
                    ExecState::Pending,
                    ExecState::InProgress,
                    ExecState::Succeeded,
                    ExecState::Failed,
                    ExecState::Skipped,
                    ExecState::Canceled,
                ]
                .into_iter()
                .find(|e| exec_status(*e) == s)
                .ok_or_else(|| {
                    invalid(format!(
                        "actionStatus must be IN_PROGRESS, COMPLETED, FAILED, CANCELED, SKIPPED or PENDING; got '{s}'"
                    ))
                })
            })
            .transpose()?;
        Ok(ExecutionFilter {
            task_id: Some(task_id),
            subject: q.str("findingId").map(str::to_owned),
            thing: None,
            state: status,
            range: None,
        })
    }

    fn execution_json(e: ExecutionRecord) -> JsonValue {
        json!({
            "taskId": e.task_id,
            "findingId": e.subject,
            "actionName": e.action_name,
            "actionId": e.action_id,
            "status": exec_status(e.state),
            "startTime": e.start_ms.map(millis_to_seconds),
            "endTime": e.end_ms.map(millis_to_seconds),
            "errorCode": e.error_code,
            "message": e.message,
        })
    }
}
