//! Mitigation at AWS's paths: mitigation actions (CRUD), detect mitigation tasks and their
//! executions.

use super::extract::{ApiJson, ApiPath, Page, QueryMap};
use super::{AppState, empty, error::ApiError};
use crate::mitigation::ActionDefinition;
use crate::mitigation::action::{Action, ActionParams, ActionType, check_role_arn};
use crate::mitigation::audit::{self, Target as AuditTarget};
use crate::mitigation::detect::{self, Selection};
use crate::store::{
    ActionRecord, ExecState, ExecutionFilter, ExecutionRecord, TaskInsert, TaskKind, TaskRecord,
    TaskState, ViolationSelector,
};
use axum::extract::State;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};
use std::collections::BTreeMap;
use thingward_audit::check::CheckName;
use thingward_models::time::{EpochMillis, epoch_seconds, millis_to_seconds};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/mitigationactions/actions", get(actions_list))
        .route(
            "/mitigationactions/actions/{name}",
            axum::routing::post(action_create)
                .get(action_describe)
                .patch(action_update)
                .delete(action_delete),
        )
        .route("/audit/mitigationactions/tasks", get(audit_tasks_list))
        .route(
            "/audit/mitigationactions/tasks/{id}",
            axum::routing::post(audit_task_start).get(audit_task_describe),
        )
        .route(
            "/audit/mitigationactions/tasks/{id}/cancel",
            put(audit_task_cancel),
        )
        .route(
            "/audit/mitigationactions/executions",
            get(audit_executions_list),
        )
        .route("/detect/mitigationactions/tasks", get(detect_tasks_list))
        .route(
            "/detect/mitigationactions/tasks/{id}",
            put(detect_task_start).get(detect_task_describe),
        )
        .route(
            "/detect/mitigationactions/tasks/{id}/cancel",
            put(detect_task_cancel),
        )
        .route(
            "/detect/mitigationactions/executions",
            get(detect_executions_list),
        )
}

/// Checks an id of the `[a-zA-Z0-9_-]` family (`extra` adds allowed bytes) of 1..=`max` bytes.
fn check_id(kind: &str, value: &str, max: usize, underscore: bool) -> Result<(), ApiError> {
    let ok_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || (underscore && b == b'_');
    if value.is_empty() || value.len() > max || !value.bytes().all(ok_byte) {
        let pattern = if underscore {
            "[a-zA-Z0-9_-]"
        } else {
            "[a-zA-Z0-9-]"
        };
        return Err(ApiError::InvalidRequest(format!(
            "{kind} must be 1..{max} characters of {pattern}; got '{}'",
            value.chars().take(128).collect::<String>()
        )));
    }
    Ok(())
}

fn check_action_name(name: &str) -> Result<(), ApiError> {
    check_id("actionName", name, 128, true)
}

fn check_task_id(id: &str) -> Result<(), ApiError> {
    check_id("taskId", id, 128, true)
}

fn check_token(token: Option<&str>) -> Result<(), ApiError> {
    match token {
        Some(t) => check_id("clientRequestToken", t, 64, true),
        None => Ok(()),
    }
}

