//! Certificate revocation lists at thingward's own path (`/thingward/v1/crls`; AWS has no CRL
//! API): put, get, delete, list.

use crate::api::error::ApiError;
use crate::api::extract::{ApiBytes, ApiPath, Page, QueryMap};
use crate::api::{AppState, empty};
use axum::extract::State;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::{Value as JsonValue, json};
use thingward_models::time::millis_to_seconds;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/thingward/v1/crls", get(crls_list))
        .route(
            "/thingward/v1/crls/{name}",
            put(crl_put).get(crl_get).delete(crl_delete),
        )
}

fn check_crl_name(name: &str) -> Result<(), ApiError> {
    thingward_models::names::check_resource_name("CRL name", name)?;
    Ok(())
}

async fn crl_put(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiBytes(body): ApiBytes,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_crl_name(&name)?;
            let pem = std::str::from_utf8(&body)
                .map_err(|_| ApiError::InvalidRequest("The CRL must be PEM text".into()))?;
            let bundle = thingward_audit::parse_pem_bundle(pem, &name);
            if let Some(p) = bundle.problems.first() {
                return Err(ApiError::InvalidRequest(format!(
                    "The CRL does not parse ({}): {}",
                    p.source, p.message
                )));
            }
            if bundle.crls.is_empty() {
                return Err(ApiError::InvalidRequest(
                    "The body holds no PEM X509 CRL block".into(),
                ));
            }
            let created = state.store.crl_put(&name, pem, state.audit.now_ms())?;
            Ok(Json(json!({ "name": name, "created": created })))
        })
        .await
}

async fn crl_get(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_crl_name(&name)?;
            let rec = state
                .store
                .crl_get(&name)?
                .ok_or_else(|| ApiError::not_found("CRL", &name))?;
            Ok(Json(json!({
                "name": rec.name,
                "crlPem": rec.pem,
                "creationDate": millis_to_seconds(rec.created_ms),
                "lastModifiedDate": millis_to_seconds(rec.modified_ms),
            })))
        })
        .await
}

async fn crl_delete(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_crl_name(&name)?;
            if !state.store.crl_delete(&name)? {
                return Err(ApiError::not_found("CRL", &name));
            }
            Ok(empty())
        })
        .await
}

async fn crls_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let page = q.page(25, 250)?;
            let (items, next) = page.slice(state.store.crls_all()?);
            let items: Vec<JsonValue> = items
                .iter()
                .map(|c| json!({ "name": c.name, "lastModifiedDate": millis_to_seconds(c.modified_ms) }))
                .collect();
            Ok(Page::response("crls", items, next))
        })
        .await
}
