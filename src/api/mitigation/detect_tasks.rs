//! Detect mitigation-action tasks (`/detect/mitigationactions/…`): their [`TaskFamily`]
//! pieces. A task applies actions to named violations or to a profile's (optionally one
//! behavior's) violations in a time range.

use super::tasks::{
    Planned, TaskFamily, check_action_count, definitions_json, task_executions, without_nulls,
};
use super::{check_id, check_task_id, definitions, invalid};
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::api::extract::QueryMap;
use crate::mitigation::detect::{self, Selection};
use axum::routing::MethodFilter;
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};
use thingward_models::time::{EpochMillis, epoch_seconds, millis_to_seconds};
use thingward_store::{
    ExecState, ExecutionFilter, ExecutionRecord, TaskKind, TaskRecord, TaskState, ViolationSelector,
};

/// Detect mitigation-action tasks.
#[derive(Debug)]
pub(super) struct DetectTasks;

fn task_status(s: TaskState) -> &'static str {
    match s {
        TaskState::InProgress => "IN_PROGRESS",
        TaskState::Done => "SUCCESSFUL",
        TaskState::Failed => "FAILED",
        TaskState::Canceled => "CANCELED",
    }
}

fn exec_status(s: ExecState) -> &'static str {
    match s {
        ExecState::Pending | ExecState::InProgress => "IN_PROGRESS",
        ExecState::Succeeded => "SUCCESSFUL",
        ExecState::Failed => "FAILED",
        ExecState::Skipped | ExecState::Canceled => "SKIPPED",
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DetectTarget {
    violation_ids: Option<Vec<String>>,
    security_profile_name: Option<String>,
    behavior_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OccurrenceRange {
    #[serde(with = "epoch_seconds")]
    start_time: EpochMillis,
    #[serde(with = "epoch_seconds")]
    end_time: EpochMillis,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DetectStartBody {
    target: Option<DetectTarget>,
    actions: Option<Vec<String>>,
    violation_event_occurrence_range: Option<OccurrenceRange>,
    include_only_active_violations: Option<bool>,
    include_suppressed_alerts: Option<bool>,
    client_request_token: Option<String>,
}

fn violation_selector(state: &AppState, t: DetectTarget) -> Result<ViolationSelector, ApiError> {
    match (t.violation_ids, t.security_profile_name) {
        (Some(ids), None) => {
            if t.behavior_name.is_some() {
                return Err(invalid(
                    "target.behaviorName goes with securityProfileName, not violationIds".into(),
                ));
            }
            if ids.is_empty() || ids.len() > 25 {
                return Err(invalid(format!(
                    "target.violationIds must hold 1..25 ids; got {}",
                    ids.len()
                )));
            }
            for id in &ids {
                check_id("violationId", id, 128, false)?;
            }
            Ok(ViolationSelector::Ids(ids))
        }
        (None, Some(profile)) => {
            thingward_models::names::check_resource_name("securityProfileName", &profile)?;
            if let Some(b) = &t.behavior_name {
                thingward_models::names::check_resource_name("behaviorName", b)?;
            }
            if state.store.profile_get(&profile)?.is_none() {
                return Err(ApiError::not_found("Security profile", &profile));
            }
            Ok(ViolationSelector::Profile {
                profile,
                behavior: t.behavior_name,
            })
        }
        _ => Err(invalid(
            "target must set exactly one of violationIds and securityProfileName".into(),
        )),
    }
}

impl TaskFamily for DetectTasks {
    const KIND: TaskKind = TaskKind::Detect;
    const PREFIX: &'static str = "/detect/mitigationactions";
    const START: MethodFilter = MethodFilter::PUT;
    type Start = DetectStartBody;

    fn client_request_token(body: &DetectStartBody) -> Option<String> {
        body.client_request_token.clone()
    }

    fn plan(
        state: &AppState,
        task_id: &str,
        body: DetectStartBody,
        now: EpochMillis,
    ) -> Result<Planned, ApiError> {
        let target = body
            .target
            .ok_or_else(|| invalid("target is required".into()))?;
        let target_json = json!({
            "violationIds": target.violation_ids,
            "securityProfileName": target.security_profile_name,
            "behaviorName": target.behavior_name,
        });
        let selector = violation_selector(state, target)?;
        let names = body
            .actions
            .ok_or_else(|| invalid("actions is required".into()))?;
        check_action_count(&names)?;
        let defs = definitions(state, &names, |ty| {
            if ty.applies_to_violations() {
                Ok(())
            } else {
                Err(format!(
                    "{} actions do not apply to violations; detect tasks run ADD_THINGS_TO_THING_GROUP, UPDATE_DEVICE_CERTIFICATE, PUBLISH_FINDING_TO_SNS and BAN_CLIENT_ON_BROKER",
                    ty.as_str()
                ))
            }
        })?;
        let range = body
            .violation_event_occurrence_range
            .map(|r| {
                if r.start_time > r.end_time {
                    Err(invalid(
                        "violationEventOccurrenceRange.startTime is after its endTime".into(),
                    ))
                } else {
                    Ok((r.start_time, r.end_time))
                }
            })
            .transpose()?;
        let sel = Selection {
            selector,
            range,
            only_active: body.include_only_active_violations.unwrap_or(false),
            include_suppressed: body.include_suppressed_alerts.unwrap_or(false),
        };
        let violations = detect::violations(&*state.store, &sel, now)?;
        Ok(Planned {
            executions: detect::plan(task_id, &violations, &defs, sel.include_suppressed, now),
            request: json!({
                "target": target_json,
                "violationEventOccurrenceRange": range.map(|(s, e)| json!({
                    "startTime": millis_to_seconds(s), "endTime": millis_to_seconds(e)
                })),
                "onlyActiveViolationsIncluded": sel.only_active,
                "suppressedAlertsIncluded": sel.include_suppressed,
            }),
            actions: defs,
        })
    }

    fn describe(state: &AppState, t: &TaskRecord) -> Result<JsonValue, ApiError> {
        Ok(json!({ "taskSummary": Self::summary(state, t)? }))
    }

    /// Detect listings have no filters beyond the time range.
    fn select(
        _: &AppState,
        _: &QueryMap,
        tasks: Vec<TaskRecord>,
    ) -> Result<Vec<TaskRecord>, ApiError> {
        Ok(tasks)
    }

    /// `DetectMitigationActionsTaskSummary`.
    fn summary(state: &AppState, t: &TaskRecord) -> Result<JsonValue, ApiError> {
        let (executed, skipped, failed) =
            detect::statistics(&task_executions(state, TaskKind::Detect, &t.task_id)?);
        Ok(json!({
            "taskId": t.task_id,
            "taskStatus": task_status(t.state),
            "taskStartTime": millis_to_seconds(t.start_ms),
            "taskEndTime": t.end_ms.map(millis_to_seconds),
            "target": without_nulls(&t.request["target"]),
            "violationEventOccurrenceRange": t.request["violationEventOccurrenceRange"],
            "onlyActiveViolationsIncluded": t.request["onlyActiveViolationsIncluded"],
            "suppressedAlertsIncluded": t.request["suppressedAlertsIncluded"],
            "actionsDefinition": definitions_json(&t.actions),
            "taskStatistics": {
                "actionsExecuted": executed,
                "actionsSkipped": skipped,
                "actionsFailed": failed,
            },
        }))
    }

    fn execution_filter(q: &QueryMap) -> Result<ExecutionFilter, ApiError> {
        let task_id = q.str("taskId").map(str::to_owned);
        if let Some(t) = &task_id {
            check_task_id(t)?;
        }
        let range = match (q.time("startTime")?, q.time("endTime")?) {
            (Some(s), Some(e)) => Some((s, e)),
            (None, None) => None,
            _ => {
                return Err(invalid("startTime and endTime go together".into()));
            }
        };
        if task_id.is_none() && range.is_none() {
            return Err(invalid("Give taskId, or startTime and endTime".into()));
        }
        if let Some(v) = q.str("violationId") {
            check_id("violationId", v, 128, false)?;
        }
        if let Some(t) = q.str("thingName") {
            thingward_models::ThingName::try_from(t)?;
        }
        Ok(ExecutionFilter {
            task_id,
            subject: q.str("violationId").map(str::to_owned),
            thing: q.str("thingName").map(str::to_owned),
            state: None,
            range,
        })
    }

    fn execution_json(e: ExecutionRecord) -> JsonValue {
        json!({
            "taskId": e.task_id,
            "violationId": e.subject,
            "actionName": e.action_name,
            "thingName": e.thing,
            "executionStartDate": e.start_ms.map(millis_to_seconds),
            "executionEndDate": e.end_ms.map(millis_to_seconds),
            "status": exec_status(e.state),
            "errorCode": e.error_code,
            "message": e.message,
        })
    }
}