fn invalid(message: String) -> ApiError {
    ApiError::InvalidRequest(message)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActionBody {
    role_arn: Option<String>,
    action_params: Option<JsonValue>,
    tags: Option<JsonValue>,
}

/// Parses and validates `actionParams`, including that named thing groups exist.
fn action_params(state: &AppState, raw: JsonValue) -> Result<(ActionParams, ActionType), ApiError> {
    let params: ActionParams =
        serde_json::from_value(raw).map_err(|e| invalid(format!("Invalid actionParams: {e}")))?;
    let ty = params.action_type().map_err(invalid)?;
    let action = params
        .validate(&state.region, &state.account)
        .map_err(invalid)?;
    if let Action::AddThingsToGroups { groups } = &action {
        for g in groups {
            if state.store.group_get(g)?.is_none() {
                return Err(invalid(format!("Thing group '{g}' does not exist")));
            }
        }
    }
    Ok((params, ty))
}

fn action_arn(state: &AppState, name: &str) -> String {
    state.arn(&format!("mitigationaction/{name}"))
}

fn action_or_404(state: &AppState, name: &str) -> Result<ActionRecord, ApiError> {
    state
        .store
        .mitigation_action_get(name)?
        .ok_or_else(|| ApiError::not_found("Mitigation action", &name))
}

/// The stored parameters, with secrets left out.
fn shown_params(params: &JsonValue) -> JsonValue {
    serde_json::from_value::<ActionParams>(params.clone())
        .ok()
        .and_then(|p| serde_json::to_value(p.redacted()).ok())
        .unwrap_or_else(|| json!({}))
}

async fn action_create(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<ActionBody>,
) -> Result<Json<JsonValue>, ApiError> {
    check_action_name(&name)?;
    check_role_arn("roleArn", body.role_arn.as_deref()).map_err(invalid)?;
    let raw = body
        .action_params
        .ok_or_else(|| invalid("actionParams is required".into()))?;
    let (params, ty) = action_params(&state, raw)?;
    let now = state.detect.now();
    let arn = action_arn(&state, &name);
    let rec = ActionRecord {
        name: name.clone(),
        action_id: uuid::Uuid::new_v4().to_string(),
        action_type: ty.as_str().to_owned(),
        role_arn: body.role_arn.unwrap_or_default(),
        params: serde_json::to_value(&params).map_err(ApiError::internal)?,
        creation_ms: now,
        modified_ms: now,
    };
    if !state
        .store
        .mitigation_action_insert(&rec, body.tags.as_ref())?
    {
        let existing = action_or_404(&state, &name)?;
        return Err(ApiError::AlreadyExists {
            message: format!("Mitigation action '{name}' already exists"),
            resource_id: existing.action_id,
            resource_arn: arn,
        });
    }
    Ok(Json(json!({ "actionArn": arn, "actionId": rec.action_id })))
}

async fn action_describe(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    check_action_name(&name)?;
    let a = action_or_404(&state, &name)?;
    Ok(Json(json!({
        "actionName": a.name,
        "actionType": a.action_type,
        "actionArn": action_arn(&state, &a.name),
        "actionId": a.action_id,
        "roleArn": a.role_arn,
        "actionParams": shown_params(&a.params),
        "creationDate": millis_to_seconds(a.creation_ms),
        "lastModifiedDate": millis_to_seconds(a.modified_ms),
    })))
}

async fn action_update(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<ActionBody>,
) -> Result<Json<JsonValue>, ApiError> {
    check_action_name(&name)?;
    let current = action_or_404(&state, &name)?;
    if let Some(role) = &body.role_arn {
        check_role_arn("roleArn", Some(role)).map_err(invalid)?;
    }
    let params = match body.action_params {
        Some(raw) => {
            let (params, ty) = action_params(&state, raw)?;
            if ty.as_str() != current.action_type {
                return Err(invalid(format!(
                    "Mitigation action '{name}' is {}; its type cannot change to {}",
                    current.action_type,
                    ty.as_str()
                )));
            }
            serde_json::to_value(&params).map_err(ApiError::internal)?
        }
        None => current.params,
    };
    let role = body.role_arn.unwrap_or(current.role_arn);
    let a = state
        .store
        .mitigation_action_update(
            &name,
            &role,
            &current.action_type,
            &params,
            state.detect.now(),
        )?
        .ok_or_else(|| ApiError::not_found("Mitigation action", &name))?;
    Ok(Json(
        json!({ "actionArn": action_arn(&state, &name), "actionId": a.action_id }),
    ))
}

async fn action_delete(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    check_action_name(&name)?;
    state.store.mitigation_action_delete(&name)?;
    Ok(empty())
}

async fn actions_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    let page = q.page(100, 250)?;
    let ty = q
        .str("actionType")
        .map(|t| {
            ActionType::parse(t).ok_or_else(|| {
                invalid(format!(
                    "actionType must be one of {}; got '{t}'",
                    ActionType::ALL.map(ActionType::as_str).join(", ")
                ))
            })
        })
        .transpose()?;
    let items: Vec<JsonValue> = state
        .store
        .mitigation_actions_all()?
        .into_iter()
        .filter(|a| ty.is_none_or(|t| a.action_type == t.as_str()))
        .map(|a| {
            json!({
                "actionName": a.name,
                "actionArn": action_arn(&state, &a.name),
                "creationDate": millis_to_seconds(a.creation_ms),
            })
        })
        .collect();
    let (items, next) = page.slice(items);
    Ok(Page::response("actionIdentifiers", items, next))
}

