//! Fleet events (`docs/specs/fleet-events.md`): list, describe, and the verification state,
//! whose TRUE_POSITIVE releases the device alarms the event held as notified alarms.

use super::extract::{ApiJson, ApiPath, Page, QueryMap};
use super::violations::VerificationBody;
use super::{AppState, empty, error::ApiError};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value as JsonValue;
use thingward_models::names::check_resource_name;
use thingward_models::violation::VerificationState;
use thingward_store::{FleetEventFilter, FleetEventRecord, FleetPhase, parse_wire_id};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/thingward/v1/fleet-events", get(fleet_events_list))
        .route("/thingward/v1/fleet-events/{id}", get(fleet_event_describe))
        .route(
            "/thingward/v1/fleet-events/{id}/verification-state",
            post(fleet_event_verify),
        )
}

/// The event with wire id `id`.
///
/// # Errors
/// `InvalidRequestException` for an id that is not 16 hex digits, `ResourceNotFoundException`
/// for an unknown one.
fn existing(state: &AppState, id: &str) -> Result<FleetEventRecord, ApiError> {
    let n = parse_wire_id(id).ok_or_else(|| {
        ApiError::InvalidRequest(format!("fleetEventId must be 16 hex digits, got '{id}'"))
    })?;
    state
        .store
        .fleet_event_get(n)?
        .ok_or_else(|| ApiError::not_found("Fleet event", id))
}

async fn fleet_events_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let page = q.page(100, 250)?;
            let profile = q.str("securityProfileName").map(str::to_owned);
            if let Some(p) = &profile {
                check_resource_name("securityProfileName", p)?;
            }
            let phase = q
                .str("phase")
                .map(|p| {
                    FleetPhase::parse(p).ok_or_else(|| {
                        ApiError::InvalidRequest(format!(
                            "phase must be PENDING, OPEN, CLOSED or DISSOLVED; got '{p}'"
                        ))
                    })
                })
                .transpose()?;
            let (start_ms, end_ms) = (q.time("startTime")?, q.time("endTime")?);
            if let (Some(s), Some(e)) = (start_ms, end_ms)
                && e < s
            {
                return Err(ApiError::InvalidRequest(
                    "endTime is before startTime".into(),
                ));
            }
            let f = FleetEventFilter {
                profile,
                phase,
                start_ms,
                end_ms,
            };
            let rows = state
                .store
                .fleet_events_list(&f, page.offset, page.limit + 1)?;
            let (items, next) = page.cut(rows);
            let items: Vec<JsonValue> = items.iter().map(FleetEventRecord::wire).collect();
            Ok(Page::response("fleetEvents", items, next))
        })
        .await
}

async fn fleet_event_describe(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| Ok(Json(existing(state, &id)?.wire())))
        .await
}

async fn fleet_event_verify(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<VerificationBody>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let event = existing(state, &id)?;
            let (vstate, description) = body.checked()?;
            if !state
                .store
                .fleet_event_verify(event.id, vstate, description.as_deref())?
            {
                return Err(ApiError::not_found("Fleet event", &id));
            }
            if vstate == VerificationState::TruePositive {
                // A real attack after all: every alarm it held is notified now, and the
                // running scorer (if it still tracks the event) notifies its later alarms.
                state.detect.release_fleet_event(event.id)?;
            }
            Ok(empty())
        })
        .await
}
