//! Device incidents: the overlapping alarms of one thing in one profile, one story per device
//! (`GET /thingward/v1/incidents`).

use super::extract::{Page, QueryMap};
use super::{AppState, error::ApiError};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value as JsonValue, json};
use thingward_models::ThingName;
use thingward_models::names::check_resource_name;
use thingward_models::time::millis_to_seconds;
use thingward_store::{IncidentFilter, IncidentRecord, wire_id};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/thingward/v1/incidents", get(incidents_list))
}

/// An incident on the wire: times in epoch seconds, `endTime` only once it is closed.
fn incident_json(i: &IncidentRecord) -> JsonValue {
    let mut out = json!({
        "incidentId": wire_id(i.id),
        "thingName": i.thing,
        "securityProfileName": i.profile,
        "status": if i.end_ms.is_some() { "CLOSED" } else { "OPEN" },
        "startTime": millis_to_seconds(i.start_ms),
        "behaviors": i.behaviors,
        "violationCount": i.violations,
    });
    if let Some(end) = i.end_ms {
        out["endTime"] = millis_to_seconds(end).into();
    }
    out
}

async fn incidents_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let page = q.page(100, 250)?;
            if let Some(t) = q.str("thingName") {
                ThingName::try_from(t)?;
            }
            if let Some(p) = q.str("securityProfileName") {
                check_resource_name("securityProfileName", p)?;
            }
            let (start_ms, end_ms) = (q.time("startTime")?, q.time("endTime")?);
            if let (Some(s), Some(e)) = (start_ms, end_ms)
                && e < s
            {
                return Err(ApiError::InvalidRequest(
                    "endTime is before startTime".into(),
                ));
            }
            let f = IncidentFilter {
                thing: q.str("thingName").map(str::to_owned),
                profile: q.str("securityProfileName").map(str::to_owned),
                start_ms,
                end_ms,
            };
            let rows = state
                .store
                .incidents_list(&f, page.offset, page.limit + 1)?;
            let (items, next) = page.cut(rows);
            let items: Vec<JsonValue> = items.iter().map(incident_json).collect();
            Ok(Page::response("incidents", items, next))
        })
        .await
}
