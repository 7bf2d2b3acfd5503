//! Maintenance windows (`docs/specs/fleet-events.md`): declared ahead of a planned roll-out,
//! they make Detect record the covered ML alarms without notifying them.

use super::extract::{ApiJson, ApiPath, Page, QueryMap};
use super::{AppState, empty, error::ApiError};
use crate::detect::maintenance::MaintenanceParams;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value as JsonValue, json};
use thingward_models::names::check_resource_name;
use thingward_models::time::millis_to_seconds;
use thingward_store::{MaintenanceTarget, MaintenanceWindowRecord};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/thingward/v1/maintenance-windows", get(windows_list))
        .route(
            "/thingward/v1/maintenance-windows/{name}",
            get(window_describe)
                .post(window_create)
                .delete(window_delete),
        )
}

/// A window on the wire.
fn window_json(state: &AppState, w: &MaintenanceWindowRecord) -> JsonValue {
    let mut out = json!({
        "name": w.name,
        "arn": state.arn(&format!("maintenancewindow/{}", w.name)),
        "metrics": w.metrics,
        "startTime": millis_to_seconds(w.start_ms),
        "endTime": millis_to_seconds(w.end_ms),
        "creationDate": millis_to_seconds(w.creation_ms),
    });
    match &w.target {
        MaintenanceTarget::SecurityProfile(p) => out["securityProfileName"] = p.clone().into(),
        MaintenanceTarget::ThingGroup(g) => out["thingGroupName"] = g.clone().into(),
    }
    if let Some(d) = &w.description {
        out["description"] = d.clone().into();
    }
    out
}

async fn window_create(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<MaintenanceParams>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let window = body.validate(&name, &*state.store, state.detect.now())?;
            if !state.store.maintenance_insert(&window)? {
                return Err(ApiError::AlreadyExists {
                    message: format!("Maintenance window '{name}' already exists"),
                    resource_arn: state.arn(&format!("maintenancewindow/{name}")),
                    resource_id: name,
                });
            }
            state.detect.reload_maintenance()?;
            Ok(Json(window_json(state, &window)))
        })
        .await
}

async fn window_describe(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_resource_name("maintenance window name", &name)?;
            let w = state
                .store
                .maintenance_get(&name)?
                .ok_or_else(|| ApiError::not_found("Maintenance window", &name))?;
            Ok(Json(window_json(state, &w)))
        })
        .await
}

async fn windows_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let page = q.page(100, 250)?;
            let all = state.store.maintenance_all()?;
            let (items, next) = page.slice(all);
            let items: Vec<JsonValue> = items.iter().map(|w| window_json(state, w)).collect();
            Ok(Page::response("maintenanceWindows", items, next))
        })
        .await
}

/// Deleting a window that does not exist is a 404 (the name was probably mistyped; unlike
/// AWS's profile deletions there is no retry to be idempotent for).
async fn window_delete(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_resource_name("maintenance window name", &name)?;
            if !state.store.maintenance_delete(&name)? {
                return Err(ApiError::not_found("Maintenance window", &name));
            }
            state.detect.reload_maintenance()?;
            Ok(empty())
        })
        .await
}
