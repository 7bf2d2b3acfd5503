//! IoT policies: CreatePolicy, GetPolicy, ListPolicies, DeletePolicy, and AttachPolicy /
//! DetachPolicy (targets). A policy is stored (created through the API) or read from the audit
//! configuration's policy directory.

use super::marker_page;
use crate::api::error::ApiError;
use crate::api::extract::{ApiJson, ApiPath, Page, QueryMap};
use crate::api::{AppState, empty};
use crate::audit::snapshot;
use axum::extract::State;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};
use thingward_models::time::millis_to_seconds;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/policies", get(policies_list))
        .route(
            "/policies/{name}",
            post(policy_create).get(policy_get).delete(policy_delete),
        )
        .route(
            "/target-policies/{name}",
            put(policy_attach).post(policy_detach),
        )
}

/// A policy name: `[\w+=,.@-]{1,128}`.
pub(super) fn check_policy_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty()
        || name.len() > 128
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
    {
        return Err(ApiError::InvalidRequest(format!(
            "policyName '{name}' must be 1..128 characters of [a-zA-Z0-9_+=,.@-]"
        )));
    }
    Ok(())
}

/// AWS's limit on a policy document: characters, whitespace not counted.
const POLICY_DOCUMENT_MAX_CHARS: usize = 2048;

/// A policy document is 1..=2048 characters excluding whitespace (else
/// `MalformedPolicyException`, as AWS answers) and a JSON object.
pub(super) fn check_document(doc: &str) -> Result<(), ApiError> {
    let chars = doc.chars().filter(|c| !c.is_whitespace()).count();
    if chars == 0 || chars > POLICY_DOCUMENT_MAX_CHARS {
        return Err(ApiError::MalformedPolicy(format!(
            "policyDocument must be 1..{POLICY_DOCUMENT_MAX_CHARS} characters excluding whitespace, got {chars}"
        )));
    }
    match serde_json::from_str::<JsonValue>(doc) {
        Ok(JsonValue::Object(_)) => Ok(()),
        Ok(_) => Err(ApiError::InvalidRequest(
            "policyDocument must be a JSON object".into(),
        )),
        Err(e) => Err(ApiError::InvalidRequest(format!(
            "policyDocument is not JSON: {e}"
        ))),
    }
}

/// The document of a policy read from the policy directory (`<name>.json`).
fn dir_policy(state: &AppState, name: &str) -> Option<String> {
    let dir = state.audit.files()?.policy_dir.as_ref()?;
    std::fs::read_to_string(dir.join(format!("{name}.json"))).ok()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PolicyIn {
    policy_document: String,
    tags: Option<JsonValue>,
}

async fn policy_create(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<PolicyIn>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_policy_name(&name)?;
            check_document(&body.policy_document)?;
            let _ = body.tags;
            let arn = state.arn(&format!("policy/{name}"));
            if dir_policy(state, &name).is_some()
                || !state
                    .store
                    .policy_create(&name, &body.policy_document, state.audit.now_ms())?
            {
                return Err(ApiError::AlreadyExists {
                    message: format!("Policy '{name}' already exists"),
                    resource_id: name,
                    resource_arn: arn,
                });
            }
            Ok(Json(json!({
                "policyName": name,
                "policyArn": arn,
                "policyDocument": body.policy_document,
                "policyVersionId": "1",
            })))
        })
        .await
}

pub(super) fn policy_not_found(name: &str) -> ApiError {
    ApiError::not_found("Policy", name)
}

async fn policy_get(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_policy_name(&name)?;
            let arn = state.arn(&format!("policy/{name}"));
            if let Some(p) = state.store.policy_get(&name)? {
                let v = state
                    .store
                    .policy_version_get(&name, p.default_version)?
                    .ok_or_else(|| ApiError::internal("default policy version missing"))?;
                return Ok(Json(json!({
                    "policyName": name,
                    "policyArn": arn,
                    "policyDocument": v.document,
                    "defaultVersionId": p.default_version.to_string(),
                    "creationDate": millis_to_seconds(p.created_ms),
                    "lastModifiedDate": millis_to_seconds(p.modified_ms),
                })));
            }
            let doc = dir_policy(state, &name).ok_or_else(|| policy_not_found(&name))?;
            Ok(Json(json!({
                "policyName": name,
                "policyArn": arn,
                "policyDocument": doc,
                "defaultVersionId": "1",
            })))
        })
        .await
}

async fn policies_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let page = marker_page(&q)?;
            let mut names: Vec<String> = state
                .store
                .policies_all()?
                .into_iter()
                .map(|p| p.name)
                .collect();
            if let Some(dir) = state.audit.files().and_then(|f| f.policy_dir.as_deref()) {
                let mut unreadable = Vec::new();
                names.extend(
                    snapshot::dir_policies(dir, &mut unreadable)
                        .into_iter()
                        .map(|p| p.name),
                );
            }
            names.sort();
            names.dedup();
            if q.bool("ascendingOrder")? == Some(false) {
                names.reverse();
            }
            let (items, next) = page.slice(names);
            let items: Vec<JsonValue> = items
                .iter()
                .map(|n| json!({ "policyName": n, "policyArn": state.arn(&format!("policy/{n}")) }))
                .collect();
            Ok(Page::marker_response("policies", items, next))
        })
        .await
}

async fn policy_delete(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_policy_name(&name)?;
            if state.store.policy_get(&name)?.is_none() {
                return Err(policy_not_found(&name));
            }
            if state
                .store
                .policy_targets_all()?
                .iter()
                .any(|(p, _)| *p == name)
            {
                return Err(ApiError::RegistryConflict {
                    error_type: "DeleteConflictException",
                    message: format!("Policy '{name}' is attached; detach it first"),
                });
            }
            state.store.policy_delete(&name)?;
            Ok(empty())
        })
        .await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TargetIn {
    target: String,
}

fn policy_target(
    state: &AppState,
    name: &str,
    target: &str,
    attached: bool,
) -> Result<(), ApiError> {
    check_policy_name(name)?;
    if state.store.policy_get(name)?.is_none() && dir_policy(state, name).is_none() {
        return Err(policy_not_found(name));
    }
    if target.is_empty() || target.len() > 2048 {
        return Err(ApiError::InvalidRequest(
            "target must be 1..2048 characters".into(),
        ));
    }
    state.store.policy_target_set(name, target, attached)?;
    Ok(())
}

async fn policy_attach(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<TargetIn>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            policy_target(state, &name, &body.target, true)?;
            Ok(empty())
        })
        .await
}

async fn policy_detach(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<TargetIn>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            policy_target(state, &name, &body.target, false)?;
            Ok(empty())
        })
        .await
}
