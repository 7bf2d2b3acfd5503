//! IoT policy versions: CreatePolicyVersion, ListPolicyVersions, GetPolicyVersion,
//! SetDefaultPolicyVersion, DeletePolicyVersion.

use super::policies::{check_document, check_policy_name, policy_not_found};
use crate::api::error::{ApiError, policy_version_error};
use crate::api::extract::{ApiJson, ApiPath, QueryMap};
use crate::api::{AppState, empty};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};
use thingward_models::time::millis_to_seconds;
use thingward_store::PolicyVersionRecord;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/policies/{name}/version",
            post(policy_version_create).get(policy_versions_list),
        )
        .route(
            "/policies/{name}/version/{version}",
            get(policy_version_get)
                .patch(policy_default_set)
                .delete(policy_version_delete),
        )
}

fn policy_version(v: &str) -> Result<i64, ApiError> {
    v.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::InvalidRequest(format!("policyVersionId '{v}' must be digits")))
}

/// A policy version is named `<policy>/<version>`.
fn version_not_found(name: &str, version: &str) -> ApiError {
    ApiError::not_found("Policy version", &format!("{name}/{version}"))
}

fn version_json(state: &AppState, v: &PolicyVersionRecord) -> JsonValue {
    json!({
        "policyName": v.name,
        "policyArn": state.arn(&format!("policy/{}", v.name)),
        "policyDocument": v.document,
        "policyVersionId": v.version.to_string(),
        "isDefaultVersion": v.is_default,
        "creationDate": millis_to_seconds(v.created_ms),
        "lastModifiedDate": millis_to_seconds(v.created_ms),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VersionIn {
    policy_document: String,
    set_as_default: Option<bool>,
}

async fn policy_version_create(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    q: QueryMap,
    ApiJson(body): ApiJson<VersionIn>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_policy_name(&name)?;
            check_document(&body.policy_document)?;
            let set_default = q
                .bool("setAsDefault")?
                .or(body.set_as_default)
                .unwrap_or(false);
            let v = state
                .store
                .policy_version_create(
                    &name,
                    &body.policy_document,
                    set_default,
                    state.audit.now_ms(),
                )
                .map_err(|e| policy_version_error(&name, e))?;
            let mut out = version_json(state, &v);
            if let Some(o) = out.as_object_mut() {
                o.remove("policyName");
                o.remove("creationDate");
                o.remove("lastModifiedDate");
            }
            Ok(Json(out))
        })
        .await
}

async fn policy_versions_list(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_policy_name(&name)?;
            if state.store.policy_get(&name)?.is_none() {
                return Err(policy_not_found(&name));
            }
            let versions: Vec<JsonValue> = state
                .store
                .policy_versions(&name)?
                .iter()
                .map(|v| {
                    json!({
                        "versionId": v.version.to_string(),
                        "isDefaultVersion": v.is_default,
                        "createDate": millis_to_seconds(v.created_ms),
                    })
                })
                .collect();
            Ok(Json(json!({ "policyVersions": versions })))
        })
        .await
}

async fn policy_version_get(
    State(state): State<AppState>,
    ApiPath((name, version)): ApiPath<(String, String)>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_policy_name(&name)?;
            let n = policy_version(&version)?;
            let v = state
                .store
                .policy_version_get(&name, n)?
                .ok_or_else(|| version_not_found(&name, &version))?;
            Ok(Json(version_json(state, &v)))
        })
        .await
}

async fn policy_default_set(
    State(state): State<AppState>,
    ApiPath((name, version)): ApiPath<(String, String)>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_policy_name(&name)?;
            let n = policy_version(&version)?;
            if !state
                .store
                .policy_default_set(&name, n, state.audit.now_ms())?
            {
                return Err(version_not_found(&name, &version));
            }
            Ok(empty())
        })
        .await
}

async fn policy_version_delete(
    State(state): State<AppState>,
    ApiPath((name, version)): ApiPath<(String, String)>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_policy_name(&name)?;
            let n = policy_version(&version)?;
            let v = state
                .store
                .policy_version_get(&name, n)?
                .ok_or_else(|| version_not_found(&name, &version))?;
            if v.is_default {
                return Err(ApiError::RegistryConflict {
                    error_type: "DeleteConflictException",
                    message: "The default version of a policy cannot be deleted".into(),
                });
            }
            state.store.policy_version_delete(&name, n)?;
            Ok(empty())
        })
        .await
}