/// The named actions' definitions, checked against `allowed` (what the task family may run).
/// An unknown name is a ResourceNotFoundException.
fn definitions(
    state: &AppState,
    names: &[String],
    allowed: impl Fn(ActionType) -> Result<(), String>,
) -> Result<Vec<ActionDefinition>, ApiError> {
    let mut out: Vec<ActionDefinition> = Vec::new();
    for name in names {
        check_action_name(name)?;
        if out.iter().any(|d| &d.name == name) {
            continue;
        }
        let a = action_or_404(state, name)?;
        let ty = ActionType::parse(&a.action_type)
            .ok_or_else(|| ApiError::internal(format!("stored action type {}", a.action_type)))?;
        allowed(ty).map_err(invalid)?;
        out.push(ActionDefinition {
            name: a.name,
            id: a.action_id,
            role_arn: a.role_arn,
            action_params: serde_json::from_value(a.params).map_err(ApiError::internal)?,
        });
    }
    Ok(out)
}

/// `actionsDefinition` as Describe shows it (no secrets).
fn definitions_json(actions: &JsonValue) -> JsonValue {
    let defs: Vec<ActionDefinition> = serde_json::from_value(actions.clone()).unwrap_or_default();
    JsonValue::Array(
        defs.into_iter()
            .map(|d| {
                json!({
                    "name": d.name,
                    "id": d.id,
                    "roleArn": d.role_arn,
                    "actionParams": d.action_params.redacted(),
                })
            })
            .collect(),
    )
}

/// Stores and starts a task; a taken id is a TaskAlreadyExistsException unless the same
/// client token replays the original request.
fn start_task(
    state: &AppState,
    task: &TaskRecord,
    executions: &[ExecutionRecord],
) -> Result<Json<JsonValue>, ApiError> {
    match state.mitigation.start(task, executions)? {
        TaskInsert::Inserted => {}
        TaskInsert::Exists(token) if token.is_some() && token == task.client_request_token => {}
        TaskInsert::Exists(_) => {
            return Err(ApiError::TaskAlreadyExists(format!(
                "A mitigation actions task with id '{}' already exists",
                task.task_id
            )));
        }
    }
    Ok(Json(json!({ "taskId": task.task_id })))
}

fn task_or_404(state: &AppState, kind: TaskKind, id: &str) -> Result<TaskRecord, ApiError> {
    state
        .store
        .mitigation_task_get(kind, id)?
        .ok_or_else(|| ApiError::not_found("Mitigation actions task", &id))
}

fn task_executions(
    state: &AppState,
    kind: TaskKind,
    id: &str,
) -> Result<Vec<ExecutionRecord>, ApiError> {
    let f = ExecutionFilter {
        task_id: Some(id.to_owned()),
        ..ExecutionFilter::default()
    };
    Ok(state.store.mitigation_executions(kind, &f, 0, 1 << 40)?)
}

async fn task_cancel(
    state: &AppState,
    kind: TaskKind,
    id: &str,
) -> Result<Json<JsonValue>, ApiError> {
    check_task_id(id)?;
    task_or_404(state, kind, id)?;
    if !state.mitigation.cancel(kind, id)? {
        return Err(invalid(format!(
            "Mitigation actions task '{id}' is not in progress; only an in-progress task can be canceled"
        )));
    }
    Ok(empty())
}

/// The required `startTime`/`endTime` of the task listings.
fn required_range(q: &QueryMap) -> Result<(EpochMillis, EpochMillis), ApiError> {
    let start = q
        .time("startTime")?
        .ok_or_else(|| invalid("Query parameter startTime is required".into()))?;
    let end = q
        .time("endTime")?
        .ok_or_else(|| invalid("Query parameter endTime is required".into()))?;
    Ok((start, end))
}

fn detect_task_status(s: TaskState) -> &'static str {
    match s {
        TaskState::InProgress => "IN_PROGRESS",
        TaskState::Done => "SUCCESSFUL",
        TaskState::Failed => "FAILED",
        TaskState::Canceled => "CANCELED",
    }
}

