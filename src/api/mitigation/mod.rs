//! Mitigation at AWS's paths: mitigation actions (CRUD), and audit and detect mitigation-action
//! tasks with their executions. The task operations are written once in [`tasks`], and each
//! task kind supplies its pieces ([`audit_tasks`], [`detect_tasks`]).

mod audit_tasks;
mod detect_tasks;
mod tasks;

use super::extract::{ApiJson, ApiPath, Page, QueryMap};
use super::{AppState, empty, error::ApiError};
use crate::mitigation::ActionDefinition;
use crate::mitigation::action::{Action, ActionParams, ActionType, check_role_arn};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};
use thingward_models::time::millis_to_seconds;
use thingward_store::ActionRecord;

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
        .merge(tasks::routes::<audit_tasks::AuditTasks>())
        .merge(tasks::routes::<detect_tasks::DetectTasks>())
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
        .ok_or_else(|| ApiError::not_found("Mitigation action", name))
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
    state
        .blocking(move |state| {
            check_action_name(&name)?;
            check_role_arn("roleArn", body.role_arn.as_deref()).map_err(invalid)?;
            let raw = body
                .action_params
                .ok_or_else(|| invalid("actionParams is required".into()))?;
            let (params, ty) = action_params(state, raw)?;
            let now = state.detect.now();
            let arn = action_arn(state, &name);
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
                let existing = action_or_404(state, &name)?;
                return Err(ApiError::AlreadyExists {
                    message: format!("Mitigation action '{name}' already exists"),
                    resource_id: existing.action_id,
                    resource_arn: arn,
                });
            }
            Ok(Json(json!({ "actionArn": arn, "actionId": rec.action_id })))
        })
        .await
}

async fn action_describe(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_action_name(&name)?;
            let a = action_or_404(state, &name)?;
            Ok(Json(json!({
                "actionName": a.name,
                "actionType": a.action_type,
                "actionArn": action_arn(state, &a.name),
                "actionId": a.action_id,
                "roleArn": a.role_arn,
                "actionParams": shown_params(&a.params),
                "creationDate": millis_to_seconds(a.creation_ms),
                "lastModifiedDate": millis_to_seconds(a.modified_ms),
            })))
        })
        .await
}

async fn action_update(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<ActionBody>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_action_name(&name)?;
            let current = action_or_404(state, &name)?;
            if let Some(role) = &body.role_arn {
                check_role_arn("roleArn", Some(role)).map_err(invalid)?;
            }
            let params = match body.action_params {
                Some(raw) => {
                    let (params, ty) = action_params(state, raw)?;
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
                json!({ "actionArn": action_arn(state, &name), "actionId": a.action_id }),
            ))
        })
        .await
}

async fn action_delete(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_action_name(&name)?;
            state.store.mitigation_action_delete(&name)?;
            Ok(empty())
        })
        .await
}

async fn actions_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
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
                        "actionArn": action_arn(state, &a.name),
                        "creationDate": millis_to_seconds(a.creation_ms),
                    })
                })
                .collect();
            let (items, next) = page.slice(items);
            Ok(Page::response("actionIdentifiers", items, next))
        })
        .await
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
