//! Thing principals: AttachThingPrincipal, DetachThingPrincipal, ListThingPrincipals.

use crate::api::error::ApiError;
use crate::api::extract::{ApiPath, Page, QueryMap};
use crate::api::{AppState, empty};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::put;
use axum::{Json, Router};
use serde_json::Value as JsonValue;
use thingward_models::ThingName;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route(
        "/things/{name}/principals",
        put(principal_attach)
            .delete(principal_detach)
            .get(principals_list),
    )
}

fn principal_header(headers: &HeaderMap) -> Result<String, ApiError> {
    let p = headers
        .get("x-amzn-principal")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::InvalidRequest("The x-amzn-principal header is required".into())
        })?;
    if p.is_empty() || p.len() > 2048 {
        return Err(ApiError::InvalidRequest(
            "principal must be 1..2048 characters".into(),
        ));
    }
    Ok(p.to_owned())
}

fn thing_exists(state: &AppState, thing: &str) -> Result<(), ApiError> {
    ThingName::try_from(thing.to_owned())?;
    if state.store.thing_get(thing)?.is_none() {
        return Err(ApiError::not_found("Thing", thing));
    }
    Ok(())
}

async fn principal_attach(
    State(state): State<AppState>,
    ApiPath(thing): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            thing_exists(state, &thing)?;
            let principal = principal_header(&headers)?;
            state.store.thing_principal_set(&thing, &principal, true)?;
            Ok(empty())
        })
        .await
}

async fn principal_detach(
    State(state): State<AppState>,
    ApiPath(thing): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            thing_exists(state, &thing)?;
            let principal = principal_header(&headers)?;
            state.store.thing_principal_set(&thing, &principal, false)?;
            Ok(empty())
        })
        .await
}

async fn principals_list(
    State(state): State<AppState>,
    ApiPath(thing): ApiPath<String>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            thing_exists(state, &thing)?;
            let page = q.page(25, 250)?;
            let (items, next) = page.slice(state.store.thing_principals(&thing)?);
            Ok(Page::response("principals", items, next))
        })
        .await
}