fn detect_exec_status(s: ExecState) -> &'static str {
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
struct DetectStartBody {
    target: Option<DetectTarget>,
    actions: Option<Vec<String>>,
    violation_event_occurrence_range: Option<OccurrenceRange>,
    include_only_active_violations: Option<bool>,
    include_suppressed_alerts: Option<bool>,
    client_request_token: Option<String>,
}

fn detect_selector(state: &AppState, t: DetectTarget) -> Result<ViolationSelector, ApiError> {
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

fn check_action_count(names: &[String]) -> Result<(), ApiError> {
    if names.is_empty() || names.len() > 5 {
        return Err(invalid(format!(
            "A task runs 1..5 actions; got {}",
            names.len()
        )));
    }
    Ok(())
}

async fn detect_task_start(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<DetectStartBody>,
) -> Result<Json<JsonValue>, ApiError> {
    check_task_id(&id)?;
    check_token(body.client_request_token.as_deref())?;
    let target = body
        .target
        .ok_or_else(|| invalid("target is required".into()))?;
    let target_json = json!({
        "violationIds": target.violation_ids,
        "securityProfileName": target.security_profile_name,
        "behaviorName": target.behavior_name,
    });
    let selector = detect_selector(&state, target)?;
    let names = body
        .actions
        .ok_or_else(|| invalid("actions is required".into()))?;
    check_action_count(&names)?;
    let defs = definitions(&state, &names, |ty| {
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
    let now = state.detect.now();
    let violations = detect::violations(&state.store, &sel, now)?;
    let executions = detect::plan(&id, &violations, &defs, sel.include_suppressed, now);
    let task = TaskRecord {
        kind: TaskKind::Detect,
        task_id: id.clone(),
        state: TaskState::InProgress,
        start_ms: now,
        end_ms: None,
        client_request_token: body.client_request_token,
        request: json!({
            "target": target_json,
            "violationEventOccurrenceRange": range.map(|(s, e)| json!({
                "startTime": millis_to_seconds(s), "endTime": millis_to_seconds(e)
            })),
            "onlyActiveViolationsIncluded": sel.only_active,
            "suppressedAlertsIncluded": sel.include_suppressed,
        }),
        actions: serde_json::to_value(&defs).map_err(ApiError::internal)?,
    };
    start_task(&state, &task, &executions)
}

/// `DetectMitigationActionsTaskSummary`.
fn detect_summary(state: &AppState, t: &TaskRecord) -> Result<JsonValue, ApiError> {
    let (executed, skipped, failed) =
        detect::statistics(&task_executions(state, TaskKind::Detect, &t.task_id)?);
    Ok(json!({
        "taskId": t.task_id,
        "taskStatus": detect_task_status(t.state),
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

async fn detect_task_describe(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    check_task_id(&id)?;
    let t = task_or_404(&state, TaskKind::Detect, &id)?;
    Ok(Json(json!({ "taskSummary": detect_summary(&state, &t)? })))
}

async fn detect_tasks_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    let page = q.page(25, 250)?;
    let (start, end) = required_range(&q)?;
    let tasks = state.store.mitigation_tasks(TaskKind::Detect, start, end)?;
    let (tasks, next) = page.slice(tasks);
    let items = tasks
        .iter()
        .map(|t| detect_summary(&state, t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::response("tasks", items, next))
}

async fn detect_task_cancel(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    task_cancel(&state, TaskKind::Detect, &id).await
}

async fn detect_executions_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    let page = q.page(25, 250)?;
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
    let f = ExecutionFilter {
        task_id,
        subject: q.str("violationId").map(str::to_owned),
        thing: q.str("thingName").map(str::to_owned),
        state: None,
        range,
    };
    let rows =
        state
            .store
            .mitigation_executions(TaskKind::Detect, &f, page.offset, page.limit + 1)?;
    let (rows, next) = page.cut(rows);
    let items: Vec<JsonValue> = rows
        .into_iter()
        .map(|e| {
            json!({
                "taskId": e.task_id,
                "violationId": e.subject,
                "actionName": e.action_name,
                "thingName": e.thing,
                "executionStartDate": e.start_ms.map(millis_to_seconds),
                "executionEndDate": e.end_ms.map(millis_to_seconds),
                "status": detect_exec_status(e.state),
                "errorCode": e.error_code,
                "message": e.message,
            })
        })
        .collect();
    Ok(Page::response("actionsExecutions", items, next))
}

fn audit_task_status(s: TaskState) -> &'static str {
    match s {
        TaskState::InProgress => "IN_PROGRESS",
        TaskState::Done => "COMPLETED",
        TaskState::Failed => "FAILED",
        TaskState::Canceled => "CANCELED",
    }
}

fn audit_exec_status(s: ExecState) -> &'static str {
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditStartBody {
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

async fn audit_task_start(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<AuditStartBody>,
) -> Result<Json<JsonValue>, ApiError> {
    check_task_id(&id)?;
    check_token(body.client_request_token.as_deref())?;
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
        let defs = definitions(&state, names, |ty| {
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
    let now = state.detect.now();
    let findings = audit::findings(&state.store, &target, now)?;
    let executions = audit::plan(&id, &findings, &mapping, now);
    let task = TaskRecord {
        kind: TaskKind::Audit,
        task_id: id.clone(),
        state: TaskState::InProgress,
        start_ms: now,
        end_ms: None,
        client_request_token: body.client_request_token,
        request: json!({
            "target": target_json,
            "auditCheckToActionsMapping": mapping_names,
        }),
        actions: serde_json::to_value(&all).map_err(ApiError::internal)?,
    };
    start_task(&state, &task, &executions)
}

/// The stored request's object with its null members left out.
fn without_nulls(v: &JsonValue) -> JsonValue {
    match v {
        JsonValue::Object(m) => JsonValue::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

async fn audit_task_describe(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    check_task_id(&id)?;
    let t = task_or_404(&state, TaskKind::Audit, &id)?;
    let mapping: BTreeMap<String, Vec<String>> =
        serde_json::from_value(t.request["auditCheckToActionsMapping"].clone()).unwrap_or_default();
    let stats = audit::statistics(
        mapping.keys(),
        &task_executions(&state, TaskKind::Audit, &id)?,
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
    Ok(Json(json!({
        "taskStatus": audit_task_status(t.state),
        "startTime": millis_to_seconds(t.start_ms),
        "endTime": t.end_ms.map(millis_to_seconds),
        "taskStatistics": stats,
        "target": without_nulls(&t.request["target"]),
        "auditCheckToActionsMapping": mapping,
        "actionsDefinition": definitions_json(&t.actions),
    })))
}

async fn audit_tasks_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    let page = q.page(25, 250)?;
    let (start, end) = required_range(&q)?;
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
    let mut tasks = Vec::new();
    for t in state.store.mitigation_tasks(TaskKind::Audit, start, end)? {
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
        tasks.push(json!({
            "taskId": t.task_id,
            "startTime": millis_to_seconds(t.start_ms),
            "taskStatus": audit_task_status(t.state),
        }));
    }
    let (tasks, next) = page.slice(tasks);
    Ok(Page::response("tasks", tasks, next))
}

async fn audit_task_cancel(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    task_cancel(&state, TaskKind::Audit, &id).await
}

async fn audit_executions_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    let page = q.page(25, 250)?;
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
            .find(|e| audit_exec_status(*e) == s)
            .ok_or_else(|| {
                invalid(format!(
                    "actionStatus must be IN_PROGRESS, COMPLETED, FAILED, CANCELED, SKIPPED or PENDING; got '{s}'"
                ))
            })
        })
        .transpose()?;
    let f = ExecutionFilter {
        task_id: Some(task_id),
        subject: q.str("findingId").map(str::to_owned),
        thing: None,
        state: status,
        range: None,
    };
    let rows =
        state
            .store
            .mitigation_executions(TaskKind::Audit, &f, page.offset, page.limit + 1)?;
    let (rows, next) = page.cut(rows);
    let items: Vec<JsonValue> = rows
        .into_iter()
        .map(|e| {
            json!({
                "taskId": e.task_id,
                "findingId": e.subject,
                "actionName": e.action_name,
                "actionId": e.action_id,
                "status": audit_exec_status(e.state),
                "startTime": e.start_ms.map(millis_to_seconds),
                "endTime": e.end_ms.map(millis_to_seconds),
                "errorCode": e.error_code,
                "message": e.message,
            })
        })
        .collect();
    Ok(Page::response("actionsExecutions", items, next))
}
